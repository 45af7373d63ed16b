# Argo CD (manifests/argocd, tests/deploy/test_argocd_health.py, tests/gitops): Argo CD v3.6.1's single binary,
# built from the Go module proxy into $(SLIPWAY_CACHE)/argocd-v3.6.1 (about 5 min cold on 2 cores, then
# cached), with the kustomize it ships and its CRDs; Debian's redis-server (pinned) and git. The health tests
# judge every check with it; the GitOps test runs its application controller and repo server.

.PHONY: argocd-binary
argocd-binary: ## Build (or reuse from ~/.cache/slipway) Argo CD v3.6.1 and its kustomize; install redis-server
	@nice -n 19 bash hack/build-argocd.sh >/dev/null

.PHONY: argocd-test
argocd-test: install k8s-binaries argocd-binary ## The health checks judged by Argo CD, then the GitOps loop (~2 min)
	$(PY) -m pytest tests/deploy/test_argocd_health.py tests/deploy/test_lua51_health.py tests/gitops $(PYTEST_ARGS)

TEST_PREREQS += argocd-binary
