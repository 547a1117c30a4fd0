"""The kill campaign: `dealsync run` killed with SIGKILL at seeded random points (while it pulls,
while dlt normalises or loads, while the model is rebuilt), then run again. After every kill
the next run must start at once (no lock or slot left behind), succeed, and leave raw, model
and metric tables equal to an uninterrupted sync (row counts and a content hash per table).

`make test` runs a short subset on the small org; `make campaign` the full campaign:
DEALSYNC_CAMPAIGN_TRIALS (default 2: one kill while pulling, one in the model build), DEALSYNC_CAMPAIGN_SIZE (small) and
DEALSYNC_CAMPAIGN_SEED (11) choose how many kills, on which org, where.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from jobs.config import load_config
from pipeline_model.warehouse import Warehouse
from sandbox.runner import Sandbox
from tests.conftest import unthrottled_config
from tests.warehouse_digest import assert_same, digest

pytestmark = pytest.mark.slow

TRIALS = int(os.environ.get("DEALSYNC_CAMPAIGN_TRIALS", "2"))
SIZE = os.environ.get("DEALSYNC_CAMPAIGN_SIZE", "small")
SEED = int(os.environ.get("DEALSYNC_CAMPAIGN_SEED", "11"))
DEALSYNC = str(Path(sys.executable).with_name("dealsync"))
PHASES = ("pull", "model", "load", "normalize")          # the trials take them in turn
VENDORS = ("salesforce", "hubspot", "google")


@dataclass(frozen=True)
class KillPoint:
    phase: str
    nth: float            # pull: share of the API calls served; model: share of the tables built
    vendor: str           # normalize / load: whose step

    def __str__(self) -> str:
        where = self.vendor if self.phase in ("normalize", "load") else f"{self.nth:.0%}"
        return f"{self.phase}@{where}"


def kill_points(seed: int, trials: int) -> list[KillPoint]:
    rng = random.Random(seed)
    return [KillPoint(PHASES[i % len(PHASES)], rng.uniform(0.05, 0.95), rng.choice(VENDORS)) for i in range(trials)]


class _Run:
    """A `dealsync run` subprocess whose output lines are read as they come."""

    def __init__(self, config: Path, cwd: Path, env: dict):
        self.process = subprocess.Popen([DEALSYNC, "run", "--config", str(config)], cwd=cwd, env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def next_line(self) -> str | None:
        """The next line, or "" when none came within a moment (None: the output ended)."""
        try:
            line = self.lines.get(timeout=0.05)
        except queue.Empty:
            return ""
        if line:
            self.output.append(line)
        return line

    def finish(self) -> int:
        while self.next_line() is not None:
            pass
        return self.process.wait()


@dataclass
class Reference:
    digest: dict
    api_calls: int
    tables_built: int


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("campaign")
    with Sandbox(seed=7, size=SIZE, crm="both", google=True, workdir=workdir / "sandbox") as box:
        env = {**os.environ, **box.credentials}
        config = unthrottled_config(box, workdir / "reference.yaml", workdir / "reference.duckdb")
        before = _api_calls(box)
        run = _Run(config, workdir, env)
        assert run.finish() == 0, "".join(run.output)
        built = sum(" built " in line for line in run.output)
        yield box, env, Reference(digest(_warehouse(config)), _api_calls(box) - before, built)


def _api_calls(box: Sandbox) -> int:
    return sum(emulator.requests_served for emulator in box.emulators)


def _warehouse(config: Path) -> Warehouse:
    return Warehouse(load_config(config).warehouse)


def _reached(point: KillPoint, line: str, calls: int, built: int, reference: Reference) -> bool:
    if point.phase == "pull":
        return calls >= point.nth * reference.api_calls
    if point.phase == "model":
        return built >= max(1, round(point.nth * reference.tables_built))
    return f"{point.vendor}: {point.phase} started" in line


@pytest.mark.parametrize("point", kill_points(SEED, TRIALS), ids=str)
def test_a_sync_killed_at_any_point_is_recovered_by_the_next_run(campaign, point, tmp_path):
    box, env, reference = campaign
    config = unthrottled_config(box, tmp_path / "dealsync.yaml", tmp_path / "warehouse.duckdb")
    start = _api_calls(box)
    run, built, line = _Run(config, tmp_path, env), 0, ""
    while not _reached(point, line, _api_calls(box) - start, built, reference):
        line = run.next_line()
        if line is None:
            pytest.fail(f"the run ended before {point}:\n{''.join(run.output)}")
        built += " built " in line
    run.process.send_signal(signal.SIGKILL)
    run.finish()

    after = _Run(config, tmp_path, env)
    assert after.finish() == 0, "".join(after.output)
    assert not any("waiting for the warehouse" in out for out in after.output)     # nothing held
    instance = dg.DagsterInstance.from_config(str(tmp_path / ".dealsync" / "dagster"))
    assert sorted(r.status.value for r in instance.get_runs()) == ["FAILURE", "SUCCESS"]
    assert_same(digest(_warehouse(config)), reference.digest)
