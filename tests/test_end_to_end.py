"""The whole chain through Dagster against all four emulators, checked against ground truth.

The org migrated from Salesforce to HubSpot halfway (crm="both"), and its reps' Gmail and
calendars are synced too. The real vendor clients talk HTTPS to the emulators; the unified
model and every metric are compared with the same figures computed from the generator's
own deals, identities and mail.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

from dagster._serdes import serialize_value
import pytest

from pipeline_model.snapshot import TABLE as SNAPSHOT_TABLE
from pipeline_model.tables import CONFIG_TABLES, METRIC_TABLES, MODEL_TABLES, SOURCES, build
from pipeline_model.warehouse import Warehouse
from sandbox.runner import SALESFORCE_CREDENTIALS
from tests.conftest import synced_on_both_backends
from tests.truth import (PREDICTED_SQL, activity_truth, by_month_and_crm, by_owner, canonical_stage, deal_activity,
                         expected_metrics, expected_pipeline_metrics, open_amount_by_stage_on, open_by_stage_on,
                         owner_ids, rep_activity, score_matching, sliced_metrics, true_activities)

REL = 1e-9


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    """One sandbox, synced once through Dagster into each warehouse backend; the tests only read."""
    with synced_on_both_backends(tmp_path_factory.mktemp("e2e"), crm="both", google=True) as synced:
        yield synced


@pytest.fixture(params=["duckdb", "postgres"])
def world(request, worlds):
    return worlds[request.param]


def _normalised(value):
    if isinstance(value, float):
        return float(f"{value:.11g}")     # sums in another order differ in the last bits
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc)
    return value


def _rows(warehouse: Warehouse, qualified: str) -> list[tuple]:
    return sorted((tuple(_normalised(v) for v in row) for row in warehouse.fetch(f"select * from {qualified}")),
                  key=repr)


def test_duckdb_and_postgres_hold_identical_tables(worlds):
    """Same input, same SQL: every config, model, metric and history table equal row for row."""
    tables = [t.qualified for t in (*CONFIG_TABLES, *MODEL_TABLES, *METRIC_TABLES)] + [SNAPSHOT_TABLE]
    duck, pg = worlds["duckdb"][2], worlds["postgres"][2]
    total = 0
    for table in tables:
        rows = _rows(duck, table)
        assert rows == _rows(pg, table), table
        total += len(rows)
    assert total > 50_000


@pytest.fixture
def sandbox(world):
    return world[0]


@pytest.fixture
def live_deals(sandbox):
    return {f"{d.source_system}:{d.id}": d for d in sandbox.org.deals(sandbox.now) if not d.deleted}


@pytest.fixture
def synced(world, live_deals):
    box, outcome, warehouse, _ = world
    return outcome, warehouse, expected_metrics(list(box.org.deals(box.now)))


def test_every_stream_lands_and_every_model_table_builds(synced, sandbox):
    outcome, warehouse, _ = synced
    raw = {k: v for k, v in outcome.rows_by_asset.items() if k.startswith("raw_salesforce/")}
    assert len(raw) == 8 and all(n > 0 for n in raw.values()), raw
    served = sandbox.salesforce.store.counts()["Opportunity"]
    assert raw["raw_salesforce/opportunities"] == served
    for vendor, table in (("hubspot", "deals"), ("hubspot", "emails"), ("google", "gmail_messages"),
                          ("google", "calendar_events")):
        assert outcome.rows_by_asset[f"raw_{vendor}/{table}"] > 0, table
    for table in ("owners", "accounts", "contacts", "identity_map", "deals", "deal_stage_history", "activities",
                  "activity_participants", "deal_activities", "deal_contacts"):
        assert outcome.rows_by_asset[f"model/{table}"] > 0, table
    assert warehouse.fetch("select count(*) from model.unmapped_stages")[0][0] == 0
    systems = dict(warehouse.fetch("select source_system, count(*) from model.deals group by source_system"))
    assert systems["salesforce"] > 0 and systems["hubspot"] > 0


def test_tables_an_earlier_release_kept_are_replaced_by_their_views(world):
    """Each model view was a table in an earlier release: its rebuild drops the old table,
    whatever it holds, and creates the view with the same rows; rebuilding what it reads before
    that leaves the old table alone."""
    _, outcome, warehouse, _ = world
    views = [t for t in MODEL_TABLES if t.view]
    warehouse.run_in_transaction([s for v in reversed(views) for s in (
        f"drop view {v.qualified}", f"create table {v.qualified} as select 1 as leftover")])
    for table in MODEL_TABLES[:MODEL_TABLES.index(views[-1]) + 1]:
        build(warehouse, table, SOURCES)
    for view in views:
        assert warehouse.fetch(f"select count(*) from {view.qualified}") == [
            (outcome.rows_by_asset[f"model/{view.name}"],)]
        assert warehouse.fetch("select table_type from information_schema.tables where table_schema = ? "
                               "and table_name = ?", [view.schema, view.name]) == [("VIEW",)]


def test_postgresql_has_planner_statistics_for_every_table_it_builds(worlds):
    """Each model and metric table is analysed as it is built: the next tables' plans rest on
    real row counts, not guesses."""
    _, outcome, warehouse, _ = worlds["postgres"]
    stats = dict(((schema, name), analysed) for schema, name, analysed in warehouse.fetch(
        "select schemaname, relname, last_analyze is not null from pg_stat_user_tables "
        "where schemaname in ('model', 'metrics')"))
    built = [t for t in MODEL_TABLES + METRIC_TABLES if not t.view]
    assert [t.qualified for t in built if not stats.get((t.schema, t.name))] == []
    assert len(built) > 30


def test_rebuilding_what_a_view_reads_recreates_the_view(world):
    """model.activity_sources is a view over a view (activity_records) and a table
    (google_activity_sources). PostgreSQL refuses to drop what a view reads: rebuilding either
    recreates the view in the same transaction, with the same rows."""
    _, outcome, warehouse, _ = world
    expected = outcome.rows_by_asset["model/activity_sources"]
    for name in ("activity_records", "google_activity_sources"):
        build(warehouse, next(t for t in MODEL_TABLES if t.name == name), SOURCES)
        assert warehouse.fetch("select count(*) from model.activity_sources") == [(expected,)]
    assert expected > 1000


def test_deals_match_ground_truth(synced, live_deals):
    _, warehouse, _ = synced
    rows = warehouse.fetch_dicts("select * from model.deals")
    assert {r["deal_id"] for r in rows} == set(live_deals)
    for r in rows:
        d = live_deals[r["deal_id"]]
        assert (r["source_stage"], r["is_closed"], r["is_won"], r["amount"]) == (d.stage, d.is_closed, d.is_won, d.amount)
        assert r["stage"] == canonical_stage(d, d.stage)
        assert r["closed_at"] == d.closed_at and r["created_at"] == d.created_at


def test_stage_spells_from_both_crms_match_ground_truth(synced, live_deals):
    _, warehouse, _ = synced
    got: dict[str, list] = defaultdict(list)
    for r in warehouse.fetch_dicts("select * from model.deal_stage_history order by deal_id, spell_number"):
        got[r["deal_id"]].append((r["source_stage"], r["entered_at"], r["exited_at"]))
    assert dict(got) == {k: [(s.stage, s.entered_at, s.exited_at) for s in d.spells] for k, d in live_deals.items()}


def test_one_owner_account_and_contact_per_real_world_entity(synced, sandbox):
    """Both CRMs' records of one company or person resolve to one row (merged-away HubSpot
    duplicates included), and different ones never share a row."""
    _, warehouse, _ = synced
    canonical = {(r["source_system"], r["source_id"]): (r["entity"], r["canonical_id"])
                 for r in warehouse.fetch_dicts("select * from model.identity_map")}
    resolved: dict[str, set] = defaultdict(set)      # real-world key -> canonical ids its records got
    in_both = 0
    for identity in sandbox.org.identities():
        ids = {canonical[(system, identity[system])] for system in ("salesforce", "hubspot")
               if identity[system] is not None and (system, identity[system]) in canonical}
        resolved[identity["key"]] |= ids
        in_both += len(ids) == 1 and all(identity[s] and (s, identity[s]) in canonical for s in ("salesforce", "hubspot"))
    assert in_both > 100, "the org should have companies and people in both CRMs"
    assert all(len(ids) == 1 for ids in resolved.values() if ids), \
        [k for k, ids in resolved.items() if len(ids) > 1][:5]
    owners_of = defaultdict(set)
    for key, ids in resolved.items():
        for entity, canonical_id in ids:
            owners_of[canonical_id].add(key)
    assert all(len(keys) == 1 for keys in owners_of.values()), "two real-world entities share one row"
    for entity, table, column in (("account", "accounts", "account_id"), ("contact", "contacts", "contact_id"),
                                  ("owner", "owners", "owner_id")):
        rows = [r for (r,) in warehouse.fetch(f"select {column} from model.{table}")]
        assert len(rows) == len(set(rows))
        assert set(rows) == {c for e, c in canonical.values() if e == entity}


def test_mail_participants_resolve_to_the_same_people(synced, sandbox):
    """An address on a mail or meeting is the contact or owner the CRMs know by that email."""
    _, warehouse, _ = synced
    person_row = {}
    for r in warehouse.fetch_dicts("select entity, canonical_id, match_key from model.identity_map "
                                   "where entity in ('contact', 'owner') and match_key is not null"):
        person_row[(r["entity"], r["match_key"])] = r["canonical_id"]
    people = {i["key"] for i in sandbox.org.identities() if i["kind"] == "person"}
    checked = 0
    for address, contact_id, owner_id in warehouse.fetch(
            "select address, contact_id, owner_id from model.activity_participants"):
        if address in people:
            assert contact_id == person_row.get(("contact", address))
            assert owner_id == person_row.get(("owner", address))
            checked += 1
    assert checked > 5000


def test_mail_and_meetings_are_matched_to_their_deals(world):
    box, _, warehouse, _ = world
    predicted = {r: (deal, rule) for r, deal, rule in warehouse.fetch(PREDICTED_SQL)}
    score = score_matching(activity_truth(box.org, box.now), predicted)
    assert score.deal_items > 1000
    assert score.precision >= 0.98 and score.recall >= 0.95, (score.precision, score.recall, score.by_rule)
    assert score.by_rule["internal_only"][0] > 100     # internal mail is recognised, never matched


def test_pipeline_by_stage(synced):
    _, warehouse, truth = synced
    rows = warehouse.fetch("select stage, open_deals, open_amount from metrics.pipeline_by_stage")
    assert {stage: (n, pytest.approx(amount, rel=REL)) for stage, n, amount in rows} == truth["pipeline_by_stage"]


def test_win_rates_and_deal_size(synced):
    _, warehouse, truth = synced
    row, = warehouse.fetch_dicts("select * from metrics.win_rates where slice_by = 'org'")
    for name in ("won_deals", "lost_deals"):
        assert row[name] == truth[name]
    for name in ("win_rate_by_count", "win_rate_by_value", "avg_won_deal_size"):
        assert row[name] == pytest.approx(truth[name], rel=REL), name


def test_time_in_stage(synced):
    _, warehouse, truth = synced
    rows = warehouse.fetch_dicts("select * from metrics.time_in_stage where slice_by = 'org'")
    assert {r["stage"]: r["completed_spells"] for r in rows if r["completed_spells"]} == truth["completed_spells"]
    for r in rows:
        if r["completed_spells"]:
            assert r["avg_days_in_stage"] == pytest.approx(truth["avg_days_in_stage"][r["stage"]], rel=REL)


def test_sales_cycle(synced):
    _, warehouse, truth = synced
    row, = warehouse.fetch_dicts("select * from metrics.sales_cycle where slice_by = 'org'")
    assert row["closed_deals"] == truth["closed_deals"]
    assert row["avg_sales_cycle_days"] == pytest.approx(truth["avg_sales_cycle_days"], rel=REL)
    assert row["avg_won_sales_cycle_days"] == pytest.approx(truth["avg_won_sales_cycle_days"], rel=REL)


@pytest.fixture
def pipeline_truth(world):
    box, _, warehouse, _ = world
    bounds = warehouse.fetch("select current_period_start, next_period_start, next_period_end "
                             "from model.metric_settings")[0]
    return warehouse, expected_pipeline_metrics(list(box.org.deals(box.now)), box.now, bounds)


def _by_stage(warehouse, sql: str) -> dict:
    return {row[0]: tuple(row[1:]) for row in warehouse.fetch(sql)}


def _approx(values):
    return tuple(pytest.approx(v, rel=REL, abs=1e-9) if isinstance(v, float) else v for v in values)


def test_weighted_pipeline_by_stage(pipeline_truth):
    warehouse, truth = pipeline_truth
    got = _by_stage(warehouse, "select stage, open_deals, open_amount, weighted_amount, history_weighted_amount "
                               "from metrics.pipeline_by_stage")
    assert got == {stage: _approx(v) for stage, v in truth["pipeline_by_stage"].items()}
    sliced = warehouse.fetch("select sum(open_deals), sum(open_amount), sum(weighted_amount) from metrics.open_pipeline")[0]
    assert sliced == _approx((sum(v[0] for v in truth["pipeline_by_stage"].values()),
                              sum(v[1] for v in truth["pipeline_by_stage"].values()),
                              sum(v[2] for v in truth["pipeline_by_stage"].values())))


def test_stage_win_rates_funnel_and_losses(pipeline_truth):
    warehouse, truth = pipeline_truth
    rates = dict(warehouse.fetch("select stage, win_rate from metrics.stage_win_rates where slice_by = 'org'"))
    assert rates == {st: pytest.approx(r, rel=REL) for st, r in truth["stage_win_rates"].items()}
    funnel = _by_stage(warehouse, "select stage, deals_reached, deals_advanced from metrics.funnel "
                                  "where slice_by = 'org'")
    assert funnel == truth["funnel"]
    lost = _by_stage(warehouse, "select stage, lost_deals, lost_amount from metrics.lost_at_stage "
                                "where slice_by = 'org'")
    assert lost == {st: _approx(v) for st, v in truth["lost_at_stage"].items()}


def test_time_in_stage_percentiles_deal_size_and_cycle_medians(pipeline_truth):
    warehouse, truth = pipeline_truth
    got = _by_stage(warehouse, "select stage, median_days_in_stage, p75_days_in_stage from metrics.time_in_stage "
                               "where slice_by = 'org'")
    assert got == {st: _approx(v) for st, v in truth["time_in_stage"].items()}
    assert warehouse.fetch("select median_won_deal_size from metrics.win_rates where slice_by = 'org'") == \
        [(pytest.approx(truth["median_won_deal_size"], rel=REL),)]
    assert warehouse.fetch("select median_sales_cycle_days from metrics.sales_cycle where slice_by = 'org'") == \
        [(pytest.approx(truth["median_sales_cycle_days"], rel=REL),)]


def test_stalled_deals(pipeline_truth):
    warehouse, truth = pipeline_truth
    got = set(warehouse.fetch("select deal_id, reason from metrics.stalled_deals"))
    assert got == truth["stalled"] and len(got) > 10
    # Each reason occurs, slipped close dates in both CRMs, and they say how the date moved.
    assert {reason for _, reason in got} == {"stuck_in_stage", "close_date_passed", "close_date_slipped"}
    slipped = dict(warehouse.fetch("select deal_id, detail from metrics.stalled_deals "
                                   "where reason = 'close_date_slipped'"))
    assert slipped == truth["slipped"]
    assert {deal_id.split(":")[0] for deal_id in slipped} == {"salesforce", "hubspot"}
    assert any(" 1 time," in detail for detail in slipped.values())
    assert any(" times," in detail for detail in slipped.values())


def test_close_date_history_from_both_crms_matches_ground_truth(synced, live_deals):
    """model.close_date_changes holds each live deal's close-date changes as its CRM recorded them
    (Salesforce OpportunityHistory, HubSpot closedate history), repeats collapsed."""
    _, warehouse, _ = synced
    got: dict[str, list] = defaultdict(list)
    for deal_id, close_date, changed_at in warehouse.fetch(
            "select deal_id, close_date, changed_at from model.close_date_changes order by deal_id, changed_at"):
        got[deal_id].append((changed_at, close_date))
    assert dict(got) == {k: list(d.close_dates) for k, d in live_deals.items()}
    assert all(changes[-1][1] == live_deals[k].close_date for k, changes in got.items())
    moved = [k for k, changes in got.items() if len(changes) > 1]
    assert len(moved) > 100 and {k.split(":")[0] for k in moved} == {"salesforce", "hubspot"}


def test_forecast_weighs_by_crm_and_by_history(pipeline_truth):
    warehouse, truth = pipeline_truth
    got = _by_stage(warehouse, "select period, open_deals, open_amount, crm_weighted_amount, history_weighted_amount, "
                               "won_amount from metrics.forecast")
    assert got == {p: _approx(v) for p, v in truth["forecast"].items()}
    assert got["current"][0] > 0


def test_bookings_and_pipeline_created_by_month_and_crm(world):
    box, _, warehouse, _ = world
    bookings, created = by_month_and_crm(box.org.deals(box.now))
    got = {(m, crm): tuple(v) for m, crm, *v in warehouse.fetch(
        "select close_month, source_system, sum(won_deals), sum(lost_deals), sum(won_amount), sum(lost_amount) "
        "from metrics.bookings group by close_month, source_system")}
    assert got == {k: _approx(v) for k, v in bookings.items()}
    got = {(m, crm): tuple(v) for m, crm, *v in warehouse.fetch(
        "select created_month, source_system, sum(deals_created), sum(amount_created), sum(won_since), "
        "sum(lost_since) from metrics.pipeline_created group by created_month, source_system")}
    assert got == {k: _approx(v) for k, v in created.items()}
    assert len(created) > 15


@pytest.fixture
def owner_of(world):
    """Each real-world user's warehouse owner id (by work email and by CRM id). model.identity_map
    is used only as the dictionary from source ids to canonical ids, as the identity test above
    does; that it joins one person's records and only them is that test's business."""
    box, _, warehouse, _ = world
    canonical = {(system, source_id): owner for system, source_id, owner in warehouse.fetch(
        "select source_system, source_id, canonical_id from model.identity_map where entity = 'owner'")}
    return owner_ids(box.org, canonical)


@pytest.fixture
def manager_of(world, owner_of):
    """Each owner's manager (warehouse ids) as Salesforce's User.ManagerId names it; owners
    without a manager are absent."""
    box = world[0]
    return {owner_of[("salesforce", u["Id"])]: owner_of.get(("salesforce", u["ManagerId"]))
            for kind, u in box.org.records(box.now, objects=["User"])
            if kind == "User" and ("salesforce", u["Id"]) in owner_of and u["ManagerId"]}


def test_every_owner_has_the_manager_salesforce_names(world, manager_of):
    """model.owners.manager_id, and the manager slice of the pipeline, follow Salesforce's
    User.ManagerId even where the owner's primary record is a HubSpot owner (which has no manager)."""
    _, _, warehouse, _ = world
    expected = manager_of
    got = dict(warehouse.fetch("select owner_id, manager_id from model.owners"))
    assert {o: got[o] for o in expected} == expected and None not in expected.values()
    sliced = warehouse.fetch("select distinct owner_id, manager_id from metrics.open_pipeline")
    assert sliced and all(manager == got[owner] for owner, manager in sliced)


def test_open_pipeline_bookings_and_pipeline_created_by_owner(world, owner_of):
    """The per-owner slices of the pipeline, bookings and pipeline created, exactly."""
    box, _, warehouse, _ = world
    pipeline, bookings, created = by_owner(list(box.org.deals(box.now)), owner_of)
    got = {tuple(row[:5]): tuple(row[5:]) for row in warehouse.fetch(
        "select stage, stage_order, owner_id, source_system, pipeline, sum(open_deals), sum(open_amount), "
        "sum(weighted_amount), sum(history_weighted_amount) from metrics.open_pipeline "
        "group by stage, stage_order, owner_id, source_system, pipeline")}
    assert got == {k: _approx(v) for k, v in pipeline.items()}
    assert len({k[2] for k in pipeline}) > 5 and len(pipeline) > 20
    got = {(m, owner, crm): tuple(v) for m, owner, crm, *v in warehouse.fetch(
        "select close_month, owner_id, source_system, sum(won_deals), sum(lost_deals), sum(won_amount), "
        "sum(lost_amount) from metrics.bookings group by close_month, owner_id, source_system")}
    assert got == {k: _approx(v) for k, v in bookings.items()}
    got = {(m, owner, crm): tuple(v) for m, owner, crm, *v in warehouse.fetch(
        "select created_month, owner_id, source_system, sum(deals_created), sum(amount_created), sum(won_since), "
        "sum(lost_since) from metrics.pipeline_created group by created_month, owner_id, source_system")}
    assert got == {k: _approx(v) for k, v in created.items()}
    assert len({k[1] for k in bookings}) > 5


@pytest.fixture
def sliced_truth(world, owner_of, manager_of):
    box, _, warehouse, _ = world
    (period,), = warehouse.fetch("select period from model.metric_settings")
    return warehouse, period, lambda period: sliced_metrics(list(box.org.deals(box.now)), owner_of, manager_of,
                                                            period)


SLICED_COLUMNS = {
    "win_rates": "won_deals, lost_deals, won_amount, lost_amount, win_rate_by_count, win_rate_by_value, "
                 "avg_won_deal_size, median_won_deal_size",
    "sales_cycle": "closed_deals, avg_sales_cycle_days, median_sales_cycle_days, won_deals, avg_won_sales_cycle_days",
    "time_in_stage": "completed_spells, avg_days_in_stage, median_days_in_stage, p75_days_in_stage",
    "stage_win_rates": "closed_deals, won_deals, win_rate",
    "funnel": "deals_reached, deals_advanced",
    "lost_at_stage": "lost_deals, lost_amount",
    "pipeline_velocity": "open_deals, win_rate, avg_won_deal_size, avg_won_cycle_days, velocity_per_day",
}
PER_STAGE = ("time_in_stage", "stage_win_rates", "funnel", "lost_at_stage")


def _sliced(warehouse, table: str) -> dict:
    """(slice_by, slice_value[, stage]) -> the table's figures."""
    n = 3 if table in PER_STAGE else 2
    key = "slice_by, slice_value" + (", stage" if n == 3 else "")
    return {tuple(row[:n]): tuple(row[n:])
            for row in warehouse.fetch(f"select {key}, {SLICED_COLUMNS[table]} from metrics.{table}")}


def _assert_sliced(warehouse, table: str, truth: dict) -> None:
    got = _sliced(warehouse, table)
    assert len(got) == len(set(got))
    expected = {k: _approx(v) for k, v in truth[table].items()}
    assert set(got) == set(expected), (table, sorted(set(got) ^ set(expected), key=repr)[:5])
    assert got == expected, (table, [(k, got[k], truth[table][k]) for k in sorted(got, key=repr)
                                     if got[k] != expected[k]][:5])


def test_win_rates_sales_cycle_and_time_in_stage_by_slice(sliced_truth):
    """Every slice (org, owner, manager, CRM, pipeline, period) of win rates, deal size, sales cycle
    and time in stage (medians and p75 included), exactly; the period is the close's, the end of
    the spell's for time in stage."""
    warehouse, period, truth_for = sliced_truth
    truth = truth_for(period)
    for table in ("win_rates", "sales_cycle", "time_in_stage"):
        _assert_sliced(warehouse, table, truth)
    kinds = defaultdict(set)
    for slice_by, slice_value in truth["win_rates"]:
        kinds[slice_by].add(slice_value)
    assert len(kinds["owner"]) > 5 and len(kinds["manager"]) > 1 and len(kinds["period"]) > 3
    assert kinds["source_system"] == {"salesforce", "hubspot"} and kinds["pipeline"] == {"default", None}


def test_funnel_stage_win_rates_and_losses_by_slice(sliced_truth):
    """Every slice of the per-stage conversion tables lists every stage, exactly; the funnel's
    conversion_to_won is the stage win rate of the same slice (the cohort of deals created in
    the period, for both)."""
    warehouse, period, truth_for = sliced_truth
    truth = truth_for(period)
    for table in ("stage_win_rates", "funnel", "lost_at_stage"):
        _assert_sliced(warehouse, table, truth)
    to_won = {tuple(row[:3]): row[3] for row in warehouse.fetch(
        "select slice_by, slice_value, stage, conversion_to_won from metrics.funnel where stage <> 'closed_won'")}
    rates = {k: v[2] for k, v in truth["stage_win_rates"].items()}
    assert to_won == {k: None if rates.get(k) is None else pytest.approx(rates[k], rel=REL) for k in to_won}
    assert sum(v is not None for v in to_won.values()) > 100
    assert sum(k[0] == "owner" for k in truth["lost_at_stage"]) > 5 * 5


def test_pipeline_velocity_by_slice(sliced_truth):
    """Velocity of the org and of every owner, manager, CRM and pipeline, exactly (no period
    slice: it is the pipeline as it is now)."""
    warehouse, period, truth_for = sliced_truth
    truth = truth_for(period)
    _assert_sliced(warehouse, "pipeline_velocity", truth)
    kinds = {k[0] for k in truth["pipeline_velocity"]}
    assert kinds == {"org", "owner", "manager", "source_system", "pipeline"}
    assert sum(k[0] == "owner" and v[4] is not None for k, v in truth["pipeline_velocity"].items()) > 5


def test_period_slices_follow_metrics_period(world, sliced_truth):
    """With metrics.period: month, the period slices are months (the figures of every other
    slice do not move). The slices come from model.deal_slices, rebuilt first as in a run."""
    _, _, warehouse, _ = world
    _, period, truth_for = sliced_truth
    sliced = [*(t for t in MODEL_TABLES if t.name == "deal_slices"),
              *(t for t in METRIC_TABLES if t.name in SLICED_COLUMNS)]
    try:
        warehouse.run_in_transaction(["update model.metric_settings set period = 'month'"])
        for table in sliced:
            build(warehouse, table)
        truth = truth_for("month")
        for table in SLICED_COLUMNS:
            _assert_sliced(warehouse, table, truth)
        months = {k[1] for k in truth["win_rates"] if k[0] == "period"}
        assert len(months) > 12 and all(m.endswith("-01") for m in months)
    finally:
        warehouse.run_in_transaction([("update model.metric_settings set period = ?", [[period]])])
        for table in sliced:
            build(warehouse, table)


@pytest.fixture
def activities(sandbox):
    return true_activities(sandbox.org, sandbox.now)


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=REL, abs_tol=1e-9)
    return a == b


def _agreement(got: dict, expected: dict, column: str, at_least: float) -> None:
    """At least `at_least` of the keys have the true value in `column`; the message gives the
    exact share that differ and a few of them (key, truth, warehouse)."""
    differ = sorted(k for k in expected if not _same(got[k][column], expected[k][column]))
    share = len(differ) / len(expected)
    assert 1 - share >= at_least, (f"{column}: {len(differ)} of {len(expected)} differ from the truth "
                                   f"({share:.2%})", [(k, expected[k][column], got[k][column]) for k in differ[:5]])


def test_deal_activity(world, live_deals, owner_of, activities):
    box, _, warehouse, _ = world
    truth = deal_activity(live_deals.values(), activities, box.now)
    got = {r["deal_id"]: r for r in warehouse.fetch_dicts("select * from metrics.deal_activity")}
    # Exact: one row per live deal, with its owner, stage, state and age.
    assert set(got) == set(truth)
    for deal_id, d in live_deals.items():
        r = got[deal_id]
        assert (r["owner_id"], r["stage"], r["is_closed"]) == (
            owner_of[(d.source_system, d.owner_id)], canonical_stage(d, d.stage), d.is_closed), deal_id
        assert r["deal_age_days"] == pytest.approx(truth[deal_id]["deal_age_days"], rel=REL), deal_id
    # Exact, as a lower bound: a deal's own CRM records are always counted (a CRM link is never
    # lost), whatever else matching adds or misses.
    for kind in ("emails", "meetings", "calls"):
        short = [k for k, t in truth.items() if got[k][kind] < t["crm_" + kind]]
        assert not short, (kind, [(k, truth[k]["crm_" + kind], got[k][kind]) for k in short[:5]])
    assert sum(t["crm_emails"] for t in truth.values()) > 1000 and sum(t["calls"] for t in truth.values()) > 500
    # The rest depends on the mail and meetings no CRM logged, which the warehouse attributes by
    # rule (model.deal_activities): exact equality on every deal is not attainable. Where a
    # rule finds several deals it records 'ambiguous' and the deal loses the item; a logged mail
    # or meeting whose copy does not fold into its CRM record (mail the owner received and
    # deleted, whose copy a colleague keeps; two logged at once for the same contact) is counted
    # twice; activity left on an archived HubSpot deal can be attributed to another deal of the
    # account. (Mail the owner sent folds through any mailbox's copy, and another meeting in the
    # owner's calendar at the same minute is told apart by the contact's attendance.) The
    # thresholds are the strictest this org supports, just under what it shows (share of live
    # deals equal to the truth, of 492):
    # emails 90.2 %, meetings 99.0 %, calls 99.8 %, last touch 99.4 %, next meeting 100 %.
    _agreement(got, truth, "emails", 0.90)
    _agreement(got, truth, "meetings", 0.98)
    _agreement(got, truth, "calls", 0.99)
    _agreement(got, truth, "last_activity_at", 0.99)
    _agreement(got, truth, "days_since_last_touch", 0.99)
    # Every future meeting here is a CRM-scheduled one, so no rule can miss it: exact.
    _agreement(got, truth, "next_meeting_at", 1.0)
    assert sum(t["next_meeting_at"] is not None for t in truth.values()) > 5
    # Not vacuous: the org holds HubSpot meetings that did not take place (outcome CANCELED or
    # NO_SHOW) on live deals, which the truth leaves out; exact: they are the HubSpot meetings
    # model.activities marks void.
    assert sum(not a.held and a.deal is not None and a.at <= box.now for a in activities) >= 1
    unheld = {r["id"] for kind, r in box.org.hubspot_records(box.now) if kind == "meetings" and not r["archived"]
              and r["properties"]["hs_meeting_outcome"] in ("CANCELED", "NO_SHOW")}
    assert unheld == {i for (i,) in warehouse.fetch("select source_id from model.activities where is_void and "
                                                    "source_system = 'hubspot' and activity_type = 'meeting'")}


def test_rep_activity(world, owner_of, activities):
    box, _, warehouse, _ = world
    truth = rep_activity(activities, box.now, owner_of)
    got = {(owner, month): tuple(v) for owner, month, *v in warehouse.fetch(
        "select owner_id, activity_month, emails, meetings, calls, deal_activities from metrics.rep_activity")}
    # Exact: the same (owner, month) cells, and every call (calls are CRM records only).
    assert set(got) == set(truth)
    assert {k: v[2] for k, v in got.items()} == {k: v[2] for k, v in truth.items()}
    # Exact, as a lower bound: no email or meeting is lost or given to another owner or month; a
    # logged one whose copy does not fold into its CRM record is counted twice (see
    # test_deal_activity), so the warehouse may only have more.
    for i, kind in ((0, "emails"), (1, "meetings")):
        short = [k for k in truth if got[k][i] < truth[k][i]]
        assert not short, (kind, [(k, truth[k][i], got[k][i]) for k in short[:5]])
    # How many more, over all cells, as a share of the true count; deal_activities also moves with
    # the deal matching (ambiguous items lost, archived deals' activity attributed). Strictest
    # bounds this org supports: it shows emails 0.08 %, meetings 0.31 %, deal_activities 1.3 %
    # (cells equal to the truth: 99.0 %, 97.9 %, 83.3 % of 287).
    for i, kind, at_most in ((0, "emails", 0.001), (1, "meetings", 0.005), (3, "deal_activities", 0.015)):
        total = sum(v[i] for v in truth.values())
        off = sum(abs(got[k][i] - truth[k][i]) for k in truth)
        differ = sum(got[k][i] != truth[k][i] for k in truth)
        assert off <= at_most * total, (f"{kind}: off by {off} of {total} ({off / total:.2%}); "
                                        f"{differ} of {len(truth)} cells differ")
    assert len({owner for owner, _ in truth}) > 10 and sum(v[2] for v in truth.values()) > 1000
    # Not vacuous: owned HubSpot meetings that did not take place (CANCELED, NO_SHOW), not counted.
    assert sum(not a.held and a.owner is not None and a.at <= box.now for a in activities) >= 1


def test_pipeline_velocity(pipeline_truth):
    warehouse, truth = pipeline_truth
    got = warehouse.fetch("select velocity_per_day from metrics.pipeline_velocity where slice_by = 'org'")
    assert got == [(pytest.approx(truth["velocity"], rel=REL),)]


def test_daily_snapshot_answers_pipeline_on_a_past_date(world):
    """Deals per stage from the stage history, and their amounts as they were that day."""
    box, _, warehouse, _ = world
    days = [d for (d,) in warehouse.fetch("select distinct snapshot_date from metrics.pipeline_trend "
                                          "order by 1")]
    assert len(days) > 300 and days[-1] == box.now.date()
    deals = list(box.org.deals(box.now))
    live = {f"{d.source_system}:{d.id}" for d in deals if not d.deleted}
    for day in (days[0], days[len(days) // 2], days[-2], days[-1]):
        rows = warehouse.fetch("select stage, open_deals, open_amount from metrics.pipeline_trend "
                               "where snapshot_date = ?", [day])
        assert {stage: n for stage, n, _ in rows} == open_by_stage_on(deals, day), day
        assert {stage: amount for stage, _, amount in rows} == pytest.approx(
            open_amount_by_stage_on(box.org, live, day, box.now), rel=REL), day


def _documented_columns() -> dict[str, list[str]]:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "warehouse.md").read_text()
    tables: dict[str, list[str]] = {}
    current = None
    for line in doc.splitlines():
        if line.startswith("### "):
            current = line[4:].strip()
            tables[current] = []
        elif current and line.startswith("| ") and not line.startswith("| column") and not line.startswith("|---"):
            tables[current].append(line.split("|")[1].strip())
    return tables


def test_data_dictionary_matches_the_warehouse(synced):
    _, warehouse, _ = synced
    actual: dict[str, list[str]] = {}
    for schema, table, column in warehouse.fetch(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where table_schema in ('model', 'metrics', 'history', 'dealsync_meta') "
            "order by table_schema, table_name, ordinal_position"):
        actual.setdefault(f"{schema}.{table}", []).append(column)
    assert _documented_columns() == actual


def test_no_secret_reaches_the_warehouse_or_the_event_log(world):
    box, outcome, warehouse, instance = world
    credentials = dict(box.credentials)
    google_key = json.loads(credentials.pop("DEALSYNC_SANDBOX_GOOGLE_KEY"))
    secrets = [*SALESFORCE_CREDENTIALS.values(), *box.salesforce.issued_sessions(), *credentials.values(),
               google_key["private_key"]]
    assert len(secrets) > 3, "the run should have logged in"
    event_log = "\n".join(serialize_value(entry) for entry in instance.all_logs(outcome.run_id))
    assert "salesforce_pull" in event_log
    texts = []
    for schema, table, column in warehouse.fetch(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where data_type in ('VARCHAR', 'character varying', 'text') "
            "and table_schema in ('model', 'metrics', 'raw_salesforce', 'raw_hubspot', 'raw_google')"):
        texts += [v for (v,) in warehouse.fetch(f'select distinct "{column}" from "{schema}"."{table}"') if v]
    assert len(texts) > 1000
    for secret in secrets:
        assert secret not in event_log
        assert not any(secret in text for text in texts)
