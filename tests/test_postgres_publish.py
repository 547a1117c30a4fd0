"""On PostgreSQL a run publishes the model and metrics as one version, whatever analysts do:
an open transaction over the published tables neither blocks nor fails a run, a run that fails
half-way publishes none of its tables, and readers keep the access they were granted."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg2
import pytest

from jobs.config import load_config
from jobs.runner import run_job
from pipeline_model.warehouse import Warehouse
from tests.conftest import unthrottled_config, warehouse_backend, with_warehouse
from tests.warehouse_digest import assert_same, digest

pytestmark = pytest.mark.slow


@pytest.fixture
def config(sandbox, tmp_path) -> Path:
    with warehouse_backend("postgres", tmp_path) as block:
        path = unthrottled_config(sandbox, tmp_path / "dealsync.yaml", tmp_path / "unused.duckdb")
        with_warehouse(path, block)
        # A server that gives up on a lock after a while, as production servers are set up:
        # a writer stuck behind a reader fails instead of hanging the test.
        _admin(path, f"alter database {block['postgres']['database']} set lock_timeout = '3s'")
        yield path


def _warehouse(config: Path) -> Warehouse:
    return Warehouse(load_config(config).warehouse)


def _connect(config: Path, autocommit: bool = False):
    pg = load_config(config).warehouse.postgres
    con = psycopg2.connect(host=pg.host, port=pg.port, user=pg.user, dbname=pg.database,
                           application_name="analyst")
    con.autocommit = autocommit
    return con


def _admin(config: Path, *statements: str) -> None:
    con = _connect(config, autocommit=True)
    try:
        for statement in statements:
            con.cursor().execute(statement)
    finally:
        con.close()


def _published(config: Path) -> dict:
    return {t: d for t, d in digest(_warehouse(config)).items() if t.split(".")[0] in ("model", "metrics")}


def _schemas(config: Path) -> list[str]:
    return [r[0] for r in _warehouse(config).fetch(
        "select nspname from pg_namespace where starts_with(nspname, 'dealsync_') order by 1")]


def test_an_analysts_open_transaction_neither_blocks_nor_fails_a_run(sandbox, config, instance):
    assert run_job(config, instance=instance).success
    analyst = _connect(config)
    cur = analyst.cursor()
    cur.execute("select count(*) from model.deals")               # holds its tables until it ends
    cur.execute("select count(*) from metrics.forecast")
    sandbox.advance(2)
    outcome = run_job(config, instance=instance)
    assert outcome.success, outcome.error
    cur.execute("select count(*) from model.deals")                # still open, still reading
    assert cur.fetchone()[0] == len([d for d in sandbox.org.deals(sandbox.salesforce.now) if not d.deleted])
    assert [s for s in _schemas(config) if s.startswith("dealsync_retired_")]   # kept for the reader
    analyst.rollback()
    analyst.close()
    assert run_job(config, instance=instance).success
    assert _schemas(config) == ["dealsync_meta"]         # the next run removed the old version


def test_a_run_that_fails_half_way_publishes_none_of_its_tables(sandbox, config, instance):
    assert run_job(config, instance=instance).success
    before = _published(config)
    sandbox.advance(2)                           # the failed run's tables would all differ
    analyst = _connect(config)
    # Holding the history table in share mode makes the snapshot step fail on its lock, after
    # most model tables were rebuilt and before the metrics that read the snapshot.
    analyst.cursor().execute("lock table history.daily_pipeline_snapshot in share mode")
    failed = run_job(config, instance=instance)
    analyst.rollback()
    analyst.close()
    assert not failed.success and "daily_pipeline_snapshot" in failed.error
    assert_same(_published(config), before)
    assert _schemas(config) == ["dealsync_meta"]
    assert [r[0] for r in _warehouse(config).fetch("select status from dealsync_meta.runs order by started_at")] \
        == ["success", "failed"]
    assert run_job(config, instance=instance).success
    assert _published(config) != before


def test_readers_keep_the_access_they_were_granted(sandbox, config, instance):
    assert run_job(config, instance=instance).success
    role = f"dealsync_test_analyst_{uuid.uuid4().hex[:8]}"
    _admin(config, f"create role {role} nologin",
           *(statement for schema in ("model", "metrics") for statement in (
               f"grant usage on schema {schema} to {role}",
               f"alter default privileges in schema {schema} grant select on tables to {role}")))
    try:
        sandbox.advance(1)
        assert run_job(config, instance=instance).success
        analyst = _connect(config)
        cur = analyst.cursor()
        cur.execute(f"set role {role}")
        cur.execute("select count(*) from model.deals")
        assert cur.fetchone()[0] > 0
        cur.execute("select count(*) from metrics.forecast")
        analyst.rollback()
        analyst.close()
    finally:
        _admin(config, f"drop owned by {role}", f"drop role {role}")


def test_a_view_of_an_analysts_own_is_never_dropped_with_an_old_version(sandbox, config, instance, caplog):
    assert run_job(config, instance=instance).success
    _admin(config, "create schema analyst", "create view analyst.big_deals as select * from model.deals")
    sandbox.advance(1)
    assert run_job(config, instance=instance).success
    assert "analyst.big_deals" in caplog.text            # the run says why it keeps the old version
    [retired] = [s for s in _schemas(config) if s.startswith("dealsync_retired_model")]
    assert _warehouse(config).fetch("select count(*) from analyst.big_deals")[0][0] > 0
    _admin(config, "drop view analyst.big_deals")
    assert run_job(config, instance=instance).success
    assert retired not in _schemas(config)
