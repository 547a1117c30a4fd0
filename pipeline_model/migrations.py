"""Schema migrations for the warehouse tables dealsync owns and cannot rebuild.

Model and metric tables are rebuilt from raw data on every run, and dlt evolves the raw
tables itself; but tables such as `history.daily_pipeline_snapshot` accumulate rows no
rebuild can bring back, so a new release upgrades them in place. Each step is a numbered
`Migration`; `dealsync_meta.schema_migrations` records which have run.

MIGRATIONS is append-only: a released migration is never edited, renumbered or removed,
because warehouses out there have already run it as it was. To change a table, add a new
migration with the next number. Statements must run unchanged on DuckDB and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from pipeline_model.warehouse import Warehouse

META_SCHEMA = "dealsync_meta"
META_TABLE = "schema_migrations"


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]
    # Run after `statements`, on PostgreSQL only: indexes, which PostgreSQL keeps on disk but
    # DuckDB must hold in memory (and maintain on every insert) for the table's whole life.
    postgres_statements: tuple[str, ...] = ()

    def statements_for(self, warehouse: Warehouse) -> list[str]:
        return [*self.statements, *(self.postgres_statements if warehouse.is_postgres else ())]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "daily pipeline snapshot", (
        "create schema if not exists history",
        """
        create table history.daily_pipeline_snapshot (
          snapshot_date date not null, deal_id varchar not null, source_system varchar not null,
          owner_id varchar, stage varchar, source_stage varchar, amount double precision,
          probability double precision, close_date date, is_closed boolean not null, is_won boolean not null,
          primary key (snapshot_date, deal_id))
        """,
    )),
    Migration(2, "mark snapshot rows reconstructed from stage history", (
        "alter table history.daily_pipeline_snapshot add column reconstructed boolean default false",
    )),
    # The snapshot grows by the whole open pipeline every day; on DuckDB its primary key was an
    # in-memory index of every row ever recorded (gigabytes within a year for a large org) and
    # doubled the cost of each day's insert. record_snapshot keeps (snapshot_date, deal_id) unique.
    Migration(3, "daily pipeline snapshot without an in-memory primary key", (
        """
        create table history.daily_pipeline_snapshot_v3 (
          snapshot_date date not null, deal_id varchar not null, source_system varchar not null,
          owner_id varchar, stage varchar, source_stage varchar, amount double precision,
          probability double precision, close_date date, is_closed boolean not null, is_won boolean not null,
          reconstructed boolean not null default false)
        """,
        """
        insert into history.daily_pipeline_snapshot_v3
        select snapshot_date, deal_id, source_system, owner_id, stage, source_stage, amount, probability,
               close_date, is_closed, is_won, coalesce(reconstructed, false)
        from history.daily_pipeline_snapshot
        """,
        "drop table history.daily_pipeline_snapshot",
        "alter table history.daily_pipeline_snapshot_v3 rename to daily_pipeline_snapshot",
    ), postgres_statements=(
        "create unique index daily_pipeline_snapshot_day_deal on history.daily_pipeline_snapshot"
        " (snapshot_date, deal_id)",
    )),
    # Past snapshot days are now rebuilt from the CRMs' history, and a run rewrites a deal's days
    # only when the history they came from changed. Every deal already in the snapshot starts with
    # an unknown fingerprint: the first run after the upgrade rebuilds all its days (rows written
    # with today's amount by earlier releases included) and drops the deals deleted since.
    Migration(4, "fingerprints of the history each deal's snapshot rows were built from", (
        "create table history.daily_pipeline_snapshot_deals (deal_id varchar not null, fingerprint varchar not null)",
        "insert into history.daily_pipeline_snapshot_deals"
        " select distinct deal_id, '' from history.daily_pipeline_snapshot",
    ), postgres_statements=(
        "create unique index daily_pipeline_snapshot_deals_deal on history.daily_pipeline_snapshot_deals (deal_id)",
    )),
)


class MigrationError(RuntimeError):
    """The warehouse schema could not be brought to this release's version."""


class WarehouseTooNew(MigrationError):
    def __init__(self, warehouse_version: int, known_version: int):
        self.warehouse_version = warehouse_version
        self.known_version = known_version
        super().__init__(f"this warehouse was upgraded by a newer dealsync (schema {warehouse_version}, "
                         f"this release knows {known_version}); upgrade dealsync")


class MigrationFailed(MigrationError):
    def __init__(self, migration: Migration, reason: str):
        self.version = migration.version
        self.description = migration.description
        self.reason = reason
        super().__init__(f"schema migration {migration.version} ({migration.description}) failed: {reason}\n"
                         f"nothing of it was applied; the warehouse stays at schema {migration.version - 1}")


def check_sequence(migrations: Sequence[Migration]) -> None:
    """Versions must be 1..n in order: a gap or a duplicate means a migration was lost or renumbered."""
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"schema migrations must be numbered 1..{len(versions)} in order, got {versions}")


check_sequence(MIGRATIONS)


def schema_version(warehouse: Warehouse) -> int:
    """The highest migration applied; 0 for a warehouse no migration has touched."""
    if not warehouse.table_exists(META_SCHEMA, META_TABLE):
        return 0
    return warehouse.fetch(f"select coalesce(max(version), 0) from {META_SCHEMA}.{META_TABLE}")[0][0]


def migrate(warehouse: Warehouse, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Apply the pending migrations in order, each atomically with its schema_migrations row.

    Returns the versions applied (empty when the warehouse is up to date)."""
    check_sequence(migrations)
    _ensure_meta_table(warehouse)
    current = schema_version(warehouse)
    if current > len(migrations):
        raise WarehouseTooNew(current, len(migrations))
    return [m.version for m in migrations[current:] if _apply(warehouse, m)]


def _ensure_meta_table(warehouse: Warehouse) -> None:
    # Look first: PostgreSQL checks the CREATE privilege even for `if not exists`, and a
    # read-mostly role must still be able to run an up-to-date release.
    if warehouse.table_exists(META_SCHEMA, META_TABLE):
        return
    try:
        warehouse.run_in_transaction([
            f"create schema if not exists {META_SCHEMA}",
            f"""create table if not exists {META_SCHEMA}.{META_TABLE} (
                  version integer primary key, description varchar not null,
                  applied_at timestamp with time zone not null)""",
        ])
    except Exception as exc:
        # Concurrent `if not exists` creations can collide on PostgreSQL; the winner's table is as good.
        if not warehouse.table_exists(META_SCHEMA, META_TABLE):
            raise MigrationError(f"cannot create {META_SCHEMA}.{META_TABLE}: {_reason(exc)}") from exc


def _apply(warehouse: Warehouse, migration: Migration) -> bool:
    """Run one migration; False if a concurrent `migrate` committed it first."""
    record = (f"insert into {META_SCHEMA}.{META_TABLE} (version, description, applied_at) "
              "values (?, ?, current_timestamp)", [[migration.version, migration.description]])
    try:
        warehouse.run_in_transaction([*migration.statements_for(warehouse), record])
    except Exception as exc:
        # Two migrators on one PostgreSQL warehouse both see version n; the loser's DDL or its
        # version row collides and rolls back. DuckDB's single writer never gets here that way.
        if schema_version(warehouse) >= migration.version:
            return False
        raise MigrationFailed(migration, _reason(exc)) from exc
    return True


def _reason(exc: Exception) -> str:
    return str(exc).strip() or type(exc).__name__
