# Benchmarks (bench/): figures, not tests. `make bench` prints one table and writes bench/results/summary.{json,md}.
BENCH_ARGS ?=

.PHONY: bench
bench: install k8s-binaries ## Benchmark suite on the embedded control plane, one table (~15 min on 2 cores; BENCH_ARGS=--quick for ~4)
	$(PY) bench/suite.py $(BENCH_ARGS)
