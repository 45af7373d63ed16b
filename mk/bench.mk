# Benchmarks (bench/): figures, not tests. `make bench` prints one table and writes bench/results/summary.{json,md}.
BENCH_ARGS ?=

.PHONY: bench
bench: install k8s-binaries ## Benchmark suite on the embedded control plane, one table (~15 min on 2 cores; BENCH_ARGS=--quick for ~4)
	$(PY) bench/suite.py $(BENCH_ARGS)

STAMINA_ARGS ?=

.PHONY: bench-stamina
bench-stamina: install k8s-binaries ## Stamina: 2,000 rollouts + 300 with analysis/rollbacks on one operator, RSS/fds/threads/objects every 100 (12 min on an idle 2-core machine; 500 took 36 min at load 50)
	$(PY) bench/stamina_bench.py $(STAMINA_ARGS)

.PHONY: bench-memory
bench-memory: install k8s-binaries ## Where the operator's memory goes at 1,000 endpoints + 10,000 versions: tracemalloc, smaps, malloc arenas (~10 min)
	$(PY) bench/memory_breakdown.py
