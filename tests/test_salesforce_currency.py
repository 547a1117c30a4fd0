"""Salesforce multi-currency: an org with several currencies has CurrencyIsoCode on its
opportunities; dealsync reads it when describe lists it, converts each deal's amount with the
configured rate, leaves a deal whose currency has no rate without an amount (and reports it),
and never adds up amounts of different currencies. A single-currency org, where selecting the
field fails, syncs as before. Checked against the generator's ground truth, through the real
connector and the emulator, on DuckDB and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest
import yaml
from rich.console import Console

from connectors.landing import land
from connectors.salesforce.source import salesforce_source
from connectors.salesforce.streams import STREAMS
from jobs.config import load_config
from jobs.runner import run_job
from jobs.summary import print_summary
from pipeline_model.warehouse import Warehouse
from sandbox.org import SyntheticOrg
from sandbox.salesforce.schema import CURRENCY_OBJECTS, OBJECTS
from tests.conftest import running_sandbox, synced_on_both_backends, warehouse_backend, with_warehouse, write_config
from tests.truth import by_owner, expected_pipeline_metrics, owner_ids, sliced_metrics

CURRENCIES = ("USD", "EUR", "GBP")      # USD corporate; GBP gets no rate below
RATES = {"EUR": 1.1}
REL = 1e-9


# --------------------------------------------------------------------------- the generator

def _by_id(records) -> dict[tuple[str, str], dict]:
    return {(obj, r["Id"]): r for obj, r in records}


@pytest.mark.parametrize("window", ["records@now", "changes now+30d"])
def test_a_multi_currency_org_is_the_same_org_with_a_currency_per_account(window):
    single, multi = SyntheticOrg(seed=3, size="small"), SyntheticOrg(seed=3, size="small", currencies=CURRENCIES)
    if window == "records@now":
        plain, priced = _by_id(single.records(single.now)), _by_id(multi.records(multi.now))
    else:
        later = single.now.replace(month=8)
        plain, priced = _by_id(single.changes(single.now, later)), _by_id(multi.changes(multi.now, later))
    assert plain.keys() == priced.keys() and len(plain) > 500
    everything = list(multi.records(multi.horizon, objects=["Account", "Opportunity"]))
    account_currency = {r["Id"]: r["CurrencyIsoCode"] for obj, r in everything if obj == "Account"}
    opportunity_account = {r["Id"]: r["AccountId"] for obj, r in everything if obj == "Opportunity"}
    for key, record in priced.items():
        obj = key[0]
        assert set(record) == set(multi.salesforce_objects[obj].field_names), obj
        assert {k: v for k, v in record.items() if k != "CurrencyIsoCode"} == plain[key]
        assert ("CurrencyIsoCode" in record) == (obj in CURRENCY_OBJECTS)
        account = {"Account": record["Id"], "Contact": record.get("AccountId"),
                   "Opportunity": record.get("AccountId"),
                   "OpportunityHistory": opportunity_account.get(record.get("OpportunityId"))}.get(obj)
        if obj in CURRENCY_OBJECTS:
            assert record["CurrencyIsoCode"] == account_currency[account], key
    assert single.salesforce_objects is OBJECTS and single.currencies == ()


def test_deal_truth_carries_the_currency_its_opportunity_has():
    multi = SyntheticOrg(seed=3, size="small", currencies=CURRENCIES)
    opportunities = {r["Id"]: r for obj, r in multi.records(multi.now, objects=["Opportunity"])}
    truth = list(multi.deals(multi.now))
    assert {d.id: d.currency for d in truth} == {i: r["CurrencyIsoCode"] for i, r in opportunities.items()}
    assert {d.id: d.amount for d in truth} == {i: r["Amount"] for i, r in opportunities.items()}
    counts = Counter(d.currency for d in truth)
    assert set(counts) == set(CURRENCIES) and counts["USD"] > len(truth) / 2 and min(counts.values()) > 30
    single = SyntheticOrg(seed=3, size="small")
    assert {d.currency for d in single.deals(single.now)} == {None}


def test_a_migrated_org_has_currencies_on_its_salesforce_side_only():
    both = SyntheticOrg(seed=3, size="small", crm="both", currencies=CURRENCIES)
    by_crm = {crm: {d.currency for d in both.deals(both.now) if d.source_system == crm}
              for crm in ("salesforce", "hubspot")}
    assert by_crm == {"salesforce": set(CURRENCIES), "hubspot": {None}}


@pytest.mark.parametrize("currencies, crm", [(("USD", "usd"), "salesforce"), (("USD", "USD"), "salesforce"),
                                             ("USD", "salesforce"), (("EURO",), "salesforce"),
                                             (CURRENCIES, "hubspot")])
def test_bad_currencies_are_refused(currencies, crm):
    with pytest.raises(ValueError, match="currenc"):
        SyntheticOrg(seed=3, size="small", crm=crm, currencies=currencies)


# --------------------------------------------------------------------------- synced through dealsync

def _rated(config_path, rates: dict[str, float]) -> None:
    settings = yaml.safe_load(config_path.read_text())
    settings["metrics"]["currency"] = {"reporting": "USD", "rates": rates}
    config_path.write_text(yaml.safe_dump(settings))


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    """One multi-currency Salesforce org, synced once through Dagster into each backend with a
    rate for EUR and none for GBP; the tests only read."""
    with synced_on_both_backends(tmp_path_factory.mktemp("currency"), lambda config: _rated(config, RATES),
                                 seed=3, currencies=CURRENCIES) as synced:
        yield synced


@pytest.fixture(params=["duckdb", "postgres"])
def world(request, worlds):
    return worlds[request.param]


def _in_reporting_currency(deal):
    """The deal as the metrics must see it: its amount converted with RATES (USD as is), none
    when its currency has no rate."""
    if deal.currency in (None, "USD") or deal.amount is None:
        return deal
    rate = RATES.get(deal.currency)
    return replace(deal, amount=None if rate is None else deal.amount * rate)


def test_raw_opportunities_hold_the_currency_salesforce_serves(world):
    box, _, warehouse, _ = world
    served = {r["Id"]: r["CurrencyIsoCode"] for obj, r in box.org.records(box.now, objects=["Opportunity"])}
    assert dict(warehouse.fetch("select id, currency_iso_code from raw_salesforce.opportunities")) == served
    queries = [e.soql for e in box.salesforce.request_log if e.kind == "query" and e.sobject == "Opportunity"]
    assert queries and all("CurrencyIsoCode" in q for q in queries)


def test_deals_are_converted_with_the_configured_rates(world):
    box, _, warehouse, _ = world
    truth = {f"salesforce:{d.id}": d for d in box.org.deals(box.now) if not d.deleted}
    rows = {r["deal_id"]: r for r in warehouse.fetch_dicts(
        "select deal_id, currency, amount, amount_original from model.deals")}
    assert rows.keys() == truth.keys()
    for deal_id, d in truth.items():
        r = rows[deal_id]
        assert (r["currency"], r["amount_original"]) == (d.currency, d.amount), deal_id
        expected = _in_reporting_currency(d).amount
        assert r["amount"] == (None if expected is None else pytest.approx(expected, rel=REL)), deal_id
    counts = Counter((d.currency, d.amount is not None) for d in truth.values())
    assert min(counts[(c, True)] for c in CURRENCIES) > 20


def test_a_currency_without_a_rate_is_reported_not_added(world):
    box, outcome, warehouse, _ = world
    gbp = [d for d in box.org.deals(box.now) if not d.deleted and d.currency == "GBP" and d.amount is not None]
    assert warehouse.fetch("select source_system, currency, deals, amount_original from model.unconverted_amounts") \
        == [("salesforce", "GBP", len(gbp), pytest.approx(sum(d.amount for d in gbp), rel=REL))]
    console = Console(record=True, width=200)
    print_summary(outcome, warehouse, console)
    assert f"{len(gbp)} salesforce deal(s) in GBP" in console.export_text()


def test_metrics_add_up_amounts_in_the_reporting_currency_only(world):
    """Pipeline, forecast, win rates and deal sizes equal the ground truth computed with the rates."""
    box, _, warehouse, _ = world
    deals = [_in_reporting_currency(d) for d in box.org.deals(box.now)]
    bounds = warehouse.fetch("select current_period_start, next_period_start, next_period_end "
                             "from model.metric_settings")[0]
    truth = expected_pipeline_metrics(deals, box.now, bounds)
    got = {r[0]: tuple(r[1:]) for r in warehouse.fetch(
        "select stage, open_deals, open_amount, weighted_amount, history_weighted_amount from metrics.pipeline_by_stage")}
    assert got == {st: _approx(v) for st, v in truth["pipeline_by_stage"].items()}
    got = {r[0]: tuple(r[1:]) for r in warehouse.fetch(
        "select period, open_deals, open_amount, crm_weighted_amount, history_weighted_amount, won_amount "
        "from metrics.forecast")}
    assert got == {p: _approx(v) for p, v in truth["forecast"].items()}
    assert warehouse.fetch("select median_won_deal_size from metrics.win_rates where slice_by = 'org'") == \
        [(pytest.approx(truth["median_won_deal_size"], rel=REL),)]
    # Adding up the amounts as Salesforce holds them would be visibly wrong: the check can tell.
    as_held = sum(d.amount or 0 for d in box.org.deals(box.now) if not d.deleted and not d.is_closed)
    assert sum(v[1] for v in truth["pipeline_by_stage"].values()) != pytest.approx(as_held, rel=1e-3)


def test_sliced_and_per_owner_amounts_are_in_the_reporting_currency(world):
    box, _, warehouse, _ = world
    deals = [_in_reporting_currency(d) for d in box.org.deals(box.now)]
    canonical = {(system, source_id): owner for system, source_id, owner in warehouse.fetch(
        "select source_system, source_id, canonical_id from model.identity_map where entity = 'owner'")}
    owner_of = owner_ids(box.org, canonical)
    manager_of = {owner_of[("salesforce", u["Id"])]: owner_of.get(("salesforce", u["ManagerId"]))
                  for _, u in box.org.records(box.now, objects=["User"])
                  if ("salesforce", u["Id"]) in owner_of and u["ManagerId"]}
    (period,), = warehouse.fetch("select period from model.metric_settings")
    sliced = sliced_metrics(deals, owner_of, manager_of, period)
    got = {tuple(r[:2]): tuple(r[2:]) for r in warehouse.fetch(
        "select slice_by, slice_value, won_deals, lost_deals, won_amount, lost_amount, win_rate_by_count, "
        "win_rate_by_value, avg_won_deal_size, median_won_deal_size from metrics.win_rates")}
    assert got == {k: _approx(v) for k, v in sliced["win_rates"].items()}
    got = {tuple(r[:3]): tuple(r[3:]) for r in warehouse.fetch(
        "select slice_by, slice_value, stage, lost_deals, lost_amount from metrics.lost_at_stage")}
    assert got == {k: _approx(v) for k, v in sliced["lost_at_stage"].items()}
    pipeline, bookings, created = by_owner(deals, owner_of)
    got = {tuple(r[:5]): tuple(r[5:]) for r in warehouse.fetch(
        "select stage, stage_order, owner_id, source_system, pipeline, sum(open_deals), sum(open_amount), "
        "sum(weighted_amount), sum(history_weighted_amount) from metrics.open_pipeline "
        "group by stage, stage_order, owner_id, source_system, pipeline")}
    assert got == {k: _approx(v) for k, v in pipeline.items()}
    got = {tuple(r[:3]): tuple(r[3:]) for r in warehouse.fetch(
        "select close_month, owner_id, source_system, sum(won_deals), sum(lost_deals), sum(won_amount), "
        "sum(lost_amount) from metrics.bookings group by close_month, owner_id, source_system")}
    assert got == {k: _approx(v) for k, v in bookings.items()}


def _approx(values):
    return tuple(pytest.approx(v, rel=REL, abs=1e-9) if isinstance(v, float) else v for v in values)


# --------------------------------------------------------------------------- a single-currency org

def _old_streams():
    """The Salesforce streams as an earlier release read them: opportunities without CurrencyIsoCode."""
    return tuple(replace(s, optional=()) for s in STREAMS)


@pytest.mark.parametrize("backend", ["duckdb", "postgres"])
def test_a_single_currency_org_syncs_as_before_and_an_old_raw_table_gains_the_column(backend, tmp_path,
                                                                                       monkeypatch, instance):
    """The field is never asked of an org without it; the raw column exists anyway (NULL), even in
    a warehouse an earlier release created without it (until its next sync, rebuilding the model
    says what is missing); every deal is in the default currency."""
    with running_sandbox(tmp_path, monkeypatch, seed=3) as box, warehouse_backend(backend, tmp_path) as block:
        config = write_config(box, tmp_path)
        with_warehouse(config, block)
        _rated(config, RATES)
        settings = load_config(config)
        warehouse = Warehouse(settings.warehouse)
        land(salesforce_source(settings.sources.salesforce, streams=_old_streams()), warehouse.dlt_destination(),
             "raw_salesforce", pipeline_name="dealsync_salesforce", loader_file_format=warehouse.loader_file_format)
        columns = {c for (c,) in warehouse.fetch("select column_name from information_schema.columns where "
                                                 "table_schema = 'raw_salesforce' and table_name = 'opportunities'")}
        assert "amount" in columns and "currency_iso_code" not in columns
        # Upgraded, and the model rebuilt before the next sync: the missing column is explained.
        early = run_job(config, job="metrics", instance=instance)
        assert not early.success
        # The first table to read the column says so (model.deal_versions, which model.deals reads).
        assert "cannot be built" in early.error and "currency_iso_code" in early.error
        assert "raw_salesforce.opportunities" in early.error and "run the sync" in early.error
        box.advance(7)
        outcome = run_job(config, instance=instance)
        assert outcome.success, outcome.error
        assert outcome.rows_by_asset["raw_salesforce/opportunities"] > 0
        queries = [e.soql for e in box.salesforce.request_log if e.kind == "query"]
        assert queries and not any("CurrencyIsoCode" in q for q in queries)

        assert warehouse.fetch("select count(currency_iso_code) from raw_salesforce.opportunities") == [(0,)]
        truth = {f"salesforce:{d.id}": d for d in box.org.deals(box.now) if not d.deleted}
        rows = warehouse.fetch_dicts("select deal_id, currency, amount, amount_original from model.deals")
        assert {r["deal_id"] for r in rows} == truth.keys()
        assert all(r["currency"] == "USD" and r["amount"] == r["amount_original"] == truth[r["deal_id"]].amount
                   for r in rows)
        assert warehouse.fetch("select count(*) from model.unconverted_amounts") == [(0,)]
