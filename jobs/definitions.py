"""The Dagster code location: `dagster dev -m jobs.definitions` loads `defs`.

Jobs:
  sync        pull every source into its raw dataset
  metrics     rebuild the unified model and the metric tables from the raw data
  full_chain  both, in order (what `dealsync run` and `make demo` execute)
All run in one process: DuckDB allows a single writer, and the chain is sequential anyway.
"""

from __future__ import annotations

import os

import dagster as dg

from jobs.assets import METRIC_ASSETS, MODEL_ASSETS, RAW_ASSETS
from jobs.resources import DealsyncConfigResource

ALL_ASSETS = [*RAW_ASSETS, *MODEL_ASSETS, *METRIC_ASSETS]

sync_job = dg.define_asset_job("sync", selection=dg.AssetSelection.assets(*RAW_ASSETS),
                               executor_def=dg.in_process_executor)
metrics_job = dg.define_asset_job("metrics", selection=dg.AssetSelection.assets(*MODEL_ASSETS, *METRIC_ASSETS),
                                  executor_def=dg.in_process_executor)
full_chain_job = dg.define_asset_job("full_chain", selection=dg.AssetSelection.all(),
                                     executor_def=dg.in_process_executor)

hourly_chain = dg.ScheduleDefinition(name="hourly_full_chain", job=full_chain_job, cron_schedule="0 * * * *",
                                     default_status=dg.DefaultScheduleStatus.STOPPED)


def build_definitions(config_path: str | None = None, warehouse_path: str | None = None) -> dg.Definitions:
    resource = DealsyncConfigResource(
        config_path=config_path or os.environ.get("DEALSYNC_CONFIG", "dealsync.yaml"),
        warehouse_path=warehouse_path or os.environ.get("DEALSYNC_WAREHOUSE"),
    )
    return dg.Definitions(
        assets=ALL_ASSETS,
        jobs=[sync_job, metrics_job, full_chain_job],
        schedules=[hourly_chain],
        resources={"dealsync": resource},
    )


defs = build_definitions()
