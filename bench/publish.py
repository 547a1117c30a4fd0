"""What the writer's publish adds to a DuckDB run: the copy made on the first run (working copy
from the published file) and the copy + fsync + rename of every successful run.

    .venv/bin/python bench/publish.py [--mb 1024] [--warehouse PATH]

Without --warehouse it builds a throw-away warehouse of about --mb megabytes (random doubles,
which DuckDB cannot compress much) in a temporary folder beside this checkout.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from pipeline_model.warehouse import Warehouse, WarehouseSettings
from pipeline_model.writer import Outcome, new_holder, writing


def _build(path: Path, megabytes: int) -> None:
    warehouse = Warehouse(WarehouseSettings(backend="duckdb", path=path))
    rows = megabytes * 2**20 // 16
    warehouse.run_in_transaction([f"create table filler as select random() as a, random() as b "
                                  f"from range({rows})"])


def _timed_run(published: Warehouse, label: str) -> float:
    started = time.perf_counter()
    with writing(published, new_holder(label), "bench") as session:
        prepared = time.perf_counter() - started
        session.finish(Outcome(True))
    total = time.perf_counter() - started
    print(f"{label}: prepare {prepared:.2f} s, prepare + publish {total:.2f} s")
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=1024)
    parser.add_argument("--warehouse", type=Path, help="time the writer on a copy of this warehouse's folder")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parents[1]) as tmp:
        path = Path(tmp) / "warehouse.duckdb"
        if args.warehouse:
            path.write_bytes(args.warehouse.read_bytes())
        else:
            _build(path, args.mb)
        size = path.stat().st_size / 2**30
        print(f"warehouse file: {size:.2f} GiB")
        published = Warehouse(WarehouseSettings(backend="duckdb", path=path))
        _timed_run(published, "first run (working copy made)")
        second = _timed_run(published, "next run")
        print(f"publish: {second / size:.2f} s per GiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
