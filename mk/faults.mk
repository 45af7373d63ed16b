# The fault suite's long form (tests/faults/): at least 100 rollouts per scenario under crashes between the
# operator's writes, control-plane faults and replica failover; `make test` runs each scenario once.
FAULT_ROLLOUTS ?= 100

.PHONY: faults
faults: install k8s-binaries ## Fault suite, long form: $(FAULT_ROLLOUTS) rollouts per scenario; writes bench/results/faults.json (hours on 2 cores)
	rm -f bench/results/faults.json
	SLIPWAY_FAULT_ROLLOUTS=$(FAULT_ROLLOUTS) SLIPWAY_FAULT_RESULTS=$(CURDIR)/bench/results/faults.json \
	  $(PY) -m pytest tests/faults -o timeout=0 $(PYTEST_ARGS)
