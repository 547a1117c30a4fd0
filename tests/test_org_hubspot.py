"""The synthetic org in HubSpot (crm="hubspot"): record shapes per sandbox/README.md, ids,
property history, associations, the default pipeline, archives and merges, the changes()
replay law, and agreement with the deals() truth and with the Salesforce simulation."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

import pytest

from sandbox.org import DealTruth, SyntheticOrg

UTC = timezone.utc
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
OBJECT_KINDS = ("companies", "contacts", "deals", "emails", "meetings", "calls", "tasks")
OBJECT_KEYS = ["id", "properties", "history", "createdAt", "updatedAt", "archived", "archivedAt", "mergedObjectIds"]
STAGES = ["appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
          "contractsent", "closedwon", "closedlost"]
PROPERTIES = {
    "companies": ["name", "domain", "industry", "hubspot_owner_id", "lifecyclestage"],
    "contacts": ["email", "firstname", "lastname", "jobtitle", "company", "associatedcompanyid",
                 "hubspot_owner_id", "lifecyclestage"],
    "deals": ["dealname", "amount", "dealstage", "pipeline", "closedate", "hubspot_owner_id", "hs_is_closed",
              "hs_is_closed_won", "hs_deal_stage_probability", "dealtype"]
    + [f"hs_date_{e}_{s}" for s in STAGES for e in ("entered", "exited")],
    "emails": ["hs_timestamp", "hs_email_subject", "hs_email_direction", "hs_email_status", "hubspot_owner_id",
               "hs_email_headers"],
    "meetings": ["hs_timestamp", "hs_meeting_title", "hs_meeting_start_time", "hs_meeting_end_time",
                 "hs_meeting_outcome", "hubspot_owner_id"],
    "calls": ["hs_timestamp", "hs_call_title", "hs_call_duration", "hs_call_direction", "hs_call_status",
              "hubspot_owner_id"],
    "tasks": ["hs_timestamp", "hs_task_subject", "hs_task_status", "hs_task_type", "hubspot_owner_id"],
}
# sandbox/README.md: the association type ids, one record per direction.
README_TYPES = {("deals", "contacts"): 3, ("contacts", "deals"): 4, ("deals", "companies"): 5,
                ("companies", "deals"): 6, ("contacts", "companies"): 1, ("companies", "contacts"): 2,
                ("emails", "deals"): 210, ("meetings", "deals"): 212, ("calls", "deals"): 206, ("tasks", "deals"): 216,
                ("emails", "contacts"): 198, ("meetings", "contacts"): 200, ("calls", "contacts"): 194,
                ("tasks", "contacts"): 204, ("emails", "companies"): 186, ("meetings", "companies"): 188,
                ("calls", "companies"): 182, ("tasks", "companies"): 192}


def parse(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def akey(rec: dict) -> tuple:
    return rec["fromObjectType"], rec["fromId"], rec["toObjectType"], rec["toId"], rec["associationTypeId"]


def key(kind: str, rec: dict) -> tuple:
    return (kind, *akey(rec)) if kind == "associations" else (kind, rec["id"])


class Snapshot:
    def __init__(self, pairs):
        self.by = defaultdict(dict)
        self.assocs = {}
        self.links = defaultdict(list)          # (fromType, fromId, toType) -> association records
        self.touching = defaultdict(list)       # object id -> association records from or to it
        for kind, rec in pairs:
            k = key(kind, rec)
            target = self.assocs if kind == "associations" else self.by[kind]
            assert k[1:] not in target, f"{k} emitted twice"
            target[k[1:] if kind == "associations" else rec["id"]] = rec
            if kind == "associations":
                self.links[rec["fromObjectType"], rec["fromId"], rec["toObjectType"]].append(rec)
                self.touching[rec["fromId"]].append(rec)
                self.touching[rec["toId"]].append(rec)

    def linked(self, from_type, from_id, to_type, live=True):
        return [a["toId"] for a in self.links[from_type, from_id, to_type] if not (live and a["archived"])]


@pytest.fixture(scope="module")
def org() -> SyntheticOrg:
    return SyntheticOrg(seed=42, size="small", crm="hubspot")


@pytest.fixture(scope="module")
def now_hs(org) -> Snapshot:
    return Snapshot(org.hubspot_records(org.now))


@pytest.fixture(scope="module")
def horizon_hs(org) -> Snapshot:
    return Snapshot(org.hubspot_records(org.horizon))


# --------------------------------------------------------------------------- shapes

def _check_time(value, where):
    assert type(value) is datetime and value.utcoffset() == timedelta(0) and value.microsecond % 1000 == 0, where


@pytest.mark.parametrize("when", ["now", "horizon"])
def test_object_records_match_the_readme(org, when, now_hs, horizon_hs):
    snap = now_hs if when == "now" else horizon_hs
    assert set(snap.by) == {"owners", "pipelines", *OBJECT_KINDS}
    for kind in OBJECT_KINDS:
        assert snap.by[kind], kind
        for oid, rec in snap.by[kind].items():
            where = (kind, oid)
            assert list(rec) == OBJECT_KEYS, where
            assert oid.isdigit() and not oid.startswith("0"), where
            props = rec["properties"]
            expected = PROPERTIES[kind] + ["hs_object_id", "createdate", "hs_lastmodifieddate"]
            assert list(props) == expected + (["lastmodifieddate"] if kind == "contacts" else []), where
            assert all(v is None or type(v) is str for v in props.values()), where
            for name, value in props.items():
                if value is not None and (name in ("createdate", "closedate", "hs_timestamp")
                                          or "date" in name or name.endswith("_time")):
                    assert ISO.match(value), (where, name, value)
            assert props["hs_object_id"] == oid
            for t in ("createdAt", "updatedAt"):
                _check_time(rec[t], where)
            assert parse(props["createdate"]) == rec["createdAt"] <= rec["updatedAt"] <= getattr(org, when)
            assert parse(props["hs_lastmodifieddate"]) == rec["updatedAt"], where
            if kind == "contacts":
                assert props["lastmodifieddate"] == props["hs_lastmodifieddate"]
            assert rec["archived"] == (rec["archivedAt"] is not None)
            if rec["archived"]:
                assert rec["archivedAt"] == rec["updatedAt"]
            assert all(m.isdigit() for m in rec["mergedObjectIds"])
            for name, rows in rec["history"].items():
                assert name in props, where
                stamps = [row["timestamp"] for row in rows]
                assert stamps == sorted(stamps, reverse=True), (where, name)     # newest first
                for row in rows:
                    assert list(row) == ["value", "timestamp", "sourceType"] and type(row["value"]) is str
                    assert row["sourceType"] == "CRM_UI"
                    _check_time(row["timestamp"], where)
                    assert rec["createdAt"] <= row["timestamp"] <= rec["updatedAt"]
                if rows:
                    assert rows[0]["value"] == props[name], (where, name)
        tracked = {"deals": {"dealstage", "amount", "closedate", "hubspot_owner_id"},
                   "contacts": {"lifecyclestage"}}.get(kind, set())
        assert all(tracked <= set(r["history"]) for r in snap.by[kind].values())


def test_property_values_look_like_hubspots(now_hs):
    for d in now_hs.by["deals"].values():
        p = d["properties"]
        assert p["amount"] is None or p["amount"].isdigit()
        assert p["pipeline"] == "default" and p["dealstage"] in STAGES
        assert p["closedate"].endswith("T00:00:00.000Z")
        assert p["hs_is_closed"] in ("true", "false") and p["hs_is_closed_won"] in ("true", "false")
        assert p["dealtype"] in ("newbusiness", "existingbusiness")
        assert p["hubspot_owner_id"] in now_hs.by["owners"]
    for c in now_hs.by["calls"].values():
        assert c["properties"]["hs_call_duration"].isdigit() and int(c["properties"]["hs_call_duration"]) >= 60_000
        assert c["properties"]["hs_call_direction"] in ("OUTBOUND", "INBOUND")
    for e in now_hs.by["emails"].values():
        p = e["properties"]
        assert p["hs_email_direction"] in ("EMAIL", "INCOMING_EMAIL") and p["hs_email_status"] == "SENT"
        assert p["hs_email_headers"].startswith('{"from":{"email":')
    assert {t["properties"]["hs_task_status"] for t in now_hs.by["tasks"].values()} == {"NOT_STARTED", "COMPLETED"}
    assert {m["properties"]["hs_meeting_outcome"] for m in now_hs.by["meetings"].values()} == {
        "SCHEDULED", "COMPLETED", "CANCELED", "NO_SHOW"}
    stages = {c["properties"]["lifecyclestage"] for c in now_hs.by["contacts"].values()}
    assert stages == {"lead", "opportunity", "customer"}


def test_a_few_meetings_are_canceled_or_no_shows(horizon_hs):
    """Every meeting is SCHEDULED when booked; most end COMPLETED at their end, a few CANCELED
    (before their start) or NO_SHOW (at their end), with the history saying so."""
    ends = Counter()
    for m in horizon_hs.by["meetings"].values():
        p, history = m["properties"], m["history"]["hs_meeting_outcome"]
        outcome = p["hs_meeting_outcome"]
        ends[outcome] += 1
        assert [h["value"] for h in history[::-1]] == ["SCHEDULED"] + ([] if outcome == "SCHEDULED" else [outcome])
        if outcome in ("COMPLETED", "NO_SHOW"):
            assert history[0]["timestamp"] == parse(p["hs_meeting_end_time"])
        elif outcome == "CANCELED":
            assert m["createdAt"] < history[0]["timestamp"] <= max(parse(p["hs_meeting_start_time"]),
                                                                   m["createdAt"] + timedelta(milliseconds=1))
    total = sum(ends.values())
    assert 0.015 < ends["CANCELED"] / total < 0.05 and 0.008 < ends["NO_SHOW"] / total < 0.04, ends


def test_owners_and_the_default_pipeline(org, now_hs):
    owners = now_hs.by["owners"]
    users = {(u.email, u.first, u.last) for u in org._users}
    assert {(o["email"], o["firstName"], o["lastName"]) for o in owners.values()} == users
    for oid, o in owners.items():
        assert list(o) == ["id", "email", "firstName", "lastName", "userId", "teams", "createdAt", "updatedAt",
                           "archived"]
        assert oid.isdigit() and type(o["userId"]) is int and type(o["archived"]) is bool
        assert all(set(t) == {"id", "name", "primary"} for t in o["teams"])
    assert len({o["userId"] for o in owners.values()}) == len(owners)
    assert sum(not o["teams"] for o in owners.values()) == 1        # the VP
    [pipe] = now_hs.by["pipelines"].values()
    assert (pipe["id"], pipe["displayOrder"], pipe["archived"]) == ("default", 0, False)
    assert [s["id"] for s in pipe["stages"]] == STAGES
    probs = [s["metadata"]["probability"] for s in pipe["stages"]]
    assert probs == ["0.2", "0.4", "0.6", "0.8", "0.9", "1.0", "0.0"]
    assert [s["metadata"]["isClosed"] for s in pipe["stages"]] == ["false"] * 5 + ["true"] * 2
    assert [s["displayOrder"] for s in pipe["stages"]] == list(range(7))
    for s in pipe["stages"]:
        assert s["archived"] is False and s["createdAt"] == pipe["createdAt"] and s["label"]


# --------------------------------------------------------------------------- associations

def test_associations_come_in_both_directions_and_resolve(horizon_hs):
    assocs = horizon_hs.assocs
    seen_types = Counter()
    for rec in assocs.values():
        assert list(rec) == ["fromObjectType", "fromId", "toObjectType", "toId", "associationTypeId", "category",
                             "label", "createdAt", "archived"]
        assert rec["category"] == "HUBSPOT_DEFINED" and rec["label"] is None
        pair = (rec["fromObjectType"], rec["toObjectType"])
        seen_types[pair] += 1
        if pair in README_TYPES:
            assert rec["associationTypeId"] == README_TYPES[pair]
        a = horizon_hs.by[rec["fromObjectType"]][rec["fromId"]]
        b = horizon_hs.by[rec["toObjectType"]][rec["toId"]]
        assert rec["createdAt"] >= max(a["createdAt"], b["createdAt"])
    ends = {(k[0], k[1], k[2], k[3]) for k in assocs}
    assert all((t2, i2, t1, i1) in ends for t1, i1, t2, i2 in ends)
    for (x, y), n in seen_types.items():
        assert seen_types[(y, x)] == n
    assert set(README_TYPES) <= set(seen_types)


def test_deals_link_their_company_contacts_and_engagements(horizon_hs):
    hs = horizon_hs
    for did, deal in hs.by["deals"].items():
        companies = hs.linked("deals", did, "companies", live=False)
        assert len(companies) == 1
        contacts = hs.linked("deals", did, "contacts", live=False)
        assert contacts
        for kid in contacts:
            assert hs.by["contacts"][kid]["properties"]["associatedcompanyid"] == companies[0]
        # An archived deal keeps nothing alive: all its links are archived, its engagements stay.
        links = hs.touching[did]
        assert all(a["archived"] == deal["archived"] for a in links)
    for kind in ("emails", "meetings", "calls", "tasks"):
        for eid, e in hs.by[kind].items():
            assert not e["archived"]
            [did] = hs.linked(kind, eid, "deals", live=False)
            [kid] = hs.linked(kind, eid, "contacts")
            assert kid in hs.linked("deals", did, "contacts", live=False)
            assert hs.linked(kind, eid, "companies") == hs.linked("deals", did, "companies", live=False)


# --------------------------------------------------------------------------- deals vs truth

@pytest.mark.parametrize("when", ["now", "horizon", "mid"])
def test_deals_truth_agrees_with_deal_records_and_stage_history(org, when, now_hs, horizon_hs):
    as_of = org.start + timedelta(days=200) if when == "mid" else getattr(org, when)
    hs = {"now": now_hs, "horizon": horizon_hs}.get(when) or Snapshot(org.hubspot_records(as_of))
    truths = list(org.deals(as_of))
    assert sorted(d.id for d in truths) == sorted(hs.by["deals"])
    pipeline = {s["id"]: s for s in next(iter(hs.by["pipelines"].values()))["stages"]}
    for d in truths:
        assert isinstance(d, DealTruth) and d.source_system == "hubspot"
        rec = hs.by["deals"][d.id]
        p = rec["properties"]
        assert (d.name, d.owner_id, d.created_at, d.deleted) == \
            (p["dealname"], p["hubspot_owner_id"], rec["createdAt"], rec["archived"])
        assert d.account_id == hs.linked("deals", d.id, "companies", live=False)[0]
        assert (d.stage, d.is_closed, d.is_won) == \
            (p["dealstage"], p["hs_is_closed"] == "true", p["hs_is_closed_won"] == "true")
        meta = pipeline[d.stage]["metadata"]
        assert (meta["isClosed"], meta["probability"]) == (p["hs_is_closed"], p["hs_deal_stage_probability"])
        assert d.is_won == (meta["probability"] == "1.0" and meta["isClosed"] == "true")
        assert p["amount"] == (None if d.amount is None else str(int(d.amount)))
        assert p["closedate"] == f"{d.close_date.isoformat()}T00:00:00.000Z"
        closedates = rec["history"]["closedate"][::-1]
        assert [(at, f"{day.isoformat()}T00:00:00.000Z") for at, day in d.close_dates] == \
            [(h["timestamp"], h["value"]) for h in closedates]
        # Spells are the dealstage history, oldest first; exits come from the next entry.
        history = rec["history"]["dealstage"][::-1]
        assert [(s.stage, s.entered_at) for s in d.spells] == [(h["value"], h["timestamp"]) for h in history]
        assert all(s.exited_at == n.entered_at for s, n in zip(d.spells, d.spells[1:]))
        assert d.spells[-1].exited_at == (rec["archivedAt"] if d.deleted else None)
        for s in d.spells:
            latest = max(x.entered_at for x in d.spells if x.stage == s.stage)
            assert parse(p[f"hs_date_entered_{s.stage}"]) == latest
        assert p[f"hs_date_exited_{d.stage}"] is None
        closing = [s.entered_at for s in d.spells if s.stage in ("closedwon", "closedlost")]
        assert d.closed_at == (closing[0] if closing else None)
        owners = [h["value"] for h in rec["history"]["hubspot_owner_id"]]
        assert owners[0] == d.owner_id and all(o in hs.by["owners"] for o in owners)


def test_win_rate_in_range_for_hubspot(org):
    for o in (org, SyntheticOrg(seed=42, size="medium", crm="hubspot")):
        closed = [d for d in o.deals(o.now) if d.is_closed and not d.deleted]
        rate = sum(d.is_won for d in closed) / len(closed)
        assert 0.20 <= rate <= 0.30, rate
        assert {d.stage for d in closed} == {"closedwon", "closedlost"}


def test_same_simulation_as_the_salesforce_org(org, now_hs):
    """HubSpot mode renders the very deals and activities Salesforce mode would have."""
    sf = SyntheticOrg(seed=42, size="small")
    opps = {r["Name"] + r["CreatedDate"].isoformat(): r for obj, r in sf.records(sf.now, objects=["Opportunity"])}
    for d in now_hs.by["deals"].values():
        opp = opps[d["properties"]["dealname"] + d["createdAt"].isoformat()]
        assert d["archived"] == opp["IsDeleted"]
    kinds = Counter(obj for obj, _ in sf.records(sf.now, objects=["Task", "Event"]))
    engagements = sum(len(now_hs.by[k]) for k in ("emails", "calls", "tasks"))
    assert engagements == kinds["Task"] and len(now_hs.by["meetings"]) == kinds["Event"]
    emails = sum(r["TaskSubtype"] == "Email" for _, r in sf.records(sf.now, objects=["Task"]))
    assert len(now_hs.by["emails"]) == emails
    starts = sorted(r["StartDateTime"] for _, r in sf.records(sf.now, objects=["Event"]))
    assert sorted(parse(m["properties"]["hs_meeting_start_time"]) for m in now_hs.by["meetings"].values()) == starts


# --------------------------------------------------------------------------- archives and merges

def test_archives_and_merges(horizon_hs):
    hs = horizon_hs
    archived_deals = [d for d in hs.by["deals"].values() if d["archived"]]
    assert archived_deals
    for kind in ("companies", "contacts"):
        losers = {oid: r for oid, r in hs.by[kind].items() if r["archived"]}
        survivors = {oid: r for oid, r in hs.by[kind].items() if r["mergedObjectIds"]}
        assert losers and set(losers) == {m for r in survivors.values() for m in r["mergedObjectIds"]}
        for sid, s in survivors.items():
            assert not s["archived"]
            for lid in s["mergedObjectIds"]:
                loser = losers[lid]
                assert loser["createdAt"] > s["createdAt"] and loser["archivedAt"] <= s["updatedAt"]
                same = ("domain",) if kind == "companies" else ("firstname", "lastname")
                assert all(loser["properties"][f] == s["properties"][f] for f in same)
                assert not hs.touching[lid]
        if kind == "contacts":
            assert all(r["properties"]["email"].split("@")[1] in ("gmail.com", "yahoo.com", "outlook.com",
                                                                  "icloud.com", "hotmail.com")
                       for r in losers.values())


# --------------------------------------------------------------------------- versions and changes

def test_updated_at_rises_with_every_version(org):
    times = [org.start + timedelta(days=d) for d in (30, 120, 250, 400, 480)] + [org.now, org.horizon]
    last: dict[tuple, dict] = {}
    for t in times:
        for kind, rec in org.hubspot_records(t):
            k = key(kind, rec)
            before = last.get(k)
            if before is not None and before != rec:
                if kind == "associations":
                    assert not before["archived"] and rec["archived"]
                else:
                    assert rec["updatedAt"] > before["updatedAt"], (before, rec)
                    assert rec["createdAt"] == before["createdAt"]
            last[k] = rec


def _window(org, name):
    if name == "7 days":
        return org.now, org.now + timedelta(days=7)
    if name == "30 days":
        return org.now, org.now + timedelta(days=30)
    truths = list(org.deals(org.horizon))
    if name == "30 days up to an archive":
        until = min(d.spells[-1].exited_at for d in truths if d.deleted and d.spells[-1].exited_at > org.now)
        return until - timedelta(days=30), until
    return datetime(2025, 5, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize("window", ["7 days", "30 days", "30 days up to an archive", "a month in 2025"])
def test_changes_replay_records(org, window):
    since, until = _window(org, window)
    state = {key(kind, rec): rec for kind, rec in org.hubspot_records(since)}
    before = dict(state)
    changes = list(org.hubspot_changes(since, until))
    keys = [key(kind, rec) for kind, rec in changes]
    assert len(set(keys)) == len(keys)
    for (kind, rec), k in zip(changes, keys):
        if kind == "associations":
            assert since < rec["createdAt"] <= until or (rec["archived"] and not before.get(k, {}).get("archived"))
        else:
            assert since < rec["updatedAt"] <= until
        state[k] = rec
    assert state == {key(kind, rec): rec for kind, rec in org.hubspot_records(until)}
    kinds = Counter(k[0] for k in keys)
    assert kinds["deals"] and kinds["associations"] and kinds["emails"]
    assert any(rec["createdAt"] > since for kind, rec in changes if kind == "deals"), "new deals"
    assert any(rec["createdAt"] <= since for kind, rec in changes if kind == "deals"), "changed deals"
    if "archive" in window:
        gone = [rec for kind, rec in changes if kind == "deals" and rec["archived"]]
        assert gone and all(since < r["archivedAt"] <= until for r in gone)
        links = [rec for kind, rec in changes
                 if kind == "associations" and gone[0]["id"] in (rec["fromId"], rec["toId"])]
        assert links and all(a["archived"] for a in links)


def test_a_window_with_a_merge_replays(org, horizon_hs):
    merged = [r for kind in ("companies", "contacts") for r in horizon_hs.by[kind].values() if r["archived"]]
    until = min(r["archivedAt"] for r in merged) + timedelta(days=1)
    since = until - timedelta(days=7)
    state = {key(kind, rec): rec for kind, rec in org.hubspot_records(since)}
    changes = list(org.hubspot_changes(since, until))
    for kind, rec in changes:
        state[key(kind, rec)] = rec
    assert state == {key(kind, rec): rec for kind, rec in org.hubspot_records(until)}
    assert any(rec.get("mergedObjectIds") for _, rec in changes)
    assert any(rec.get("archived") and kind in ("companies", "contacts") for kind, rec in changes)


def test_empty_windows_and_the_end_of_the_world(org):
    assert list(org.hubspot_changes(org.now, org.now)) == []
    assert list(org.hubspot_changes(org.now + timedelta(days=1), org.now)) == []
    assert list(org.hubspot_changes(org.horizon, org.horizon + timedelta(days=30))) == []
    assert list(org.hubspot_records(datetime(2020, 1, 1, tzinfo=UTC))) == []
    with pytest.raises(ValueError):
        next(org.hubspot_records(datetime(2026, 1, 1)))
