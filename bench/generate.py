"""Generate a synthetic org by streaming `records(org.now)`; report counts, time and peak memory.

    .venv/bin/python bench/generate.py [--size large] [--seed 42]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox.org import SIZES, SyntheticOrg  # noqa: E402


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=list(SIZES), default="large")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    org = SyntheticOrg(seed=args.seed, size=args.size)
    counts: Counter[str] = Counter()
    for sobject, _record in org.records(org.now):
        counts[sobject] += 1
    elapsed = time.perf_counter() - started

    width = max(map(len, counts))
    print(f"size={args.size} seed={args.seed} as_of={org.now.isoformat()}")
    for sobject, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"  {sobject:<{width}}  {n:>10,}")
    print(f"  {'total':<{width}}  {sum(counts.values()):>10,}")
    activities = counts["Task"] + counts["Event"]
    print(f"Task+Event per opportunity: {activities / max(1, counts['Opportunity']):.2f}")
    print(f"seconds: {elapsed:.1f}  ({sum(counts.values()) / elapsed:,.0f} records/s)")
    print(f"peak RSS: {_peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
