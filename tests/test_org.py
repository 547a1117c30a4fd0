"""The synthetic org generator (sandbox/org.py): contract, schema conformance, internal
consistency (changes vs records, truth vs records) and the realism targets later features rely on."""

from __future__ import annotations

import hashlib
import itertools
import os
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from sandbox.org import SIZES, DealTruth, StageSpell, SyntheticOrg
from sandbox.salesforce.schema import OBJECTS, OPEN_STAGES_USED, STANDARD_STAGES

UTC = timezone.utc
ROOT = Path(__file__).resolve().parents[1]
STAGE = {s["ApiName"]: s for s in STANDARD_STAGES}
ORDER = OPEN_STAGES_USED + ["Closed Won"]
EARLY, LATE = OPEN_STAGES_USED[:2], OPEN_STAGES_USED[-2:]


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def org() -> SyntheticOrg:
    return SyntheticOrg(seed=42, size="small")


@pytest.fixture(scope="module")
def medium() -> SyntheticOrg:
    return SyntheticOrg(seed=42, size="medium")


def by_object(records) -> dict[str, dict[str, dict]]:
    out: dict[str, dict[str, dict]] = defaultdict(dict)
    for obj, rec in records:
        assert rec["Id"] not in out[obj], f"{obj} {rec['Id']} emitted twice"
        out[obj][rec["Id"]] = rec
    return out


@pytest.fixture(scope="module")
def now_recs(org) -> dict[str, dict[str, dict]]:
    return by_object(org.records(org.now))


@pytest.fixture(scope="module")
def horizon_recs(org) -> dict[str, dict[str, dict]]:
    return by_object(org.records(org.horizon))


def history_by_opp(recs) -> dict[str, list[dict]]:
    out = defaultdict(list)
    for h in recs["OpportunityHistory"].values():
        out[h["OpportunityId"]].append(h)
    for rows in out.values():
        rows.sort(key=lambda h: h["CreatedDate"])
    return out


def children_by_opp(recs) -> dict[str, list[tuple[str, dict]]]:
    out = defaultdict(list)
    for obj in ("Task", "Event"):
        for rec in recs[obj].values():
            out[rec["WhatId"]].append((obj, rec))
    return out


# --------------------------------------------------------------------------- contract basics

def test_sizes_and_clock():
    assert SIZES == {"small": 500, "medium": 10_000, "large": 100_000}
    o = SyntheticOrg()
    assert (o.seed, o.size) == (42, "small")
    assert o.start == datetime(2025, 1, 1, tzinfo=UTC)
    assert o.now == datetime(2026, 7, 1, tzinfo=UTC)
    assert o.horizon == datetime(2027, 1, 1, tzinfo=UTC)
    assert o.internal_domain.endswith(".example")


def test_bad_size_names_the_allowed_ones():
    with pytest.raises(ValueError) as err:
        SyntheticOrg(size="huge")
    for name in SIZES:
        assert name in str(err.value)


def test_naive_datetimes_are_rejected(org):
    with pytest.raises(ValueError):
        next(org.records(datetime(2026, 1, 1)))


def test_deal_count_matches_size(org, now_recs):
    assert len(now_recs["Opportunity"]) == SIZES["small"]
    assert sum(1 for _ in org.deals(org.now)) == SIZES["small"]
    later = sum(1 for _ in org.deals(org.horizon))
    assert SIZES["small"] * 1.2 < later < SIZES["small"] * 1.6      # intake keeps coming, and grows


def test_same_seed_is_byte_identical_different_seed_differs(org):
    def digest(o):
        return hashlib.sha256(repr(list(o.records(o.now))).encode()).hexdigest()

    mine = digest(org)
    assert digest(SyntheticOrg(seed=42, size="small")) == mine
    assert digest(SyntheticOrg(seed=43, size="small")) != mine
    # ... and across processes, whatever the hash seed.
    code = ("import hashlib; from sandbox.org import SyntheticOrg; o = SyntheticOrg(42, 'small'); "
            "print(hashlib.sha256(repr(list(o.records(o.now))).encode()).hexdigest())")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert out.stdout.strip() == mine


def test_world_stops_at_horizon(org):
    late = list(org.records(org.horizon + timedelta(days=45)))
    assert late == list(org.records(org.horizon))
    assert list(org.changes(org.horizon, org.horizon + timedelta(days=30))) == []
    assert list(org.records(datetime(2020, 1, 1, tzinfo=UTC))) == []


def test_objects_filter_restricts_output(org, now_recs):
    only = by_object(org.records(org.now, objects=["Opportunity", "Event"]))
    assert set(only) == {"Opportunity", "Event"}
    assert only["Opportunity"] == now_recs["Opportunity"]
    assert only["Event"] == now_recs["Event"]
    with pytest.raises(ValueError):
        list(org.records(org.now, objects=["Lead"]))


# --------------------------------------------------------------------------- schema conformance

def _check_value(obj: str, field, value):
    where = f"{obj}.{field.name}={value!r}"
    t = field.type
    if t == "boolean":
        assert type(value) is bool, where
        return
    if value is None:
        assert field.name not in ("Id", "CreatedDate"), where
        return
    if t in ("id", "reference", "string", "email", "url", "picklist", "textarea"):
        assert type(value) is str and value, where
    elif t in ("currency", "percent", "double"):
        assert type(value) is float, where
    elif t == "int":
        assert type(value) is int, where
    elif t == "date":
        assert type(value) is date, where
    elif t == "datetime":
        assert type(value) is datetime, where
        assert value.tzinfo is not None and value.utcoffset() == timedelta(0), where
        assert value.microsecond % 1000 == 0, where
    else:  # pragma: no cover - a new schema type needs a rule here
        raise AssertionError(f"unhandled type {t}")


@pytest.mark.parametrize("when", ["start", "now", "horizon"])
def test_every_record_matches_the_schema(org, when):
    counts = Counter()
    for obj, rec in org.records(getattr(org, when)):
        sobject = OBJECTS[obj]
        assert list(rec) == sobject.field_names, obj
        for field in sobject.fields:
            _check_value(obj, field, rec[field.name])
        if "SystemModstamp" in rec:
            lmd = rec.get("LastModifiedDate", rec["SystemModstamp"])
            assert rec["SystemModstamp"] >= lmd >= rec["CreatedDate"], rec
        assert rec["CreatedDate"] <= getattr(org, when)
        counts[obj] += 1
    expected = set(OBJECTS) if when != "start" else set(OBJECTS) - {"Opportunity", "OpportunityHistory", "Task", "Event"}
    assert set(counts) == expected


def test_ids_unique_prefixed_and_references_resolve(now_recs):
    users = now_recs["User"]
    for obj, recs in now_recs.items():
        prefix = OBJECTS[obj].key_prefix
        for rid, rec in recs.items():
            assert len(rid) == 18 and rid.startswith(prefix)
            if "CreatedById" in rec:
                assert rec["CreatedById"] in users
            if "OwnerId" in rec:
                assert rec["OwnerId"] in users
    for opp in now_recs["Opportunity"].values():
        assert opp["AccountId"] in now_recs["Account"]
    for h in now_recs["OpportunityHistory"].values():
        assert h["OpportunityId"] in now_recs["Opportunity"]
    contacts = now_recs["Contact"]
    for obj in ("Task", "Event"):
        for rec in now_recs[obj].values():
            opp = now_recs["Opportunity"][rec["WhatId"]]
            who = contacts[rec["WhoId"]]
            assert who["AccountId"] == opp["AccountId"]
            assert who["CreatedDate"] <= rec["CreatedDate"]
            assert opp["CreatedDate"] <= rec["CreatedDate"]


def test_opportunity_stage_rows(now_recs):
    rows = sorted(now_recs["OpportunityStage"].values(), key=lambda r: r["SortOrder"])
    assert [r["ApiName"] for r in rows] == [s["ApiName"] for s in STANDARD_STAGES]
    assert [r["SortOrder"] for r in rows] == list(range(1, 11))
    for r, s in zip(rows, STANDARD_STAGES):
        assert r["MasterLabel"] == r["ApiName"] and r["IsActive"] is True
        assert (r["IsClosed"], r["IsWon"], r["DefaultProbability"], r["ForecastCategoryName"]) == \
            (s["IsClosed"], s["IsWon"], s["DefaultProbability"], s["ForecastCategoryName"])
        assert r["CreatedDate"] < datetime(2025, 1, 1, tzinfo=UTC)


# --------------------------------------------------------------------------- people and companies

def test_manager_hierarchy_and_user_emails(org, now_recs):
    users = now_recs["User"]
    vps = [u for u in users.values() if u["ManagerId"] is None]
    assert len(vps) == 1
    vp = vps[0]
    managers = {uid for uid, u in users.items() if u["ManagerId"] == vp["Id"]}
    reps = {uid for uid, u in users.items() if u["ManagerId"] in managers}
    assert len(managers) == 3 and len(reps) == 12
    assert len(users) == 1 + len(managers) + len(reps)
    assert {users[r]["ManagerId"] for r in reps} == managers       # every manager has a team
    emails = [u["Email"] for u in users.values()]
    assert len(set(emails)) == len(emails)
    for u in users.values():
        first, last = u["FirstName"].lower(), u["LastName"].lower()
        assert u["Email"] == f"{first}.{last}@{org.internal_domain}"
        assert u["Name"] == f"{u['FirstName']} {u['LastName']}"
        assert u["CreatedDate"] < org.start
    owners = {o["OwnerId"] for o in now_recs["Opportunity"].values()}
    assert owners <= reps and len(owners) > len(reps) // 2


def test_leavers_hand_over_their_book(org, now_recs, horizon_recs):
    assert any(not u["IsActive"] for u in horizon_recs["User"].values())
    for recs in (now_recs, horizon_recs):
        users = recs["User"]
        for obj in ("Account", "Contact"):
            for rec in recs[obj].values():
                assert users[rec["OwnerId"]]["IsActive"], rec
        for opp in recs["Opportunity"].values():
            if not opp["IsClosed"] and not opp["IsDeleted"]:
                assert users[opp["OwnerId"]]["IsActive"], opp


def test_accounts_unique_plausible_and_in_creation_order(org, horizon_recs):
    accounts = sorted(horizon_recs["Account"].values(), key=lambda a: a["Id"])
    n_deals = len(horizon_recs["Opportunity"])
    assert n_deals / 5 < len(accounts) < n_deals / 2
    assert len({a["Name"] for a in accounts}) == len(accounts)
    assert len({a["Website"] for a in accounts}) == len(accounts)
    created = [a["CreatedDate"] for a in accounts]
    assert created == sorted(created)
    assert created[0] < org.start < created[-1]
    for a in accounts:
        assert a["Website"].startswith("https://www.") and a["Website"].endswith(".example")
        assert a["Industry"] and a["Type"] and len(a["Name"].split()) == 2
    # Each deal's account existed when the deal was created.
    for opp in horizon_recs["Opportunity"].values():
        assert horizon_recs["Account"][opp["AccountId"]]["CreatedDate"] <= opp["CreatedDate"]


def test_contacts_on_their_account_domain(horizon_recs):
    accounts = horizon_recs["Account"]
    per_account = Counter()
    emails = []
    for c in horizon_recs["Contact"].values():
        a = accounts[c["AccountId"]]
        domain = a["Website"].removeprefix("https://www.")
        local, _, at = c["Email"].partition("@")
        assert at == domain
        assert local.rstrip("0123456789") == f"{c['FirstName'].lower()}.{c['LastName'].lower()}"
        assert c["CreatedDate"] >= a["CreatedDate"] and c["Title"]
        per_account[a["Id"]] += 1
        emails.append(c["Email"])
    assert len(set(emails)) == len(emails)
    assert set(per_account) == set(accounts)
    assert 1 <= min(per_account.values()) and max(per_account.values()) <= 6
    assert Counter(per_account.values())[1] < len(accounts) / 2


# --------------------------------------------------------------------------- opportunities and history

def test_opportunity_fields_follow_the_stage(now_recs):
    for opp in now_recs["Opportunity"].values():
        s = STAGE[opp["StageName"]]
        assert s["used"]
        assert opp["Probability"] == s["DefaultProbability"]
        assert (opp["IsClosed"], opp["IsWon"], opp["ForecastCategoryName"]) == \
            (s["IsClosed"], s["IsWon"], s["ForecastCategoryName"])
        assert opp["Amount"] is None or opp["Amount"] == round(opp["Amount"]) > 0
        assert " – " in opp["Name"]
        assert opp["Name"].split(" – ")[0] == now_recs["Account"][opp["AccountId"]]["Name"]


def test_history_rows_are_salesforce_like(now_recs):
    hist = history_by_opp(now_recs)
    assert set(hist) == set(now_recs["Opportunity"])
    tracked = ("StageName", "Amount", "CloseDate", "Probability")
    for oid, rows in hist.items():
        opp = now_recs["Opportunity"][oid]
        assert rows[0]["CreatedDate"] == opp["CreatedDate"]
        assert [tuple(rows[-1][k] for k in tracked)] == [tuple(opp[k] for k in tracked)]
        for prev, row in zip(rows, rows[1:]):
            assert prev["CreatedDate"] < row["CreatedDate"]
            assert any(prev[k] != row[k] for k in tracked), (prev, row)
            assert not STAGE[prev["StageName"]]["IsClosed"], "no change after a deal closed"
            if row["StageName"] != prev["StageName"]:
                a = ORDER.index(prev["StageName"])
                if row["StageName"] == "Closed Lost":
                    continue
                assert -1 <= ORDER.index(row["StageName"]) - a <= 2 and row["StageName"] != prev["StageName"]
            elif row["CloseDate"] != prev["CloseDate"]:
                assert row["CloseDate"] > prev["CloseDate"], "an open deal's close date only slips"
        for row in rows:
            s = STAGE[row["StageName"]]
            assert row["Probability"] == s["DefaultProbability"]
            assert row["ForecastCategory"] == s["ForecastCategoryName"]
            expected = None if row["Amount"] is None else round(row["Amount"] * row["Probability"] / 100, 2)
            assert row["ExpectedRevenue"] == expected
            assert row["IsDeleted"] == opp["IsDeleted"]
            if row["IsDeleted"]:
                assert row["SystemModstamp"] == opp["SystemModstamp"] > row["CreatedDate"]
            else:
                assert row["SystemModstamp"] == row["CreatedDate"]
            if s["IsClosed"]:
                assert row["CloseDate"] == row["CreatedDate"].date()


def _spells_from_history(opp: dict, rows: list[dict]) -> list[tuple]:
    spells: list[list] = []
    for row in rows:
        if not spells or spells[-1][0] != row["StageName"]:
            if spells:
                spells[-1][2] = row["CreatedDate"]
            spells.append([row["StageName"], row["CreatedDate"], None])
    if opp["IsDeleted"]:
        spells[-1][2] = opp["SystemModstamp"]
    return [tuple(s) for s in spells]


@pytest.mark.parametrize("when", ["now", "horizon", "mid"])
def test_deals_truth_agrees_with_the_records(org, when):
    as_of = org.start + timedelta(days=200) if when == "mid" else getattr(org, when)
    recs = by_object(org.records(as_of, objects=["Opportunity", "OpportunityHistory"]))
    hist = history_by_opp(recs)
    truths = list(org.deals(as_of))
    assert [d.id for d in truths] == sorted(recs["Opportunity"])
    for d in truths:
        assert isinstance(d, DealTruth) and all(isinstance(s, StageSpell) for s in d.spells)
        opp = recs["Opportunity"][d.id]
        assert (d.name, d.account_id, d.owner_id, d.created_at) == \
            (opp["Name"], opp["AccountId"], opp["OwnerId"], opp["CreatedDate"])
        assert (d.stage, d.amount, d.close_date, d.is_closed, d.is_won, d.deleted) == \
            (opp["StageName"], opp["Amount"], opp["CloseDate"], opp["IsClosed"], opp["IsWon"], opp["IsDeleted"])
        assert d.health in ("healthy", "dying", "stalled")
        spells = [(s.stage, s.entered_at, s.exited_at) for s in d.spells]
        assert spells == _spells_from_history(opp, hist[d.id])
        assert (spells[-1][2] is None) == (not d.deleted)
        closing = [row["CreatedDate"] for row in hist[d.id] if STAGE[row["StageName"]]["IsClosed"]]
        assert d.closed_at == (closing[0] if closing else None)
        assert d.closed_at is None or d.close_date == d.closed_at.date()
        # The close-date history is the OpportunityHistory rows that changed the close date.
        changes = [(row["CreatedDate"], row["CloseDate"]) for n, row in enumerate(hist[d.id])
                   if n == 0 or row["CloseDate"] != hist[d.id][n - 1]["CloseDate"]]
        assert list(d.close_dates) == changes and d.close_dates[-1][1] == d.close_date


def test_health_matches_the_outcome(org):
    for d in org.deals(org.horizon):
        if d.is_closed and d.health == "healthy":
            assert d.is_won
        if d.is_won:
            assert d.health == "healthy"


# --------------------------------------------------------------------------- versions and changes

def test_versions_have_strictly_increasing_modstamps(org):
    times = [org.start + timedelta(days=d) for d in (0, 90, 200, 380, 500)] + [org.now, org.horizon]
    last: dict[tuple, dict] = {}
    for t in times:
        seen = set()
        for obj, rec in org.records(t):
            key = (obj, rec["Id"])
            seen.add(key)
            before = last.get(key)
            if before is not None:
                if rec == before:
                    continue
                assert rec["SystemModstamp"] > before["SystemModstamp"], (before, rec)
                assert rec["CreatedDate"] == before["CreatedDate"] and rec["Id"] == before["Id"]
            last[key] = rec
        assert set(last) == seen, "a record vanished"


def _a_deletion(org):
    """The moment of the first deletion after `now`, else of the last one before it."""
    moments = sorted(d.spells[-1].exited_at for d in org.deals(org.horizon) if d.deleted)
    return next((m for m in moments if m > org.now), moments[-1])


@pytest.mark.parametrize("window", ["7 days", "30 days", "30 days up to a deletion", "a month in 2025"])
def test_changes_replay_records(org, window):
    if window == "7 days":
        since, until = org.now, org.now + timedelta(days=7)
    elif window == "30 days":
        since, until = org.now, org.now + timedelta(days=30)
    elif window == "a month in 2025":
        since, until = datetime(2025, 5, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)
    else:
        until = _a_deletion(org)
        since = until - timedelta(days=30)
    state = {(obj, rec["Id"]): rec for obj, rec in org.records(since)}
    before = dict(state)
    changes = list(org.changes(since, until))
    for obj, rec in changes:
        assert since < rec["SystemModstamp"] <= until
        state[(obj, rec["Id"])] = rec
    assert state == {(obj, rec["Id"]): rec for obj, rec in org.records(until)}
    assert len({(obj, rec["Id"]) for obj, rec in changes}) == len(changes)

    opps = [rec for obj, rec in changes if obj == "Opportunity"]
    assert any(o["CreatedDate"] > since for o in opps), "new deals"
    assert any(o["CreatedDate"] <= since and before[("Opportunity", o["Id"])] != o for o in opps), "changed deals"
    assert {obj for obj, _ in changes} >= {"Opportunity", "OpportunityHistory", "Task", "Event"}
    if "deletion" in window:
        gone = [o for o in opps if o["IsDeleted"]]
        assert gone
        for o in gone:
            kids = [rec for obj, rec in changes if rec.get("WhatId") == o["Id"] or rec.get("OpportunityId") == o["Id"]]
            assert kids and all(k["IsDeleted"] and k["SystemModstamp"] == o["SystemModstamp"] for k in kids)


def test_changes_of_an_empty_window_are_empty(org):
    assert list(org.changes(org.now, org.now)) == []
    assert list(org.changes(org.now + timedelta(days=1), org.now)) == []


def test_deletion_cascades_to_children(org, horizon_recs):
    kids = children_by_opp(horizon_recs)
    hist = history_by_opp(horizon_recs)
    deleted = [o for o in horizon_recs["Opportunity"].values() if o["IsDeleted"]]
    assert deleted
    for o in deleted:
        for _, rec in kids[o["Id"]]:
            assert rec["IsDeleted"] and rec["SystemModstamp"] == o["SystemModstamp"]
            assert rec["CreatedDate"] < o["SystemModstamp"]
        for row in hist[o["Id"]]:
            assert row["IsDeleted"] and row["SystemModstamp"] == o["SystemModstamp"]
    alive = {o["Id"] for o in horizon_recs["Opportunity"].values() if not o["IsDeleted"]}
    for obj in ("Task", "Event"):
        for rec in horizon_recs[obj].values():
            assert rec["IsDeleted"] == (rec["WhatId"] not in alive)


# --------------------------------------------------------------------------- activities

def test_tasks_and_events_look_right(org, now_recs):
    for t in now_recs["Task"].values():
        assert t["TaskSubtype"] in ("Email", "Call")
        assert t["Subject"].startswith(t["TaskSubtype"] + ": ")
        assert t["Status"] in ("Completed", "Not Started")
        assert t["IsClosed"] == (t["Status"] == "Completed")
        assert t["Priority"] in ("Normal", "High")
        if t["Status"] == "Completed":
            assert t["ActivityDate"] == t["LastModifiedDate"].date() or t["IsDeleted"]
        assert t["OwnerId"] == t["CreatedById"]
    created_ahead = 0
    for e in now_recs["Event"].values():
        assert e["DurationInMinutes"] in (30, 45, 60) and e["IsAllDayEvent"] is False
        assert e["EndDateTime"] - e["StartDateTime"] == timedelta(minutes=e["DurationInMinutes"])
        assert e["ActivityDateTime"] == e["StartDateTime"] >= e["CreatedDate"]
        assert e["Subject"].startswith("Meeting: ")
        assert e["StartDateTime"].minute in (0, 15, 30, 45) and e["StartDateTime"].weekday() < 5
        created_ahead += e["StartDateTime"] - e["CreatedDate"] >= timedelta(days=1)
    assert created_ahead > 0.75 * len(now_recs["Event"])
    # Work happens on weekdays.
    weekend = sum(r["CreatedDate"].weekday() >= 5 for obj in ("Task", "Event") for r in now_recs[obj].values())
    assert weekend == 0
    # Some meetings are already on the calendar for after `now`, some calls still to do.
    assert any(e["StartDateTime"] > org.now for e in now_recs["Event"].values())
    assert any(t["Status"] == "Not Started" for t in now_recs["Task"].values())


def test_activity_rhythm_follows_health(org, horizon_recs):
    kids = children_by_opp(horizon_recs)
    truths = [d for d in org.deals(org.horizon) if not d.deleted]
    # Healthy (won) deals: a couple of touches a week, more meetings late in the cycle.
    rates, early_meet, late_meet = [], [0, 0], [0, 0]
    for d in truths:
        if not d.is_won:
            continue
        weeks = (d.closed_at - d.created_at).days / 7
        if weeks >= 2:
            rates.append(len(kids[d.id]) / weeks)
        for obj, rec in kids[d.id]:
            when = rec["StartDateTime"] if obj == "Event" else rec["CreatedDate"]
            stage = next(s.stage for s in reversed(d.spells) if s.entered_at <= when)
            bucket = early_meet if stage in EARLY else late_meet if stage in LATE else None
            if bucket is not None:
                bucket[0] += obj == "Event"
                bucket[1] += 1
    assert 1.5 <= statistics.median(rates) <= 4.0
    assert late_meet[0] / late_meet[1] > 1.5 * early_meet[0] / early_meet[1]
    # Dying deals taper off: far fewer touches in the last quarter of their life than in the first.
    first = last = 0
    for d in truths:
        if d.health != "dying" or not d.is_closed:
            continue
        life = d.closed_at - d.created_at
        if life < timedelta(days=14):
            continue
        for _, rec in kids[d.id]:
            x = (rec["CreatedDate"] - d.created_at) / life
            first += x < 0.25
            last += x > 0.75
    assert last < 0.3 * first
    # Stalled deals sit in one stage for months and go silent there (those closed in a
    # clean-up by horizon show the whole stall; the others may not have reached it yet).
    stalled = [d for d in truths if d.health == "stalled" and d.is_closed]
    assert stalled
    for d in stalled:
        stall = d.spells[-2]
        assert stall.exited_at - stall.entered_at > timedelta(days=30)
        for _, rec in kids[d.id]:
            assert rec["CreatedDate"] < stall.entered_at + timedelta(days=30)


# --------------------------------------------------------------------------- realism targets

def realism(o: SyntheticOrg, with_activities: bool) -> dict:
    truths = list(o.deals(o.now))
    closed = [d for d in truths if d.is_closed and not d.deleted]
    lost_from = Counter(d.spells[-2].stage for d in closed if not d.is_won)
    recs = by_object(o.records(o.now, objects=["OpportunityHistory"]))
    slipped = set()
    for rows in history_by_opp(recs).values():
        for prev, row in zip(rows, rows[1:]):
            if row["StageName"] == prev["StageName"] and row["CloseDate"] > prev["CloseDate"]:
                slipped.add(row["OpportunityId"])
    amounts = sorted(d.amount for d in truths if d.amount is not None)
    durations = defaultdict(list)
    for d in truths:
        for s in d.spells:
            if s.exited_at is not None and s.stage in OPEN_STAGES_USED:
                durations[s.stage].append((s.exited_at - s.entered_at).total_seconds() / 86400)
    out = dict(
        deals=len(truths),
        win_rate=sum(d.is_won for d in closed) / len(closed),
        lost_from=lost_from,
        stall=sum(d.health == "stalled" for d in truths) / len(truths),
        slip=len(slipped) / len(truths),
        deleted_ever=sum(d.deleted for d in o.deals(o.horizon)) / sum(1 for _ in o.deals(o.horizon)),
        amount_median=statistics.median(amounts),
        amount_max=amounts[-1],
        durations=durations,
    )
    if with_activities:
        n = sum(1 for _ in o.records(o.now, objects=["Task", "Event"]))
        out["activities_per_deal"] = n / len(truths)
    return out


@pytest.mark.parametrize("size", ["small", "medium"])
def test_realism_targets(org, medium, size):
    m = realism(org if size == "small" else medium, with_activities=True)
    assert 0.20 <= m["win_rate"] <= 0.30, m["win_rate"]
    lost = m["lost_from"]
    assert sum(lost[s] for s in EARLY) > 2 * sum(lost[s] for s in LATE), lost
    assert lost[OPEN_STAGES_USED[0]] == max(lost.values())
    assert 0.06 <= m["stall"] <= 0.15, m["stall"]
    assert 0.15 <= m["slip"] <= 0.35, m["slip"]
    assert 0.005 <= m["deleted_ever"] <= 0.03, m["deleted_ever"]
    assert 10 <= m["activities_per_deal"] <= 15, m["activities_per_deal"]
    assert 12_000 <= m["amount_median"] <= 30_000 and m["amount_max"] > 250_000
    for stage, days in m["durations"].items():
        days.sort()
        median, p90 = days[len(days) // 2], days[int(len(days) * 0.9)]
        assert 2 <= median <= 40 and p90 > 2 * median and days[-1] > 5 * median, (stage, median, p90)
    assert max(max(d) for d in m["durations"].values()) > 90      # some deals sit for months


# --------------------------------------------------------------------------- scale

def test_large_streams_without_materialising():
    # How soon these come is a bench figure (bench/generate.py --what head), never a test's.
    big = SyntheticOrg(seed=42, size="large")
    head = Counter(obj for obj, _ in itertools.islice(big.records(big.now), 50_000))
    assert sum(head.values()) == 50_000 and head["User"] == 451 and head["Account"] > 30_000
    # Straight into the deals: the first of 100k deals and their activities come at once.
    deals = Counter(obj for obj, _ in itertools.islice(
        big.records(big.now, objects=["Opportunity", "Task", "Event"]), 50_000))
    assert deals["Opportunity"] > 3_000 and deals["Task"] > 30_000
    first = next(big.deals(big.now))
    assert first.id.startswith("006") and first.created_at >= big.start
