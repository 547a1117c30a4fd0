"""How well mail and meetings are matched to deals, against the generator's ground truth.

    .venv/bin/python bench/matching.py [--size medium] [--seed 42]

Builds the org (both CRMs plus Gmail and Calendar), runs the whole chain through Dagster
into a throw-away DuckDB warehouse, then scores every Gmail copy and calendar event copy:
precision = matched to the right deal / matched to any deal; recall = matched to the right
deal / copies that are about a deal. Also prints the rules that decided, with their accuracy.
Exits 1 when precision or recall falls below the floors the suite holds `small` to (0.98, 0.95):
at `medium` this is the scale check that is too slow for `make test` (about 4 minutes).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dagster as dg  # noqa: E402

from jobs.cli import write_sandbox_config  # noqa: E402
from jobs.config import load_config, open_warehouse  # noqa: E402
from jobs.runner import run_job  # noqa: E402
from sandbox.runner import Sandbox  # noqa: E402
from tests.truth import PREDICTED_SQL, activity_truth, score_matching  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["small", "medium", "large"], default="medium")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--min-precision", type=float, default=0.98)
    parser.add_argument("--min-recall", type=float, default=0.95)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="dealsync-matching-") as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        with Sandbox(seed=args.seed, size=args.size, crm="both", workdir=tmp / "sandbox") as box:
            box.export_credentials()
            config = write_sandbox_config(box, tmp / "dealsync.yaml", tmp / "warehouse.duckdb")
            with dg.DagsterInstance.ephemeral() as instance:
                outcome = run_job(config, instance=instance)
            if not outcome.success:
                raise SystemExit(f"the chain failed: {outcome.error}")
            truth = activity_truth(box.org, box.now)
        warehouse = open_warehouse(load_config(config))
        predicted = {r: (deal, rule) for r, deal, rule in warehouse.fetch(PREDICTED_SQL)}
    score = score_matching(truth, predicted)
    print(f"size {args.size}, seed {args.seed}: {score.items:,} mail and meeting copies, "
          f"{score.deal_items:,} about a deal ({time.perf_counter() - started:.0f} s)")
    print(f"{'rule':<20} {'copies':>9} {'correct':>9}")
    for rule, (n, ok) in score.by_rule.items():
        print(f"{rule:<20} {n:>9,} {ok:>9,}")
    print(f"precision {score.precision:.4f}")
    print(f"recall    {score.recall:.4f}")
    if score.precision < args.min_precision or score.recall < args.min_recall:
        print(f"below the floors (precision {args.min_precision}, recall {args.min_recall})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
