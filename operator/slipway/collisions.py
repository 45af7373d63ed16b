"""A (model, version) pair names one ModelVersion: which objects claim the same pair, as a pure function.

The API server cannot refuse the second claim (uniqueness across objects is beyond a CRD's schema), so
the operator does: the registry marks every claimant with a condition naming the others, and serving
ignores a version while more than one object claims it (what it already serves stays as deployed)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

CONDITION = "Unique"
REASON = "VersionCollision"


def colliding(claims: Iterable[tuple[str, int]]) -> dict[str, list[str]]:
    """(object name, version) claims of one model -> for each object that shares its version with
    another, the others' names (sorted)."""
    by_version: dict[int, set[str]] = defaultdict(set)
    for name, version in claims:
        by_version[version].add(name)
    return {name: sorted(names - {name}) for names in by_version.values() if len(names) > 1 for name in names}


def message(model: str, version: int, others: list[str]) -> str:
    listed = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
    return (
        f"{model} v{version} is also claimed by ModelVersion {listed}: no endpoint starts serving it while "
        "more than one object claims it; delete all but one"
    )
