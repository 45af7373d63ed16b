# The fault suite's long form (tests/faults/): 100 rollouts per serving scenario under crashes between the
# operator's writes, control-plane faults and replica failover (the costly faults at every N-th rollout),
# and training runs under the same faults; `make test` runs each family once. 46 minutes on 2 cores with a
# `make test` running alongside (per scenario in bench/results/faults.json, `seconds`).
FAULT_ROLLOUTS ?= 100

.PHONY: faults
faults: install k8s-binaries ## Fault suite, long form: $(FAULT_ROLLOUTS) rollouts per scenario; writes bench/results/faults.json (about 45 minutes on 2 cores)
	rm -f bench/results/faults.json
	SLIPWAY_FAULT_ROLLOUTS=$(FAULT_ROLLOUTS) SLIPWAY_FAULT_RESULTS=$(CURDIR)/bench/results/faults.json \
	  $(PY) -m pytest tests/faults -o timeout=0 $(PYTEST_ARGS)
