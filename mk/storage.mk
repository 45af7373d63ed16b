# Object storage (operator/slipway/storage): the servers its tests start on loopback, and the pull benchmark.
# fake-gcs-server (Go module proxy) and Azurite (npm) land in $(SLIPWAY_CACHE), keyed by version; moto (S3)
# comes with the dev extra. hack/storage-servers.sh rebuilds only what is missing.

.PHONY: storage-servers
storage-servers: ## Build/install fake-gcs-server and Azurite into ~/.cache/slipway (once per version)
	@bash hack/storage-servers.sh >/dev/null

.PHONY: storage-test
storage-test: install storage-servers ## Run the storage conformance and puller tests alone (~1 min)
	$(PY) -m pytest tests/storage $(PYTEST_ARGS)

.PHONY: storage-bench
storage-bench: install storage-servers ## slipway pull of a 1 GiB model from each server vs the SDK loop and cat
	$(PY) bench/pull_bench.py

TEST_PREREQS += storage-servers
