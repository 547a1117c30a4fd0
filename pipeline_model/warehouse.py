"""The warehouse the raw data lands in and the model is built in.

DuckDB (one file, the default) or PostgreSQL (a team's shared warehouse). The model and
metrics SQL is written once and runs unchanged on both; only connecting, parameter
markers and dlt's destination differ, and they differ here.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote
from typing import Any, Iterator, Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, SecretStr


class PostgresSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = "127.0.0.1"
    port: int = Field(default=5432, gt=0, lt=65536)
    database: str = "dealsync"
    user: str = "postgres"
    # The env var holding the password (read by jobs/, which hands it over); none: trust, peer
    # or .pgpass authentication.
    password_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class WarehouseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backend: Literal["duckdb", "postgres"] = "duckdb"
    path: Path = Path(".dealsync/warehouse.duckdb")        # duckdb
    # DuckDB resources, set on every connection; unset: DuckDB's defaults (80% of RAM, a thread
    # per core). Over the memory limit DuckDB spills to disk next to the warehouse file.
    duckdb_memory_limit: str | None = Field(default=None, pattern=r"(?i)^\d+(\.\d+)?\s*(b|[kmgt]i?b)$")
    duckdb_threads: int | None = Field(default=None, gt=0)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    # A run that finds another run writing this warehouse waits this long for it, saying so,
    # then gives up (0: refuse at once).
    writer_wait_minutes: float = Field(default=60, ge=0)


class Warehouse:
    def __init__(self, settings: WarehouseSettings, password: SecretStr | None = None,
                 schemas: dict[str, str] | None = None):
        self.settings = settings
        self._password = password
        self._session: Any = None       # the connection of an open `session()`
        # Schemas this handle writes under another name (a PostgreSQL run builds the next
        # version of `model` and `metrics` beside the published one: pipeline_model.writer).
        self._schemas = schemas or {}
        self._schema_ref = re.compile(rf"(?<![\w.\"])({'|'.join(map(re.escape, self._schemas))})\.(?=\w)")

    @property
    def path(self) -> Path:
        return self.settings.path

    @property
    def identity(self) -> str:
        """Names this warehouse in run tags and messages (never with a password)."""
        if self.is_postgres:
            pg = self.settings.postgres
            return f"postgresql://{pg.host}:{pg.port}/{pg.database}"
        return str(self.path.resolve())

    def at(self, path: Path) -> "Warehouse":
        """The same DuckDB settings on another file (the writer's working copy)."""
        return Warehouse(self.settings.model_copy(update={"path": path}), self._password, self._schemas)

    def with_schemas(self, schemas: dict[str, str]) -> "Warehouse":
        """The same warehouse, with every reference to schema `s` in SQL sent to `schemas[s]`."""
        return Warehouse(self.settings, self._password, schemas)

    def schema(self, name: str) -> str:
        """Where this handle keeps schema `name`."""
        return self._schemas.get(name, name)

    def _sql(self, sql: str) -> str:
        return self._schema_ref.sub(lambda m: f"{self._schemas[m.group(1)]}.", sql) if self._schemas else sql

    def checkpoint(self) -> None:
        """Fold DuckDB's write-ahead log into the file, so the file alone is the database."""
        if not self.is_postgres:
            with self.connect() as con:
                con.execute("checkpoint")

    @property
    def is_postgres(self) -> bool:
        return self.settings.backend == "postgres"

    def dlt_destination(self) -> Any:
        import dlt

        if self.is_postgres:
            # dlt insists on a password in the DSN; under trust or peer auth the server ignores it.
            return dlt.destinations.postgres(credentials=self._postgres_dsn(placeholder_password="unused"))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return dlt.destinations.duckdb(credentials=str(self.path))

    @property
    def loader_file_format(self) -> str:
        """How dlt ships rows: DuckDB reads jsonl ~15x faster than INSERT statements; PostgreSQL
        takes csv through COPY."""
        return "csv" if self.is_postgres else "jsonl"

    @contextmanager
    def connect(self) -> Iterator[Any]:
        if self._session is not None:
            yield self._session
            return
        con = self._open()
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def session(self) -> Iterator["Warehouse"]:
        """One connection for every call inside: opening a DuckDB file and closing it again (which
        checkpoints) costs tens of milliseconds, paid per call otherwise. Not for sharing across
        threads; the file stays locked to this process until the session ends."""
        if self._session is not None:
            yield self
            return
        self._session = self._open()
        try:
            yield self
        finally:
            con, self._session = self._session, None
            con.close()

    def run_in_transaction(self, statements: list[str | tuple[str, list]]) -> None:
        """Run statements atomically: readers see the old tables or the new, never half."""
        with self.connect() as con:
            cur = con.cursor()
            cur.execute("BEGIN")
            try:
                for stmt in statements:
                    sql, params = stmt if isinstance(stmt, tuple) else (stmt, None)
                    sql = self._sql(sql)
                    if params is None:
                        cur.execute(sql)
                    else:
                        cur.executemany(self._markers(sql), params)
                cur.execute("COMMIT")
            except Exception:
                cur.execute("ROLLBACK")
                raise

    def fetch(self, sql: str, params: list | None = None) -> list[tuple]:
        return [tuple(row) for row in self._query(sql, params)[1]]

    def fetch_dicts(self, sql: str, params: list | None = None) -> list[dict]:
        names, rows = self._query(sql, params)
        return [dict(zip(names, row)) for row in rows]

    def column_names(self, sql: str) -> list[str]:
        return self._query(sql, None)[0]

    def table_exists(self, schema: str, table: str) -> bool:
        return self.table_type(schema, table) is not None

    def table_type(self, schema: str, table: str) -> str | None:
        """'BASE TABLE', 'VIEW', or None when there is no such table."""
        rows = self.fetch("select table_type from information_schema.tables where table_schema = ? "
                          "and table_name = ?", [self.schema(schema), table])
        return rows[0][0] if rows else None

    def _query(self, sql: str, params: list | None) -> tuple[list[str], list]:
        with self.connect() as con:
            cur = con.cursor()
            cur.execute(self._markers(self._sql(sql)), params or [])
            return [d[0] for d in cur.description], cur.fetchall()

    def _markers(self, sql: str) -> str:
        # One SQL text for both: written with DuckDB's ?, sent to psycopg2 as %s.
        return sql.replace("%", "%%").replace("?", "%s") if self.is_postgres else sql

    def raw_connection(self, application_name: str = "dealsync") -> Any:
        """A PostgreSQL connection of its own (the writer's lock lives on one)."""
        import psycopg2

        # UTC sessions: date <-> timestamptz casts and date_trunc must not depend on the server's zone.
        con = psycopg2.connect(self._postgres_dsn(), options="-c timezone=UTC", application_name=application_name)
        con.autocommit = True     # transactions are explicit (run_in_transaction)
        return con

    def _open(self) -> Any:
        if self.is_postgres:
            return self.raw_connection()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(self.path))
        con.execute("SET TimeZone = 'UTC'")
        # Every reader orders explicitly; not keeping insertion order lets DuckDB write a large
        # table from several threads and within its memory limit.
        con.execute("SET preserve_insertion_order = false")
        if self.settings.duckdb_memory_limit:
            con.execute(f"SET memory_limit = '{self.settings.duckdb_memory_limit}'")
        if self.settings.duckdb_threads:
            con.execute(f"SET threads = {self.settings.duckdb_threads}")
        return con

    def _postgres_dsn(self, placeholder_password: str = "") -> str:
        pg = self.settings.postgres
        secret = self._password.get_secret_value() if self._password else placeholder_password
        password = f":{quote(secret, safe='')}" if secret else ""
        return f"postgresql://{pg.user}{password}@{pg.host}:{pg.port}/{pg.database}"
