"""Cron schedules as a CronJob's `spec.schedule` reads them (robfig/cron's standard parser, which
Kubernetes uses): five fields `minute hour day-of-month month day-of-week`, with `*`, `?`,
lists, ranges, steps, month and weekday names, and the `@yearly`, `@monthly`, `@weekly`,
`@daily`, `@midnight`, `@hourly` descriptors. Times are UTC.

When both day fields are restricted a day matches either (as cron does); when one is `*`, the
other decides. `@every` and time zones (`CRON_TZ=`, `spec.timeZone`) are not simulated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from reconciler.model.errors import ReconcilerError

_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {name: i + 1 for i, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}
_WEEKDAYS = {name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
# (name, lowest, highest, names) per field, in schedule order.
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS), ("day of week", 0, 6, _WEEKDAYS))
# A schedule that matches nothing (`0 0 30 2 *`) has no next time: stop looking after this.
_HORIZON = timedelta(days=366 * 5)


class CronError(ReconcilerError):
    """A schedule that cannot be parsed; the message names the field and value."""


@dataclass(frozen=True)
class CronSchedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool  # day of month is `*`
    any_weekday: bool  # day of week is `*`

    @classmethod
    def parse(cls, schedule: str) -> CronSchedule:
        text = _DESCRIPTORS.get(schedule.strip().lower(), schedule.strip())
        if text.startswith("@"):
            raise CronError(f"schedule {schedule!r}: the descriptor {text.split()[0]!r} is not "
                            "simulated (use @yearly, @monthly, @weekly, @daily or @hourly)")
        parts = text.split()
        if len(parts) != 5:
            raise CronError(f"schedule {schedule!r}: expected 5 fields (minute hour day-of-month "
                            f"month day-of-week), found {len(parts)}")
        minutes, hours, days, months, weekdays = (
            _parse_field(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True))
        return cls(minutes, hours, days, months, weekdays,
                   any_day=parts[2] in ("*", "?"), any_weekday=parts[4] in ("*", "?"))

    def next_after(self, seconds: float) -> float | None:
        """The first time strictly after `seconds` the schedule fires, or None within 5 years."""
        start = datetime.fromtimestamp(seconds, tz=UTC).replace(second=0, microsecond=0)
        at, end = start + timedelta(minutes=1), start + _HORIZON
        while at <= end:
            if at.month not in self.months:
                at = (at.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
            elif not self._day_matches(at):
                at = at.replace(hour=0, minute=0) + timedelta(days=1)
            elif at.hour not in self.hours:
                at = at.replace(minute=0) + timedelta(hours=1)
            elif at.minute not in self.minutes:
                at += timedelta(minutes=1)
            else:
                return at.timestamp()
        return None

    def latest_at_or_before(self, seconds: float) -> float | None:
        """The last time at or before `seconds` the schedule fired, or None within 5 years."""
        at = datetime.fromtimestamp(seconds, tz=UTC).replace(second=0, microsecond=0)
        end = at - _HORIZON
        while at >= end:
            if at.month not in self.months:
                at = at.replace(day=1, hour=0, minute=0) - timedelta(minutes=1)
            elif not self._day_matches(at):
                at = at.replace(hour=0, minute=0) - timedelta(minutes=1)
            elif at.hour not in self.hours:
                at = at.replace(minute=0) - timedelta(minutes=1)
            elif at.minute not in self.minutes:
                at -= timedelta(minutes=1)
            else:
                return at.timestamp()
        return None

    def _day_matches(self, at: datetime) -> bool:
        day = at.day in self.days
        weekday = (at.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return day and weekday
        return day or weekday


def _parse_field(text: str, name: str, low: int, high: int,
                 names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        span, _, step_text = item.partition("/")
        step = _number(step_text, name, item, {}) if step_text else 1
        if step < 1:
            raise CronError(f"{name} {item!r}: the step must be at least 1")
        if span in ("*", "?"):
            first, last = low, high
        elif "-" in span:
            a, _, b = span.partition("-")
            first, last = _number(a, name, item, names), _number(b, name, item, names)
        else:
            first = _number(span, name, item, names)
            last = high if step_text else first  # `N/step` means N to the highest, every step
        if not low <= first <= last <= high:
            raise CronError(f"{name} {item!r}: out of range {low}-{high}")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _number(text: str, name: str, item: str, names: dict[str, int]) -> int:
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        raise CronError(f"{name} {item!r}: {text!r} is not a number")
    return int(text)
