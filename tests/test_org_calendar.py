"""The users' Google Calendars (sandbox/org_calendar.py): event shape per sandbox/README.md,
copies per attendee calendar, recurring series, the deal meetings behind the CRM's
meetings, reschedules and cancellations, and the replay law of calendar_changes()."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone

import pytest
from dateutil.rrule import rrulestr


UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ID = re.compile(r"^[0-9a-v]{26}$")
KEYS = {"id", "status", "summary", "description", "created", "updated", "start", "end", "organizer", "creator",
        "attendees", "recurrence", "iCalUID", "sequence", "truth"}


def start_of(e: dict):
    return e["start"].get("dateTime") or e["start"]["date"]


@pytest.fixture(scope="module")
def events(org) -> list[tuple[str, dict]]:
    return list(org.calendar_events(org.now))


def test_event_shape(org, events):
    assert org.calendars() == org.mailboxes()
    ids = defaultdict(set)
    for cal, e in events:
        assert cal in org.calendars()
        assert set(e) <= KEYS and KEYS - set(e) <= {"attendees", "recurrence"}
        assert ID.match(e["id"]) and e["id"] not in ids[cal]
        ids[cal].add(e["id"])
        assert re.match(r"^[0-9a-v]{26}@google\.com$", e["iCalUID"])
        assert e["status"] in ("confirmed", "tentative", "cancelled")
        assert type(e["sequence"]) is int and e["sequence"] >= 0
        for t in ("created", "updated"):
            assert e[t].utcoffset() == timedelta(0) and e[t].microsecond % 1000 == 0
        assert e["created"] <= e["updated"] <= org.now
        assert set(e["start"]) == set(e["end"]) and set(e["start"]) in ({"dateTime"}, {"date"})
        if "date" in e["start"]:
            assert type(e["start"]["date"]) is date and e["end"]["date"] > e["start"]["date"]
        else:
            assert e["start"]["dateTime"].utcoffset() == timedelta(0) and e["end"]["dateTime"] > e["start"]["dateTime"]
        assert e["creator"] == e["organizer"] and set(e["organizer"]) == {"email"}
        for a in e.get("attendees", ()):
            assert {"email", "displayName", "responseStatus"} <= set(a) <= \
                {"email", "displayName", "responseStatus", "organizer", "optional"}
            assert a["responseStatus"] in ("needsAction", "declined", "tentative", "accepted")
            assert a.get("organizer", True) is True and a.get("optional", True) is True
        if "attendees" in e:
            assert [a["email"] for a in e["attendees"] if a.get("organizer")] == [e["organizer"]["email"]]
        assert set(e["truth"]) == {"kind", "deal"} and e["truth"]["kind"] in ("deal", "internal", "personal")
        assert (e["truth"]["deal"] is None) == (e["truth"]["kind"] != "deal")
    kinds = Counter(e["truth"]["kind"] for _, e in events)
    assert kinds["deal"] > kinds["personal"] > kinds["internal"] > 20


def test_copies_share_the_ical_uid_and_internal_people_own_calendars(org, events):
    cals = set(org.calendars())
    by_uid = defaultdict(list)
    for cal, e in events:
        by_uid[e["iCalUID"]].append((cal, e))
    multi = 0
    for uid, copies in by_uid.items():
        e0 = copies[0][1]
        internal = {a["email"] for a in e0.get("attendees", ()) if a["email"].endswith(org.internal_domain)}
        assert internal <= cals and e0["organizer"]["email"] in cals
        assert {c for c, _ in copies} == (internal or {e0["organizer"]["email"]})
        assert len({e["id"] for _, e in copies}) == len(copies)
        strip = [{k: v for k, v in e.items() if k != "id"} for _, e in copies]
        assert all(s == strip[0] for s in strip)
        multi += len(copies) > 1
    assert multi > 50


def test_recurring_series_have_valid_rrules(org, events):
    series = [(c, e) for c, e in events if "recurrence" in e]
    assert {e["summary"].split()[-1] for _, e in series} >= {"1:1", "meeting", "stand-up"}
    freqs = Counter()
    for _, e in series:
        [rule] = e["recurrence"]
        assert rule.startswith("RRULE:FREQ=") and "BYDAY=" in rule and ("COUNT=" in rule) != ("UNTIL=" in rule)
        parts = dict(p.split("=") for p in rule.removeprefix("RRULE:").split(";"))
        assert parts["FREQ"] in ("DAILY", "WEEKLY") and set(parts) <= {"FREQ", "BYDAY", "INTERVAL", "COUNT", "UNTIL"}
        freqs[parts["FREQ"], parts.get("INTERVAL", "1")] += 1
        first = e["start"]["dateTime"]
        occurrences = list(rrulestr(rule.removeprefix("RRULE:"), dtstart=first))
        assert occurrences[0] == first, "DTSTART is the first occurrence"
        assert len(occurrences) >= 10 and e["truth"]["kind"] == "internal" and e["created"] < first
    assert set(freqs) == {("WEEKLY", "1"), ("WEEKLY", "2"), ("DAILY", "1")}
    # A leaver's 1:1 stops when they leave: the series was updated with an earlier UNTIL.
    leavers = [u for u in org._reps if u.deactivated is not None and u.deactivated <= org._now]
    assert leavers
    for u in leavers:
        [one] = [e for c, e in series if c == u.email and "1:1" in e["summary"]]
        assert one["sequence"] == 1 and one["updated"] == EPOCH + timedelta(milliseconds=u.deactivated)
        until = list(rrulestr(one["recurrence"][0].removeprefix("RRULE:"), dtstart=one["start"]["dateTime"]))[-1]
        assert until <= one["updated"]


def test_all_day_and_personal_events(events):
    all_day = [e for _, e in events if "date" in e["start"]]
    assert {e["truth"]["kind"] for e in all_day} == {"internal", "personal"}
    assert any(e["status"] == "tentative" for e in all_day)
    personal = [e for _, e in events if e["truth"]["kind"] == "personal"]
    assert all("attendees" not in e for e in personal)
    assert any(e["status"] == "cancelled" for e in personal)


def test_deal_meetings_are_the_crms_meetings(org, events, sf):
    contacts = sf["Contact"]
    users = sf["User"]
    index = defaultdict(list)
    # The CRM holds a meeting's final time from the start; the calendar gets there when it is
    # rescheduled, so compare with the calendars' final state.
    for cal, e in org.calendar_events(org.horizon):
        if e["truth"]["kind"] == "deal":
            index[(cal, start_of(e), e["truth"]["deal"][1], e["created"])].append(e)
    managers = 0
    for ev in sf["Event"].values():
        rep = users[ev["OwnerId"]]["Email"]
        # (the CRM has the odd double booking: the same deal twice in one slot, booked apart)
        [e] = [e for e in index[(rep, ev["StartDateTime"], ev["WhatId"], ev["CreatedDate"])]
               if e["status"] != "cancelled"]
        assert e["truth"]["deal"] == ("salesforce", ev["WhatId"])
        assert e["end"]["dateTime"] == ev["EndDateTime"] and e["created"] == ev["CreatedDate"]
        assert e["organizer"]["email"] == rep
        opp = sf["Opportunity"][ev["WhatId"]]
        assert opp["Name"] in e["description"]
        external = [a["email"] for a in e["attendees"] if not a["email"].endswith(org.internal_domain)]
        assert contacts[ev["WhoId"]]["Email"] in external and 1 <= len(external) <= 3
        account = {c["Email"] for c in contacts.values() if c["AccountId"] == opp["AccountId"]}
        assert set(external) <= account
        internal = [a for a in e["attendees"] if a["email"].endswith(org.internal_domain)]
        if len(internal) > 1:
            manager = users[users[ev["OwnerId"]]["ManagerId"]]["Email"]
            assert [a["email"] for a in internal[1:]] == [manager]
            managers += 1
    assert 0.1 < managers / len(sf["Event"]) < 0.3
    # Future meetings are on the calendar already.
    future = [e for _, e in events if e["truth"]["kind"] == "deal" and start_of(e) > org.now]
    assert future and all(e["created"] < org.now for e in future)


def test_reschedules_and_cancellations(org, events):
    deal = [e for _, e in events if e["truth"]["kind"] == "deal"]
    moved = [e for e in deal if e["sequence"] == 1 and e["status"] == "confirmed"]
    cancelled = [e for e in deal if e["status"] == "cancelled"]
    assert len(moved) > 0.05 * len(deal) and len(cancelled) > 0.02 * len(deal)
    for e in moved:
        assert e["created"] < e["updated"] < start_of(e)
    for e in moved[::len(moved) // 8]:     # what a few of them looked like before the move
        [before] = [x for c, x in org.calendar_events(e["updated"] - timedelta(milliseconds=1))
                    if x["id"] == e["id"]]
        assert before["sequence"] == 0 and start_of(before) != start_of(e)
        assert start_of(before).time() == start_of(e).time() and before["updated"] == e["created"]
    for e in cancelled:
        assert e["sequence"] == 1 and e["created"] < e["updated"] < start_of(e)


@pytest.mark.parametrize("days", [7, 30])
def test_changes_replay_events(org, days):
    since, until = org.now, org.now + timedelta(days=days)
    state = {(c, e["id"]): e for c, e in org.calendar_events(since)}
    changes = list(org.calendar_changes(since, until))
    keys = [(c, e["id"]) for c, e in changes]
    assert len(set(keys)) == len(keys)
    for (c, e), k in zip(changes, keys):
        assert since < e["updated"] <= until
        state[k] = e
    assert state == {(c, e["id"]): e for c, e in org.calendar_events(until)}
    assert any(e["status"] == "cancelled" for _, e in changes), "cancellations in the window"
    assert any(e["created"] <= since for _, e in changes), "updates of older events"
    if days == 30:
        assert any(e["sequence"] and e["status"] == "confirmed" for _, e in changes), "reschedules"


def test_leaver_window_replays(org):
    leaver = min((u for u in org._reps if u.deactivated is not None), key=lambda u: u.deactivated)
    until = EPOCH + timedelta(milliseconds=leaver.deactivated, days=2)
    since = until - timedelta(days=7)
    state = {(c, e["id"]): e for c, e in org.calendar_events(since)}
    changes = list(org.calendar_changes(since, until))
    for c, e in changes:
        state[(c, e["id"])] = e
    assert state == {(c, e["id"]): e for c, e in org.calendar_events(until)}
    assert any("recurrence" in e and e["sequence"] == 1 for _, e in changes)


def test_changes_edges(org):
    assert list(org.calendar_changes(org.now, org.now)) == []
    assert list(org.calendar_changes(org.horizon, org.horizon + timedelta(days=10))) == []
    assert list(org.calendar_events(datetime(2024, 1, 1, tzinfo=UTC))) == []
