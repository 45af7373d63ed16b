"""The fuzzer: specs of all three kinds drawn from the CRDs' schemas (valid and near-valid), applied to the
real API server with the operator running. FUZZ_EXAMPLES sets how many (the short form in `make test`: 150;
`make fuzz`: 5,000)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from kubernetes import client

from fuzz.campaign import Campaign
from fuzz.strategies import manifest
from slipway.devcluster.operator_process import OperatorProcess

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
BATCH = int(os.environ.get("FUZZ_BATCH", "100"))


# The long form outlasts the suite's 600 s per test: allow a second a case, and the cluster's start.
@pytest.mark.timeout(300 + EXAMPLES)
def test_fuzzed_objects_are_refused_naming_a_field_or_answered(
    api_client: client.ApiClient, operator_process: OperatorProcess
) -> None:
    operator_process.start()
    campaign = Campaign(api_client, operator_process)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(doc=manifest())
    def apply(doc: dict[str, Any]) -> None:
        campaign.apply(doc)
        if len(campaign.pending) >= BATCH or campaign.counts["cases"] % (BATCH * 3) == 0:
            campaign.settle()

    apply()
    campaign.settle()
    print(campaign.summary())
    for violation in campaign.violations[:20]:
        print("-", violation)
    assert campaign.counts["cases"] >= EXAMPLES
    assert campaign.counts["refused"] > 0 and campaign.counts["accepted"] > 0
    assert not campaign.violations, campaign.summary() + "\n" + "\n".join(campaign.violations[:10])
