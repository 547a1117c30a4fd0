"""Mixed vendor faults: a sync under a seeded mix of every fault the emulators inject ends with
exactly the warehouse of a fault-free sync; a permanent failure stops only its stream, with a
clear message, and leaves every other stream and every cursor intact.

Faults come from the emulators over real HTTP (sandbox/faults.py); the vendor clients and the
connectors meet them as they would meet a real vendor's. Each test is deterministic for its seed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from jobs.config import load_config
from jobs.runner import run_job
from pipeline_model.warehouse import Warehouse
from sandbox.faults import KINDS, FaultPlan
from tests.conftest import running_sandbox, unthrottled_config
from tests.warehouse_digest import assert_same, digest

pytestmark = pytest.mark.slow

SEED = 11
# The logs of full re-reads: a fault-free sync has one per mailbox and calendar on its first run; an
# expired historyId or syncToken adds the re-read it caused, which is what those tables are for.
FULL_SYNC_LOGS = ("raw_google.gmail_full_syncs", "raw_google.calendar_full_syncs")


def _config(box, tmp_path: Path, name: str) -> Path:
    """The sandbox's config for warehouse `name`, with a short client timeout (a timeout fault holds
    its answer until the client gives up) and quick retries."""
    path = unthrottled_config(box, tmp_path / f"{name}.yaml", tmp_path / f"{name}.duckdb")
    config = yaml.safe_load(path.read_text())
    for source in config["sources"].values():
        source.update(timeout_seconds=3, retry={"attempts": 4, "backoff_seconds": 0.01})
    path.write_text(yaml.safe_dump(config))
    return path


def _warehouse(config: Path) -> Warehouse:
    return Warehouse(load_config(config).warehouse)


def _run(config: Path, instance) -> None:
    outcome = run_job(config, instance=instance)
    assert outcome.success, outcome.error


def test_a_sync_under_a_seeded_mix_of_every_fault_equals_a_fault_free_sync(tmp_path, monkeypatch, instance):
    with running_sandbox(tmp_path, monkeypatch, crm="both", google=True) as box:
        clean, faulty = _config(box, tmp_path, "clean"), _config(box, tmp_path, "faulty")
        injected: dict[str, int] = {}
        for run in (1, 2):            # a first full sync, then an incremental one after a week
            _run(clean, instance)
            plan = box.inject_faults(FaultPlan(seed=SEED * 100 + run, rate=0.12))
            try:
                _run(faulty, instance)
            finally:
                box.inject_faults(None)
            for kind, n in plan.counts().items():
                injected[kind] = injected.get(kind, 0) + n
            if run == 1:
                box.advance(7)
        assert set(injected) == set(KINDS), f"kinds never injected: {set(KINDS) - set(injected)}; {injected}"
        expected, got = digest(_warehouse(clean)), digest(_warehouse(faulty))
        assert_same(got, expected, ignore=FULL_SYNC_LOGS)
        re_reads = injected["expired_history"] + injected["expired_sync_token"]
        assert sum(got[t][0] for t in FULL_SYNC_LOGS) == sum(expected[t][0] for t in FULL_SYNC_LOGS) + re_reads
