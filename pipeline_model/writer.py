"""The one writer of a warehouse, and how its runs are published.

Every run writes through a `WriteSession` (`writing(...)`):

- **One writer at a time.** The session holds a lock for the whole run: on DuckDB an exclusive
  `flock` on `<warehouse>.writer/lock`, on PostgreSQL a session advisory lock. The kernel (or
  the server) releases either when the writer dies, however it dies, so a killed run never
  blocks the next one. A second run waits for the lock, saying who holds it, or refuses.
- **DuckDB: readers never meet the writer.** A run writes a private working copy
  (`<warehouse>.writer/working.duckdb`), never the file analysts open. Only a run that
  succeeded publishes: the working copy is copied beside the warehouse, synced to disk and
  renamed onto it, so a reader sees the previous run's whole warehouse or this run's, and an
  open reader (which holds the old file) neither blocks nor sees the swap. A failed run
  publishes none of its tables, only its row in the runs table; a killed run, nothing.
- **Nothing is written into a file in an unknown state.** The writer records each file's
  identity (inode, size, modification time) whenever it leaves it. A working copy that changed
  since (a run killed in the middle of a write, or damage) is replaced by the last published
  version before anything is written; a published file changed since its publish is moved
  aside, never overwritten silently, and never used to restore from.
- **The warehouse records every run**: `dealsync_meta.runs`, one row per run with its outcome.

- **PostgreSQL: the model is published as one version.** A run that rebuilds every model and
  metric table builds them in next schemas and renames those over `model` and `metrics` when it
  succeeds (`_PostgresVersions`); raw, history and the runs table are written in place.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import socket
import tempfile
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from pipeline_model.warehouse import Warehouse

log = logging.getLogger("dealsync.writer")

RUNS_TABLE = "dealsync_meta.runs"
_RUNS_DDL = (f"create table if not exists {RUNS_TABLE} (run_id varchar primary key, job varchar not null,"
             " started_at timestamp with time zone not null, finished_at timestamp with time zone,"
             " status varchar not null, published boolean not null, failures varchar, host varchar, pid integer)")
_WAIT_REPORT_SECONDS = 60.0


class WarehouseBusy(RuntimeError):
    """Another run holds the warehouse's writer lock."""


class WarehouseDamaged(RuntimeError):
    """A warehouse file changed outside dealsync, and no trusted copy is left to continue from."""


@dataclass
class Holder:
    """Who holds (or last held) a writer lock."""

    run_id: str
    pid: int
    host: str
    started_at: str

    def describe(self) -> str:
        return f"run {self.run_id[:8]} (pid {self.pid} on {self.host}, started {self.started_at})"


@dataclass
class Outcome:
    success: bool
    failures: list[str] = field(default_factory=list)     # one line per failed step or source


def writer_dir(published: Path) -> Path:
    """The writer's private folder beside a DuckDB warehouse: lock, working copy, state."""
    return published.with_name(published.name + ".writer")


def scratch_dir(published: Warehouse) -> Path:
    """Where a run keeps its temporary files (dlt's working folders): one folder per warehouse,
    emptied by each writer when it starts, so a killed run's leftovers go with the next run."""
    if published.is_postgres:
        return Path(tempfile.gettempdir()) / f"dealsync-scratch-{zlib.crc32(published.identity.encode()):08x}"
    return writer_dir(published.path) / "scratch"


# --------------------------------------------------------------------------- the lock


class _FileLock:
    """An exclusive flock on a file; the holder's description is written into it."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def try_acquire(self, holder: Holder) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder.__dict__).encode(), 0)
        self._fd = fd
        return True

    def holder(self) -> Holder | None:
        try:
            return Holder(**json.loads(self.path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)       # closing drops the flock
            self._fd = None


class _AdvisoryLock:
    """A PostgreSQL session advisory lock on a connection of its own, held for the run."""

    KEY = zlib.crc32(b"dealsync warehouse writer")

    def __init__(self, warehouse: Warehouse):
        self._warehouse = warehouse
        self._con: Any = None

    def try_acquire(self, holder: Holder) -> bool:
        con = self._warehouse.raw_connection(application_name=f"dealsync writer {holder.run_id}")
        cur = con.cursor()
        cur.execute("select pg_try_advisory_lock(%s)", [self.KEY])
        if not cur.fetchone()[0]:
            con.close()
            return False
        self._con = con
        return True

    def holder(self) -> Holder | None:
        rows = self._warehouse.fetch(
            "select a.application_name, a.pid, coalesce(a.client_addr::text, 'local'), a.backend_start::text "
            "from pg_locks l join pg_stat_activity a on a.pid = l.pid "
            "where l.locktype = 'advisory' and l.objid::bigint = ? and l.granted", [self.KEY])
        if not rows:
            return None
        name, pid, host, started = rows[0]
        return Holder(name.removeprefix("dealsync writer "), pid, host, started)

    def release(self) -> None:
        if self._con is not None:
            self._con.close()        # the server drops a session's advisory locks with it
            self._con = None


def _acquire(lock: _FileLock | _AdvisoryLock, holder: Holder, wait_seconds: float,
             on_wait: Callable[[str], None], interrupted: Callable[[], bool]) -> None:
    """Take the lock, waiting up to `wait_seconds` for the run that holds it and saying so."""
    deadline = time.monotonic() + wait_seconds
    next_report = 0.0
    while not lock.try_acquire(holder):
        other = lock.holder()
        who = other.describe() if other else "another run"
        now = time.monotonic()
        if now >= deadline:
            raise WarehouseBusy(f"the warehouse is being written by {who}; "
                                f"gave up after waiting {wait_seconds:.0f} s")
        if now >= next_report:
            on_wait(f"waiting for the warehouse: {who} is writing it "
                    f"(up to {deadline - now:.0f} s more)")
            next_report = now + _WAIT_REPORT_SECONDS
        if interrupted():
            raise WarehouseBusy(f"interrupted while waiting for {who}")
        time.sleep(min(1.0, max(deadline - now, 0.01)))


# --------------------------------------------------------------------------- DuckDB copies


def _identity(path: Path) -> list[int] | None:
    """What changes when a file is written to or replaced; None when it does not exist."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns]


@dataclass
class _Copies:
    """The working copy and the published file of one DuckDB warehouse, and what the writer
    knows of each (state.json: their identities when it last left them, and the run under way)."""

    published: Path

    @property
    def folder(self) -> Path:
        return writer_dir(self.published)

    @property
    def working(self) -> Path:
        return self.folder / "working.duckdb"

    @property
    def _state_path(self) -> Path:
        return self.folder / "state.json"

    def state(self) -> dict:
        try:
            return json.loads(self._state_path.read_text())
        except FileNotFoundError:
            return {}

    def save(self, **changes: Any) -> None:
        state = {**self.state(), **changes}
        tmp = self._state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        _fsync(tmp)
        os.replace(tmp, self._state_path)

    def published_trusted(self, state: dict) -> bool:
        """The published file is one this writer published (or one it has never seen)."""
        known = [state.get("published"), state.get("publishing")]
        return state.get("published") is None or _identity(self.published) in known

    def prepare(self) -> list[str]:
        """Make the working copy safe to write; returns what was done, for the log."""
        state = self.state()
        notes = []
        if state.get("run"):
            notes.append(f"run {state['run']['run_id'][:8]} did not finish (killed?): "
                         "continuing from the last published version")
        if state.get("published") and not self.published.exists():
            # Deleting the warehouse is how a user asks for a sync from scratch.
            notes.append(f"{self.published} was deleted: starting a new warehouse")
            self._discard()
            state = {}
            self.save(**{key: None for key in ("published", "publishing", "working")})
        elif self.published.exists() and not self.published_trusted(state):
            notes.append(f"{self.published} changed outside dealsync since its last publish: it is not "
                         "read; this run's warehouse replaces it and it is kept beside it")
        if not self.working.exists():
            if self.published.exists():
                notes.append(f"starting the writer's working copy from {self.published}")
            self._restore(state)
        elif _identity(self.working) != state.get("working") or self._wal().exists():
            damaged = not state.get("run")     # else: the run that was writing it died
            if damaged:
                notes.append(f"the working copy {self.working} changed outside dealsync (damaged?): "
                             "it is set aside and the last published version is used")
            self._restore(state, set_aside=damaged)
        return notes

    def _discard(self) -> None:
        for stale in (self.working, self._wal()):
            stale.unlink(missing_ok=True)

    def _restore(self, state: dict, set_aside: bool = False) -> None:
        if self.published.exists() and not self.published_trusted(state):
            raise WarehouseDamaged(
                f"{self.published} changed since dealsync published it, and the working copy cannot be "
                "trusted either (an interrupted run or damage): nothing was written. Restore the warehouse "
                f"file from a backup, or delete it and {self.folder} to sync again from scratch")
        if set_aside:
            self._set_aside(self.working)
        self._discard()
        if self.published.exists():       # else a new warehouse: DuckDB creates it
            _copy(self.published, self.working)

    def _wal(self) -> Path:
        return self.working.with_name(self.working.name + ".wal")

    def publish(self) -> None:
        """Copy the working copy beside the published file and rename it over it."""
        if self.published.exists() and not self.published_trusted(self.state()):
            aside = self._set_aside(self.published)
            log.warning(f"{self.published} was changed outside dealsync since its last publish: "
                        f"kept as {aside}, replaced by this run's warehouse")
        _copy(self.working, self._publishing)
        self._swap()

    def publish_runs(self, working: Warehouse) -> bool:
        """After a failed run: the published tables stay the previous run's, but the published
        runs table says this one failed (the same copy, write and rename as a publish)."""
        if not self.published.exists() or not self.published_trusted(self.state()):
            return False                  # nothing published yet, or a file dealsync must not touch
        runs = working.fetch(f"select * from {RUNS_TABLE}")
        _copy(self.published, self._publishing)
        target = working.at(self._publishing)
        target.run_in_transaction(["create schema if not exists dealsync_meta", _RUNS_DDL,
                                   f"delete from {RUNS_TABLE}",
                                   (f"insert into {RUNS_TABLE} values ({', '.join('?' * 9)})", runs)])
        target.checkpoint()
        self._swap()
        return True

    @property
    def _publishing(self) -> Path:
        return self.published.with_name(self.published.name + ".publishing")

    def _swap(self) -> None:
        """Rename the prepared file over the published one, recording both identities first, so
        a kill between the two steps still leaves a published file the writer trusts."""
        self.save(publishing=_identity(self._publishing))
        os.replace(self._publishing, self.published)
        _fsync(self.published.parent)
        self.save(published=_identity(self.published), publishing=None)

    def _set_aside(self, path: Path) -> Path:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        aside = path.with_name(f"{path.name}.changed-{stamp}")
        os.replace(path, aside)
        return aside


def _copy(source: Path, target: Path) -> None:
    tmp = target.with_name(target.name + ".partial")
    shutil.copyfile(source, tmp)
    _fsync(tmp)
    os.replace(tmp, target)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- PostgreSQL versions


VERSIONED_SCHEMAS = ("model", "metrics")
_RETIRED_PREFIX = "dealsync_retired_"
# What pg_depend says reads an object of a schema from outside it (analysts' own views).
_OUTSIDE_READERS = """
select distinct rn.nspname || '.' || rc.relname
from pg_depend d
join pg_rewrite rw on rw.oid = d.objid and d.classid = 'pg_rewrite'::regclass
join pg_class rc on rc.oid = rw.ev_class join pg_namespace rn on rn.oid = rc.relnamespace
join pg_class c on c.oid = d.refobjid and d.refclassid = 'pg_class'::regclass
join pg_namespace n on n.oid = c.relnamespace
where n.nspname = ? and rn.nspname <> n.nspname"""
_SCHEMA_GRANTS = """
select coalesce(r.rolname, 'public'), a.privilege_type, a.is_grantable
from pg_namespace n cross join lateral aclexplode(n.nspacl) a left join pg_roles r on r.oid = a.grantee
where n.nspname = ? and a.grantee <> n.nspowner"""
_DEFAULT_GRANTS = """
select pg_get_userbyid(d.defaclrole), d.defaclobjtype, coalesce(r.rolname, 'public'), a.privilege_type,
       a.is_grantable
from pg_default_acl d join pg_namespace n on n.oid = d.defaclnamespace
cross join lateral aclexplode(d.defaclacl) a left join pg_roles r on r.oid = a.grantee
where n.nspname = ?"""
_OBJECT_KINDS = {"r": "tables", "S": "sequences", "f": "functions", "T": "types"}


class _PostgresVersions:
    """The next version of `model` and `metrics`, which a PostgreSQL run builds beside the
    published schemas and publishes by renaming them over those.

    A rename takes no lock on the tables inside, so an analyst's open transaction neither
    blocks the publish nor ever sees half of a version. Each next schema is created with the
    grants and default privileges of the one it replaces, so readers keep their access. The
    previous version is dropped once nothing holds it: at once, or by a later run; never while
    a view of someone else's reads it (that view would go with it)."""

    def __init__(self, published: Warehouse, run_id: str):
        self.published, self.run_id = published, run_id

    @staticmethod
    def next_name(schema: str) -> str:
        return f"dealsync_next_{schema}"

    def prepare(self) -> Warehouse:
        """Empty next schemas (a killed run's are dropped); returns the handle the run writes."""
        self.drop_retired()
        statements = []
        for schema in VERSIONED_SCHEMAS:
            target = self.next_name(schema)
            statements += [f"drop schema if exists {target} cascade", f"create schema {target}",
                           *self._grants(schema, target)]
        self.published.run_in_transaction(statements)
        return self.published.with_schemas({s: self.next_name(s) for s in VERSIONED_SCHEMAS})

    def publish(self, also: list) -> None:
        """Swap the next schemas in, in one transaction with `also` (the run's record)."""
        statements = list(also)
        for schema in VERSIONED_SCHEMAS:
            if self.published.fetch("select 1 from pg_namespace where nspname = ?", [schema]):
                statements.append(f"alter schema {schema} rename to {_RETIRED_PREFIX}{schema}_{self.run_id[:8]}")
            statements.append(f"alter schema {self.next_name(schema)} rename to {schema}")
        self.published.run_in_transaction(statements)
        self.drop_retired()

    def discard(self) -> None:
        self.published.run_in_transaction([f"drop schema if exists {self.next_name(s)} cascade"
                                           for s in VERSIONED_SCHEMAS])

    def drop_retired(self) -> None:
        retired = [r[0] for r in self.published.fetch(
            "select nspname from pg_namespace where starts_with(nspname, ?) order by 1", [_RETIRED_PREFIX])]
        for schema in retired:
            readers = [r[0] for r in self.published.fetch(_OUTSIDE_READERS, [schema])]
            if readers:
                log.warning(f"{schema} (an earlier version of the model) is kept: {', '.join(readers)} "
                            "reads it; point that view at the published schema, or drop it, and the next run "
                            "removes the old version")
                continue
            try:    # a reader still inside a transaction over it: leave it to a later run
                self.published.run_in_transaction(["set local lock_timeout = '2s'",
                                                   f"drop schema {schema} cascade"])
            except Exception as exc:
                log.info(f"{schema} is kept for now ({str(exc).strip().splitlines()[0]}); a later run drops it")

    def _grants(self, schema: str, target: str) -> list[str]:
        """The statements that give `target` the grants and default privileges of `schema`."""
        statements = []
        for grantee, privilege, grantable in self.published.fetch(_SCHEMA_GRANTS, [schema]):
            statements.append(f"grant {privilege} on schema {target} to {_role(grantee)}"
                              + (" with grant option" if grantable else ""))
        for owner, kind, grantee, privilege, grantable in self.published.fetch(_DEFAULT_GRANTS, [schema]):
            statements.append(f"alter default privileges for role {_role(owner)} in schema {target} grant "
                              f"{privilege} on {_OBJECT_KINDS[kind]} to {_role(grantee)}"
                              + (" with grant option" if grantable else ""))
        return statements


def _role(name: str) -> str:
    return "public" if name == "public" else '"' + name.replace('"', '""') + '"'


# --------------------------------------------------------------------------- the session


@dataclass
class WriteSession:
    """A run's hold on a warehouse: `warehouse` is what the run writes."""

    warehouse: Warehouse
    holder: Holder
    job: str
    scratch: Path                    # this run's temporary files
    _published: Warehouse
    _lock: Any
    _copies: _Copies | None
    _versions: _PostgresVersions | None = None
    _with_publish: list = field(default_factory=list)

    @property
    def new_version(self) -> bool:
        """Whether the run builds the model as a new version beside the published one (which
        it starts empty), rather than in the tables it publishes."""
        return self._versions is not None

    def record_with_publish(self, statements: list) -> None:
        """Statements for the transaction that publishes the new version (if the run succeeds)."""
        self._with_publish.extend(statements)

    def finish(self, outcome: Outcome) -> None:
        """Record the outcome; publish when the run succeeded."""
        status = "success" if outcome.success else "failed"
        record = _record_statements(self.holder, self.job, status, outcome.success, outcome.failures)
        if self._versions is not None and outcome.success:
            self._versions.publish(also=[*self._with_publish, *record])
            return
        self.warehouse.run_in_transaction(record)
        if self._versions is not None:
            self._versions.discard()
        if self._copies is None:
            return
        self.warehouse.checkpoint()
        if outcome.success:
            self._copies.publish()
        else:
            self._copies.publish_runs(self.warehouse)
        self._copies.save(working=_identity(self._copies.working), run=None)


@contextmanager
def writing(published: Warehouse, holder: Holder, job: str, wait_seconds: float = 0,
            on_wait: Callable[[str], None] = log.warning,
            interrupted: Callable[[], bool] = lambda: False, whole_model: bool = False) -> Iterator[WriteSession]:
    """Hold the warehouse for one run. The caller calls `session.finish(outcome)` at the end;
    a session left without it (an exception, a kill) publishes nothing. `whole_model`: the run
    rebuilds every model and metric table, so on PostgreSQL it can build them as a next
    version (a run that rebuilds some writes them in place)."""
    copies = None if published.is_postgres else _Copies(published.path)
    lock = _AdvisoryLock(published) if published.is_postgres else _FileLock(copies.folder / "lock")
    _acquire(lock, holder, wait_seconds, on_wait, interrupted)
    try:
        scratch = scratch_dir(published)
        shutil.rmtree(scratch, ignore_errors=True)        # only a writer uses it, and we are the writer
        working = published
        if copies is not None:
            killed = copies.state().get("run")
            for note in copies.prepare():
                log.warning(note)
            working = published.at(copies.working)
            if killed:
                _record(working, Holder(**killed["holder"]), killed["job"], "killed", False,
                        ["the run ended without finishing (killed, or its machine stopped)"])
            copies.save(run={"run_id": holder.run_id, "job": job, "holder": holder.__dict__})
        versions = _PostgresVersions(published, holder.run_id) if published.is_postgres and whole_model else None
        _record(working, holder, job, "running", False, [])
        if versions is not None:
            working = versions.prepare()
        yield WriteSession(working, holder, job, scratch, published, lock, copies, versions)
    finally:
        lock.release()


def _record(warehouse: Warehouse, holder: Holder, job: str, status: str, published: bool,
            failures: list[str]) -> None:
    warehouse.run_in_transaction(_record_statements(holder, job, status, published, failures))


def _record_statements(holder: Holder, job: str, status: str, published: bool, failures: list[str]) -> list:
    finished = None if status == "running" else datetime.now(timezone.utc)
    return [
        "create schema if not exists dealsync_meta",
        _RUNS_DDL,
        (f"delete from {RUNS_TABLE} where run_id = ?", [[holder.run_id]]),
        (f"insert into {RUNS_TABLE} values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
         [[holder.run_id, job, holder.started_at, finished, status, published,
           "\n".join(failures) or None, holder.host, holder.pid]]),
    ]


def new_holder(run_id: str) -> Holder:
    return Holder(run_id, os.getpid(), socket.gethostname(), datetime.now(timezone.utc).isoformat(timespec="seconds"))
