"""The local Dagster instance does not grow without bound: finished runs beyond the newest are pruned."""

from __future__ import annotations

import dagster as dg

from jobs.instance import prune_runs


@dg.op
def _noop() -> None:
    pass


@dg.job
def _tiny():
    _noop()


def test_prune_keeps_only_the_newest_finished_runs():
    with dg.DagsterInstance.ephemeral() as instance:
        run_ids = [_tiny.execute_in_process(instance=instance).run_id for _ in range(5)]
        assert prune_runs(instance, keep=2) == 3
        assert {r.run_id for r in instance.get_runs()} == set(run_ids[-2:])
        assert prune_runs(instance, keep=2) == 0
