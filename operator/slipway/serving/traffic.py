"""Which pods the endpoint's Service selects, chosen so that it never selects a version the endpoint's
status does not claim (as stable or as canary), whenever the operator stops between two writes.

A reconcile that changes what status claims writes the Service twice around the status write: before it,
a selection claimed both before and after (so a crash right after the status write leaves nothing
unclaimed selected); after it, the selection the new status allows. The Service selects every version's
pods (the replica ratio) only while every version with pods is claimed; otherwise one version (stable
first), or none."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from slipway.api.serving_endpoint import ServingEndpointStatus

ALL: Literal["all"] = "all"
NONE: Literal["none"] = "none"
Selection = int | Literal["all", "none"]


def claimed(status: ServingEndpointStatus | None) -> set[int]:
    if status is None:
        return set()
    return {v for v in (status.stable_version, status.canary_version) if v is not None}


def selection(wanted: Iterable[int], allowed: set[int], present: set[int]) -> Selection:
    """`wanted`: the versions that should take traffic, stable first; `allowed`: the versions status claims
    throughout the write at hand; `present`: every version that has (or is about to have) pods."""
    wanted = list(wanted)
    if len(wanted) > 1 and set(wanted) <= allowed and present <= allowed:
        return ALL
    return next((v for v in wanted if v in allowed), NONE)
