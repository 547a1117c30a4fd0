"""Mail and meetings are matched to the right deals on the `medium` org (10k deals), both CRMs.

The same measurement as bench/matching.py: every Gmail copy and calendar event copy is
scored against the generator's ground truth. The client-side request budgets are raised
(the emulators enforce no limit) so the suite does not wait on a production rate limit.
"""

from __future__ import annotations

import dagster as dg

from jobs.config import load_config, open_warehouse
from jobs.runner import run_job
from sandbox.runner import Sandbox
from tests.conftest import _EnvProxy, unthrottled_config
from tests.truth import PREDICTED_SQL, activity_truth, score_matching


def test_matching_precision_and_recall_on_medium(tmp_path, monkeypatch):
    with Sandbox(seed=42, size="medium", crm="both", workdir=tmp_path / "sandbox") as box:
        box.export_credentials(_EnvProxy(monkeypatch))
        config_path = unthrottled_config(box, tmp_path / "dealsync.yaml", tmp_path / "warehouse.duckdb")
        with dg.DagsterInstance.ephemeral() as instance:
            outcome = run_job(config_path, instance=instance)
        assert outcome.success, outcome.error
        truth = activity_truth(box.org, box.now)
    predicted = {r: (deal, rule) for r, deal, rule in open_warehouse(load_config(config_path)).fetch(PREDICTED_SQL)}
    score = score_matching(truth, predicted)
    assert score.deal_items > 100_000
    assert score.precision >= 0.98, score.by_rule
    assert score.recall >= 0.95, score.by_rule
