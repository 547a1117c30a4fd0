"""Runs that can be left unattended: a killed run blocks nothing, two runs on one warehouse take
turns, an analyst's open connection never fails a sync, a failed run publishes none of its
tables and says so, and a damaged warehouse file is never written into.

The runs go through the `dealsync` command in subprocesses where the point is another process
(a kill, a second run, an analyst), on the local Dagster instance it keeps in `.dealsync/`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from jobs.config import load_config
from jobs.runner import run_job
from pipeline_model.warehouse import Warehouse
from pipeline_model.writer import Outcome, new_holder, scratch_dir, writer_dir, writing
from tests.conftest import running_sandbox, unthrottled_config
from tests.warehouse_digest import HISTORY, assert_same, digest

pytestmark = pytest.mark.slow

DEALSYNC = str(Path(sys.executable).with_name("dealsync"))


def _start(config: Path, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([DEALSYNC, "run", "--config", str(config)], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _dealsync_run(config: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([DEALSYNC, "run", "--config", str(config)], cwd=cwd, text=True,
                          capture_output=True)


def _wait_until(condition, process: subprocess.Popen, what: str) -> None:
    """Poll a condition a subprocess is working towards; fail if it exits first."""
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"dealsync exited ({process.returncode}) before {what}:\n{process.stdout.read()}")
        time.sleep(0.02)


def _warehouse(config: Path) -> Warehouse:
    return Warehouse(load_config(config).warehouse)


def _runs(config: Path) -> list[tuple[str, bool]]:
    return _warehouse(config).fetch("select status, published from dealsync_meta.runs order by started_at")


def _clean_sync(box, tmp_path: Path) -> dict:
    """What an uninterrupted sync of the sandbox as it stands holds."""
    config = unthrottled_config(box, tmp_path / "clean.yaml", tmp_path / "clean.duckdb")
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_job(config, instance=instance).success
    return digest(_warehouse(config))


@pytest.fixture
def box(tmp_path, monkeypatch):
    with running_sandbox(tmp_path, monkeypatch) as sandbox:
        yield sandbox


@pytest.fixture
def config(box, tmp_path) -> Path:
    return unthrottled_config(box, tmp_path / "dealsync.yaml", tmp_path / "warehouse.duckdb")


def test_a_run_killed_hard_during_its_pull_blocks_nothing(box, config, tmp_path):
    killed = _start(config, tmp_path)
    _wait_until(lambda: box.salesforce.requests_served >= 8, killed, "its pull began")
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    instance = dg.DagsterInstance.from_config(str(tmp_path / ".dealsync" / "dagster"))
    [record] = instance.get_runs()
    assert record.status == dg.DagsterRunStatus.STARTED        # the dead run could not say it ended
    # What a run killed while dlt normalises leaves in its scratch folder (this kill came earlier).
    leftover = scratch_dir(_warehouse(config)) / "dealsync_salesforce" / "normalize" / "part.jsonl"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_text("{}\n")

    after = _dealsync_run(config, tmp_path)
    assert after.returncode == 0, after.stdout + after.stderr
    assert not leftover.exists()                                # the next writer clears it
    assert instance.get_run_by_id(record.run_id).status == dg.DagsterRunStatus.FAILURE
    assert _runs(config) == [("killed", False), ("success", True)]
    assert_same(digest(_warehouse(config)), _clean_sync(box, tmp_path))


def test_two_runs_started_together_on_one_warehouse_take_turns(box, config, tmp_path):
    first, second = _start(config, tmp_path), _start(config, tmp_path)
    outputs = [p.communicate()[0] for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    assert sum("waiting for the warehouse" in out for out in outputs) == 1, outputs
    assert _runs(config) == [("success", True), ("success", True)]
    assert_same(digest(_warehouse(config)), _clean_sync(box, tmp_path))


def test_a_run_that_may_not_wait_refuses_and_names_the_writer(config, instance):
    published = _warehouse(config)
    with writing(published, new_holder("0badc0de-other-run"), "full_chain") as other:
        outcome = run_job(config, instance=instance, writer_wait_seconds=0)
        other.finish(Outcome(False, ["stopped by the test"]))
    assert not outcome.success
    assert "being written by run 0badc0de" in outcome.error and f"pid {os.getpid()}" in outcome.error


_ANALYST = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])          # read-write, as the duckdb CLI opens a file
runs = "select count(*) from dealsync_meta.runs"
print(con.execute(runs).fetchone()[0], flush=True)
sys.stdin.readline()
print(con.execute(runs).fetchone()[0], flush=True)
"""


def test_an_analysts_open_connection_neither_fails_a_sync_nor_sees_half_of_one(box, config, tmp_path, instance):
    assert run_job(config, instance=instance).success
    path = str(load_config(config).warehouse.path)
    analyst = subprocess.Popen([sys.executable, "-c", _ANALYST, path], text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert analyst.stdout.readline().strip() == "1"          # connected, holding the file
    box.advance(2)
    outcome = run_job(config, instance=instance)
    assert outcome.success, outcome.error
    out, _ = analyst.communicate("\n")
    assert out.strip() == "1"          # the open connection still reads the version it opened
    assert _runs(config) == [("success", True), ("success", True)]


def test_a_failed_run_publishes_none_of_its_tables_and_says_so(tmp_path, monkeypatch, instance):
    with running_sandbox(tmp_path, monkeypatch, crm="both") as box:
        config = unthrottled_config(box, tmp_path / "dealsync.yaml", tmp_path / "warehouse.duckdb")
        _sweep_associations_every_run(config)
        assert run_job(config, instance=instance).success
        before = digest(_warehouse(config))
        box.advance(3)                       # every source has changes the failed run would load
        monkeypatch.setenv("DEALSYNC_SANDBOX_HUBSPOT_TOKEN", "revoked-token")
        failed = run_job(config, instance=instance)
        assert not failed.success and "hubspot" in failed.error
        assert_same(digest(_warehouse(config)), before)
        [(status, failures)] = _warehouse(config).fetch(
            "select status, failures from dealsync_meta.runs where not published and status <> 'running' "
            "order by started_at")
        assert status == "failed" and "hubspot" in failures and "revoked-token" not in failures

        monkeypatch.setenv("DEALSYNC_SANDBOX_HUBSPOT_TOKEN", box.credentials["DEALSYNC_SANDBOX_HUBSPOT_TOKEN"])
        assert run_job(config, instance=instance).success
        assert [s for s, _ in _runs(config)] == ["success", "failed", "success"]
        # A swept record without links keeps a placeholder row (to_id NULL) in the raw associations,
        # which a first sync never writes; the model reads the same links either way.
        assert_same(digest(_warehouse(config)), _clean_sync(box, tmp_path),
                    ignore=(*HISTORY, "raw_hubspot.associations"))


def _sweep_associations_every_run(config: Path) -> None:
    """HubSpot associations added without touching either record are re-read once a day of
    wall-clock time by default; a test that advances the sandbox by days needs every run."""
    settings = yaml.safe_load(config.read_text())
    settings["sources"]["hubspot"]["association_sweep_hours"] = 0
    config.write_text(yaml.safe_dump(settings))


def _scribble(path: Path) -> bytes:
    """Overwrite 64 KiB in the middle of a file with garbage, as a bad disk or a stray write would."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 65536] = os.urandom(min(65536, len(data) - middle))
    path.write_bytes(bytes(data))
    return bytes(data)


def test_a_damaged_warehouse_file_is_never_written_into(box, config, tmp_path, instance):
    assert run_job(config, instance=instance).success
    published = load_config(config).warehouse.path
    working = writer_dir(published) / "working.duckdb"
    good = digest(_warehouse(config))

    _scribble(published)                         # the file analysts read: set aside, replaced
    assert run_job(config, instance=instance).success
    [aside] = published.parent.glob(f"{published.name}.changed-*")
    assert_same(digest(_warehouse(config)), good)
    aside.unlink()

    _scribble(working)                           # the writer's copy: replaced by the published one
    assert run_job(config, instance=instance).success
    assert_same(digest(_warehouse(config)), good)

    damaged = (_scribble(published), _scribble(working))
    refused = run_job(config, instance=instance)  # no trusted copy left: refuse, touch nothing
    assert not refused.success
    assert "changed since dealsync published it" in refused.error and str(published) in refused.error
    assert (published.read_bytes(), working.read_bytes()) == damaged
