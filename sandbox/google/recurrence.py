"""RRULE expansion for Calendar's ``singleEvents=true``.

Supports what the org generates, FREQ=DAILY|WEEKLY with INTERVAL, COUNT, UNTIL and BYDAY,
plus plain MONTHLY/YEARLY (same day of month / of year) and EXDATE. Occurrences are
computed in the event's time zone (``start.timeZone``, else UTC) so a weekly 09:00 meeting
stays at 09:00 local across DST changes, as Google does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}
UTC = timezone.utc


@dataclass(frozen=True)
class Rule:
    freq: str
    interval: int = 1
    count: int | None = None
    until: str | None = None
    byday: frozenset[int] | None = None


def parse(recurrence: list[str]) -> tuple[Rule | None, list[str]]:
    """The first RRULE and the raw EXDATE lines of an event's ``recurrence`` list."""
    rule, exdates = None, []
    for line in recurrence or []:
        name, _, value = line.partition(":")
        if name == "RRULE" and rule is None:
            rule = _parse_rule(value)
        elif name.split(";")[0] == "EXDATE":
            exdates.append(line)
    return rule, exdates


def _parse_rule(text: str) -> Rule:
    parts = dict(p.split("=", 1) for p in text.split(";") if "=" in p)
    byday = None
    if "BYDAY" in parts:
        # Ordinal prefixes (1MO, -1FR) only mean something for MONTHLY; keep the weekday.
        byday = frozenset(WEEKDAYS[d.strip()[-2:]] for d in parts["BYDAY"].split(",") if d.strip()[-2:] in WEEKDAYS)
    return Rule(freq=parts.get("FREQ", "DAILY").upper(), interval=max(1, int(parts.get("INTERVAL", 1))),
                count=int(parts["COUNT"]) if "COUNT" in parts else None, until=parts.get("UNTIL"), byday=byday)


def zone(name: str | None):
    try:
        return ZoneInfo(name) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def occurrences(start: datetime | date, rule: Rule, *, tz=UTC, exdates: list[str] = (),
                horizon_ms: int) -> Iterator[datetime | date]:
    """Instance starts (aware UTC datetimes, or dates for all-day series) in order, stopping
    at COUNT, UNTIL or the first start at/after ``horizon_ms``."""
    all_day = not isinstance(start, datetime)
    first_day = start if all_day else start.astimezone(tz).date()
    local_time = None if all_day else start.astimezone(tz).timetz().replace(tzinfo=None)
    until = _until(rule.until, all_day, tz)
    excluded = _exdates(exdates, tz)
    emitted = 0
    day = first_day
    while rule.count is None or emitted < rule.count:
        if _matches(rule, first_day, day):
            value = day if all_day else datetime.combine(day, local_time, tz).astimezone(UTC)
            if until is not None and value > until:
                return
            if _ms(value) >= horizon_ms:
                return
            emitted += 1
            if value not in excluded:
                yield value
        day += timedelta(days=1)
        if _ms(day) >= horizon_ms + 86_400_000:
            return


def _matches(rule: Rule, first: date, day: date) -> bool:
    if rule.freq == "DAILY":
        return (day - first).days % rule.interval == 0 and (rule.byday is None or day.weekday() in rule.byday)
    if rule.freq == "WEEKLY":
        week = ((day - (first - timedelta(days=first.weekday()))).days // 7)
        return week % rule.interval == 0 and day.weekday() in (rule.byday or {first.weekday()})
    if rule.freq == "MONTHLY":
        months = (day.year - first.year) * 12 + day.month - first.month
        return months % rule.interval == 0 and day.day == first.day
    if rule.freq == "YEARLY":
        return (day.year - first.year) % rule.interval == 0 and (day.month, day.day) == (first.month, first.day)
    return day == first                     # an unknown FREQ: just the first instance


def _until(text: str | None, all_day: bool, tz) -> datetime | date | None:
    if not text:
        return None
    if len(text) == 8:                      # a DATE: the whole day is included
        day = datetime.strptime(text, "%Y%m%d").date()
        return day if all_day else datetime.combine(day, time(23, 59, 59), tz).astimezone(UTC)
    moment = datetime.strptime(text.rstrip("Z"), "%Y%m%dT%H%M%S")
    moment = moment.replace(tzinfo=UTC) if text.endswith("Z") else moment.replace(tzinfo=tz)
    return moment.date() if all_day else moment.astimezone(UTC)


def _exdates(lines: list[str], tz) -> set:
    found = set()
    for line in lines:
        head, _, values = line.partition(":")
        params = dict(p.split("=", 1) for p in head.split(";")[1:] if "=" in p)
        line_tz = zone(params["TZID"]) if "TZID" in params else tz
        for value in values.split(","):
            value = value.strip()
            if len(value) == 8:
                found.add(datetime.strptime(value, "%Y%m%d").date())
            elif value:
                moment = datetime.strptime(value.rstrip("Z"), "%Y%m%dT%H%M%S")
                found.add(moment.replace(tzinfo=UTC if value.endswith("Z") else line_tz).astimezone(UTC))
    return found


def _ms(value: datetime | date) -> int:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    return int(value.timestamp() * 1000)
