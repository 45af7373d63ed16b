# Kubeflow Pipelines (operator/slipway/training/kfp_executor.py): the real KFP API server and persistence
# agent the kfp-executor tests run against, built from the Go module proxy into $(SLIPWAY_CACHE)/kfp-<version>
# (4-6 min cold on 2 cores, then cached), plus Debian's mariadb-server for its database. The tests start
# the whole stack (MariaDB, moto, the backend) on loopback next to the embedded control plane.

.PHONY: kfp-backend
kfp-backend: ## Build (or reuse from ~/.cache/slipway) the KFP 2.0.5 API server + persistence agent; install MariaDB
	@nice -n 19 bash hack/kfp-backend.sh >/dev/null

.PHONY: kfp-test
kfp-test: install k8s-binaries kfp-backend ## Run the kfp-executor tests alone against the real KFP API server (~2 min)
	$(PY) -m pytest tests/training -k "kfp and not kfp_local" $(PYTEST_ARGS)

TEST_PREREQS += kfp-backend
