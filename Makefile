# Slipway: `make help` lists the targets. Everything the project needs is installed from here.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
SLIPWAY_CACHE ?= $(HOME)/.cache/slipway
export SLIPWAY_CACHE
PYTEST_ARGS ?=
LINT_PATHS := $(wildcard operator tests bench pipelines)
TEST_PREREQS ?=

# Per-concern fragments (storage servers, pipelines extra, ...) add targets and append to TEST_PREREQS;
# included before the rules that use TEST_PREREQS, since prerequisites are expanded when a rule is read.
-include mk/*.mk

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.stamp-install: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11'" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

.PHONY: install
install: $(VENV)/.stamp-install ## Create the virtual environment with the operator and dev tools

.PHONY: k8s-binaries
k8s-binaries: ## Build (or reuse from ~/.cache/slipway) etcd, kube-apiserver, controller-manager, scheduler, kubectl, kwok
	@if [ -n "$$KUBEBUILDER_ASSETS" ]; then echo "using KUBEBUILDER_ASSETS=$$KUBEBUILDER_ASSETS"; else bash hack/build-k8s.sh >/dev/null; fi

.PHONY: third-party-crds
third-party-crds: ## Fetch the Gateway API (HTTPRoute) and prometheus-operator (ServiceMonitor) CRDs into ~/.cache/slipway for the tests
	@bash hack/third-party-crds.sh gateway-api >/dev/null
	@bash hack/third-party-crds.sh prometheus-operator >/dev/null

# auto: a real node (every container runs) where the machine allows it (root, containerd), else kwok and why.
DEMO_NODE ?= auto

.PHONY: demo
demo: install install-pipelines k8s-binaries node-prereqs ## The whole loop, narrated, on a real node where possible (else kwok); leaves it up for you
	$(PY) -m slipway.demo up --workdir .demo --node $(DEMO_NODE)

.PHONY: demo-down
demo-down: ## Stop what `make demo` left running and remove .demo/
	$(PY) -m slipway.demo down --workdir .demo

.PHONY: crds
crds: install api-docs ## Regenerate crds/*.yaml (and docs/api.md) from the pydantic models
	$(PY) -m slipway.api.crdgen crds

.PHONY: api-docs
api-docs: install ## Regenerate docs/api.md (the API) and docs/operator.md (settings, the slipway command) from the code
	$(PY) -m slipway.api.apidoc docs/api.md
	$(PY) -m slipway.opsdoc docs/operator.md

.PHONY: argocd
argocd: install ## Regenerate manifests/argocd/argocd-cm.yaml from the Lua health checks
	$(PY) -m slipway.argocd manifests/argocd

.PHONY: lint
lint: install ## ruff, mypy and the import layering contract
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy bench
	$(VENV)/bin/lint-imports

UNIT_MARKERS := not cluster and not e2e and not tensorflow and not argocd

.PHONY: unit
unit: install ## The fast tier: every test that needs neither a cluster nor TensorFlow (run it while editing)
	@$(PY) -m pytest -m "$(UNIT_MARKERS)" $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make unit: pytest collected no tests: that is a failure" >&2; fi; exit $$rc

.PHONY: test
test: install k8s-binaries third-party-crds $(TEST_PREREQS) lint ## Install what is missing, then run every test (unit, cluster on a real API server, e2e on a real node)
	@$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests: that is a failure" >&2; fi; exit $$rc

.PHONY: control-plane
control-plane: install k8s-binaries ## Start the embedded control plane in the foreground (Ctrl-C stops it)
	$(VENV)/bin/slipway dev-cluster up

.PHONY: run
run: install ## Run the operator against the current kubeconfig (KUBECONFIG or ~/.kube/config)
	$(VENV)/bin/slipway run
