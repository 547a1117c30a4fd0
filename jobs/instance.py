"""The Dagster instance dealsync runs in: where it lives, the runs whose process died, retention.

A run killed hard (SIGKILL, an OOM kill, a reboot) cannot tell Dagster it ended, so its record
stays "started" forever. Every run tags itself with its process (host, pid and the pid's start
time) and its warehouse; a later run marks a started run failed when its process is gone, or
when the later run holds that run's warehouse lock (only a dead writer can have let it go).
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import dagster as dg

_PROJECT_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"
_UNFINISHED = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
HOST_TAG, PID_TAG, WAREHOUSE_TAG = "dealsync/host", "dealsync/pid", "dealsync/warehouse"
DEFAULT_KEEP_RUNS = 500


def local_instance() -> dg.DagsterInstance:
    """$DAGSTER_HOME's instance when set, else one under .dealsync/dagster (kept between runs)."""
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    home = Path(".dealsync/dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    copy = home / "dagster.yaml"
    # A copy of the project's file: refreshed when a release changes it.
    if _PROJECT_DAGSTER_YAML.exists() and (not copy.exists() or copy.read_bytes() != _PROJECT_DAGSTER_YAML.read_bytes()):
        shutil.copy(_PROJECT_DAGSTER_YAML, copy)
    return dg.DagsterInstance.from_config(str(home))


def process_tags() -> dict[str, str]:
    """Tags naming this process, so a later run can tell whether it still runs."""
    pid = os.getpid()
    return {HOST_TAG: socket.gethostname(), PID_TAG: f"{pid}:{_start_time(pid)}"}


def tag_run(instance: dg.DagsterInstance, run_id: str, warehouse: str | None = None) -> None:
    """Tag a run with its process and, once it holds that warehouse's lock, its warehouse."""
    instance.add_run_tags(run_id, {**process_tags(), **({WAREHOUSE_TAG: warehouse} if warehouse else {})})


def reclaim_dead_runs(instance: dg.DagsterInstance, warehouse: str | None = None,
                      except_run: str | None = None) -> list[str]:
    """Mark failed every unfinished run whose process is gone (or, with `warehouse`, that wrote
    that warehouse: the caller holds its lock) and free what it held; returns their ids."""
    host = socket.gethostname()
    reclaimed = []
    for run in instance.get_runs(dg.RunsFilter(statuses=_UNFINISHED)):
        if run.run_id == except_run:
            continue
        same_warehouse = warehouse is not None and run.tags.get(WAREHOUSE_TAG) == warehouse
        dead_here = run.tags.get(HOST_TAG) == host and not _alive(run.tags.get(PID_TAG, ""))
        if same_warehouse or dead_here:
            instance.report_run_failed(run, "the process running it is gone (killed, or its machine "
                                            "stopped); reclaimed by a later dealsync run")
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            reclaimed.append(run.run_id)
    return reclaimed


def prune_runs(instance: dg.DagsterInstance, keep: int = DEFAULT_KEEP_RUNS) -> int:
    """Delete all but the newest `keep` finished runs (their event logs grow ~1 MB a run)."""
    finished = instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS,
                                                                 dg.DagsterRunStatus.FAILURE,
                                                                 dg.DagsterRunStatus.CANCELED]))
    old = finished[keep:]              # newest first
    for record in old:
        instance.delete_run(record.dagster_run.run_id)
    return len(old)


def _alive(pid_tag: str) -> bool:
    """Whether the process `pid:start_time` still runs (a reused pid has another start time)."""
    pid, _, started = pid_tag.partition(":")
    if not pid.isdigit():
        return True                    # not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return _start_time(int(pid)) == started


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def failure_message(error) -> str:
    """A Dagster SerializableErrorInfo as the operator needs it: the deepest cause's message."""
    while error.cause is not None:
        error = error.cause
    message = error.message.strip()
    # Dagster prefixes "module.ClassName: "; the operator needs only what went wrong.
    prefix, sep, rest = message.partition(": ")
    if sep and prefix.split(".")[-1] == error.cls_name:
        message = rest
    return message.splitlines()[0] if message else error.cls_name
