"""What a warehouse holds, as row counts and a content hash per table, for comparing two syncs.

Two syncs of the same source data must hold the same rows; what may differ is only what names
the load itself (dlt's load and row ids, its bookkeeping tables, the wall-clock time a row was
read) and the run records.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from pipeline_model.warehouse import Warehouse

_SKIPPED_SCHEMAS = ("information_schema", "pg_catalog", "dealsync_meta")
# What names the load, not the data: dlt's ids, and when dealsync read a Google row (wall clock).
_LOAD_COLUMNS = {"_dlt_load_id", "_dlt_id", "_dlt_parent_id", "synced_at"}


def digest(warehouse: Warehouse) -> dict[str, tuple[int, str]]:
    """table -> (rows, sha256 of its rows sorted) for every table but dlt's own."""
    tables = warehouse.fetch(
        "select table_schema, table_name from information_schema.tables "
        "where table_type = 'BASE TABLE' and table_schema not in (?, ?, ?) and table_name not like '\\_dlt\\_%' "
        "escape '\\' order by 1, 2", list(_SKIPPED_SCHEMAS))
    return {f"{schema}.{name}": _table_digest(warehouse, f'"{schema}"."{name}"') for schema, name in tables}


def _table_digest(warehouse: Warehouse, table: str) -> tuple[int, str]:
    columns = [c for c in warehouse.column_names(f"select * from {table} limit 0") if c not in _LOAD_COLUMNS]
    rows = sorted(repr(tuple(_plain(v) for v in row))
                  for row in warehouse.fetch(f"select {', '.join(map(_quoted, columns))} from {table}"))
    return len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]


def _quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _plain(value):
    if isinstance(value, float):
        return round(value, 6)          # sums in another order differ in the last bits
    if isinstance(value, datetime) and value.tzinfo:
        return value.astimezone(timezone.utc)
    return value


def differences(a: dict, b: dict) -> dict[str, tuple]:
    """Tables whose digests differ (or that only one side holds): table -> (a's, b's)."""
    return {t: (a.get(t), b.get(t)) for t in sorted(set(a) | set(b)) if a.get(t) != b.get(t)}


# What a warehouse synced in several runs holds beyond a fresh sync of the same data: the days its
# earlier runs observed (tests/test_history_order.py compares those over the same days).
HISTORY = ("history.daily_pipeline_snapshot", "history.daily_pipeline_snapshot_deals", "metrics.pipeline_trend")


def assert_same(a: dict, b: dict, ignore: tuple[str, ...] = ()) -> None:
    """Fail naming every table whose rows differ."""
    differ = {t: sides for t, sides in differences(a, b).items() if t not in ignore}
    assert not differ, "tables differ:\n" + "\n".join(f"  {t}: {x} vs {y}" for t, (x, y) in differ.items())
