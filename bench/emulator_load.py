"""Time loading N synthetic rows into the Salesforce emulator's store, then paging them back.

    .venv/bin/python bench/emulator_load.py [N] [--db PATH] [--http]

Rows are generated lazily (Opportunity and Task, 1:2), the way the org generator streams
them, so peak memory reflects the store, not the input. ``--http`` also pages the
Opportunities back through the real simple-salesforce client over HTTPS.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox.salesforce.schema import make_id  # noqa: E402
from sandbox.salesforce.store import Store  # noqa: E402

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def synthetic(n: int):
    user = make_id("005", 1)
    for i in range(1, n + 1):
        ts = T0 + timedelta(seconds=37 * i)
        if i % 3 == 0:
            yield "Opportunity", dict(
                Id=make_id("006", i), Name=f"Deal {i}", AccountId=make_id("001", i % 5000 + 1), OwnerId=user,
                StageName="Prospecting", Amount=1000.0 + i, Probability=10.0, CloseDate=date(2024, 6, 1),
                IsClosed=False, IsWon=False, ForecastCategoryName="Pipeline", Type="New Customer",
                LeadSource="Web", IsDeleted=False, CreatedDate=ts, CreatedById=user,
                LastModifiedDate=ts, SystemModstamp=ts)
        else:
            yield "Task", dict(
                Id=make_id("00T", i), Subject=f"Call {i}", Status="Completed", Priority="Normal",
                ActivityDate=date(2024, 5, 1), WhatId=make_id("006", i - i % 3 or 3), WhoId=None,
                OwnerId=user, IsClosed=True, TaskSubtype="Call", IsDeleted=False, CreatedDate=ts,
                CreatedById=user, LastModifiedDate=ts, SystemModstamp=ts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=300_000)
    ap.add_argument("--db", help="SQLite file (default: in memory)")
    ap.add_argument("--http", action="store_true", help="also page Opportunities through simple-salesforce")
    args = ap.parse_args()

    store = Store(args.db)
    t = time.perf_counter()
    counts = store.upsert(synthetic(args.n))
    load_s = time.perf_counter() - t
    print(f"loaded {counts} in {load_s:.1f}s ({args.n / load_s:,.0f} rows/s)")

    t = time.perf_counter()
    page = store.query("SELECT Id, Amount, SystemModstamp FROM Opportunity "
                       "WHERE SystemModstamp > 2024-01-01T00:00:00Z ORDER BY SystemModstamp",
                       now=datetime.now(timezone.utc))
    seen = len(page.records)
    while page.next_locator:
        page = store.query_more(page.next_locator)
        seen += len(page.records)
    print(f"paged {seen:,} Opportunities in {time.perf_counter() - t:.1f}s (store only)")
    if args.http:
        http_pass(store)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


def http_pass(store: Store) -> None:
    import requests
    from simple_salesforce import Salesforce

    from sandbox.salesforce.emulator import SalesforceEmulator
    from sandbox.tls import LocalCA

    with tempfile.TemporaryDirectory() as tmp:
        emu = SalesforceEmulator(ca=LocalCA(Path(tmp)))
        emu.store = store
        with emu:
            session = requests.Session()
            session.trust_env, session.verify = False, str(emu.ca.ca_path)
            sf = Salesforce(instance_url=emu.url, session_id=emu.issue_session(), session=session)
            t = time.perf_counter()
            n = sum(1 for _ in sf.query_all_iter("SELECT Id, Name, Amount, CloseDate, SystemModstamp "
                                                  "FROM Opportunity"))
            print(f"paged {n:,} Opportunities over HTTPS in {time.perf_counter() - t:.1f}s")


if __name__ == "__main__":
    main()
