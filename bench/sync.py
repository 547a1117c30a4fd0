"""Time the Salesforce chain end to end against the sandbox: full sync, model + metrics, incremental sync.

    .venv/bin/python bench/sync.py [--size medium] [--seed 42] [--advance-days 7]

Runs the real Dagster jobs (`sync`, then `metrics`) with the real simple-salesforce
client over HTTPS against the emulator, into a throw-away DuckDB warehouse, and prints
seconds, rows and rows per second for each phase, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dagster as dg  # noqa: E402

from jobs.cli import write_sandbox_config  # noqa: E402
from jobs.runner import run_job  # noqa: E402
from sandbox.runner import Sandbox  # noqa: E402


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    return result, seconds


def _phase(label: str, config: Path, job: str, instance) -> None:
    outcome, seconds = _timed(lambda: run_job(config, job=job, instance=instance))
    if not outcome.success:
        raise SystemExit(f"{label} failed: {outcome.error}")
    rows = sum(n for asset, n in outcome.rows_by_asset.items() if asset.startswith("raw_")) if job == "sync" \
        else sum(outcome.rows_by_asset.values())
    print(f"{label:<28} {seconds:8.1f} s  {rows:>10,} rows  {rows / seconds:>10,.0f} rows/s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["small", "medium", "large"], default="medium")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--advance-days", type=float, default=7)
    parser.add_argument("--crm", choices=["salesforce", "hubspot", "both"], default="salesforce")
    parser.add_argument("--google", action="store_true", help="also sync the reps' Gmail and calendars")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="dealsync-bench-") as tmp:
        tmp = Path(tmp)
        box, seconds = _timed(lambda: Sandbox(seed=args.seed, size=args.size, crm=args.crm, google=args.google,
                                            workdir=tmp / "sandbox").start())
        try:
            print(f"size {args.size}, seed {args.seed}, crm {args.crm}, google {args.google}: "
                  f"sandbox up in {seconds:.1f} s")
            box.export_credentials()
            config = write_sandbox_config(box, tmp / "dealsync.yaml", tmp / "warehouse.duckdb")
            with dg.DagsterInstance.ephemeral() as instance:
                _phase("full sync (job sync)", config, "sync", instance)
                _phase("model + metrics (job metrics)", config, "metrics", instance)
                box.advance(args.advance_days)
                _phase(f"incremental sync (+{args.advance_days:g} d)", config, "sync", instance)
                _phase("model + metrics again", config, "metrics", instance)
        finally:
            box.stop()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mb:,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
