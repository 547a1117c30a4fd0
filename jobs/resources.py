"""Dagster resources: where the configuration file is, and the warehouse it names."""


from typing import Optional

import dagster as dg

from jobs.config import DealsyncConfig, load_config, open_warehouse
from pipeline_model.warehouse import Warehouse


class DealsyncConfigResource(dg.ConfigurableResource):
    """Points at dealsync.yaml. Only the path is Dagster config: secrets stay in env vars."""

    config_path: str = "dealsync.yaml"
    warehouse_path: Optional[str] = None

    def load(self) -> DealsyncConfig:
        return load_config(self.config_path, self.warehouse_path)

    def warehouse(self) -> Warehouse:
        return open_warehouse(self.load())
