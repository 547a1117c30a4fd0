"""Execute a dealsync job through Dagster, on a persistent local instance.

The CLI and the tests go through here, so `dealsync run` is the same Dagster run
that `dagster dev` would launch: same assets, same event log, same lineage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from jobs.config import load_config
from jobs.definitions import build_definitions
from jobs.preflight import problems
from jobs.instance import failure_message, local_instance, process_tags, prune_runs, reclaim_dead_runs

# Dagster's own console output is its event stream with tracebacks: the CLI says what matters
# itself (dealsync's loggers, one line per failure), and the event log keeps everything.
_QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass
class RunOutcome:
    run_id: str                                               # "" when the checks stopped it before a run
    success: bool
    rows_by_asset: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)         # one line per failed step
    details: list[str] = field(default_factory=list)          # each failure in full, with its traceback
    warnings: dict[str, str] = field(default_factory=dict)    # asset -> why it stopped early

    @property
    def error(self) -> str | None:
        """The failures as one message (None when the run succeeded)."""
        if self.success:
            return None
        return "; ".join(self.failures) or "the run failed (see the Dagster event log)"


def run_job(config_path: str | Path, warehouse_path: str | Path | None = None, job: str = "full_chain",
            instance: dg.DagsterInstance | None = None, quiet: bool = True,
            writer_wait_seconds: float | None = None) -> RunOutcome:
    """Run `job` once. A bad config raises ConfigError before anything starts; an unset secret
    or an unreachable server returns a failed outcome, one line per problem, without a run."""
    found = problems(load_config(config_path, warehouse_path))
    if found:
        return RunOutcome(run_id="", success=False, failures=found)
    instance = instance or local_instance()
    reclaim_dead_runs(instance)
    defs = build_definitions(str(config_path), str(warehouse_path) if warehouse_path else None,
                             writer_wait_seconds=writer_wait_seconds, preflight=False)
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, raise_on_error=False, run_config=_QUIET if quiet else None,
        # Tagged before its first step, so a kill at any point leaves a run a later one can reclaim.
        tags=process_tags())
    prune_runs(instance)
    failures, details = _failures(result)
    return RunOutcome(result.run_id, result.success, _metadata(result, "rows_landed", "rows"),
                      failures, details, _metadata(result, "stopped_early"))


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


def _failures(result: dg.ExecuteInProcessResult) -> tuple[list[str], list[str]]:
    """One line per failed step (its user-facing message, the deepest cause), and each in full."""
    lines, details = [], []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            lines.append(f"step {event.step_key} failed: {failure_message(error)}")
            details.append(f"step {event.step_key}:\n{error.to_string()}")
        elif event.event_type == dg.DagsterEventType.RUN_FAILURE and not lines:
            # No step failed: the run's resources did not start (a busy or damaged warehouse).
            error = _run_error(result) or getattr(event.event_specific_data, "error", None)
            lines.append(failure_message(error) if error else event.message.splitlines()[0])
            details.extend([error.to_string()] if error else [])
    return lines, details


def _run_error(result: dg.ExecuteInProcessResult):
    """The first error an event of the run carries (a resource's failure to start)."""
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None)
        if error is not None:
            return error
    return None
