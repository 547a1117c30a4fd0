"""Where the synthetic org lives (sandbox/org.py `crm=`): the Salesforce output is frozen
byte for byte, and a migrated org ("both") splits its deals at `migration_at`, keeps the
same people and companies in both CRMs, and says so in `identities()`."""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

import pytest

from sandbox.org import SyntheticOrg

UTC = timezone.utc

# sha256 prefixes of the Salesforce output, computed from the code before HubSpot, Gmail and
# Calendar existed. `deals` hashes DealTruth's original fields only (source_system is new).
FROZEN = {
    (42, "small"): {"records@start": "c55f43432cd267eb", "records@now": "30d6d7041aefc6c2",
                    "records@horizon": "87f8bfb7c3666c80", "changes now+7d": "4683d0c05efb336f",
                    "changes now+30d": "d34f5704beee7974", "changes 2025-05": "0e41fa2d6beec604",
                    "deals@horizon": "03d280f8f557538f"},
    (7, "small"): {"records@start": "165d5d0332129db0", "records@now": "022f3be28c4f0751",
                   "records@horizon": "b9e88762e8b2c2f9", "changes now+7d": "6b8db3c4b484e7e7",
                   "changes now+30d": "bcffdfcac051681a", "changes 2025-05": "f3868d8885cd78af",
                   "deals@horizon": "ecacc737182bf6f6"},
    (1, "small"): {"records@start": "7191eceefef9bf2b", "records@now": "4c4d9c6e38839288",
                   "records@horizon": "5455e42d3b79eb27", "changes now+7d": "5dd599fa149af173",
                   "changes now+30d": "adf225fc7a120973", "changes 2025-05": "aef141c0d27c3bdd",
                   "deals@horizon": "9b6f95124f43a042"},
    (42, "medium"): {"records@now": "5e74e9de18a57888", "changes now+7d": "69afaef057067bdf",
                     "changes now+30d": "029365879677318a", "changes 2025-05": "940f92499e572cea",
                     "deals@horizon": "47a66de1c8522e06"},
}
FROZEN_LARGE = {"records@now head": "af282cbe6d5a270a", "deal objects head": "343f699a6283e5f5"}
TRUTH_FIELDS = ("id name account_id owner_id created_at amount stage close_date is_closed is_won "
                "closed_at deleted spells health").split()


def digest(items) -> str:
    h = hashlib.sha256()
    for item in items:
        h.update(repr(item).encode())
    return h.hexdigest()[:16]


def salesforce_output(o: SyntheticOrg, name: str):
    may = datetime(2025, 5, 1, tzinfo=UTC)
    return {
        "records@start": lambda: o.records(o.start),
        "records@now": lambda: o.records(o.now),
        "records@horizon": lambda: o.records(o.horizon),
        "changes now+7d": lambda: o.changes(o.now, o.now + timedelta(days=7)),
        "changes now+30d": lambda: o.changes(o.now, o.now + timedelta(days=30)),
        "changes 2025-05": lambda: o.changes(may, may + timedelta(days=31)),
        "deals@horizon": lambda: (tuple(getattr(d, f) for f in TRUTH_FIELDS) for d in o.deals(o.horizon)),
        "records@now head": lambda: itertools.islice(o.records(o.now), 100_000),
        "deal objects head": lambda: itertools.islice(
            o.records(o.now, objects=["Opportunity", "OpportunityHistory", "Task", "Event"]), 100_000),
    }[name]()


# --------------------------------------------------------------------------- the Salesforce org is frozen

@pytest.mark.parametrize("seed,size", list(FROZEN))
def test_salesforce_output_is_byte_identical_to_before(seed, size):
    o = SyntheticOrg(seed=seed, size=size, crm="salesforce")
    got = {name: digest(salesforce_output(o, name)) for name in FROZEN[(seed, size)]}
    assert got == FROZEN[(seed, size)]


def test_salesforce_is_the_default_and_large_is_unchanged_too():
    assert SyntheticOrg().crm == "salesforce"
    big = SyntheticOrg(seed=42, size="large")
    assert {name: digest(salesforce_output(big, name)) for name in FROZEN_LARGE} == FROZEN_LARGE


def test_deal_truth_says_salesforce_by_default():
    o = SyntheticOrg(seed=42, size="small")
    assert {d.source_system for d in o.deals(o.horizon)} == {"salesforce"}


def test_bad_crm_names_the_allowed_ones():
    with pytest.raises(ValueError) as err:
        SyntheticOrg(crm="pipedrive")
    for name in ("salesforce", "hubspot", "both"):
        assert name in str(err.value)


@pytest.mark.parametrize("crm", ["salesforce", "hubspot", "both"])
def test_migration_at_exists_in_every_mode(crm):
    o = SyntheticOrg(seed=42, size="small", crm=crm)
    assert o.migration_at == datetime(2026, 1, 1, tzinfo=UTC) == o.start.replace(year=o.start.year + 1)


def test_a_salesforce_org_has_no_hubspot_side():
    o = SyntheticOrg(seed=42, size="small")
    assert list(o.hubspot_records(o.horizon)) == []
    assert list(o.hubspot_changes(o.start, o.horizon)) == []
    ids = list(o.identities())
    assert ids and all(i["hubspot"] is None and i["salesforce"] for i in ids)


def test_a_hubspot_org_has_no_salesforce_side():
    o = SyntheticOrg(seed=42, size="small", crm="hubspot")
    assert list(o.records(o.horizon)) == []
    assert list(o.changes(o.start, o.horizon)) == []
    with pytest.raises(ValueError):
        list(o.records(o.now, objects=["Lead"]))
    assert {d.source_system for d in o.deals(o.now)} == {"hubspot"}
    # Same simulation, other CRM: as many deals as the Salesforce org, under HubSpot ids.
    assert sum(1 for _ in o.deals(o.now)) == 500


# --------------------------------------------------------------------------- a migrated org

@pytest.fixture(scope="module")
def both() -> SyntheticOrg:
    return SyntheticOrg(seed=42, size="small", crm="both")


@pytest.fixture(scope="module")
def sf_only() -> SyntheticOrg:
    return SyntheticOrg(seed=42, size="small", crm="salesforce")


@pytest.fixture(scope="module")
def both_horizon(both):
    sf = defaultdict(dict)
    for obj, rec in both.records(both.horizon):
        sf[obj][rec["Id"]] = rec
    hs = defaultdict(dict)
    for kind, rec in both.hubspot_records(both.horizon):
        if kind != "associations":
            hs[kind][rec["id"]] = rec
    return sf, hs


def test_before_the_migration_both_is_the_salesforce_org(both, sf_only):
    t = datetime(2025, 11, 15, tzinfo=UTC)
    assert list(both.records(t)) == list(sf_only.records(t))
    assert list(both.hubspot_records(both.migration_at - timedelta(days=30))) == []


def test_deals_split_at_the_migration(both, sf_only, both_horizon):
    sf, hs = both_horizon
    truths = list(both.deals(both.horizon))
    by_system = Counter(d.source_system for d in truths)
    assert by_system["salesforce"] > 100 and by_system["hubspot"] > 100
    assert len(truths) == sum(1 for _ in sf_only.deals(sf_only.horizon))
    for d in truths:
        assert (d.created_at < both.migration_at) == (d.source_system == "salesforce")
    # Salesforce deals finish in Salesforce exactly as they would have without the migration.
    reference = {d.id: d for d in sf_only.deals(sf_only.horizon)}
    for d in truths:
        if d.source_system == "salesforce":
            assert d == reference[d.id]
            assert sf["Opportunity"][d.id]["StageName"] == d.stage
        else:
            assert hs["deals"][d.id]["properties"]["dealstage"] == d.stage
    assert max(o["CreatedDate"] for o in sf["Opportunity"].values()) < both.migration_at
    assert max(a["CreatedDate"] for a in sf["Account"].values()) < both.migration_at
    assert any(d.closed_at and d.closed_at > both.migration_at for d in truths if d.source_system == "salesforce")


def test_hubspot_holds_what_its_deals_need_and_a_sample(both, both_horizon):
    sf, hs = both_horizon
    recs = list(both.hubspot_records(both.horizon))
    companies = hs["companies"]
    deal_company = {}
    for kind, rec in recs:
        if kind == "associations" and rec["fromObjectType"] == "deals" and rec["toObjectType"] == "companies":
            deal_company[rec["fromId"]] = rec["toId"]
    assert set(deal_company) == set(hs["deals"])
    for did, cid in deal_company.items():
        assert companies[cid]["createdAt"] <= hs["deals"][did]["createdAt"]
        assert companies[cid]["createdAt"] >= both.migration_at
    for kind, rec in recs:      # nothing links to what HubSpot does not hold yet
        if kind == "associations":
            ends = hs[rec["fromObjectType"]][rec["fromId"]], hs[rec["toObjectType"]][rec["toId"]]
            assert rec["createdAt"] >= max(e["createdAt"] for e in ends)
    # Owners: the same people, by email, in both CRMs.
    active = {u["Email"] for u in sf["User"].values() if u["IsActive"]}
    owners = {o["email"] for kind, o in recs if kind == "owners" and not o["archived"]}
    assert active == owners


def test_a_sample_of_companies_without_hubspot_deals_is_copied_too():
    o = SyntheticOrg(seed=42, size="medium", crm="both")
    with_deals = {d.account_id for d in o.deals(o.horizon) if d.source_system == "hubspot"}
    old = [i for i in o.identities() if i["kind"] == "company" and i["salesforce"]]
    idle = [i for i in old if i["hubspot"] not in with_deals]
    share = sum(i["hubspot"] is not None for i in idle) / len(idle)
    assert len(idle) > 500 and 0.25 <= share <= 0.35, share
    assert all(i["hubspot"] is not None for i in old if i["hubspot"] in with_deals)


def test_identities_cover_both_crms_and_resolve(both, both_horizon):
    sf, hs = both_horizon
    ids = list(both.identities())
    keys = [(i["kind"], i["key"]) for i in ids]
    assert len(set(keys)) == len(keys)
    for i in ids:
        assert set(i) == {"kind", "key", "salesforce", "hubspot"} and (i["salesforce"] or i["hubspot"])
        if i["salesforce"]:
            sobject = {"company": ["Account"], "person": ["Contact", "User"]}[i["kind"]]
            rec = next(sf[o][i["salesforce"]] for o in sobject if i["salesforce"] in sf[o])
            key = rec.get("Email") or rec.get("Website", "").removeprefix("https://www.")
            assert key == i["key"]
        if i["hubspot"]:
            kinds = {"company": ["companies"], "person": ["contacts", "owners"]}[i["kind"]]
            if i["hubspot"] in hs["owners"]:
                assert hs["owners"][i["hubspot"]]["email"] == i["key"]
            else:
                rec = next(hs[k][i["hubspot"]] for k in kinds if i["hubspot"] in hs[k])
                assert i["key"] in (rec["properties"].get("email"), rec["properties"].get("domain"))
                assert not rec["archived"]
    # Every record of either CRM has its identity; every overlap is stated.
    by_key = {(i["kind"], i["key"]): i for i in ids}
    for a in sf["Account"].values():
        assert by_key[("company", a["Website"].removeprefix("https://www."))]["salesforce"] == a["Id"]
    for c in sf["Contact"].values():
        assert by_key[("person", c["Email"])]["salesforce"] == c["Id"]
    for c in hs["companies"].values():
        if not c["archived"]:
            assert by_key[("company", c["properties"]["domain"])]["hubspot"] == c["id"]
    for c in hs["contacts"].values():
        if not c["archived"]:
            assert by_key[("person", c["properties"]["email"])]["hubspot"] == c["id"]
    overlap = [i for i in ids if i["salesforce"] and i["hubspot"]]
    assert Counter(i["kind"] for i in overlap)["company"] > 20
    sf_domains = {a["Website"].removeprefix("https://www.") for a in sf["Account"].values()}
    hs_domains = {c["properties"]["domain"] for c in hs["companies"].values() if not c["archived"]}
    assert {i["key"] for i in overlap if i["kind"] == "company"} == sf_domains & hs_domains


def test_both_mode_hubspot_replays_across_the_migration(both):
    def k(kind, rec):
        if kind == "associations":
            return (kind, rec["fromObjectType"], rec["fromId"], rec["toObjectType"], rec["toId"],
                    rec["associationTypeId"])
        return kind, rec["id"]

    since, until = both.migration_at - timedelta(days=10), both.migration_at + timedelta(days=30)
    state = {k(kind, rec): rec for kind, rec in both.hubspot_records(since)}
    assert {key[0] for key in state} == {"owners", "pipelines"}        # the portal is set up first
    changes = list(both.hubspot_changes(since, until))
    for kind, rec in changes:
        state[k(kind, rec)] = rec
    assert state == {k(kind, rec): rec for kind, rec in both.hubspot_records(until)}
    kinds = Counter(kind for kind, _ in changes)
    assert kinds["companies"] > 20 and kinds["deals"] > 5
    # Copied at the migration: companies and contacts created at migration_at exactly.
    assert sum(rec["createdAt"] == both.migration_at for kind, rec in changes if kind == "companies") > 10


# --------------------------------------------------------------------------- determinism

def _views_digest(o: SyntheticOrg) -> str:
    return digest(itertools.chain(o.hubspot_records(o.now), o.gmail_messages(o.now), o.calendar_events(o.now),
                                  o.identities()))


def test_every_view_is_deterministic(both):
    import os
    import subprocess
    import sys
    from pathlib import Path

    mine = _views_digest(both)
    assert _views_digest(SyntheticOrg(seed=42, size="small", crm="both")) == mine
    assert _views_digest(SyntheticOrg(seed=43, size="small", crm="both")) != mine
    code = ("import sys; sys.path.insert(0, 'tests'); from test_org_crm_modes import _views_digest; "
            "from sandbox.org import SyntheticOrg; print(_views_digest(SyntheticOrg(42, 'small', crm='both')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert out.stdout.strip() == mine


def test_advancing_week_by_week_replays_every_view(both):
    """What the emulators do: load the state at `now`, then apply each week's changes."""
    def hs_key(kind, rec):
        if kind == "associations":
            return (kind, rec["fromObjectType"], rec["fromId"], rec["toObjectType"], rec["toId"],
                    rec["associationTypeId"])
        return kind, rec["id"]

    def by_id(box, rec):
        return box, rec["id"]

    views = [(both.hubspot_records, both.hubspot_changes, hs_key),
             (both.gmail_messages, both.gmail_changes, by_id),
             (both.calendar_events, both.calendar_changes, by_id),
             (both.records, both.changes, lambda obj, rec: (obj, rec["Id"]))]
    for records, changes, key in views:
        state = {key(a, b): b for a, b in records(both.now)}
        t = both.now
        for _ in range(6):
            for a, b in changes(t, t + timedelta(days=7)):
                state[key(a, b)] = b
            t += timedelta(days=7)
        assert state == {key(a, b): b for a, b in records(t)}
