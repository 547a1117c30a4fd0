"""Dagster resources: the run's configuration, and its hold on the warehouse.

One `DealsyncConfigResource` serves a whole run (the jobs execute in one process). When the run
starts it reads dealsync.yaml once, checks secrets and servers (jobs.preflight: a run that
`dagster dev` or the schedule launches gets the same checks as `dealsync run`), takes the
warehouse's writer lock (pipeline_model.writer) and reclaims the records of runs whose process
died; when it ends it records the run's outcome in the warehouse and, if every step succeeded,
publishes the run's tables as one version.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import dagster as dg
from pydantic import PrivateAttr, SecretStr

from jobs.config import DealsyncConfig, load_config, open_warehouse, privacy_key
from jobs.instance import failure_message, reclaim_dead_runs, tag_run
from jobs.preflight import problems
from pipeline_model import privacy
from pipeline_model.tables import METRIC_TABLES, MODEL_TABLES
from pipeline_model.warehouse import Warehouse
from pipeline_model.writer import Outcome, WriteSession, new_holder, writing


class PreflightFailed(Exception):
    """A secret is unset or a server does not answer: found before the run touched anything."""


class DealsyncConfigResource(dg.ConfigurableResource):
    """Points at dealsync.yaml. Only the path is Dagster config: secrets stay in env vars."""

    config_path: str = "dealsync.yaml"
    warehouse_path: Optional[str] = None
    # How long a run waits for another run writing the same warehouse; None: the config's
    # warehouse.writer_wait_minutes.
    writer_wait_seconds: Optional[float] = None
    # False when the caller has just run the checks itself (jobs.runner, before creating a run).
    preflight: bool = True

    _config: Optional[DealsyncConfig] = PrivateAttr(default=None)
    _session: Optional[WriteSession] = PrivateAttr(default=None)

    def load(self) -> DealsyncConfig:
        """The run's configuration, read once when the run started (outside a run: now)."""
        return self._config or load_config(self.config_path, self.warehouse_path)

    def warehouse(self) -> Warehouse:
        """What this run writes: the writer's working copy during a run."""
        return self._session.warehouse if self._session else open_warehouse(self.load())

    def privacy_key(self) -> Optional[SecretStr]:
        """The privacy key; None in keep mode (never logged: a SecretStr)."""
        return privacy_key(self.load())

    def scratch_dir(self) -> Optional[Path]:
        """Where this run's temporary files go (None outside a run: the system's temp folder)."""
        return self._session.scratch if self._session else None

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator["DealsyncConfigResource"]:
        config = load_config(self.config_path, self.warehouse_path)
        if self.preflight and (found := problems(config)):
            raise PreflightFailed("; ".join(found))     # before the lock: the warehouse is not touched
        published = open_warehouse(config)
        run = context.run
        tag_run(context.instance, run.run_id)
        wait = self.writer_wait_seconds
        wait = config.warehouse.writer_wait_minutes * 60 if wait is None else wait
        with writing(published, new_holder(run.run_id), run.job_name, wait, interrupted=_interrupted,
                     whole_model=_rebuilds_whole_model(run, config)) as session:
            # Tagged only once it holds the lock: a run still waiting must not look like a dead writer.
            tag_run(context.instance, run.run_id, warehouse=published.identity)
            reclaim_dead_runs(context.instance, published.identity, except_run=run.run_id)
            self._config, self._session = config, session
            try:
                # Before any step: a run in a new privacy mode (or key) must not build on the old model.
                if privacy.prepare(session.warehouse, config.privacy, privacy_key(config),
                                   session.record_with_publish if session.new_version else None):
                    context.log.info(f"privacy.personal_fields is now {config.privacy.personal_fields} (or its "
                                     "key changed): the model and metric tables are rebuilt from scratch")
                yield self
            finally:
                self._config = self._session = None
                session.finish(_outcome(context, raised=sys.exc_info()[0] is not None))


def _outcome(context: dg.InitResourceContext, raised: bool) -> Outcome:
    """Success only when every planned step succeeded and nothing was interrupted."""
    run_id = context.run.run_id
    succeeded, failures = set(), []
    for entry in context.instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_SUCCESS:
            succeeded.add(entry.step_key)
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            failures.append(f"{entry.step_key}: {failure_message(event.step_failure_data.error)}")
    planned = set(context.run.step_keys_to_execute or succeeded)
    ok = not raised and not failures and planned <= succeeded
    if not ok and not failures:
        failures.append("the run was interrupted before all its steps ran")
    return Outcome(ok, failures)


def _rebuilds_whole_model(run: dg.DagsterRun, config: DealsyncConfig) -> bool:
    """Whether the run builds every model and metric table (a `sync`, a retry of some steps or
    a selection of assets in `dagster dev` builds some or none, in place)."""
    if run.step_keys_to_execute is None:         # the whole job
        return run.job_name in ("full_chain", "metrics")
    tables = (*MODEL_TABLES, *METRIC_TABLES)
    every = {"stage_tables", *(dg.AssetKey(t.qualified.split(".")).to_python_identifier()
             for t in tables if t.parts_for(config.configured_sources()))}
    return every <= set(run.step_keys_to_execute)


def _interrupted() -> bool:
    """Whether Dagster captured a SIGINT/SIGTERM (it defers them while a step sets up)."""
    from dagster._utils.interrupts import check_captured_interrupt

    return check_captured_interrupt()
