"""The HubSpot emulator's record store: SQLite.

One ``objects`` table for every CRM object type: properties and property history as JSON
(each in its own column, so pages that don't ask for history never read it), plus the
columns paging and incremental search need: ``id`` (numeric, the list cursor),
``created_ms`` and ``updated_ms`` (epoch ms of createdate / the last-modified property,
indexed for ``hs_lastmodifieddate`` windows). Associations, owners, pipelines and merged ids
have their own small tables.

Loading streams: at most ``load_batch`` rows are buffered per table, so memory stays
bounded whatever the size of the org (use a file ``path`` for large orgs).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from sandbox.hubspot.schema import (
    OBJECT_TYPES, SCHEMA_PROPERTIES, modified_property, to_ms, to_number, wire_datetime, wire_value,
)
from sandbox.sqlite import atomic, open_store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    type TEXT NOT NULL, id INTEGER NOT NULL,
    created_at TEXT, updated_at TEXT, created_ms INTEGER, updated_ms INTEGER,
    archived INTEGER NOT NULL DEFAULT 0, archived_at TEXT,
    props TEXT NOT NULL, history TEXT, merged TEXT,
    PRIMARY KEY (type, id));
CREATE INDEX IF NOT EXISTS objects_modified ON objects (type, archived, updated_ms, id);
CREATE TABLE IF NOT EXISTS associations (
    from_type TEXT NOT NULL, from_id INTEGER NOT NULL, to_type TEXT NOT NULL, to_id INTEGER NOT NULL,
    type_id INTEGER NOT NULL, category TEXT NOT NULL, label TEXT, created_at TEXT,
    archived INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (from_type, from_id, to_type, to_id, type_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS merged (
    type TEXT NOT NULL, loser_id INTEGER NOT NULL, survivor_id INTEGER NOT NULL,
    PRIMARY KEY (type, loser_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS owners (
    id INTEGER PRIMARY KEY, email TEXT, archived INTEGER NOT NULL DEFAULT 0, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pipelines (
    object_type TEXT NOT NULL, id TEXT NOT NULL, display_order INTEGER, data TEXT NOT NULL,
    PRIMARY KEY (object_type, id));
CREATE TABLE IF NOT EXISTS properties (
    type TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (type, name)) WITHOUT ROWID;
"""

_OBJECT_COLUMNS = "id, created_at, updated_at, archived, archived_at, props, merged"
_UPSERT_OBJECT = """
INSERT INTO objects (type, id, created_at, updated_at, created_ms, updated_ms, archived, archived_at,
                     props, history, merged)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (type, id) DO UPDATE SET
    created_at = excluded.created_at, updated_at = excluded.updated_at, created_ms = excluded.created_ms,
    updated_ms = excluded.updated_ms, archived = excluded.archived, archived_at = excluded.archived_at,
    props = excluded.props, history = excluded.history, merged = excluded.merged"""
_UPSERT_ASSOCIATION = """
INSERT INTO associations (from_type, from_id, to_type, to_id, type_id, category, label, created_at, archived)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (from_type, from_id, to_type, to_id, type_id) DO UPDATE SET
    category = excluded.category, label = excluded.label, archived = excluded.archived"""


@dataclass
class ObjectRow:
    """A stored CRM object in wire form."""
    type: str
    id: int
    created_at: str | None
    updated_at: str | None
    archived: bool
    archived_at: str | None
    properties: dict
    merged: list[str]
    history: dict | None = None          # only read when asked for


@dataclass
class AssociationRow:
    from_id: int
    to_id: int
    type_id: int
    category: str
    label: str | None


class Store:
    def __init__(self, path: str | Path | None = None, *, load_batch: int = 5000):
        self.load_batch = load_batch
        self._lock = threading.RLock()
        self._conn = open_store(path)
        self._conn.create_function("hs_ms", 1, to_ms, deterministic=True)
        self._conn.create_function("hs_num", 1, to_number, deterministic=True)
        self._conn.executescript(_SCHEMA)
        self._known: dict[str, set[str]] = {t: set(SCHEMA_PROPERTIES[t]) for t in OBJECT_TYPES}
        for type_, name in self._conn.execute("SELECT type, name FROM properties"):
            self._known.setdefault(type_, set()).add(name)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def transaction(self):
        """Hold the store for a multi-step write and make it atomic."""
        return atomic(self._conn, self._lock)

    def execute(self, sql: str, params=()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    # ------------------------------------------------------------------ loading

    def upsert(self, records: Iterable[tuple[str, dict]]) -> dict[str, int]:
        """Insert or replace README-shaped ``(kind, record)`` pairs, streamed."""
        counts: dict[str, int] = {}
        loader = _Loader(self)
        for kind, record in records:
            loader.add(kind, record)
            counts[kind] = counts.get(kind, 0) + 1
        loader.flush()
        return counts

    def known_properties(self, object_type: str) -> set[str]:
        return self._known.get(object_type, set())

    def learn_properties(self, object_type: str, names: Iterable[str]) -> None:
        new = set(names) - self._known.setdefault(object_type, set())
        if new:
            self._known[object_type] |= new
            with self.transaction() as conn:
                conn.executemany("INSERT OR IGNORE INTO properties VALUES (?, ?)", [(object_type, n) for n in new])

    # ------------------------------------------------------------------ objects

    def get(self, object_type: str, object_id: int, *, history: bool = False) -> ObjectRow | None:
        rows = self._select(f"WHERE type = ? AND id = ?", (object_type, object_id), history)
        return rows[0] if rows else None

    def get_many(self, object_type: str, ids: list[int], *, history: bool = False) -> dict[int, ObjectRow]:
        found = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            where = f"WHERE type = ? AND id IN ({','.join('?' * len(chunk))})"
            found.update((r.id, r) for r in self._select(where, [object_type, *chunk], history))
        return found

    def page(self, object_type: str, *, archived: bool, after: int, limit: int, history: bool) -> list[ObjectRow]:
        """Up to ``limit`` objects with id >= ``after``, in id order (the list cursor)."""
        return self._select("WHERE type = ? AND archived = ? AND id >= ? ORDER BY id LIMIT ?",
                            (object_type, int(archived), after, limit), history)

    def find_by_property(self, object_type: str, name: str, value: str, *, archived: bool) -> ObjectRow | None:
        rows = self._select("WHERE type = ? AND archived = ? AND json_extract(props, ?) = ? ORDER BY id LIMIT 1",
                            (object_type, int(archived), json_path(name), value), False)
        return rows[0] if rows else None

    def search(self, object_type: str, where: str, params: list, order: str, limit: int,
               offset: int) -> tuple[int, list[ObjectRow]]:
        base = f"WHERE type = ? AND archived = 0{' AND (' + where + ')' if where else ''}"
        args = [object_type, *params]
        with self._lock:
            total = self._conn.execute(f"SELECT count(*) FROM objects {base}", args).fetchone()[0]
        rows = self._select(f"{base} ORDER BY {order} LIMIT ? OFFSET ?", [*args, limit, offset], False) \
            if limit else []
        return total, rows

    def _select(self, clause: str, params, history: bool) -> list[ObjectRow]:
        cols = _OBJECT_COLUMNS + (", history" if history else "")
        with self._lock:
            rows = self._conn.execute(f"SELECT type, {cols} FROM objects {clause}", params).fetchall()
        return [_object_row(r, history) for r in rows]

    def save(self, row: ObjectRow) -> None:
        """Write one object back whole (the emulator's own creates and updates)."""
        props = row.properties
        with self.transaction() as conn:
            conn.execute(_UPSERT_OBJECT, (
                row.type, row.id, row.created_at, row.updated_at, to_ms(props.get("createdate") or row.created_at),
                to_ms(props.get(modified_property(row.type)) or row.updated_at), int(row.archived), row.archived_at,
                json.dumps(props), json.dumps(row.history or {}), json.dumps(row.merged) if row.merged else None))

    def max_id(self) -> int:
        return self.execute("SELECT coalesce(max(id), 0) FROM objects")[0][0]

    def survivor(self, object_type: str, loser_id: int) -> int | None:
        rows = self.execute("SELECT survivor_id FROM merged WHERE type = ? AND loser_id = ?", (object_type, loser_id))
        return rows[0][0] if rows else None

    # ------------------------------------------------------------------ associations

    def associations(self, from_type: str, from_ids: list[int], to_type: str) -> dict[int, list[AssociationRow]]:
        """Live associations of each ``from_ids`` object to ``to_type``, ordered by target id."""
        out: dict[int, list[AssociationRow]] = {}
        for start in range(0, len(from_ids), 500):
            chunk = from_ids[start:start + 500]
            rows = self.execute(
                "SELECT from_id, to_id, type_id, category, label FROM associations "
                f"WHERE from_type = ? AND to_type = ? AND archived = 0 AND from_id IN ({','.join('?' * len(chunk))}) "
                "ORDER BY from_id, to_id, type_id", [from_type, to_type, *chunk])
            for r in rows:
                out.setdefault(r[0], []).append(AssociationRow(*r))
        return out

    def associate(self, from_type: str, from_id: int, to_type: str, to_id: int, type_id: int,
                  category: str, label: str | None, created_at: str) -> None:
        with self.transaction() as conn:
            conn.execute(_UPSERT_ASSOCIATION, (from_type, from_id, to_type, to_id, type_id, category, label,
                                               created_at, 0))

    def unassociate(self, from_type: str, from_id: int, to_type: str, to_id: int) -> int:
        with self.transaction() as conn:
            return conn.execute("UPDATE associations SET archived = 1 WHERE from_type = ? AND from_id = ? "
                                "AND to_type = ? AND to_id = ? AND archived = 0",
                                (from_type, from_id, to_type, to_id)).rowcount

    # ------------------------------------------------------------------ owners, pipelines

    def owners(self, *, archived: bool, after: int, limit: int, email: str | None) -> list[dict]:
        where, params = "archived = ? AND id >= ?", [int(archived), after]
        if email:
            where += " AND lower(email) = lower(?)"
            params.append(email)
        rows = self.execute(f"SELECT data FROM owners WHERE {where} ORDER BY id LIMIT ?", [*params, limit])
        return [json.loads(r[0]) for r in rows]

    def owner(self, owner_id: int) -> dict | None:
        rows = self.execute("SELECT data FROM owners WHERE id = ?", (owner_id,))
        return json.loads(rows[0][0]) if rows else None

    def pipelines(self, object_type: str) -> list[dict]:
        rows = self.execute("SELECT data FROM pipelines WHERE object_type = ? ORDER BY display_order, id",
                            (object_type,))
        return [json.loads(r[0]) for r in rows]

    # ------------------------------------------------------------------ housekeeping

    def counts(self) -> dict[str, int]:
        counts = dict(self.execute("SELECT type, count(*) FROM objects GROUP BY type"))
        counts["associations"] = self.execute("SELECT count(*) FROM associations")[0][0]
        counts["owners"] = self.execute("SELECT count(*) FROM owners")[0][0]
        counts["pipelines"] = self.execute("SELECT count(*) FROM pipelines")[0][0]
        return counts


def json_path(name: str) -> str:
    return '$."' + name.replace('"', '\\"') + '"'


def _object_row(r: tuple, history: bool) -> ObjectRow:
    return ObjectRow(r[0], r[1], r[2], r[3], bool(r[4]), r[5], json.loads(r[6]),
                     json.loads(r[7]) if r[7] else [], json.loads(r[8] or "{}") if history else None)


# ---------------------------------------------------------------------- loading

class _Loader:
    """Buffers rows per table and writes them in batches."""

    def __init__(self, store: Store):
        self.store = store
        self.objects: list[tuple] = []
        self.associations: list[tuple] = []
        self.merges: list[tuple] = []          # (type, loser, survivor, survivor updated_at)
        self.properties: dict[str, set[str]] = {}

    def add(self, kind: str, record: dict) -> None:
        if kind in OBJECT_TYPES:
            self.objects.append(self.object_row(kind, record))
        elif kind == "associations":
            self.associations.append(_association_row(record))
        elif kind == "owners":
            self.write("INSERT OR REPLACE INTO owners VALUES (?, ?, ?, ?)", [_owner_row(record)])
        elif kind == "pipelines":
            self.write("INSERT OR REPLACE INTO pipelines VALUES (?, ?, ?, ?)", [_pipeline_row(record)])
        else:
            raise ValueError(f"unknown HubSpot record kind {kind!r}")
        if len(self.objects) + len(self.associations) >= self.store.load_batch:
            self.flush()

    def object_row(self, kind: str, record: dict) -> tuple:
        props = {name: wire_value(v) for name, v in (record.get("properties") or {}).items()}
        object_id = int(record["id"])
        props.setdefault("hs_object_id", str(object_id))
        merged = [str(i) for i in record.get("mergedObjectIds") or []]
        if merged:
            props.setdefault("hs_merged_object_ids", ";".join(merged))
            self.merges.extend((kind, int(loser), object_id, record.get("updatedAt")) for loser in merged)
        self.properties.setdefault(kind, set()).update(props)
        created_at, updated_at = wire_datetime(record.get("createdAt")), wire_datetime(record.get("updatedAt"))
        modified = props.get(modified_property(kind)) or props.get("hs_lastmodifieddate") or updated_at
        return (kind, object_id, created_at, updated_at, to_ms(props.get("createdate") or created_at),
                to_ms(modified), int(bool(record.get("archived"))), wire_datetime(record.get("archivedAt")),
                json.dumps(props), json.dumps(_history(record.get("history"))), json.dumps(merged) if merged else None)

    def write(self, sql: str, rows: list[tuple]) -> None:
        with self.store.transaction() as conn:
            conn.executemany(sql, rows)

    def flush(self) -> None:
        if self.objects:
            self.write(_UPSERT_OBJECT, self.objects)
        if self.associations:
            self.write(_UPSERT_ASSOCIATION, self.associations)
        self.objects, self.associations = [], []
        for kind, names in self.properties.items():
            self.store.learn_properties(kind, names)
        self.properties = {}
        self.flush_merges()

    def flush_merges(self) -> None:
        """Remember merged-away ids; a loser the org didn't send becomes an archived stub so
        ``archived=true`` lists still show it, as HubSpot does."""
        if not self.merges:
            return
        with self.store.transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO merged VALUES (?, ?, ?)", [m[:3] for m in self.merges])
            for kind, loser, _, when in self.merges:
                stamp = wire_datetime(when)
                props = {"hs_object_id": str(loser), "createdate": stamp, modified_property(kind): stamp}
                conn.execute("INSERT OR IGNORE INTO objects (type, id, created_at, updated_at, created_ms, updated_ms,"
                             " archived, archived_at, props) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)",
                             (kind, loser, stamp, stamp, to_ms(stamp), to_ms(stamp), stamp, json.dumps(props)))
        self.merges = []


def _history(history: dict | None) -> dict:
    out = {}
    for name, entries in (history or {}).items():
        out[name] = [{**e, "value": wire_value(e.get("value")), "timestamp": wire_datetime(e.get("timestamp")),
                      "sourceType": e.get("sourceType") or "CRM_UI"} for e in entries]
    return out


def _association_row(r: dict) -> tuple:
    return (r["fromObjectType"], int(r["fromId"]), r["toObjectType"], int(r["toId"]), int(r["associationTypeId"]),
            r.get("category") or "HUBSPOT_DEFINED", r.get("label"), wire_datetime(r.get("createdAt")),
            int(bool(r.get("archived"))))


def _owner_row(r: dict) -> tuple:
    data = {"id": str(r["id"]), "email": r.get("email"), "firstName": r.get("firstName"),
            "lastName": r.get("lastName"), "userId": r.get("userId"),
            "userIdIncludingInactive": r.get("userIdIncludingInactive", r.get("userId")),
            "type": r.get("type", "PERSON"), "createdAt": wire_datetime(r.get("createdAt")),
            "updatedAt": wire_datetime(r.get("updatedAt")), "archived": bool(r.get("archived")),
            "teams": r.get("teams") or []}
    return int(r["id"]), r.get("email"), int(data["archived"]), json.dumps(data)


def _pipeline_row(r: dict) -> tuple:
    data = {**_pipeline_common(r), "stages": [_stage(s) for s in r.get("stages") or []]}
    return r.get("objectType", "deals"), str(r["id"]), int(r.get("displayOrder") or 0), json.dumps(data)


def _pipeline_common(r: dict) -> dict:
    return {"id": str(r["id"]), "label": r.get("label"), "displayOrder": int(r.get("displayOrder") or 0),
            "createdAt": wire_datetime(r.get("createdAt")), "updatedAt": wire_datetime(r.get("updatedAt")),
            "archived": bool(r.get("archived"))}


def _stage(s: dict) -> dict:
    # The client types metadata as dict[str, str]: JSON false would arrive as "False".
    metadata = {k: wire_value(v) for k, v in (s.get("metadata") or {}).items()}
    return {**_pipeline_common(s), "metadata": metadata,
            "writePermissions": s.get("writePermissions", "CRM_PERMISSIONS_ENFORCEMENT")}
