"""The Dagster code location loads the way `dagster dev` loads it, with lineage intact."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from jobs.definitions import defs

ROOT = Path(__file__).resolve().parents[1]


def test_dagster_definitions_validate_loads_the_code_location(tmp_path):
    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")  # the project's instance config must load too
    dagster = Path(sys.executable).parent / "dagster"
    result = subprocess.run([str(dagster), "definitions", "validate", "-m", "jobs.definitions"],
                            cwd=ROOT, capture_output=True, text=True, env={"DAGSTER_HOME": str(tmp_path),
                                                                           "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_lineage_runs_from_raw_streams_to_metrics():
    graph = defs.resolve_asset_graph()

    def upstream(key: str) -> set[str]:
        seen, todo = set(), [key]
        while todo:
            node = graph.get(_key(todo.pop()))
            for parent in node.parent_keys:
                name = parent.to_user_string()
                if name not in seen:
                    seen.add(name)
                    todo.append(name)
        return seen

    assert {"raw_salesforce/opportunities", "raw_salesforce/opportunity_history", "model/deals",
            "model/stage_map"} <= upstream("metrics/win_rates")
    assert "raw_salesforce/opportunity_history" in upstream("metrics/time_in_stage")
    assert {j.name for j in defs.jobs} >= {"sync", "metrics", "full_chain"}


def _key(name: str):
    from dagster import AssetKey

    return AssetKey(name.split("/"))


def test_only_configured_sources_get_pull_assets(tmp_path):
    """A pull that yields nothing makes Dagster skip everything downstream, so an unconfigured
    source must have no pull asset, and no model table may depend on its raw tables."""
    import yaml

    from jobs.definitions import build_definitions

    config = tmp_path / "dealsync.yaml"
    config.write_text(yaml.safe_dump({"sources": {"salesforce": {"login_url": "https://127.0.0.1:1"}}}))
    graph = build_definitions(str(config)).resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert "raw_salesforce/opportunities" in keys and "model/deal_activities" in keys
    assert not any(k.startswith(("raw_hubspot/", "raw_google/")) for k in keys), sorted(keys)
    assert {"model/deal_versions", "model/identity_map"} <= {
        p.to_user_string() for p in graph.get(_key("model/deal_stage_history")).parent_keys
        | graph.get(_key("model/deals")).parent_keys}
