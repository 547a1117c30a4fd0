"""Shared fixtures: a running sandbox, its dealsync.yaml, and a throw-away Dagster instance."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import dagster as dg
import pytest
import yaml

from jobs.cli import write_sandbox_config
from sandbox.runner import Sandbox


@contextmanager
def running_sandbox(tmp_path, monkeypatch, seed: int = 7, crm: str = "salesforce", google: bool = False,
                    currencies: tuple[str, ...] | None = None):
    """A small sandbox with its credentials in the environment (Salesforce only by default:
    the HubSpot and Google pulls have their own tests; one currency unless `currencies`)."""
    with Sandbox(seed=seed, size="small", workdir=tmp_path / "sandbox", crm=crm, google=google,
                 currencies=currencies) as box:
        box.export_credentials(_EnvProxy(monkeypatch))
        yield box


def write_config(box: Sandbox, tmp_path, only: str | None = None, **overrides):
    """The sandbox's dealsync.yaml, optionally with one source only and overridden settings for it."""
    config = box.config(str(tmp_path / "warehouse.duckdb"))
    if only:
        config["sources"] = {only: {**config["sources"][only], **overrides}}
    path = tmp_path / "dealsync.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def unthrottled_config(box: Sandbox, path, warehouse_path):
    """The sandbox's dealsync.yaml with the HubSpot and Google request budgets raised: the
    emulators enforce no rate limit, and tests should not wait on a production one."""
    write_sandbox_config(box, path, warehouse_path)
    config = yaml.safe_load(path.read_text())
    if "hubspot" in config["sources"]:
        config["sources"]["hubspot"].update(requests_per_second=500, search_requests_per_second=500)
    if "google" in config["sources"]:
        config["sources"]["google"].update(requests_per_second=500)
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A fresh small sandbox per test: tests that advance time must not share one."""
    with running_sandbox(tmp_path, monkeypatch) as box:
        yield box


@pytest.fixture
def sandbox_config(sandbox, tmp_path):
    return write_sandbox_config(sandbox, tmp_path / "dealsync.yaml", tmp_path / "warehouse.duckdb")


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture(scope="module")
def org():
    """The small seed-42 org, shared by the generator's tests of one file."""
    from sandbox.org import SyntheticOrg

    return SyntheticOrg(seed=42, size="small")


@pytest.fixture(scope="module")
def sf(org) -> dict:
    """Its Salesforce records at `now`, by object and id."""
    out: dict[str, dict] = {}
    for obj, rec in org.records(org.now):
        out.setdefault(obj, {})[rec["Id"]] = rec
    return out


class _EnvProxy(dict):
    """Lets Sandbox.export_credentials set env vars through monkeypatch (undone after the test)."""

    def __init__(self, monkeypatch):
        super().__init__()
        self._mp = monkeypatch

    def update(self, values):
        for key, value in values.items():
            self._mp.setenv(key, value)


@contextmanager
def warehouse_backend(backend: str, tmp_path):
    """The `warehouse:` block of a config for this backend; for PostgreSQL, a fresh database on
    the machine's server (127.0.0.1:5432, user postgres, trust auth), dropped afterwards."""
    if backend == "duckdb":
        yield {"backend": "duckdb", "path": str(tmp_path / "warehouse.duckdb")}
        return
    import uuid

    import psycopg2

    name = f"dealsync_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"create database {name}")
    try:
        yield {"backend": "postgres", "postgres": {"host": "127.0.0.1", "port": 5432, "user": "postgres",
                                                   "database": name}}
    finally:
        admin.cursor().execute(f"drop database if exists {name} with (force)")
        admin.close()


def with_warehouse(config_path, block: dict) -> None:
    config = yaml.safe_load(config_path.read_text())
    config["warehouse"] = block
    config_path.write_text(yaml.safe_dump(config))


@contextmanager
def synced_on_both_backends(tmp: Path, configure: Callable[[Path], None] | None = None,
                            prepare: Callable[[Sandbox], None] | None = None, **sandbox) -> Iterator[dict]:
    """One sandbox (`running_sandbox(**sandbox)`), synced once through Dagster into a DuckDB and a
    PostgreSQL warehouse: backend -> (box, outcome, warehouse, Dagster instance). `prepare` changes
    the sandbox's data before the first run; `configure` edits each backend's dealsync.yaml
    before its run."""
    from jobs.config import load_config
    from jobs.runner import run_job
    from pipeline_model.warehouse import Warehouse

    with pytest.MonkeyPatch.context() as mp, running_sandbox(tmp, mp, **sandbox) as box, \
            dg.DagsterInstance.ephemeral() as inst, warehouse_backend("duckdb", tmp / "duckdb") as duck, \
            warehouse_backend("postgres", tmp / "postgres") as pg:
        if prepare:
            prepare(box)
        synced = {}
        for backend, block in (("duckdb", duck), ("postgres", pg)):
            config = unthrottled_config(box, tmp / f"{backend}.yaml", tmp / f"{backend}.duckdb")
            with_warehouse(config, block)
            if configure:
                configure(config)
            outcome = run_job(config, instance=inst)
            assert outcome.success, outcome.error
            synced[backend] = (box, outcome, Warehouse(load_config(config).warehouse), inst)
        yield synced
