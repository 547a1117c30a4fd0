"""Bad configuration and dead servers give one clear message, not a traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import dagster as dg
import pytest
import yaml

from jobs.cli import main
from jobs.config import ConfigError, load_config
from jobs.definitions import build_definitions
from jobs.instance import failure_message
from jobs.runner import run_job
from pipeline_model.warehouse import Warehouse


def _write(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "dealsync.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _valid() -> dict:
    return {"sources": {"salesforce": {"login_url": "https://127.0.0.1:9", "auth": {"method": "password"},
                                       "retry": {"attempts": 2, "backoff_seconds": 0.01}}}}


def test_valid_config_resolves_paths_relative_to_the_file(tmp_path):
    config = load_config(_write(tmp_path, _valid()))
    assert config.warehouse.path == tmp_path / ".dealsync/warehouse.duckdb"
    assert config.stage_mappings()["salesforce"]["Closed Won"].value == "closed_won"


@pytest.mark.parametrize("mutate, field, words", [
    (lambda c: c.pop("sources"), "sources", "Field required"),
    (lambda c: c["sources"]["salesforce"].update(timeout_seconds="soon"), "sources.salesforce.timeout_seconds",
     "valid number"),
    (lambda c: c.update(stages={"salesforce": {"Prospecting": "prospectin"}}), "stages.salesforce.Prospecting",
     "'prospectin'"),
    (lambda c: c["sources"]["salesforce"]["auth"].update(password="hunter2"), "sources.salesforce.auth.password",
     "unknown setting"),
    (lambda c: c["sources"]["salesforce"]["auth"].update(method="magic"), "sources.salesforce.auth.method", "password"),
])
def test_bad_config_names_the_file_and_the_field(tmp_path, mutate, field, words):
    config = _valid()
    mutate(config)
    path = _write(tmp_path, config)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message and field in message and words in message
    assert "hunter2" not in message


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources:\n  salesforce: [unclosed\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line \d+"):
        load_config(bad)


def test_cli_prints_config_error_without_traceback(tmp_path, capsys):
    config = _valid()
    config["stages"] = {"salesforce": {"Prospecting": "prospectin"}}
    path = _write(tmp_path, config)
    assert main(["run", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "stages.salesforce.Prospecting" in err and str(path) in err and "Traceback" not in err


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_fails_the_run_with_a_clear_message(tmp_path, monkeypatch, instance, capsys):
    for name in ("SALESFORCE_USERNAME", "SALESFORCE_PASSWORD", "SALESFORCE_SECURITY_TOKEN"):
        monkeypatch.setenv(name, "x-secret-value")
    config = _valid()
    config["sources"]["salesforce"]["login_url"] = f"https://127.0.0.1:{_closed_port()}"
    path = _write(tmp_path, config)
    outcome = run_job(path, instance=instance)
    assert not outcome.success
    assert "salesforce" in outcome.error and "cannot reach" in outcome.error and "connection refused" in outcome.error
    assert "x-secret-value" not in outcome.error
    assert not Warehouse(load_config(path).warehouse).table_exists("model", "deals")
    assert main(["run", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "cannot reach" in err and "Traceback" not in err


def test_missing_credentials_are_named(tmp_path, monkeypatch, instance):
    for name in ("SALESFORCE_USERNAME", "SALESFORCE_PASSWORD", "SALESFORCE_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    outcome = run_job(_write(tmp_path, _valid()), instance=instance)
    assert not outcome.success and "SALESFORCE_USERNAME" in outcome.error and "not set" in outcome.error


def test_a_run_launched_by_dagster_is_checked_before_its_first_step(tmp_path, monkeypatch, instance):
    """`dagster dev` and the schedule launch runs without jobs.runner: the resource checks them."""
    for name in ("SALESFORCE_USERNAME", "SALESFORCE_PASSWORD", "SALESFORCE_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    path = _write(tmp_path, _valid())
    result = build_definitions(str(path)).resolve_job_def("full_chain").execute_in_process(
        instance=instance, raise_on_error=False)
    assert not result.success
    assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START]
    [message] = {failure_message(e.event_specific_data.error) for e in result.all_events
                 if getattr(e.event_specific_data, "error", None) is not None}
    assert "SALESFORCE_USERNAME" in message and "SALESFORCE_PASSWORD" in message and "not set" in message
    assert not Path(load_config(path).warehouse.path).exists()


def test_a_refused_salesforce_login_is_one_clean_line_without_the_secret(sandbox, sandbox_config, monkeypatch,
                                                                          instance, capsys):
    monkeypatch.setenv("DEALSYNC_SANDBOX_SF_PASSWORD", "wrong-hunter2-password")
    outcome = run_job(sandbox_config, instance=instance)
    assert not outcome.success
    assert "salesforce" in outcome.error and "login refused (INVALID_LOGIN)" in outcome.error
    # simple-salesforce's own `message` is an unformatted template: no "{content}" may leak through.
    assert "{" not in outcome.error and "}" not in outcome.error
    assert "wrong-hunter2-password" not in outcome.error and "SANDBOXTOKEN" not in outcome.error
    assert "DEALSYNC_SANDBOX_SF_PASSWORD" in outcome.error     # which variable to fix
    assert main(["run", "--config", str(sandbox_config)]) == 1
    err = capsys.readouterr().err
    assert "login refused (INVALID_LOGIN)" in err and "{" not in err and "wrong-hunter2-password" not in err
