"""The Dagster code location: `dagster dev -m jobs.definitions` loads `defs`.

Jobs:
  sync        pull every source into its raw dataset
  metrics     rebuild the unified model and the metric tables from the raw data
  full_chain  both, in order (what `dealsync run` and `make demo` execute)
All run in one process, holding the warehouse's writer lock for the whole run (jobs/resources.py).
"""

from __future__ import annotations

import os

import dagster as dg

from jobs.assets import metric_assets, model_assets, raw_assets
from jobs.config import ConfigError
from jobs.resources import DealsyncConfigResource
from pipeline_model.tables import SOURCES


def build_definitions(config_path: str | None = None, warehouse_path: str | None = None,
                      writer_wait_seconds: float | None = None, preflight: bool = True) -> dg.Definitions:
    """The assets of the configured sources (all of them while no valid config is found)."""
    resource = DealsyncConfigResource(
        config_path=config_path or os.environ.get("DEALSYNC_CONFIG", "dealsync.yaml"),
        warehouse_path=warehouse_path or os.environ.get("DEALSYNC_WAREHOUSE"),
        writer_wait_seconds=writer_wait_seconds,
        preflight=preflight,
    )
    try:
        sources = tuple(resource.load().configured_sources())
    except ConfigError:
        sources = SOURCES     # the code location still loads; a run reports the config problem
    raw, model, metrics = raw_assets(sources), model_assets(sources), metric_assets(sources)
    full_chain = dg.define_asset_job("full_chain", selection=dg.AssetSelection.all(),
                                     executor_def=dg.in_process_executor)
    return dg.Definitions(
        assets=[*raw, *model, *metrics],
        jobs=[dg.define_asset_job("sync", selection=dg.AssetSelection.assets(*raw), executor_def=dg.in_process_executor),
              dg.define_asset_job("metrics", selection=dg.AssetSelection.assets(*model, *metrics),
                                  executor_def=dg.in_process_executor),
              full_chain],
        schedules=[dg.ScheduleDefinition(name="hourly_full_chain", job=full_chain, cron_schedule="0 * * * *",
                                         default_status=dg.DefaultScheduleStatus.STOPPED)],
        resources={"dealsync": resource},
    )


defs = build_definitions()
