"""PostgreSQL warehouse specifics. (That the same input gives the same tables, row for row,
on DuckDB and PostgreSQL is checked in test_end_to_end, on its two synced warehouses.)"""

from __future__ import annotations

import pytest
import yaml

from connectors.secrets import MissingSecret
from jobs.config import load_config, open_warehouse
from tests.conftest import warehouse_backend


def test_postgres_password_is_read_from_the_variable_the_config_names(tmp_path, monkeypatch):
    with warehouse_backend("postgres", tmp_path) as block:
        block["postgres"]["password_env"] = "DEALSYNC_TEST_PG_PASSWORD"
        path = tmp_path / "dealsync.yaml"
        path.write_text(yaml.safe_dump({"warehouse": block, "sources": {"hubspot": {}}}))
        monkeypatch.delenv("DEALSYNC_TEST_PG_PASSWORD", raising=False)
        with pytest.raises(MissingSecret, match="DEALSYNC_TEST_PG_PASSWORD"):
            open_warehouse(load_config(path))
        monkeypatch.setenv("DEALSYNC_TEST_PG_PASSWORD", "p@ss:w/rd %?")   # characters a DSN must escape
        assert open_warehouse(load_config(path)).fetch("select 1 + 1") == [(2,)]
