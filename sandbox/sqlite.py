"""The SQLite plumbing every emulator's store shares."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def open_store(path: str | Path | None) -> sqlite3.Connection:
    """An in-memory database, or a file tuned for bulk loads; usable from any thread (callers lock)."""
    conn = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False, isolation_level=None)
    pragmas = ["temp_store = MEMORY"]
    if path:
        # A sandbox can always be rebuilt from the org: trade durability for load speed.
        pragmas += ["journal_mode = WAL", "synchronous = OFF", "cache_size = -65536"]
    for pragma in pragmas:
        conn.execute(f"PRAGMA {pragma}")
    return conn


@contextmanager
def atomic(conn: sqlite3.Connection, lock: threading.RLock) -> Iterator[sqlite3.Connection]:
    """Hold the store for a multi-step write and make it atomic (nested calls join the outer one)."""
    with lock:
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
