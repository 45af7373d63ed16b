"""kopf copies its memo for every object it watches; Slipway's is one object shared by all."""

from __future__ import annotations

import copy

from slipway.handlers import Operator


def test_every_object_shares_the_one_memo() -> None:
    operator = Operator()
    assert copy.copy(operator) is operator
    assert copy.copy(operator).views is operator.views
