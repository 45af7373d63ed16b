"""Cron schedules with CronJob's semantics, as pure functions (croniter parses the expressions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from slipway.api.training_pipeline import Schedule
from slipway.refusals import Refused


class ScheduleError(Refused):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, "InvalidSchedule", message)


@dataclass(frozen=True)
class Decision:
    due: datetime | None  # the schedule time to run now, if any
    missed: datetime | None  # a schedule time skipped because the starting deadline passed
    next_time: datetime | None


def zone(schedule: Schedule) -> ZoneInfo:
    try:
        return ZoneInfo(schedule.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ScheduleError("spec.schedule.timeZone", f"unknown time zone {schedule.time_zone!r}") from error


def validate(schedule: Schedule, now: datetime | None = None) -> None:
    """Raises ScheduleError for a time zone that does not exist, an expression that does not parse, or one
    that never fires (February 30: every field is valid, no date matches)."""
    zone(schedule)
    if not croniter.is_valid(schedule.cron):
        raise ScheduleError("spec.schedule.cron", f"{schedule.cron!r} is not a cron expression")
    next_after(schedule, now or datetime.now(UTC))


def _iterator(schedule: Schedule, start: datetime) -> croniter:
    try:
        return croniter(schedule.cron, start.astimezone(zone(schedule)))
    except (CroniterBadCronError, ValueError, KeyError) as error:
        raise ScheduleError("spec.schedule.cron", f"{schedule.cron!r} is not a cron expression") from error


def next_after(schedule: Schedule, moment: datetime) -> datetime:
    try:
        result: datetime = _iterator(schedule, moment).get_next(datetime)
    except CroniterBadDateError as error:
        raise ScheduleError(
            "spec.schedule.cron", f"{schedule.cron!r} never fires (no date matches it)"
        ) from error
    return result.astimezone(UTC)


def latest_at_or_before(schedule: Schedule, since: datetime, now: datetime) -> datetime | None:
    """The most recent schedule time in (since, now]; None if there is none."""
    latest = None
    iterator = _iterator(schedule, since)
    for _ in range(100_000):
        try:
            candidate: datetime = iterator.get_next(datetime).astimezone(UTC)
        except CroniterBadDateError as error:
            raise ScheduleError("spec.schedule.cron", f"{schedule.cron!r} never fires") from error
        if candidate > now:
            break
        latest = candidate
    return latest


def decide(schedule: Schedule, last_schedule: datetime | None, created: datetime, now: datetime) -> Decision:
    """What the schedule asks for now. Like CronJob, only the latest missed time counts, and a time older
    than startingDeadlineSeconds is skipped rather than run late."""
    next_time = next_after(schedule, now)
    if schedule.suspend:
        return Decision(None, None, next_time)
    latest = latest_at_or_before(schedule, last_schedule or created, now)
    if latest is None:
        return Decision(None, None, next_time)
    deadline = schedule.starting_deadline_seconds
    if deadline is not None and now - latest > timedelta(seconds=deadline):
        return Decision(None, latest, next_time)
    return Decision(latest, None, next_time)
