# The real node (operator/slipway/devcluster/realnode.py): Debian's containerd, runc, CNI plugins and firewall
# tools, and the pause image, compiled here (no registry is reachable). kubelet, kube-proxy and CoreDNS are
# built with the other Kubernetes binaries (`make k8s-binaries`); Slipway's own images by `make images`.

.PHONY: node-prereqs
node-prereqs: ## Install the real node's host packages (needs root) and build its pause image into ~/.cache/slipway
	@bash hack/node.sh >/dev/null

.PHONY: e2e
e2e: install k8s-binaries node-prereqs images ## Run the e2e tier alone: a real node, Slipway's images, the operator in-cluster (root)
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

TEST_PREREQS += node-prereqs
