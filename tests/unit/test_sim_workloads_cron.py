"""Cron schedules of simulated CronJobs: the next and the latest firing, and refused schedules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from simulator.cron import CronError, CronSchedule


def _t(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC).timestamp()


def _s(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M")


# (schedule, now, next firing after now, latest firing at or before now)
CASES = [
    ("* * * * *", "2026-01-01 00:00", "2026-01-01 00:01", "2026-01-01 00:00"),
    ("*/5 * * * *", "2026-01-01 00:07", "2026-01-01 00:10", "2026-01-01 00:05"),
    ("0 3 * * *", "2026-01-01 04:00", "2026-01-02 03:00", "2026-01-01 03:00"),
    ("@hourly", "2026-01-01 04:30", "2026-01-01 05:00", "2026-01-01 04:00"),
    ("@daily", "2026-01-01 04:30", "2026-01-02 00:00", "2026-01-01 00:00"),
    ("@weekly", "2026-01-01 04:30", "2026-01-04 00:00", "2025-12-28 00:00"),  # Sundays
    ("@monthly", "2026-01-15 00:00", "2026-02-01 00:00", "2026-01-01 00:00"),
    ("@yearly", "2026-06-01 00:00", "2027-01-01 00:00", "2026-01-01 00:00"),
    ("15,45 9-17/4 * * *", "2026-01-01 13:20", "2026-01-01 13:45", "2026-01-01 13:15"),
    ("0 0 * * mon-fri", "2026-01-03 12:00", "2026-01-05 00:00", "2026-01-02 00:00"),
    ("0 0 1 jan,jul *", "2026-02-01 00:00", "2026-07-01 00:00", "2026-01-01 00:00"),
    # Both day fields restricted: either matches (the 13th, or any Friday).
    ("0 0 13 * 5", "2026-01-03 00:00", "2026-01-09 00:00", "2026-01-02 00:00"),
    ("30 */6 * * *", "2026-01-01 23:59", "2026-01-02 00:30", "2026-01-01 18:30"),
    ("0 12 31 * *", "2026-04-01 00:00", "2026-05-31 12:00", "2026-03-31 12:00"),
    ("0 0 29 2 *", "2026-01-01 00:00", "2028-02-29 00:00", "2024-02-29 00:00"),
    ("0 0 30 2 *", "2026-01-01 00:00", None, None),  # never fires
]


@pytest.mark.parametrize(("schedule", "now", "following", "latest"), CASES,
                         ids=[f"{c[0]} at {c[1]}" for c in CASES])
def test_next_and_latest_firing(schedule: str, now: str, following: str | None,
                                latest: str | None) -> None:
    parsed = CronSchedule.parse(schedule)
    assert _s(parsed.next_after(_t(now))) == following
    assert _s(parsed.latest_at_or_before(_t(now))) == latest


@pytest.mark.parametrize(("schedule", "message"), [
    ("* * * *", "expected 5 fields"),
    ("61 * * * *", "minute '61': out of range 0-59"),
    ("* * * * 7", "day of week '7': out of range 0-6"),
    ("5-1 * * * *", "minute '5-1': out of range"),
    ("*/0 * * * *", "the step must be at least 1"),
    ("* * * foo *", "'foo' is not a number"),
    ("@every 1h", "'@every' is not simulated"),
])
def test_refused_schedules_name_the_field(schedule: str, message: str) -> None:
    with pytest.raises(CronError) as caught:
        CronSchedule.parse(schedule)
    assert message in str(caught.value)
