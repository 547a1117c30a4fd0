"""Execute a dealsync job through Dagster, on a persistent local instance.

The CLI and the tests go through here, so `dealsync run` is the same Dagster run
that `dagster dev` would launch: same assets, same event log, same lineage.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from jobs.config import load_config
from jobs.definitions import build_definitions

_PROJECT_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"
_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class RunOutcome:
    run_id: str
    success: bool
    rows_by_asset: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    warnings: dict[str, str] = field(default_factory=dict)   # asset -> why it stopped early


def local_instance() -> dg.DagsterInstance:
    """$DAGSTER_HOME's instance when set, else one under .dealsync/dagster (kept between runs)."""
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    home = Path(".dealsync/dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists() and _PROJECT_DAGSTER_YAML.exists():
        shutil.copy(_PROJECT_DAGSTER_YAML, home / "dagster.yaml")
    return dg.DagsterInstance.from_config(str(home))


def run_job(config_path: str | Path, warehouse_path: str | Path | None = None, job: str = "full_chain",
            instance: dg.DagsterInstance | None = None, quiet: bool = True) -> RunOutcome:
    """Run `job` once. A bad config raises ConfigError before anything starts."""
    load_config(config_path, warehouse_path)
    defs = build_definitions(str(config_path), str(warehouse_path) if warehouse_path else None)
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance or local_instance(), raise_on_error=False, run_config=_QUIET if quiet else None)
    return RunOutcome(result.run_id, result.success, _metadata(result, "rows_landed", "rows"),
                      _first_error(result), _metadata(result, "stopped_early"))


def _metadata(result: dg.ExecuteInProcessResult, *keys: str) -> dict:
    """asset -> the first of `keys` present in its materialization metadata."""
    found = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        for key in keys:
            if key in mat.metadata:
                found[mat.asset_key.to_user_string()] = mat.metadata[key].value
                break
    return found


def _first_error(result: dg.ExecuteInProcessResult) -> str | None:
    """The user-facing message of the first failed step: the deepest cause, without traceback."""
    for event in result.all_events:
        if event.is_step_failure:
            info = event.step_failure_data.error
            while info.cause is not None:
                info = info.cause
            message = info.message.strip()
            # Dagster prefixes "module.ClassName: "; the operator needs only what went wrong.
            prefix, sep, rest = message.partition(": ")
            if sep and prefix.split(".")[-1] == info.cls_name:
                message = rest
            return f"step {event.step_key} failed: {message}"
    return None if result.success else "the run failed (see the Dagster event log)"
