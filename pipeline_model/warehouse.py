"""The warehouse the raw data lands in and the model is built in.

DuckDB (one file, the default). The model and metrics SQL is written to run
unchanged on PostgreSQL too, which is the team backend's next step.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Literal

import duckdb
from pydantic import BaseModel, ConfigDict


class WarehouseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backend: Literal["duckdb"] = "duckdb"
    path: Path = Path(".dealsync/warehouse.duckdb")


class Warehouse:
    def __init__(self, settings: WarehouseSettings):
        self.settings = settings

    @property
    def path(self) -> Path:
        return self.settings.path

    def dlt_destination(self) -> Any:
        import dlt

        self.path.parent.mkdir(parents=True, exist_ok=True)
        return dlt.destinations.duckdb(credentials=str(self.path))

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(self.path))
        try:
            yield con
        finally:
            con.close()

    def run_in_transaction(self, statements: list[str | tuple[str, list]]) -> None:
        """Run statements atomically: readers see the old tables or the new, never half."""
        with self.connect() as con:
            con.execute("BEGIN")
            try:
                for stmt in statements:
                    sql, params = stmt if isinstance(stmt, tuple) else (stmt, None)
                    if params is None:
                        con.execute(sql)
                    else:
                        con.executemany(sql, params)
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise

    def fetch(self, sql: str, params: list | None = None) -> list[tuple]:
        with self.connect() as con:
            return con.execute(sql, params or []).fetchall()

    def fetch_dicts(self, sql: str, params: list | None = None) -> list[dict]:
        with self.connect() as con:
            cur = con.execute(sql, params or [])
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    def table_exists(self, schema: str, table: str) -> bool:
        rows = self.fetch("select 1 from information_schema.tables where table_schema = ? and table_name = ?",
                          [schema, table])
        return bool(rows)
