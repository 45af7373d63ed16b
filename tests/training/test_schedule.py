"""CronJob semantics for TrainingPipeline schedules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from slipway.api.training_pipeline import Schedule
from slipway.training.schedule import ScheduleError, decide, validate

CREATED = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)


def test_due_at_the_schedule_time_and_not_again() -> None:
    hourly = Schedule(cron="0 * * * *")
    at = datetime(2026, 11, 22, 3, 0, 20, tzinfo=UTC)
    decision = decide(hourly, None, CREATED, at)
    assert decision.due == datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    assert decision.next_time == datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
    assert decide(hourly, decision.due, CREATED, at + timedelta(minutes=5)).due is None


def test_missed_schedule_inside_the_deadline_runs_late() -> None:
    hourly = Schedule(cron="0 * * * *", starting_deadline_seconds=600)
    decision = decide(
        hourly, datetime(2026, 11, 22, 2, 0, tzinfo=UTC), CREATED, datetime(2026, 11, 22, 3, 9, tzinfo=UTC)
    )
    assert decision.due == datetime(2026, 11, 22, 3, 0, tzinfo=UTC) and decision.missed is None


def test_missed_schedule_outside_the_deadline_is_skipped() -> None:
    hourly = Schedule(cron="0 * * * *", starting_deadline_seconds=600)
    decision = decide(
        hourly, datetime(2026, 11, 22, 2, 0, tzinfo=UTC), CREATED, datetime(2026, 11, 22, 3, 11, tzinfo=UTC)
    )
    assert decision.due is None and decision.missed == datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def test_only_the_latest_of_many_missed_times_counts() -> None:
    every_minute = Schedule(cron="* * * * *")
    decision = decide(every_minute, CREATED, CREATED, CREATED + timedelta(hours=5, seconds=30))
    assert decision.due == CREATED + timedelta(hours=5)


def test_time_zone_shifts_the_schedule() -> None:
    london_3am = Schedule(cron="0 3 * * *", time_zone="America/New_York")
    decision = decide(london_3am, None, CREATED, datetime(2026, 11, 22, 8, 30, tzinfo=UTC))
    assert decision.due == datetime(2026, 11, 22, 8, 0, tzinfo=UTC)  # 03:00 EST


def test_suspended_schedule_runs_nothing_but_still_says_when_next() -> None:
    decision = decide(Schedule(cron="0 * * * *", suspend=True), None, CREATED, CREATED + timedelta(hours=3))
    assert decision.due is None and decision.next_time == CREATED + timedelta(hours=4)


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        # Admission refuses both now (see tests/unit/test_formats.py); the operator still names the field
        # for an object stored before it did.
        (Schedule.model_construct(cron="every day"), "spec.schedule.cron"),
        (Schedule.model_construct(cron="0 3 * * *", time_zone="Mars/Olympus"), "spec.schedule.timeZone"),
    ],
)
def test_invalid_schedules_name_the_field(schedule: Schedule, field: str) -> None:
    with pytest.raises(ScheduleError) as raised:
        validate(schedule)
    assert raised.value.field == field


@pytest.mark.parametrize("never", ["0 0 30 2 *", "0 0 31 4 *"])
def test_a_schedule_that_never_fires_is_refused_naming_the_field(never: str) -> None:
    with pytest.raises(ScheduleError) as refused:
        validate(Schedule.model_construct(cron=never))  # admission refuses it now: stored before it did
    assert refused.value.field == "spec.schedule.cron" and refused.value.reason == "InvalidSchedule"
    assert "never fires" in str(refused.value)
    with pytest.raises(ScheduleError):
        decide(Schedule.model_construct(cron=never), None, CREATED, CREATED + timedelta(days=1))


def test_a_leap_day_schedule_fires() -> None:
    validate(Schedule(cron="0 0 29 2 *"))
