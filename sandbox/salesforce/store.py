"""The emulator's record store: SQLite, one table per SObject, one column per schema field.

Values are stored so SQL comparisons and sorts behave like SOQL's:
datetimes as UTC wire strings ``2024-05-01T10:00:00.000+0000`` (fixed width, so they sort
as text), dates ``YYYY-MM-DD``, booleans 0/1, numbers as REAL/INTEGER, text columns
``COLLATE NOCASE`` (SOQL compares and sorts strings case-insensitively). Values leave the
store already in their JSON wire form.

Queries snapshot the matching rowids (8 bytes each) under a locator and serve pages by
rowid, so paging a multi-million-row result never holds the rows themselves.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Iterable, Iterator

from sandbox.salesforce import soql
from sandbox.salesforce.schema import OBJECTS, SObject, make_id
from sandbox.salesforce.soql import STRING_TYPES, Query, SoqlError, quote
from sandbox.sqlite import atomic, open_store

DEFAULT_BATCH = 2000
MIN_BATCH, MAX_BATCH = 200, 2000
_FETCH_CHUNK = 10_000


class InvalidLocator(Exception):
    """An unknown, evicted or malformed query locator."""


# --------------------------------------------------------------------------- value codecs

def _text(v):
    if isinstance(v, str):
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    raise ValueError(f"expected a string, got {v!r}")


def _bool(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return int(v.lower() == "true")
    raise ValueError(f"expected a boolean, got {v!r}")


def _double(v):
    if isinstance(v, bool):
        raise ValueError(f"expected a number, got {v!r}")
    return float(v)


def _int(v):
    if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
        raise ValueError(f"expected an integer, got {v!r}")
    return int(v)


def _date(v):
    if isinstance(v, datetime):
        raise ValueError(f"expected a date, got the datetime {v!r}")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, str):
        return date.fromisoformat(v).isoformat()
    raise ValueError(f"expected a date, got {v!r}")


def _datetime(v):
    if isinstance(v, datetime):
        return soql.wire_datetime(v)
    if isinstance(v, str):
        return soql.wire_datetime(soql.parse_datetime(v))
    raise ValueError(f"expected a datetime, got {v!r}")


_TO_STORAGE = {"boolean": _bool, "currency": _double, "percent": _double, "double": _double,
               "int": _int, "date": _date, "datetime": _datetime}
_TO_STORAGE.update({t: _text for t in STRING_TYPES})

def _load_date(v):
    return v.isoformat() if type(v) is date else _date(v)


_DT_CACHE: dict = {}


def _load_datetime(v):
    # Formatting costs ~1µs and a record's CreatedDate/LastModifiedDate/SystemModstamp
    # (and neighbouring records') often repeat, so remember recent results.
    text = _DT_CACHE.get(v)
    if text is None:
        if len(_DT_CACHE) > 100_000:
            _DT_CACHE.clear()
        text = _DT_CACHE[v] = _datetime(v)
    return text


# The org hands us Python values already typed per the schema, and sqlite3 binds str,
# bool (as 0/1), int and float as they are: only dates and datetimes need converting on a
# multi-million-row load. None means "store as is".
_LOAD = {t: None for t in _TO_STORAGE}
_LOAD.update(date=_load_date, datetime=_load_datetime)

_TO_WIRE = {"boolean": bool, "currency": float, "percent": float, "double": float, "int": int}


def to_storage(field_type: str, value):
    """Python or JSON value -> stored value; ValueError when it doesn't fit the type."""
    if value is None:
        return 0 if field_type == "boolean" else None   # Salesforce booleans are never null
    return _TO_STORAGE[field_type](value)


def to_wire(field_type: str, value):
    if value is None:
        return False if field_type == "boolean" else None
    conv = _TO_WIRE.get(field_type)
    return conv(value) if conv else value


def _sql_type(field_type: str) -> str:
    if field_type in ("boolean", "int"):
        return "INTEGER"
    if field_type in ("currency", "percent", "double"):
        return "REAL"
    if field_type in ("id", "reference"):
        return "TEXT"                       # ids are case-sensitive
    if field_type in STRING_TYPES:
        return "TEXT COLLATE NOCASE"
    return "TEXT"                           # date / datetime: fixed-format, binary order


# --------------------------------------------------------------------------- results

@dataclass
class QueryPage:
    sobject: str
    soql: str
    include_deleted: bool
    total_size: int
    records: list[dict]
    next_locator: str | None            # "01g…-2000" when more pages remain

    @property
    def done(self) -> bool:
        return self.next_locator is None


@dataclass
class _Cursor:
    query: Query
    include_deleted: bool
    rowids: array
    batch_size: int


# --------------------------------------------------------------------------- store

class Store:
    def __init__(self, path: str | Path | None = None, objects: dict[str, SObject] = OBJECTS, *,
                 load_batch: int = 5000, max_cursors: int = 64, max_cursor_rows: int = 20_000_000):
        self.objects = objects
        self.load_batch = load_batch
        self.max_cursors = max_cursors
        self.max_cursor_rows = max_cursor_rows      # bounds snapshot memory (8 bytes a row)
        self._lock = threading.RLock()
        self._conn = open_store(path)
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self._locator_ids = itertools.count(1)
        self._create_tables()

    def _create_tables(self) -> None:
        with self._lock:
            for obj in self.objects.values():
                cols = ", ".join(f"{quote(f.name)} {_sql_type(f.type)}" for f in obj.fields)
                table = quote(obj.name)
                self._conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({cols})")
                self._conn.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {quote(obj.name + '_Id')} ON {table} (\"Id\")")
                if obj.field("SystemModstamp"):
                    # The incremental-sync pattern: WHERE SystemModstamp > x ORDER BY SystemModstamp
                    self._conn.execute(f"CREATE INDEX IF NOT EXISTS {quote(obj.name + '_SMS')} "
                                       f"ON {table} (\"SystemModstamp\")")

    def close(self) -> None:
        with self._lock:
            self._cursors.clear()
            self._conn.close()

    def sobject(self, name: str) -> SObject | None:
        """Case-insensitive lookup, as the REST paths are."""
        obj = self.objects.get(name)
        if obj is None:
            obj = next((o for n, o in self.objects.items() if n.lower() == name.lower()), None)
        return obj

    def transaction(self):
        """Hold the store for a multi-step write (validate then write) and make it atomic."""
        return atomic(self._conn, self._lock)

    # ----------------------------------------------------------------- bulk load

    def upsert(self, records: Iterable[tuple[str, dict]]) -> dict[str, int]:
        """Insert or replace whole records, streamed: at most ``load_batch`` rows per object
        are buffered, so memory stays bounded whatever the input size. Fields missing from a
        record are stored as null; unknown fields raise ValueError."""
        counts: dict[str, int] = {}
        buffers: dict[str, list[list]] = {}
        plans = {name: self._load_plan(obj) for name, obj in self.objects.items()}
        for name, record in records:
            plan = plans.get(name)
            if plan is None:
                raise ValueError(f"unknown SObject {name!r}")
            buf = buffers.setdefault(name, [])
            buf.append(_load_row(name, record, plan))
            counts[name] = counts.get(name, 0) + 1
            if len(buf) >= self.load_batch:
                self._flush(name, buf)
                buf.clear()
        for name, buf in buffers.items():
            if buf:
                self._flush(name, buf)
        return counts

    def _load_plan(self, obj: SObject) -> "_LoadPlan":
        names = tuple(obj.field_names)
        convs = tuple((i, _LOAD[f.type]) for i, f in enumerate(obj.fields) if _LOAD[f.type])
        booleans = tuple(i for i, f in enumerate(obj.fields) if f.type == "boolean")
        return _LoadPlan(names, frozenset(names), convs, booleans)

    def _flush(self, name: str, rows: list[list]) -> None:
        obj = self.objects[name]
        with self.transaction():
            self._conn.executemany(_upsert_sql(obj), rows)

    # ----------------------------------------------------------------- queries

    def query(self, soql_text: str | Query, *, include_deleted: bool = False,
              batch_size: int = DEFAULT_BATCH, now: datetime, version: str = "59.0") -> QueryPage:
        """Run a query: the first page, and a locator for the rest when there is more."""
        q = self.parse(soql_text)
        with self._lock:
            if q.is_count:
                return QueryPage(q.sobject.name, q.text, include_deleted,
                                 self._count(q, include_deleted, now), [], None)
            cursor = _Cursor(q, include_deleted, self._select_rowids(q, include_deleted, now),
                             clamp_batch(batch_size))
            locator = self._register(cursor) if len(cursor.rowids) > cursor.batch_size else None
            return self._page(cursor, locator, 0, cursor.batch_size, version)

    def query_more(self, token: str, *, batch_size: int | None = None, version: str = "59.0") -> QueryPage:
        """Serve the page at ``token`` = "<locator>-<offset>" (what nextRecordsUrl ends with)."""
        locator, _, offset_text = token.rpartition("-")
        if not locator or not offset_text.isdigit():
            raise InvalidLocator(token)
        with self._lock:
            cursor = self._cursor(locator)
            size = clamp_batch(batch_size) if batch_size else cursor.batch_size
            return self._page(cursor, locator, int(offset_text), size, version)

    def snapshot(self, soql_text: str | Query, *, include_deleted: bool, now: datetime) -> tuple[str, Query, int]:
        """Snapshot a query's matches for Bulk 2.0: (locator, parsed query, row count)."""
        q = self.parse(soql_text)
        if q.is_count:
            raise SoqlError("INVALIDJOB", "Aggregate queries are not supported by Bulk API 2.0")
        with self._lock:
            cursor = _Cursor(q, include_deleted, self._select_rowids(q, include_deleted, now), MAX_BATCH)
            return self._register(cursor), q, len(cursor.rowids)

    def snapshot_rows(self, locator: str, offset: int, limit: int) -> list[list]:
        """Flat wire values (SELECT order, parent fields flattened, None for null) of a
        snapshot's rows [offset, offset + limit)."""
        with self._lock:
            cursor = self._cursor(locator)
            rowids = cursor.rowids[offset:offset + limit]
            q = cursor.query
            first = 2 + len(q.relationships)
            return [[to_wire(ref.field.type, row[first + i]) for i, ref in enumerate(q.fields)]
                    for row in self._fetch_rows(q, rowids)]

    def parse(self, soql_text: str | Query) -> Query:
        return soql.parse(soql_text, self.objects) if isinstance(soql_text, str) else soql_text

    def _count(self, q: Query, include_deleted: bool, now: datetime) -> int:
        where, params = soql.where_sql(q, include_deleted=include_deleted, now=now)
        sql = (f"SELECT count(*) FROM (SELECT 1 FROM {soql.from_sql(q, q.filter_relationships)}"
               f"{where}{soql.limit_sql(q)})")
        return self._execute(sql, params).fetchone()[0]

    def _select_rowids(self, q: Query, include_deleted: bool, now: datetime) -> array:
        where, params = soql.where_sql(q, include_deleted=include_deleted, now=now)
        # Only the joins that filter or sort: selected parent fields are fetched per page.
        sql = (f"SELECT t.rowid FROM {soql.from_sql(q, q.filter_relationships)}"
               f"{where}{soql.order_sql(q)}{soql.limit_sql(q)}")
        return array("q", (r[0] for r in self._execute(sql, params)))

    def _execute(self, sql: str, params: list) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, params)
        except sqlite3.Error as exc:       # a translation bug, not a user error: say so
            raise SoqlError("MALFORMED_QUERY", f"sandbox could not run the query: {exc}") from exc

    def _register(self, cursor: _Cursor) -> str:
        locator = make_id("01g", next(self._locator_ids))
        self._cursors[locator] = cursor
        # Forget the least recently used snapshots (their locators then become invalid,
        # like an expired Salesforce locator) to keep memory bounded.
        while len(self._cursors) > self.max_cursors or (
                len(self._cursors) > 1 and sum(len(c.rowids) for c in self._cursors.values()) > self.max_cursor_rows):
            self._cursors.popitem(last=False)
        return locator

    def _cursor(self, locator: str) -> _Cursor:
        cursor = self._cursors.get(locator)
        if cursor is None:
            raise InvalidLocator(locator)
        self._cursors.move_to_end(locator)
        return cursor

    def _page(self, cursor: _Cursor, locator: str | None, offset: int, size: int, version: str) -> QueryPage:
        ids = cursor.rowids[offset:offset + size]
        shape = _RecordShape(cursor.query, version)
        records = [shape.build(row) for row in self._fetch_rows(cursor.query, ids)]
        end = offset + len(ids)
        more = locator is not None and end < len(cursor.rowids)
        return QueryPage(cursor.query.sobject.name, cursor.query.text, cursor.include_deleted,
                         len(cursor.rowids), records, f"{locator}-{end}" if more else None)

    def _fetch_rows(self, q: Query, rowids: array) -> Iterator[tuple]:
        """Rows (rowid, Id, parent Ids..., selected columns...) in ``rowids`` order."""
        cols = (["t.rowid", "t.\"Id\""] + [f"r_{r.name}.\"Id\"" for r in q.relationships]
                + [soql.column_sql(f) for f in q.fields])
        select = f"SELECT {', '.join(cols)} FROM {soql.from_sql(q)} WHERE t.rowid IN "
        # Chunked: SQLite caps bound parameters (32766), Bulk 2.0 pages can be larger.
        for start in range(0, len(rowids), _FETCH_CHUNK):
            chunk = rowids[start:start + _FETCH_CHUNK]
            sql = select + f"({','.join('?' * len(chunk))})"
            by_rowid = {row[0]: row for row in self._conn.execute(sql, list(chunk))}
            yield from (by_rowid[r] for r in chunk if r in by_rowid)

    # ----------------------------------------------------------------- single records

    def get(self, sobject: str, record_id: str, version: str = "59.0") -> dict | None:
        """The whole record in wire form with ``attributes`` (deleted ones too), or None."""
        obj = self.objects[sobject]
        with self._lock:
            row = self._conn.execute(f"SELECT * FROM {quote(sobject)} WHERE \"Id\" = ?", (record_id,)).fetchone()
        if row is None:
            return None
        record = {"attributes": _attributes(sobject, record_id, version)}
        for fld, value in zip(obj.fields, row):
            record[fld.name] = to_wire(fld.type, value)
        return record

    def exists(self, sobject: str, record_id: str) -> bool:
        with self._lock:
            return self._conn.execute(f"SELECT 1 FROM {quote(sobject)} WHERE \"Id\" = ?",
                                      (record_id,)).fetchone() is not None

    def insert(self, sobject: str, values: dict) -> None:
        """Insert one record from stored-form ``values`` (see ``to_storage``)."""
        names = list(values)
        sql = (f"INSERT INTO {quote(sobject)} ({', '.join(map(quote, names))}) "
               f"VALUES ({', '.join('?' * len(names))})")
        with self.transaction():
            self._conn.execute(sql, [values[n] for n in names])

    def update(self, sobject: str, record_id: str, values: dict) -> None:
        names = list(values)
        sql = f"UPDATE {quote(sobject)} SET {', '.join(f'{quote(n)} = ?' for n in names)} WHERE \"Id\" = ?"
        with self.transaction():
            self._conn.execute(sql, [values[n] for n in names] + [record_id])

    # ----------------------------------------------------------------- housekeeping

    def counts(self) -> dict[str, int]:
        """Rows per object, deleted ones included."""
        with self._lock:
            return {name: self._conn.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0]
                    for name in self.objects}

    def changed_ids(self, sobject: str, start: str, end: str, *, deleted: bool) -> list[tuple[str, str]]:
        """(Id, SystemModstamp) of rows modified in [start, end) — live ones, or deleted ones."""
        flag = 1 if deleted else 0
        where = "\"SystemModstamp\" >= ? AND \"SystemModstamp\" < ?"
        if self.objects[sobject].has_is_deleted:
            where += f" AND \"IsDeleted\" = {flag}"
        elif deleted:
            return []
        with self._lock:
            return self._conn.execute(
                f"SELECT \"Id\", \"SystemModstamp\" FROM {quote(sobject)} WHERE {where} "
                "ORDER BY \"SystemModstamp\", rowid", (start, end)).fetchall()


def clamp_batch(size: int | None) -> int:
    if not size:
        return DEFAULT_BATCH
    return max(MIN_BATCH, min(MAX_BATCH, int(size)))


def _attributes(sobject: str, record_id: str | None, version: str) -> dict:
    return {"type": sobject, "url": f"/services/data/v{version}/sobjects/{sobject}/{record_id}"}


def _upsert_sql(obj: SObject) -> str:
    names = [quote(n) for n in obj.field_names]
    updates = ", ".join(f"{n} = excluded.{n}" for n in names if n != '"Id"')
    return (f"INSERT INTO {quote(obj.name)} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
            f"ON CONFLICT(\"Id\") DO UPDATE SET {updates}")


@dataclass(frozen=True)
class _LoadPlan:
    names: tuple[str, ...]
    name_set: frozenset
    convs: tuple                 # (column index, converter) for columns that need one
    booleans: tuple[int, ...]


def _load_row(sobject: str, record: dict, plan: _LoadPlan) -> list:
    if record.keys() != plan.name_set:
        unknown = record.keys() - plan.name_set
        if unknown:
            raise ValueError(f"{sobject} record has fields not in the schema: {sorted(unknown)}")
    row = list(map(record.get, plan.names))
    try:
        for i, conv in plan.convs:
            if row[i] is not None:
                row[i] = conv(row[i])
    except (ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"{sobject} {record.get('Id')}: {plan.names[i]}: {exc}") from None
    for i in plan.booleans:
        if row[i] is None:
            row[i] = 0                   # Salesforce booleans are never null
    return row


class _RecordShape:
    """Turns a fetched row into a wire record: SELECT order, parents nested once at the
    position of their first field, ``attributes`` on every level."""

    def __init__(self, q: Query, version: str):
        self.q, self.version = q, version
        self.sobject = q.sobject.name
        rels = q.relationships
        self.parent_col = {r.name: 2 + i for i, r in enumerate(rels)}
        self.first_col = 2 + len(rels)

    def build(self, row: tuple) -> dict:
        record = {"attributes": _attributes(self.sobject, row[1], self.version)}
        for i, ref in enumerate(self.q.fields):
            value = to_wire(ref.field.type, row[self.first_col + i])
            rel = ref.relationship
            if rel is None:
                record[ref.field.name] = value
                continue
            parent_id = row[self.parent_col[rel.name]]
            if parent_id is None:
                record[rel.name] = None
                continue
            parent = record.get(rel.name) or {"attributes": _attributes(rel.target, parent_id, self.version)}
            parent[ref.field.name] = value
            record[rel.name] = parent
        return record
