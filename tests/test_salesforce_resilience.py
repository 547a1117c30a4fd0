"""Faults mid-sync: each run either recovers by itself or stops cleanly, and the next run
ends with exactly the warehouse a fault-free run would have."""

from __future__ import annotations

import pytest
import yaml

from jobs.config import load_config
from jobs.runner import run_job
from pipeline_model.warehouse import Warehouse


@pytest.fixture
def fast_retry_config(sandbox_config):
    """The sandbox config, with retries quick enough for a test and a 50 % API budget guard."""
    config = yaml.safe_load(sandbox_config.read_text())
    config["sources"]["salesforce"]["retry"] = {"attempts": 4, "backoff_seconds": 0.01}
    config["sources"]["salesforce"]["max_api_usage_percent"] = 50
    sandbox_config.write_text(yaml.safe_dump(config))
    return sandbox_config


def _assert_warehouse_is_the_truth(sandbox, config_path):
    warehouse = Warehouse(load_config(config_path).warehouse)
    truth = {d.id: d for d in sandbox.org.deals(sandbox.salesforce.now) if not d.deleted}
    rows = {r["source_id"]: r for r in warehouse.fetch_dicts("select source_id, source_stage, amount from model.deals")}
    assert set(rows) == set(truth)
    assert all((rows[i]["source_stage"], rows[i]["amount"]) == (d.stage, d.amount) for i, d in truth.items())
    activities = sum(1 for obj, r in sandbox.org.records(sandbox.salesforce.now)
                     if obj in ("Task", "Event") and not r["IsDeleted"])
    assert warehouse.fetch("select count(*) from model.activities")[0][0] == activities


def test_transient_errors_with_retry_after_are_retried(sandbox, fast_retry_config, instance):
    sandbox.salesforce.fail_next(503, "SERVER_UNAVAILABLE", "try later", times=2, retry_after=0, kind="queryMore")
    sandbox.salesforce.fail_next(429, "REQUEST_LIMIT_EXCEEDED", "slow down", times=1, retry_after=0, kind="query")
    outcome = run_job(fast_retry_config, instance=instance)
    assert outcome.success, outcome.error
    statuses = [r.status for r in sandbox.salesforce.request_log if r.kind in ("query", "queryMore")]
    assert statuses.count(503) == 2 and statuses.count(429) == 1
    _assert_warehouse_is_the_truth(sandbox, fast_retry_config)


def test_expired_session_mid_sync_logs_in_again(sandbox, fast_retry_config, instance):
    sandbox.salesforce.fail_next(401, "INVALID_SESSION_ID", "Session expired or invalid", kind="queryMore")
    outcome = run_job(fast_retry_config, instance=instance)
    assert outcome.success, outcome.error
    assert sum(1 for r in sandbox.salesforce.request_log if r.kind == "login") == 2
    _assert_warehouse_is_the_truth(sandbox, fast_retry_config)


def test_daily_limit_mid_sync_stops_cleanly_and_the_next_run_resumes(sandbox, fast_retry_config, instance):
    emulator = sandbox.salesforce
    emulator.api_limit = 14  # describes take 8 calls: the limit falls in the middle of the queries
    first = run_job(fast_retry_config, instance=instance)
    assert first.success, first.error
    assert first.warnings and all("API" in why for why in first.warnings.values()), first.warnings
    assert sum(first.rows_by_asset[a] for a in first.rows_by_asset if a.startswith("raw_")) > 0

    emulator.api_limit = 15000
    emulator.reset_api_usage()
    second = run_job(fast_retry_config, instance=instance)
    assert second.success and not second.warnings, second.warnings
    _assert_warehouse_is_the_truth(sandbox, fast_retry_config)


def test_api_budget_guard_stops_before_the_limit(sandbox, fast_retry_config, instance):
    emulator = sandbox.salesforce
    emulator.api_limit = 30   # 50 % budget = 15 calls: enough to describe and start, not to finish
    first = run_job(fast_retry_config, instance=instance)
    assert first.success, first.error
    assert any("max_api_usage_percent" in why for why in first.warnings.values()), first.warnings
    assert emulator.api_usage <= 16   # stopped at the guard, far from the org's hard limit

    emulator.api_limit = 15000
    emulator.reset_api_usage()
    assert run_job(fast_retry_config, instance=instance).success
    _assert_warehouse_is_the_truth(sandbox, fast_retry_config)


def test_a_persistent_server_error_fails_the_run_naming_the_stream(sandbox, fast_retry_config, instance):
    # attempts=4: the first query page fails on every try (5 of them), the next run is clean
    sandbox.salesforce.fail_next(500, "UNKNOWN_EXCEPTION", "boom", times=5, kind="queryMore")
    outcome = run_job(fast_retry_config, instance=instance)
    assert not outcome.success
    assert "salesforce stream 'tasks': HTTP 500" in outcome.error and "boom" in outcome.error
    assert "Error" not in outcome.error.split("salesforce")[0]  # the message, not an exception class name
    # nothing half-loaded: the raw dataset was never written
    assert not Warehouse(load_config(fast_retry_config).warehouse).table_exists("raw_salesforce", "opportunities")
    assert run_job(fast_retry_config, instance=instance).success
    _assert_warehouse_is_the_truth(sandbox, fast_retry_config)
