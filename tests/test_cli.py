"""The `dealsync` command contract: sandbox, run and demo, as a user types them."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import requests
import yaml

from jobs.cli import main
from jobs.config import load_config
from pipeline_model.warehouse import Warehouse
from sandbox.runner import CREDENTIALS

DEALSYNC = str(Path(sys.executable).parent / "dealsync")


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEALSYNC") and k != "DAGSTER_HOME"}
    return {**env, "COLUMNS": "200"}


@pytest.mark.slow
def test_sandbox_write_config_then_run_then_advance_then_run(tmp_path):
    config = tmp_path / "dealsync.yaml"
    sandbox = subprocess.Popen([DEALSYNC, "sandbox", "--seed", "3", "--crm", "salesforce",
                                "--write-config", str(config)],
                               cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, text=True)
    try:
        banner = []
        for line in sandbox.stdout:  # blocks until the sandbox says it is serving
            banner.append(line)
            if "Serving until Ctrl-C" in line:
                break
        exports = dict(shlex.split(line)[1].split("=", 1) for line in banner if line.startswith("export "))
        assert {"DEALSYNC_SANDBOX_SF_PASSWORD", "DEALSYNC_SANDBOX_GOOGLE_KEY"} <= set(exports), banner
        written = yaml.safe_load(config.read_text())
        assert written["stages"]["salesforce"]["Closed Won"] == "closed_won"
        assert "password" not in written["sources"]["salesforce"]["auth"]
        # The emulators enforce no rate limit: do not wait on Google's production request budget.
        written["sources"]["google"]["requests_per_second"] = 500
        config.write_text(yaml.safe_dump(written))

        env = {**_env(), **exports}
        first = subprocess.run([DEALSYNC, "run", "--config", str(config)], cwd=tmp_path, env=env,
                               capture_output=True, text=True)
        assert first.returncode == 0, first.stderr
        assert "raw_salesforce.opportunities" in first.stdout and "win_rate_by_count" in first.stdout
        assert (tmp_path / ".dealsync" / "warehouse.duckdb").exists()
        # Progress per stream (records, pages) on the terminal and in the log file, and no
        # Dagster traceback.
        log_file = (tmp_path / ".dealsync" / "logs" / "dealsync.log").read_text()
        for stream in ("salesforce opportunities", "google gmail_messages", "google calendar_events"):
            progress = re.compile(rf"{stream}: [1-9][\d,]* records, [1-9][\d,]* pages?")
            assert progress.search(first.stdout + first.stderr), first.stdout + first.stderr
            assert progress.search(log_file)
        assert "Traceback" not in first.stdout + first.stderr

        salesforce = written["sources"]["salesforce"]
        advanced = requests.post(f"{salesforce['login_url']}/__sandbox/advance", json={"days": 7},
                                 verify=salesforce["ca_bundle"])
        assert advanced.status_code == 200 and advanced.json()["counts"]["Opportunity"] > 0
        second = subprocess.run([DEALSYNC, "run", "--config", str(config)], cwd=tmp_path, env=env,
                                capture_output=True, text=True)
        assert second.returncode == 0, second.stderr
        line = next(ln for ln in second.stdout.splitlines() if "raw_salesforce.opportunities" in ln)
        this_run, in_warehouse = (int(cell.strip().replace(",", "")) for cell in line.split("│")[-2:])
        assert 0 < this_run < in_warehouse
    finally:
        sandbox.send_signal(signal.SIGINT)
        assert sandbox.wait(timeout=60) == 0


@pytest.mark.slow
def test_the_readme_incremental_flow_finds_the_week_in_every_live_source_and_measures_on_its_day(tmp_path):
    """README, "The CLI": `dealsync sandbox --port P --write-config dealsync.yaml`; in a second
    shell the `export` lines it printed, `dealsync run`, one advance POSTed to the Salesforce
    emulator, `dealsync run` again. The default org (crm both) now lives in HubSpot, so the week
    changes HubSpot, Gmail and Calendar: an advance that moved only the emulator it reached found
    nothing, and a pinned metrics.as_of measured on the old day."""
    port = _free_port()
    sandbox = subprocess.Popen([DEALSYNC, "sandbox", "--port", str(port), "--write-config", "dealsync.yaml"],
                               cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, text=True)
    try:
        exports = [line.strip() for line in _until_serving(sandbox) if line.startswith("export ")]
        assert len(exports) == 5
        _unthrottled(tmp_path / "dealsync.yaml")
        _second_shell(tmp_path, exports)
        advanced = requests.post(f"https://127.0.0.1:{port}/__sandbox/advance", data='{"days": 7}',
                                 verify=str(tmp_path / ".dealsync" / "sandbox" / "tls" / "ca.pem"))
        assert advanced.status_code == 200, advanced.text
        second = _synced(_second_shell(tmp_path, exports))
    finally:
        sandbox.send_signal(signal.SIGINT)
        assert sandbox.wait(timeout=60) == 0
    assert {stream.split(".")[0] for stream in second} == {"raw_salesforce", "raw_hubspot", "raw_google"}
    # What the advance says changed in each vendor, read in full by the second run (which also
    # re-reads a record or two at each cursor, and lists owners and pipelines every time).
    changed = {name: e["counts"] for name, e in advanced.json()["emulators"].items()}
    for stream, vendor, kind in (("raw_hubspot.deals", "hubspot", "deals"), ("raw_hubspot.emails", "hubspot", "emails"),
                                 ("raw_hubspot.meetings", "hubspot", "meetings"),
                                 ("raw_google.gmail_messages", "google", "messages"),
                                 ("raw_google.calendar_events", "google", "events")):
        assert second[stream] >= changed[vendor].get(kind, 0) > 0, (stream, second, changed)
    warehouse = Warehouse(load_config(tmp_path / "dealsync.yaml").warehouse)
    assert warehouse.fetch("select as_of from model.metric_settings")[0][0] == \
        datetime.fromisoformat(advanced.json()["now"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _until_serving(sandbox: subprocess.Popen) -> list[str]:
    banner = []
    for line in sandbox.stdout:  # blocks until the sandbox says it is serving
        banner.append(line)
        if "Serving until Ctrl-C" in line:
            return banner
    raise AssertionError(f"the sandbox exited: {banner}")


def _unthrottled(config: Path) -> None:
    """The one step the README does not have: the emulators enforce no rate limit, and a test
    should not wait on HubSpot's and Google's production request budgets."""
    written = yaml.safe_load(config.read_text())
    written["sources"]["hubspot"].update(requests_per_second=500, search_requests_per_second=500)
    written["sources"]["google"]["requests_per_second"] = 500
    config.write_text(yaml.safe_dump(written, sort_keys=False))


def _second_shell(cwd: Path, exports: list[str]) -> str:
    """The export lines pasted into a shell whose PATH has the venv's bin (`. .venv/bin/activate`),
    then `dealsync run --config dealsync.yaml`: its output."""
    env = {**_env(), "PATH": f"{Path(DEALSYNC).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    script = "\n".join([*exports, "dealsync run --config dealsync.yaml"])
    run = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr or run.stdout
    return run.stdout


def _synced(summary: str) -> dict[str, int]:
    """stream -> the "this run" column of the summary's Records synced table."""
    rows = {}
    for line in summary.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) == 3 and cells[0].startswith("raw_"):
            rows[cells[0]] = int(cells[1].replace(",", ""))
    return rows


@pytest.mark.slow
def test_demo_syncs_the_sandbox_and_prints_a_summary(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name in (*CREDENTIALS, "DEALSYNC_SANDBOX_GOOGLE_KEY"):
        monkeypatch.setenv(name, "")  # the demo exports these; monkeypatch restores them afterwards
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert main(["demo", "--seed", "5"]) == 0
    out = capsys.readouterr().out
    for expected in ("raw_salesforce.tasks", "raw_hubspot.deals", "raw_google.gmail_messages",
                     "raw_google.calendar_events", "Open pipeline by stage", "win_rate_by_value", "avg_days_in_stage",
                     "avg_sales_cycle_days"):
        assert expected in out
    assert (tmp_path / ".dealsync" / "warehouse.duckdb").exists()
    assert (tmp_path / ".dealsync" / "dagster" / "dagster.yaml").exists()  # runs are kept in a local instance
    _assert_no_body_or_credential_in_any_raw_dataset(tmp_path / ".dealsync" / "warehouse.duckdb", seed=5)


def _assert_no_body_or_credential_in_any_raw_dataset(path, seed: int) -> None:
    """Scan every text value of every raw table for mail bodies and the sandbox's secrets."""
    import duckdb

    from sandbox.org import SyntheticOrg

    org = SyntheticOrg(seed=seed, size="small", crm="both")
    bodies = {m["body"].split("\n\n")[1][:60] for _, m in org.gmail_messages(org.now)}
    bodies = {b for b in bodies if len(b) >= 40}
    secrets = [v for v in CREDENTIALS.values()]
    con = duckdb.connect(str(path), read_only=True)
    columns = con.execute("select table_schema, table_name, column_name from information_schema.columns "
                          "where table_schema like 'raw_%' and data_type = 'VARCHAR'").fetchall()
    assert {schema.removesuffix("_staging") for schema, _, _ in columns} == \
        {"raw_salesforce", "raw_hubspot", "raw_google"}
    values = [v for schema, table, column in columns
              for (v,) in con.execute(f'select distinct "{column}" from {schema}."{table}"').fetchall() if v]
    assert len(bodies) > 100 and len(values) > 10_000
    text = "\n".join(values)
    assert not [b for b in bodies if b in text]
    assert not [s for s in secrets if s in text]
    assert "PRIVATE KEY" not in text
