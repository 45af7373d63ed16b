"""What the endpoint's Service selects around a status write: never a version status does not claim."""

from __future__ import annotations

import pytest

from slipway.serving.traffic import ALL, NONE, Selection, selection


@pytest.mark.parametrize(
    ("what", "wanted", "before", "after", "present", "first", "then"),
    [
        # (what, versions to take traffic, claimed before, after, versions with pods, pre-write, post-write)
        ("first version", [1], set(), {1}, {1}, NONE, 1),
        ("rollout starts", [1, 2], {1}, {1, 2}, {1, 2}, 1, ALL),
        ("steady canary", [1, 2], {1, 2}, {1, 2}, {1, 2}, ALL, ALL),
        ("promotion", [2], {1, 2}, {2}, {1, 2}, 2, 2),
        ("rollback", [1], {1, 2}, {1}, {1, 2}, 1, 1),
        ("superseded canary, its pods still there", [1, 3], {1, 2}, {1, 3}, {1, 2, 3}, 1, 1),
        ("the first version fails", [], {1}, set(), {1}, NONE, NONE),
    ],
)
def test_the_service_never_selects_a_version_status_does_not_claim(
    what: str,
    wanted: list[int],
    before: set[int],
    after: set[int],
    present: set[int],
    first: Selection,
    then: Selection,
) -> None:
    assert selection(wanted, before & after, present) == first, what
    assert selection(wanted, after, present) == then, what
