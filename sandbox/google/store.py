"""The Google emulator's SQLite store: Gmail messages per mailbox, Calendar events per calendar.

Records arrive README-shaped (sandbox/README.md, "Gmail" and "Calendar") and are stored in
their wire form, so reads never re-derive them. Loads are streamed in chunks and reads are
cursors over indexes, so a large org lives in a file (``path``) with bounded memory.

Gmail history is not a separate log: a message row carries the history id it was added at
and, once deleted, the one it was deleted at; history.list is a union over those two indexes.
Calendar changes are ordered by ``seq``, a store-wide counter bumped on every event write,
which is what sync tokens remember.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import threading
from datetime import date
from pathlib import Path
from typing import Iterable, Iterator

from sandbox.google.wire import to_ms
from sandbox.sqlite import atomic, open_store

LOAD_CHUNK = 5000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mailbox (
    address TEXT PRIMARY KEY COLLATE NOCASE,
    floor INTEGER NOT NULL DEFAULT 0            -- history ids below this answer 404
);
CREATE TABLE IF NOT EXISTS message (
    mailbox TEXT NOT NULL COLLATE NOCASE, id TEXT NOT NULL, thread_id TEXT NOT NULL,
    internal_ms INTEGER NOT NULL, history_id INTEGER NOT NULL,
    deleted_history_id INTEGER, deleted_ms INTEGER,
    labels TEXT NOT NULL,                        -- ' INBOX UNREAD ', for LIKE '% INBOX %'
    label_ids TEXT NOT NULL, headers TEXT NOT NULL,
    from_h TEXT NOT NULL, to_h TEXT NOT NULL, cc_h TEXT NOT NULL, subject TEXT NOT NULL,
    snippet TEXT NOT NULL, body TEXT NOT NULL, size INTEGER NOT NULL,
    PRIMARY KEY (mailbox, id)
);
CREATE INDEX IF NOT EXISTS message_date ON message (mailbox, internal_ms, id);
CREATE INDEX IF NOT EXISTS message_added ON message (mailbox, history_id);
CREATE INDEX IF NOT EXISTS message_deleted ON message (mailbox, deleted_history_id)
    WHERE deleted_history_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS calendar (
    id TEXT PRIMARY KEY COLLATE NOCASE, owner TEXT NOT NULL COLLATE NOCASE,
    time_zone TEXT NOT NULL DEFAULT 'UTC', generation INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS event (
    calendar TEXT NOT NULL COLLATE NOCASE, id TEXT NOT NULL, seq INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL, status TEXT NOT NULL, recurring INTEGER NOT NULL,
    start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (calendar, id)
);
CREATE INDEX IF NOT EXISTS event_seq ON event (calendar, seq);
CREATE INDEX IF NOT EXISTS event_updated ON event (calendar, updated_ms);
CREATE INDEX IF NOT EXISTS event_start ON event (calendar, start_ms);
"""

_MESSAGE_COLUMNS = ("mailbox", "id", "thread_id", "internal_ms", "history_id", "deleted_history_id", "deleted_ms",
                    "labels", "label_ids", "headers", "from_h", "to_h", "cc_h", "subject", "snippet", "body", "size")
_EVENT_COLUMNS = ("calendar", "id", "seq", "updated_ms", "status", "recurring", "start_ms", "end_ms", "doc")


class Store:
    def __init__(self, path: str | Path | None = None):
        self._lock = threading.RLock()
        self._conn = open_store(path)
        self._conn.row_factory = sqlite3.Row
        self._conn.executescript(_SCHEMA)
        last = self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM event").fetchone()[0]
        self._seq = itertools.count(last + 1)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _transaction(self):
        return atomic(self._conn, self._lock)

    def _all(self, sql: str, params=()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _one(self, sql: str, params=()):
        with self._lock:
            return self._conn.execute(sql, params).fetchone()

    def _stream(self, sql: str, params=(), chunk: int = 500) -> Iterator[sqlite3.Row]:
        """Rows in chunks, each fetched under the lock, so a long scan never holds it."""
        with self._lock:
            cursor = self._conn.execute(sql, params)
            rows = cursor.fetchmany(chunk)
        while rows:
            yield from rows
            with self._lock:
                rows = cursor.fetchmany(chunk)

    def counts(self) -> dict[str, int]:
        tables = {"mailboxes": "mailbox", "messages": "message", "calendars": "calendar", "events": "event"}
        return {name: self._one(f"SELECT COUNT(*) FROM {table}")[0] for name, table in tables.items()}

    # ----------------------------------------------------------------- Gmail

    def add_mailboxes(self, addresses: Iterable[str]) -> None:
        with self._transaction() as db:
            db.executemany("INSERT OR IGNORE INTO mailbox (address) VALUES (?)", [(a,) for a in addresses])

    def mailbox(self, address: str) -> str | None:
        row = self._one("SELECT address FROM mailbox WHERE address = ?", (address,))
        return row[0] if row else None

    def mailboxes(self) -> list[str]:
        return [r[0] for r in self._all("SELECT address FROM mailbox ORDER BY address")]

    def upsert_messages(self, items: Iterable[tuple[str, dict]]) -> int:
        count = 0
        for chunk in _chunks(items, LOAD_CHUNK):
            with self._transaction() as db:
                db.executemany("INSERT OR IGNORE INTO mailbox (address) VALUES (?)", {(m,) for m, _ in chunk})
                rows = [self._message_row(db, mailbox, msg) for mailbox, msg in chunk]
                db.executemany(f"INSERT OR REPLACE INTO message ({', '.join(_MESSAGE_COLUMNS)}) "
                               f"VALUES ({', '.join('?' * len(_MESSAGE_COLUMNS))})", rows)
            count += len(chunk)
        return count

    def _message_row(self, db, mailbox: str, msg: dict) -> tuple:
        headers = [{"name": h["name"], "value": h["value"]} for h in msg.get("headers") or []]
        named = {}
        for h in headers:
            named.setdefault(h["name"].lower(), h["value"])
        labels = list(msg.get("labelIds") or [])
        body = msg.get("body") or ""
        deleted_ms = to_ms(msg["deletedAt"]) if msg.get("deletedAt") is not None else None
        deleted_hid = msg.get("deletedHistoryId")
        if deleted_ms is not None and deleted_hid is None:   # hand-made records may omit it
            deleted_hid = self._current_history(db, mailbox) + 1
        if deleted_hid is not None and deleted_ms is None:
            deleted_ms = to_ms(msg["internalDate"])
        return (mailbox, str(msg["id"]), str(msg.get("threadId") or msg["id"]), to_ms(msg["internalDate"]),
                int(msg["historyId"]), deleted_hid, deleted_ms, " " + " ".join(labels) + " ", json.dumps(labels),
                json.dumps(headers), named.get("from", ""), named.get("to", ""), named.get("cc", ""),
                named.get("subject", ""), msg.get("snippet") or body[:100], body,
                int(msg.get("sizeEstimate") or len(body.encode()) + 1024))

    def message(self, mailbox: str, message_id: str) -> sqlite3.Row | None:
        return self._one("SELECT * FROM message WHERE mailbox = ? AND id = ? AND deleted_history_id IS NULL",
                         (mailbox, message_id))

    def list_messages(self, mailbox: str, where: str, params: list, after: tuple[int, str] | None,
                      limit: int) -> list[sqlite3.Row]:
        """Live messages newest first, keyset-paged on (internal_ms, id)."""
        sql, args = _live_messages(mailbox, where, params)
        if after is not None:
            sql += " AND (internal_ms < ? OR (internal_ms = ? AND id < ?))"
            args += [after[0], after[0], after[1]]
        sql += " ORDER BY internal_ms DESC, id DESC LIMIT ?"
        return self._all("SELECT id, thread_id, internal_ms FROM message " + sql, args + [limit])

    def count_messages(self, mailbox: str, where: str, params: list) -> int:
        sql, args = _live_messages(mailbox, where, params)
        return self._one("SELECT COUNT(*) FROM message " + sql, args)[0]

    def profile(self, mailbox: str) -> tuple[int, int]:
        row = self._one("SELECT COUNT(*), COUNT(DISTINCT thread_id) FROM message "
                        "WHERE mailbox = ? AND deleted_history_id IS NULL", (mailbox,))
        return row[0], row[1]

    def current_history(self, mailbox: str) -> int:
        with self._lock:
            return self._current_history(self._conn, mailbox)

    @staticmethod
    def _current_history(db, mailbox: str) -> int:
        row = db.execute("SELECT (SELECT COALESCE(MAX(history_id), 0) FROM message WHERE mailbox = ?), "
                         "(SELECT COALESCE(MAX(deleted_history_id), 0) FROM message WHERE mailbox = ?), "
                         "(SELECT COALESCE(MAX(floor), 0) FROM mailbox WHERE address = ?)",
                         (mailbox, mailbox, mailbox)).fetchone()
        return max(row)

    def history_floor(self, mailbox: str, cutoff_ms: int) -> int:
        """The lowest startHistoryId still answerable: records older than ``cutoff_ms`` are
        pruned, and a start id below a pruned record would silently miss it."""
        row = self._one("SELECT (SELECT COALESCE(MAX(floor), 0) FROM mailbox WHERE address = ?), "
                        "(SELECT COALESCE(MAX(history_id), 0) FROM message WHERE mailbox = ? AND internal_ms < ?), "
                        "(SELECT COALESCE(MAX(deleted_history_id), 0) FROM message "
                        " WHERE mailbox = ? AND deleted_ms < ?)",
                        (mailbox, mailbox, cutoff_ms, mailbox, cutoff_ms))
        return max(row)

    def raise_floor(self, mailbox: str | None) -> None:
        with self._transaction() as db:
            targets = [mailbox] if mailbox else [r[0] for r in db.execute("SELECT address FROM mailbox")]
            for address in targets:
                db.execute("UPDATE mailbox SET floor = ? WHERE address = ?",
                           (self._current_history(db, address), address))

    def history_events(self, mailbox: str, after_id: int) -> Iterator[sqlite3.Row]:
        """Added and deleted events with history id > after_id, ascending."""
        sql = ("SELECT history_id AS hid, 'added' AS kind, id, thread_id, labels, label_ids FROM message "
               "WHERE mailbox = ? AND history_id > ? "
               "UNION ALL SELECT deleted_history_id, 'deleted', id, thread_id, labels, label_ids FROM message "
               "WHERE mailbox = ? AND deleted_history_id > ? ORDER BY hid, kind, id")
        return self._stream(sql, (mailbox, after_id, mailbox, after_id))

    # ----------------------------------------------------------------- Calendar

    def add_calendars(self, ids: Iterable[str]) -> None:
        """A calendar id is its owner's address (primary calendars)."""
        with self._transaction() as db:
            db.executemany("INSERT OR IGNORE INTO calendar (id, owner) VALUES (?, ?)", [(c, c) for c in ids])

    def calendar(self, calendar_id: str) -> sqlite3.Row | None:
        return self._one("SELECT * FROM calendar WHERE id = ?", (calendar_id,))

    def calendars_of(self, owner: str) -> list[sqlite3.Row]:
        return self._all("SELECT * FROM calendar WHERE owner = ? ORDER BY id", (owner,))

    def bump_generation(self, calendar_id: str | None) -> None:
        with self._transaction() as db:
            if calendar_id is None:
                db.execute("UPDATE calendar SET generation = generation + 1")
            else:
                db.execute("UPDATE calendar SET generation = generation + 1 WHERE id = ?", (calendar_id,))

    def last_seq(self) -> int:
        return self._one("SELECT COALESCE(MAX(seq), 0) FROM event")[0]

    def upsert_events(self, items: Iterable[tuple[str, dict]]) -> int:
        """Store wire-form events (see calendar.wire_event); each write gets a fresh seq."""
        count = 0
        for chunk in _chunks(items, LOAD_CHUNK):
            with self._transaction() as db:
                db.executemany("INSERT OR IGNORE INTO calendar (id, owner) VALUES (?, ?)",
                               {(c, c) for c, _ in chunk})
                db.executemany(f"INSERT OR REPLACE INTO event ({', '.join(_EVENT_COLUMNS)}) "
                               f"VALUES ({', '.join('?' * len(_EVENT_COLUMNS))})",
                               [self._event_row(c, e) for c, e in chunk])
            count += len(chunk)
        return count

    def insert_event(self, calendar_id: str, event: dict) -> bool:
        """False when the id is taken (events.insert answers 409)."""
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM event WHERE calendar = ? AND id = ?", (calendar_id, event["id"])).fetchone():
                return False
            db.execute(f"INSERT INTO event ({', '.join(_EVENT_COLUMNS)}) VALUES "
                       f"({', '.join('?' * len(_EVENT_COLUMNS))})", self._event_row(calendar_id, event))
            return True

    def _event_row(self, calendar_id: str, event: dict) -> tuple:
        return (calendar_id, event["id"], next(self._seq), to_ms(event["updated"]), event["status"],
                int(bool(event.get("recurrence"))), _edge_ms(event["start"]), _edge_ms(event["end"]),
                json.dumps(event, separators=(",", ":")))

    def event(self, calendar_id: str, event_id: str) -> sqlite3.Row | None:
        return self._one("SELECT * FROM event WHERE calendar = ? AND id = ?", (calendar_id, event_id))

    def events(self, calendar_id: str, *, since_seq: int | None = None, updated_min_ms: int | None = None,
               time_min_ms: int | None = None, time_max_ms: int | None = None,
               with_cancelled: bool = False) -> Iterator[sqlite3.Row]:
        """Candidate rows; recurring series always pass the time filter (the caller expands them)."""
        sql, args = "SELECT * FROM event WHERE calendar = ?", [calendar_id]
        if since_seq is not None:
            sql, args = sql + " AND seq > ?", args + [since_seq]
        if updated_min_ms is not None:
            sql, args = sql + " AND updated_ms >= ?", args + [updated_min_ms]
        if not with_cancelled:
            sql += " AND status != 'cancelled'"
        if time_min_ms is not None:
            sql, args = sql + " AND (recurring = 1 OR end_ms > ?)", args + [time_min_ms]
        if time_max_ms is not None:
            sql, args = sql + " AND (recurring = 1 OR start_ms < ?)", args + [time_max_ms]
        return self._stream(sql, args)


def _live_messages(mailbox: str, where: str, params: list) -> tuple[str, list]:
    sql = "WHERE mailbox = ? AND deleted_history_id IS NULL"
    return (sql + f" AND ({where})" if where else sql), [mailbox, *params]


def _edge_ms(edge: dict) -> int:
    if edge.get("dateTime"):
        return to_ms(edge["dateTime"])
    return to_ms(date.fromisoformat(edge["date"]))


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk

