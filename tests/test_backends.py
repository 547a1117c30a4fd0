"""The same input gives the same model and metric tables, row for row, on DuckDB and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone

from jobs.config import load_config
from jobs.runner import run_job
from pipeline_model.snapshot import TABLE as SNAPSHOT_TABLE
from pipeline_model.tables import CONFIG_TABLES, METRIC_TABLES, MODEL_TABLES
from pipeline_model.warehouse import Warehouse
from tests.conftest import running_sandbox, unthrottled_config, warehouse_backend, with_warehouse


def _normalised(value):
    if isinstance(value, float):
        return float(f"{value:.11g}")     # sums in another order differ in the last bits
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc)
    return value


def _table(warehouse: Warehouse, qualified: str) -> list[tuple]:
    rows = [tuple(_normalised(v) for v in row) for row in warehouse.fetch(f"select * from {qualified}")]
    return sorted(rows, key=repr)


def test_duckdb_and_postgres_hold_identical_tables(tmp_path, monkeypatch, instance):
    """Both CRMs and the inboxes: identity matching, activity folding and deal matching included."""
    warehouses = {}
    with running_sandbox(tmp_path, monkeypatch, crm="both", google=True) as sandbox:
        for backend in ("duckdb", "postgres"):
            with warehouse_backend(backend, tmp_path / backend) as block:
                config = unthrottled_config(sandbox, tmp_path / f"{backend}.yaml", tmp_path / "unused.duckdb")
                with_warehouse(config, block)
                outcome = run_job(config, instance=instance)
                assert outcome.success, outcome.error
                warehouse = Warehouse(load_config(config).warehouse)
                tables = [t.qualified for t in (*CONFIG_TABLES, *MODEL_TABLES, *METRIC_TABLES)] + [SNAPSHOT_TABLE]
                warehouses[backend] = {t: _table(warehouse, t) for t in tables}
    duck, pg = warehouses["duckdb"], warehouses["postgres"]
    assert sum(len(rows) for rows in duck.values()) > 5000
    for table in duck:
        assert duck[table] == pg[table], table


def test_postgres_password_is_read_from_the_variable_the_config_names(tmp_path, monkeypatch):
    import pytest
    import yaml

    from connectors.secrets import MissingSecret
    from jobs.config import open_warehouse

    with warehouse_backend("postgres", tmp_path) as block:
        block["postgres"]["password_env"] = "DEALSYNC_TEST_PG_PASSWORD"
        path = tmp_path / "dealsync.yaml"
        path.write_text(yaml.safe_dump({"warehouse": block, "sources": {"hubspot": {}}}))
        monkeypatch.delenv("DEALSYNC_TEST_PG_PASSWORD", raising=False)
        with pytest.raises(MissingSecret, match="DEALSYNC_TEST_PG_PASSWORD"):
            open_warehouse(load_config(path))
        monkeypatch.setenv("DEALSYNC_TEST_PG_PASSWORD", "p@ss:w/rd %?")   # characters a DSN must escape
        assert open_warehouse(load_config(path)).fetch("select 1 + 1") == [(2,)]
