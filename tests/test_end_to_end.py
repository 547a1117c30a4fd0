"""The whole chain through Dagster against the Salesforce emulator, checked against ground truth.

The real simple-salesforce client talks HTTPS to the emulator; every metric is
compared with the same figure computed from the generator's own deals.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from dagster._serdes import serialize_value
import pytest

from jobs.cli import write_sandbox_config
from jobs.config import load_config
from jobs.runner import run_job
from pipeline_model.warehouse import Warehouse
from sandbox.runner import SALESFORCE_CREDENTIALS
from tests.conftest import running_sandbox, warehouse_backend, with_warehouse
from tests.truth import expected_metrics

REL = 1e-9


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def world(request, tmp_path_factory):
    """One sandbox synced once through Dagster per warehouse backend; the tests only read from it."""
    tmp = tmp_path_factory.mktemp(f"e2e-{request.param}")
    with pytest.MonkeyPatch.context() as mp, running_sandbox(tmp, mp) as box, \
            dg.DagsterInstance.ephemeral() as inst, warehouse_backend(request.param, tmp) as warehouse_block:
        config = write_sandbox_config(box, tmp / "dealsync.yaml", tmp / "warehouse.duckdb")
        with_warehouse(config, warehouse_block)
        outcome = run_job(config, instance=inst)
        assert outcome.success, outcome.error
        yield box, outcome, Warehouse(load_config(config).warehouse), inst


@pytest.fixture
def sandbox(world):
    return world[0]


@pytest.fixture
def synced(world):
    box, outcome, warehouse, _ = world
    return outcome, warehouse, expected_metrics(list(box.org.deals(box.salesforce.now)))


def test_every_stream_lands_and_every_model_table_builds(synced, sandbox):
    outcome, warehouse, _ = synced
    raw = {k: v for k, v in outcome.rows_by_asset.items() if k.startswith("raw_salesforce/")}
    assert len(raw) == 8 and all(n > 0 for n in raw.values()), raw
    served = sandbox.salesforce.store.counts()["Opportunity"]
    assert raw["raw_salesforce/opportunities"] == served
    for table in ("owners", "accounts", "contacts", "deals", "deal_stage_history", "activities"):
        assert outcome.rows_by_asset[f"model/{table}"] > 0, table
    assert warehouse.fetch("select count(*) from model.unmapped_stages")[0][0] == 0


def test_deals_match_ground_truth(synced, sandbox):
    _, warehouse, _ = synced
    truth = {d.id: d for d in sandbox.org.deals(sandbox.salesforce.now) if not d.deleted}
    rows = warehouse.fetch_dicts("select * from model.deals")
    assert {r["source_id"] for r in rows} == set(truth)
    for r in rows:
        d = truth[r["source_id"]]
        assert (r["source_stage"], r["is_closed"], r["is_won"], r["amount"]) == (d.stage, d.is_closed, d.is_won, d.amount)
        assert r["closed_at"] == d.closed_at and r["created_at"] == d.created_at


def test_stage_spells_match_ground_truth(synced, sandbox):
    _, warehouse, _ = synced
    truth = {d.id: d.spells for d in sandbox.org.deals(sandbox.salesforce.now) if not d.deleted}
    got: dict[str, list] = {}
    for r in warehouse.fetch_dicts("select * from model.deal_stage_history order by deal_id, spell_number"):
        got.setdefault(r["deal_id"].removeprefix("salesforce:"), []).append(
            (r["source_stage"], r["entered_at"], r["exited_at"]))
    assert got == {k: [(s.stage, s.entered_at, s.exited_at) for s in v] for k, v in truth.items()}


def test_pipeline_by_stage(synced):
    _, warehouse, truth = synced
    rows = warehouse.fetch("select stage, open_deals, open_amount from metrics.pipeline_by_stage")
    assert {stage: (n, pytest.approx(amount, rel=REL)) for stage, n, amount in rows} == truth["pipeline_by_stage"]


def test_win_rates_and_deal_size(synced):
    _, warehouse, truth = synced
    row = warehouse.fetch_dicts("select * from metrics.win_rates")[0]
    for name in ("won_deals", "lost_deals"):
        assert row[name] == truth[name]
    for name in ("win_rate_by_count", "win_rate_by_value", "avg_won_deal_size"):
        assert row[name] == pytest.approx(truth[name], rel=REL), name


def test_time_in_stage(synced):
    _, warehouse, truth = synced
    rows = warehouse.fetch_dicts("select * from metrics.time_in_stage")
    assert {r["stage"]: r["completed_spells"] for r in rows if r["completed_spells"]} == truth["completed_spells"]
    for r in rows:
        if r["completed_spells"]:
            assert r["avg_days_in_stage"] == pytest.approx(truth["avg_days_in_stage"][r["stage"]], rel=REL)


def test_sales_cycle(synced):
    _, warehouse, truth = synced
    row = warehouse.fetch_dicts("select * from metrics.sales_cycle")[0]
    assert row["closed_deals"] == truth["closed_deals"]
    assert row["avg_sales_cycle_days"] == pytest.approx(truth["avg_sales_cycle_days"], rel=REL)
    assert row["avg_won_sales_cycle_days"] == pytest.approx(truth["avg_won_sales_cycle_days"], rel=REL)


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
            "where table_schema in ('model', 'metrics') order by table_schema, table_name, ordinal_position"):
        actual.setdefault(f"{schema}.{table}", []).append(column)
    assert _documented_columns() == actual


def test_no_secret_reaches_the_warehouse_or_the_event_log(world):
    box, outcome, warehouse, instance = world
    secrets = [*SALESFORCE_CREDENTIALS.values(), *box.salesforce.issued_sessions()]
    assert len(secrets) > 3, "the run should have logged in"
    event_log = "\n".join(serialize_value(entry) for entry in instance.all_logs(outcome.run_id))
    assert "salesforce_pull" in event_log
    texts = []
    for schema, table, column in warehouse.fetch(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where data_type in ('VARCHAR', 'character varying', 'text') "
            "and table_schema in ('model', 'metrics', 'raw_salesforce')"):
        texts += [v for (v,) in warehouse.fetch(f'select distinct "{column}" from "{schema}"."{table}"') if v]
    assert len(texts) > 1000
    for secret in secrets:
        assert secret not in event_log
        assert not any(secret in text for text in texts)
