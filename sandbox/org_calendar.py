"""The users' primary Google Calendars: `SyntheticOrg.calendars/calendar_events/calendar_changes`.

An event is one real-world meeting; each internal attendee's calendar holds its own copy
(same iCalUID, own event id). Events come in units with their own RNGs:

* org-wide series, set up just before `start`: a weekly (or fortnightly) 1:1 of every rep
  with their manager, which ends early when the rep leaves; a weekly team meeting and, for
  every other team, a daily stand-up; the VP's fortnightly staff meeting; the all-day sales
  kick-off each January;
* per deal: a meeting for every CRM meeting (Salesforce Event / HubSpot meeting), organised
  by the rep, with 1-3 of the account's contacts and sometimes the manager; ~10 % were first
  booked at another time and rescheduled (sequence 1); ~6 % of them get a follow-up that is
  booked and then cancelled, which the CRM never hears of;
* per user and month: personal appointments (some cancelled) and out-of-office days.

Each event is a list of versions (updated ms, changed fields); an event's state at t is its
last version up to t. Cancelled events stay, with status "cancelled".
"""

from __future__ import annotations

import calendar as _cal
from array import array
from datetime import date, datetime, timedelta
from typing import Iterator

from sandbox.org_base import (
    _BDAY, _DAY, _HOUR, _MIN, UTC, _Deal, _User, _biz, _digest, _dt, _ms, _poisson, _user_name, _wall)

_WEEKDAYS = ["MO", "TU", "WE", "TH", "FR"]
_SERIES_END = "20261231T235959Z"
_P_MANAGER, _P_RESCHEDULE, _P_CANCELLED_FOLLOW_UP = 0.20, 0.10, 0.06
_RESPONSES = [("accepted", 70), ("needsAction", 15), ("tentative", 10), ("declined", 5)]
_APPOINTMENTS = ["Dentist", "Doctor's appointment", "School pickup", "Gym", "Car service",
                 "Parent-teacher conference", "Haircut", "Physio"]
_B32HEX = "0123456789abcdefghijklmnopqrstuv"
_FIRST_MONTH, _LAST_MONTH = 12, 35         # month numbers (since Jan 2024): Jan 2025 .. Dec 2026


class _Event:
    """One real-world event. versions: [(ms, {field: value})]; calendars: owners' addresses."""
    __slots__ = ("key", "versions", "summary", "description", "organizer", "attendees", "truth", "calendars")

    def __init__(self, key, versions, summary, description, organizer, attendees, truth, calendars):
        self.key, self.versions, self.summary, self.description = key, versions, summary, description
        self.organizer, self.attendees, self.truth, self.calendars = organizer, attendees, truth, calendars


def _b32(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    return "".join(_B32HEX[(n >> (5 * k)) & 31] for k in range(26))


def _timed(start: int, minutes: int) -> dict:
    return {"start": {"dateTime": _dt(start)}, "end": {"dateTime": _dt(start + minutes * _MIN)}}


def _all_day(first: date, days: int) -> dict:
    return {"start": {"date": first}, "end": {"date": first + timedelta(days=days)}}


def _attendee(u: _User, organizer: bool = False, optional: bool = False, response: str = "accepted") -> dict:
    a = {"email": u.email, "displayName": _user_name(u), "responseStatus": response}
    if organizer:
        a["organizer"] = True
    if optional:
        a["optional"] = True
    return a


def _utc_basic(ms: int) -> str:
    return _dt(ms).strftime("%Y%m%dT%H%M%SZ")


def _pick_response(r) -> str:
    x = r.random() * 100
    for value, weight in _RESPONSES:
        x -= weight
        if x < 0:
            return value
    return "accepted"


class CalendarView:
    """Renders the org's calendars; `org` is the SyntheticOrg."""

    def __init__(self, org):
        self.org = org
        self._touched = array("q", [-1]) * org._n_deals    # per deal: last update of its events
        self._first_monday = _ms(datetime(2025, 1, 6, tzinfo=UTC))

    def calendars(self) -> list[str]:
        return [u.email for u in self.org._users]

    # ------------------------------------------------------------------ org-wide series

    def _series(self) -> list[_Event]:
        org = self.org
        r = org._rng("cal-series")
        internal = {"kind": "internal", "deal": None}
        out = []
        for rep in org._reps:
            out.append(self._one_on_one(r, rep, internal))
        for mgr in org._managers:
            team = [u for u in org._reps if u.team == mgr.team]
            people = [_attendee(mgr, organizer=True)] + [_attendee(u) for u in team]
            start = self._first_monday + (14 + mgr.team % 6) * _HOUR
            out.append(self._recurring(f"team{mgr.n}", mgr, people, start, 45,
                                       "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=100", f"{mgr.last} team meeting",
                                       "Weekly pipeline walk-through.", internal))
            if mgr.team % 2 == 0:
                out.append(self._recurring(f"standup{mgr.n}", mgr, people, self._first_monday + 13 * _HOUR + 30 * _MIN,
                                           15, f"RRULE:FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;UNTIL={_SERIES_END}",
                                           f"{mgr.last} team stand-up", "Daily check-in.", internal))
        vp = org._vp
        staff = [_attendee(vp, organizer=True)] + [_attendee(m) for m in org._managers]
        out.append(self._recurring("staff", vp, staff, self._first_monday + 3 * _DAY + 16 * _HOUR, 60,
                                   "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TH;COUNT=52", "Sales leadership staff meeting",
                                   "Forecast, hiring, escalations.", internal))
        for year, day in ((2025, 14), (2026, 13)):
            first = date(year, 1, day)
            created = _ms(datetime(year - 1, 11, 17, 15, tzinfo=UTC))
            people = [u for u in org._users if u.active_at(created)]
            out.append(_Event(f"sko{year}", [(created, {"status": "confirmed", **_all_day(first, 2), "sequence": 0})],
                              f"Sales kick-off {year}", "Two days of planning, training and awards.", vp,
                              [_attendee(vp, organizer=True)] + [_attendee(u) for u in people if u is not vp],
                              internal, [u.email for u in people]))
        return out

    def _one_on_one(self, r, rep: _User, truth: dict) -> _Event:
        """A rep's 1:1 with their manager; cut short (new UNTIL) when the rep leaves."""
        mgr = rep.manager
        wd = r.randrange(5)
        start = self._first_monday + wd * _DAY + (14 + r.randrange(8)) * _HOUR + r.choice((0, 30)) * _MIN
        every = "INTERVAL=2;" if r.random() < 0.25 else ""
        rule = f"RRULE:FREQ=WEEKLY;{every}BYDAY={_WEEKDAYS[wd]};UNTIL="
        created = _wall(_biz(start - int(r.uniform(3, 15) * _DAY)))
        ev = self._recurring(f"1on1.{rep.n}", mgr, [_attendee(mgr, organizer=True), _attendee(rep)], start, 30,
                             rule + _SERIES_END, f"{rep.first} / {mgr.first} 1:1", "Deals, coaching, blockers.",
                             truth, created=created)
        if rep.deactivated is not None:
            ev.versions.append((rep.deactivated, {"sequence": 1, "recurrence": [rule + _utc_basic(rep.deactivated)]}))
        return ev

    def _recurring(self, key, organizer: _User, people: list[dict], start: int, minutes: int, rule: str,
                   summary: str, description: str, truth: dict, created: int | None = None) -> _Event:
        created = start - 10 * _DAY if created is None else created
        first = {"status": "confirmed", **_timed(start, minutes), "sequence": 0, "recurrence": [rule]}
        return _Event(key, [(created, first)], summary, description, organizer, people, truth,
                      [p["email"] for p in people])

    # ------------------------------------------------------------------ deal meetings

    def deal_events(self, D: _Deal, acts: list[tuple] | None = None) -> list[_Event]:
        org = self.org
        acts = org._activities(D) if acts is None else acts
        contacts = org._contacts(D.account)
        by_id = {c.id: c for c in contacts}
        r = org._rng("cal-deal", D.i)
        truth = {"kind": "deal", "deal": org._gmail.deal_ref(D)}
        out = []
        for j, a in enumerate(acts):
            if a[0] != "Event":
                continue
            _, created, start, minutes, subject, who, rep = a
            topic = subject.removeprefix("Meeting: ")
            main = by_id[who]
            others = [c for c in contacts if c.created <= created and c is not main]
            guests = [main] + r.sample(others, min(len(others), r.choice((0, 0, 1, 1, 2))))
            manager = rep.manager if r.random() < _P_MANAGER else None
            people = [_attendee(rep, organizer=True)]
            people += [{"email": c.email, "displayName": f"{c.first} {c.last}", "responseStatus": _pick_response(r)}
                       for c in guests]
            if manager is not None:
                people.append(_attendee(manager, optional=r.random() < 0.5))
            summary = f"{D.account.name} – {topic}"
            description = f"{topic.capitalize()} for {D.name}."
            calendars = [rep.email] + ([manager.email] if manager is not None else [])
            versions = self._maybe_rescheduled(r, created, start, minutes)
            out.append(_Event(f"d{D.i}.{j}", versions, summary, description, rep, people, truth, calendars))
            if r.random() < _P_CANCELLED_FOLLOW_UP:
                booked = _wall(_biz(start) + int(r.uniform(0.1, 1.0) * _BDAY))
                when = _wall(_biz(start) + r.randint(2, 6) * _BDAY)
                cancel = booked + int(r.uniform(0.1, 0.9) * (when - booked))
                out.append(_Event(f"d{D.i}.{j}.f", [
                    (booked, {"status": "confirmed", **_timed(when, minutes), "sequence": 0}),
                    (cancel, {"status": "cancelled", "sequence": 1})],
                    f"{D.account.name} – follow-up", f"Follow-up on {D.name}.", rep, people, truth, calendars))
        return out

    @staticmethod
    def _maybe_rescheduled(r, created: int, start: int, minutes: int) -> list:
        """A meeting's versions: booked at its final time, or first at another time the same time
        of day 1-3 business days away and moved before either came round."""
        final = {"status": "confirmed", **_timed(start, minutes), "sequence": 0}
        if r.random() >= _P_RESCHEDULE:
            return [(created, final)]
        first = _wall(_biz(start) + r.choice((-3, -2, -1, 1, 2, 3)) * _BDAY)
        moved = created + int(r.uniform(0.1, 0.9) * (min(first, start) - created))
        if first <= created + _HOUR or not created < moved < min(first, start):
            return [(created, final)]
        return [(created, {**final, **_timed(first, minutes)}), (moved, {**_timed(start, minutes), "sequence": 1})]

    # ------------------------------------------------------------------ personal events

    def _personal_month(self, u: _User, month: int) -> list[_Event]:
        """Appointments (solo, 10 % cancelled) and out-of-office days of one user in one month."""
        r = self.org._rng("cal-user", u.n, month)
        year, m0 = divmod(month, 12)
        first_day = date(2024 + year, m0 + 1, 1)
        n_days = _cal.monthrange(first_day.year, first_day.month)[1]
        midnight = _ms(datetime(first_day.year, first_day.month, 1, tzinfo=UTC))
        truth = {"kind": "personal", "deal": None}
        out = []
        for k in range(_poisson(r, 1.2)):
            start = midnight + r.randrange(n_days) * _DAY + (12 + r.randrange(10)) * _HOUR + r.choice((0, 30)) * _MIN
            minutes = r.choice((30, 45, 60, 90))
            created = start - int(r.uniform(1, 14) * _DAY)
            versions = [(created, {"status": "confirmed", **_timed(start, minutes), "sequence": 0})]
            if r.random() < 0.1:
                versions.append((created + int(r.uniform(0.1, 0.9) * (start - created)),
                                 {"status": "cancelled", "sequence": 1}))
            if u.active_at(created) and (u.deactivated is None or start < u.deactivated):
                out.append(_Event(f"p{u.n}.{month}.{k}", versions, r.choice(_APPOINTMENTS), "", u, None, truth,
                                  [u.email]))
        if r.random() < 0.15:
            day = first_day + timedelta(days=r.randrange(n_days))
            length = r.randint(1, 5)
            created = _ms(datetime(day.year, day.month, day.day, tzinfo=UTC)) - int(r.uniform(7, 40) * _DAY)
            status = "tentative" if r.random() < 0.15 else "confirmed"
            if u.active_at(created):
                out.append(_Event(f"o{u.n}.{month}", [(created, {"status": status, **_all_day(day, length),
                                                                 "sequence": 0})],
                                  r.choice(("Out of office", "Vacation", "PTO")), "", u, None, truth, [u.email]))
        return out

    # ------------------------------------------------------------------ copies and streams

    def _copies(self, ev: _Event, t: int, since: int | None) -> Iterator[tuple[str, dict]]:
        """Each calendar's copy of the event in its state at t, if it exists at t (and, with
        since, changed in (since, t])."""
        created = ev.versions[0][0]
        if created > t:
            return
        state, updated = {}, created
        for tm, fields in ev.versions:
            if tm > t:
                break
            state.update(fields)
            updated = tm
        if since is not None and updated <= since:
            return
        seed = self.org.seed
        uid = f"{_b32(_digest(seed, 'ical', ev.key))}@google.com"
        for cal in ev.calendars:
            rec = {"id": _b32(_digest(seed, "event", ev.key, cal)), "status": state["status"],
                   "summary": ev.summary, "description": ev.description, "created": _dt(created),
                   "updated": _dt(updated), "start": dict(state["start"]), "end": dict(state["end"]),
                   "organizer": {"email": ev.organizer.email}, "creator": {"email": ev.organizer.email}}
            if ev.attendees:
                rec["attendees"] = [dict(a) for a in ev.attendees]
            if "recurrence" in state:
                rec["recurrence"] = list(state["recurrence"])
            rec.update({"iCalUID": uid, "sequence": state["sequence"], "truth": dict(ev.truth)})
            yield cal, rec

    def stream(self, t: int, since: int | None) -> Iterator[tuple[str, dict]]:
        org = self.org
        for ev in self._series():
            yield from self._copies(ev, t, since)
        for D in org._deals_upto(t, since, touched=self._touched):
            events = self.deal_events(D)
            self._touched[D.i] = max((ev.versions[-1][0] for ev in events), default=0)
            for ev in events:
                yield from self._copies(ev, t, since)
        # A month's personal events are created at most 40 days ahead and change before they start.
        lo = _FIRST_MONTH if since is None else max(_FIRST_MONTH, _month_of(since) - 1)
        hi = min(_LAST_MONTH, _month_of(t + 41 * _DAY))
        for month in range(lo, hi + 1):
            for u in org._users:
                for ev in self._personal_month(u, month):
                    yield from self._copies(ev, t, since)


def _month_of(ms: int) -> int:
    d = _dt(ms)
    return (d.year - 2024) * 12 + d.month - 1
