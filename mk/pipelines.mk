# The built-in pipeline (pipelines/): TensorFlow, TF Transform, TFMA, tfx-bsl and Beam in the operator's venv,
# so kfp.local runs its steps in-process-tree without installing anything at run time.

PIPELINES_STAMP := $(VENV)/.stamp-pipelines

$(PIPELINES_STAMP): pipelines/requirements.txt $(VENV)/.stamp-install
	$(PY) -m pip install --quiet -r pipelines/requirements.txt
	touch $@

.PHONY: install-pipelines
install-pipelines: $(PIPELINES_STAMP) ## Install the pipelines' pinned TensorFlow stack into the venv (3.3 GB; 1.5-5 min from the registry)

.PHONY: pipelines-compile
pipelines-compile: install-pipelines ## Recompile pipelines/penguins/pipeline.yaml (the KFP IR) from pipeline.py
	$(PY) -m pipelines.penguins.pipeline

.PHONY: pipelines-test
pipelines-test: install-pipelines ## Run the pipeline tests alone (the full chain on penguins, ~2-4 min)
	$(PY) -m pytest tests/pipelines $(PYTEST_ARGS)

.PHONY: pipelines-bench
pipelines-bench: install-pipelines ## Wall time per component on penguins and on a synthetic 1,000,000-row table
	$(PY) bench/pipeline_bench.py

.PHONY: beam-runner-bench
beam-runner-bench: install-pipelines ## Transform on 1,000,000 rows: in-process vs Beam's portable runner, each next to a read-and-count floor
	$(PY) bench/beam_runner_bench.py

.PHONY: beam-job-server
beam-job-server: ## Fetch Beam's Flink job-server jar with Maven into ~/.cache/slipway (BEAM_JOB_SERVER=flink-1.19|spark-3...)
	@PYTHON=$(PY) bash hack/beam-job-server.sh

TEST_PREREQS += install-pipelines
