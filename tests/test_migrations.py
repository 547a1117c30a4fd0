"""Schema migrations upgrade a warehouse in place, on DuckDB and PostgreSQL, without losing a row."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import dlt
import pytest
import yaml

from pipeline_model import migrations as mig
from pipeline_model.migrations import (MIGRATIONS, Migration, MigrationFailed, WarehouseTooNew, migrate,
                                       schema_version)
from pipeline_model.warehouse import Warehouse, WarehouseSettings
from connectors.landing import land
from tests.conftest import warehouse_backend

DEALSYNC = str(Path(sys.executable).parent / "dealsync")
N = len(MIGRATIONS)
SNAPSHOT = "history.daily_pipeline_snapshot"
SNAPSHOT_COLUMNS = ("snapshot_date, deal_id, source_system, owner_id, stage, source_stage, amount, probability, "
                    "close_date, is_closed, is_won")
NEXT = (
    Migration(N + 1, "add currency", (f"alter table {SNAPSHOT} add column currency varchar",)),
    Migration(N + 2, "a new table", ("create table history.x (id varchar primary key, noted_at date)",)),
)


@pytest.fixture(params=["duckdb", "postgres"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def block(backend, tmp_path):
    with warehouse_backend(backend, tmp_path) as config_block:
        yield config_block


@pytest.fixture
def warehouse(block) -> Warehouse:
    return Warehouse(WarehouseSettings.model_validate(block))


def _snapshot_rows(count: int) -> list[list]:
    """Deals over a few days, with NULLs in every nullable column now and then."""
    rows = []
    for i in range(count):
        closed, won = i % 5 == 0, i % 10 == 0
        rows.append([date(2025, 3, 1) + timedelta(days=i % 7), f"deal-{i:04d}", ("salesforce", "hubspot")[i % 2],
                     None if i % 11 == 0 else f"owner-{i % 13}", None if i % 17 == 0 else f"stage_{i % 6}",
                     f"Stage {i % 6}", None if i % 19 == 0 else i * 125.5, (i % 10) / 10,
                     None if i % 23 == 0 else date(2025, 6, 1) + timedelta(days=i), closed, won])
    return rows


def _insert_snapshot(warehouse: Warehouse, rows: list[list]) -> None:
    markers = ", ".join("?" * len(rows[0]))
    warehouse.run_in_transaction([(f"insert into {SNAPSHOT} ({SNAPSHOT_COLUMNS}) values ({markers})", rows)])


def _contents(warehouse: Warehouse, table: str, columns: str = "*") -> list[tuple]:
    return sorted(warehouse.fetch(f"select {columns} from {table}"), key=repr)


def test_fresh_warehouse_gets_every_migration_once(warehouse):
    assert schema_version(warehouse) == 0
    assert migrate(warehouse) == list(range(1, N + 1))
    assert migrate(warehouse) == []
    assert schema_version(warehouse) == N
    assert warehouse.table_exists("history", "daily_pipeline_snapshot")
    recorded = warehouse.fetch("select version, description from dealsync_meta.schema_migrations order by version")
    assert recorded == [(m.version, m.description) for m in MIGRATIONS]
    _insert_snapshot(warehouse, _snapshot_rows(3))    # the table takes the rows it was made for
    assert warehouse.fetch(f"select count(*) from {SNAPSHOT}") == [(3,)]


def test_next_release_adds_a_column_and_a_table_keeping_every_row(warehouse):
    migrate(warehouse)
    _insert_snapshot(warehouse, _snapshot_rows(400))
    before = _contents(warehouse, SNAPSHOT, SNAPSHOT_COLUMNS)

    assert migrate(warehouse, MIGRATIONS + NEXT) == [N + 1, N + 2]

    assert len(before) == 400 and _contents(warehouse, SNAPSHOT, SNAPSHOT_COLUMNS) == before
    assert warehouse.fetch(f"select count(*), count(currency) from {SNAPSHOT}") == [(400, 0)]
    assert warehouse.table_exists("history", "x")
    assert schema_version(warehouse) == N + 2
    assert migrate(warehouse, MIGRATIONS + NEXT) == []


def test_warehouse_of_the_previous_release_upgrades_without_touching_its_tables(warehouse):
    warehouse.run_in_transaction([
        "create schema raw_salesforce",
        "create table raw_salesforce.opportunities (id varchar, name varchar, amount double precision, "
        "system_modstamp timestamp with time zone, is_deleted boolean)",
        ("insert into raw_salesforce.opportunities values (?, ?, ?, ?, ?)",
         [[f"006{i:05d}", f"Deal {i}", i * 10.0, f"2025-01-{1 + i % 28:02d} 12:00:00+00", i % 9 == 0]
          for i in range(250)]),
        "create schema model",
        "create table model.deals (deal_id varchar, source_system varchar, stage varchar, amount double precision)",
        ("insert into model.deals values (?, ?, ?, ?)",
         [[f"salesforce:{i}", "salesforce", "qualify", i * 10.0] for i in range(250)]),
    ])
    before = {t: _contents(warehouse, t) for t in ("raw_salesforce.opportunities", "model.deals")}
    assert not warehouse.table_exists("dealsync_meta", "schema_migrations")

    assert migrate(warehouse) == list(range(1, N + 1))

    assert {t: _contents(warehouse, t) for t in before} == before
    assert all(len(rows) == 250 for rows in before.values())
    assert schema_version(warehouse) == N
    assert warehouse.table_exists("history", "daily_pipeline_snapshot")


def test_failing_migration_applies_nothing_of_itself_and_names_itself(warehouse):
    broken = Migration(N + 1, "half-done table", (
        "create table history.half_done (id integer)",
        "insert into history.half_done values (1)",
        "selec this is not sql",
    ))
    with pytest.raises(MigrationFailed) as failure:
        migrate(warehouse, MIGRATIONS + (broken,))

    assert failure.value.version == N + 1
    message = str(failure.value)
    assert f"schema migration {N + 1} (half-done table) failed" in message
    assert "syntax error" in message.lower()                 # the database's own words
    assert f"stays at schema {N}" in message
    assert schema_version(warehouse) == N                   # the earlier ones committed on their own
    assert not warehouse.table_exists("history", "half_done")

    # Fixed in the release that follows, it applies cleanly.
    fixed = Migration(N + 1, "half-done table", ("create table history.half_done (id integer)",))
    assert migrate(warehouse, MIGRATIONS + (fixed,)) == [N + 1]
    assert warehouse.table_exists("history", "half_done")


def test_warehouse_newer_than_the_code_is_refused(warehouse):
    migrate(warehouse, MIGRATIONS + NEXT)
    with pytest.raises(WarehouseTooNew, match=rf"newer dealsync \(schema {N + 2}, this release knows {N}\)"):
        migrate(warehouse)
    assert schema_version(warehouse) == N + 2                # left exactly as the newer release made it
    assert warehouse.table_exists("history", "x")
    assert warehouse.fetch("select count(*) from dealsync_meta.schema_migrations") == [(N + 2,)]


def test_migrations_must_be_numbered_contiguously_from_one(warehouse):
    for bad in ((Migration(2, "starts at two", ()),), MIGRATIONS + (Migration(N + 2, "gap", ()),),
                MIGRATIONS + (Migration(N, "duplicate", ()),)):
        with pytest.raises(ValueError, match="numbered 1.."):
            migrate(warehouse, bad)
    assert schema_version(warehouse) == 0          # refused before touching the warehouse
    assert not warehouse.table_exists("dealsync_meta", "schema_migrations")


def test_a_migration_another_migrator_committed_first_is_skipped(warehouse):
    # Two migrators that both read version 0: the second one's transaction collides and rolls back.
    migrate(warehouse)
    assert mig._apply(warehouse, MIGRATIONS[0]) is False
    assert warehouse.fetch("select count(*) from dealsync_meta.schema_migrations") == [(N,)]


def _cli(config: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEALSYNC") and k != "DAGSTER_HOME"}
    return subprocess.run([DEALSYNC, "migrate", "--config", str(config), *extra], cwd=config.parent,
                          env={**env, "COLUMNS": "200"}, capture_output=True, text=True)


def _config(tmp_path: Path, block: dict) -> Path:
    path = tmp_path / "dealsync.yaml"
    path.write_text(yaml.safe_dump({"warehouse": block, "sources": {"hubspot": {}}}))   # one source is required
    return path


def test_cli_migrate_upgrades_then_reports_up_to_date(block, warehouse, tmp_path):
    config = _config(tmp_path, block)
    warehouse.fetch("select 1")            # an empty warehouse: on DuckDB, an existing empty file
    first = _cli(config)
    assert first.returncode == 0, first.stderr
    assert f"Applied schema migrations: {', '.join(str(m.version) for m in MIGRATIONS)}" in first.stdout
    assert f"Warehouse schema version: {N}" in first.stdout
    assert schema_version(warehouse) == N

    second = _cli(config)
    assert second.returncode == 0, second.stderr
    assert "Nothing to apply" in second.stdout and f"Warehouse schema version: {N}" in second.stdout


def test_cli_migrate_on_a_mistyped_path_creates_nothing(tmp_path):
    config = _config(tmp_path, {"backend": "duckdb", "path": str(tmp_path / "wearhouse.duckdb")})
    result = _cli(config)
    assert result.returncode == 1
    assert f"no warehouse at {tmp_path / 'wearhouse.duckdb'}" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dealsync.yaml"]


def test_cli_migrate_refuses_a_newer_warehouse_with_one_message(block, warehouse, tmp_path):
    migrate(warehouse, MIGRATIONS + NEXT)
    result = _cli(_config(tmp_path, block))
    assert result.returncode == 1
    assert "upgrade dealsync" in result.stderr and "Traceback" not in result.stderr
    assert schema_version(warehouse) == N + 2


def test_snapshot_loses_its_in_memory_primary_key_and_keeps_every_row(warehouse, backend):
    """Migration 3 rewrites the snapshot of a schema-2 warehouse: every row kept (rows recorded
    before migration 2 read as not reconstructed), no primary key on DuckDB (an index held in
    memory for every row), and (snapshot_date, deal_id) still unique on PostgreSQL."""
    assert migrate(warehouse, MIGRATIONS[:2]) == [1, 2]
    rows = _snapshot_rows(300)
    _insert_snapshot(warehouse, rows)
    warehouse.run_in_transaction([f"update {SNAPSHOT} set reconstructed = null where deal_id < 'deal-0100'",
                                  f"update {SNAPSHOT} set reconstructed = true where deal_id >= 'deal-0200'"])
    before = _contents(warehouse, SNAPSHOT, SNAPSHOT_COLUMNS + ", coalesce(reconstructed, false)")

    assert migrate(warehouse, MIGRATIONS[:3]) == [3]

    assert _contents(warehouse, SNAPSHOT, SNAPSHOT_COLUMNS + ", reconstructed") == before
    assert len(before) == 300 and sum(row[-1] for row in before) == 100
    if backend == "duckdb":
        assert warehouse.fetch("select count(*) from duckdb_constraints() where schema_name = 'history' "
                               "and table_name = 'daily_pipeline_snapshot' and constraint_type = 'PRIMARY KEY'") \
            == [(0,)]
        assert warehouse.fetch("select count(*) from duckdb_indexes() where schema_name = 'history'") == [(0,)]
    else:
        with pytest.raises(Exception, match="duplicate key"):
            _insert_snapshot(warehouse, rows[:1])


def test_every_deal_in_the_snapshot_is_rebuilt_after_migration_4(warehouse, backend):
    """Migration 4 gives every deal the snapshot holds an unknown fingerprint, so the next run
    rebuilds its days from history (or drops it if deleted); one row per deal."""
    assert migrate(warehouse, MIGRATIONS[:3]) == [1, 2, 3]
    _insert_snapshot(warehouse, _snapshot_rows(300))
    assert migrate(warehouse, MIGRATIONS[:4]) == [4]
    assert _contents(warehouse, "history.daily_pipeline_snapshot_deals") == sorted(
        ((deal_id, "") for (deal_id,) in warehouse.fetch(f"select distinct deal_id from {SNAPSHOT}")), key=repr)
    if backend == "postgres":
        with pytest.raises(Exception, match="duplicate key"):
            warehouse.run_in_transaction(["insert into history.daily_pipeline_snapshot_deals values ('deal-0001', '')"])



def _vendor_source(declared: dict, rows: list[dict]):
    @dlt.source(name="vendor", max_table_nesting=0)
    def vendor():
        @dlt.resource(name="things", primary_key="id", write_disposition="merge", columns=declared)
        def things():
            yield rows
        return things
    return vendor()


def test_a_raw_table_of_an_earlier_release_gets_the_columns_a_later_one_declares(warehouse, tmp_path):
    # Releases add declared raw columns (rejected_value and rejected_date came with typed text).
    # A raw table landed before them lacks the column until its stream brings a row again, but
    # the model reads it from the first run on: a pull that brings no row must add it.
    amount = {"amount": {"data_type": "double"}}
    land(_vendor_source(amount, [{"id": 1, "amount": 2.0}]), warehouse.dlt_destination(), "raw_vendor", "vendor",
         loader_file_format=warehouse.loader_file_format, workdir_root=tmp_path / "scratch")
    later = {**amount, "rejected_amount": {"data_type": "text"}}
    land(_vendor_source(later, []), warehouse.dlt_destination(), "raw_vendor", "vendor",
         loader_file_format=warehouse.loader_file_format, workdir_root=tmp_path / "scratch")
    assert warehouse.fetch("select id, amount, rejected_amount from raw_vendor.things") == [(1, 2.0, None)]
