# The fuzzer (tests/fuzz): specs of all three kinds drawn from the CRDs' schemas, applied to a real API server
# with the operator running. `make test` runs its short form (FUZZ_EXAMPLES=150); this runs the long one.
FUZZ_EXAMPLES ?= 5000

.PHONY: fuzz
fuzz: install k8s-binaries ## The fuzzer's long form (FUZZ_EXAMPLES=5000 cases; prints cases, refused, accepted, invariants broken)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest tests/fuzz -s -p no:cacheprovider $(PYTEST_ARGS)
