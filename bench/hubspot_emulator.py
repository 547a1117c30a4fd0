"""Load a large synthetic HubSpot org into the emulator's store, then query it through the
real hubspot-api-client over HTTPS.

    .venv/bin/python bench/hubspot_emulator.py [DEALS] [ENGAGEMENTS] [--db PATH]

Records are generated lazily in the README shapes (each engagement associated with a deal,
both directions), so peak memory reflects the store, not the input. Default: 100k deals,
1M engagements, in a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hubspot import HubSpot  # noqa: E402

from sandbox.hubspot.emulator import HubSpotEmulator  # noqa: E402
from sandbox.tls import LocalCA  # noqa: E402

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
KINDS = {"emails": (210, 209), "meetings": (212, 211), "calls": (206, 205), "tasks": (216, 215)}


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def record(kind: str, n: int, when: datetime, props: dict, history: dict | None = None) -> tuple[str, dict]:
    base = {"hs_object_id": str(n), "createdate": iso(when), "hs_lastmodifieddate": iso(when)}
    return kind, {"id": str(n), "properties": {**base, **props}, "history": history or {}, "createdAt": when,
                  "updatedAt": when, "archived": False, "archivedAt": None, "mergedObjectIds": []}


def synthetic(deals: int, engagements: int):
    for n in range(1, deals + 1):
        when = T0 + timedelta(minutes=7 * n)
        yield record("deals", n, when, {"dealname": f"Deal {n}", "amount": str(1000 + n), "dealstage": "qualifiedtobuy",
                                        "pipeline": "default", "hubspot_owner_id": "77"},
                     {"dealstage": [{"value": "qualifiedtobuy", "timestamp": when, "sourceType": "CRM_UI"},
                                    {"value": "appointmentscheduled", "timestamp": T0, "sourceType": "CRM_UI"}]})
    kinds = list(KINDS)
    for i in range(engagements):
        n, kind = 10_000_000 + i, kinds[i % len(kinds)]
        when = T0 + timedelta(seconds=41 * i)
        yield record(kind, n, when, {"hs_timestamp": iso(when), "hubspot_owner_id": "77"})
        deal_id, (forward, reverse) = str(i % deals + 1), KINDS[kind]
        link = {"category": "HUBSPOT_DEFINED", "label": None, "createdAt": when, "archived": False}
        yield "associations", {**link, "fromObjectType": kind, "fromId": str(n), "toObjectType": "deals",
                               "toId": deal_id, "associationTypeId": forward}
        yield "associations", {**link, "fromObjectType": "deals", "fromId": deal_id, "toObjectType": kind,
                               "toId": str(n), "associationTypeId": reverse}


def timed(label: str, call):
    t = time.perf_counter()
    result = call()
    print(f"  {label}: {(time.perf_counter() - t) * 1000:.0f} ms")
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("deals", nargs="?", type=int, default=100_000)
    ap.add_argument("engagements", nargs="?", type=int, default=1_000_000)
    ap.add_argument("--db", help="SQLite file (default: a temporary file)")
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="hubspot-bench-"))
    db = Path(args.db) if args.db else workdir / "hubspot.sqlite"
    ca = LocalCA(workdir / "tls")
    emu = HubSpotEmulator(ca=ca, db_path=db, clock=T0 + timedelta(days=800))

    t = time.perf_counter()
    counts = emu.load(synthetic(args.deals, args.engagements))
    load_s = time.perf_counter() - t
    rows = sum(counts.values())
    print(f"loaded {counts} in {load_s:.1f}s ({rows / load_s:,.0f} rows/s); db {db.stat().st_size / 1e6:,.0f} MB")
    print(f"peak RSS after load: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")

    with emu:
        hs = HubSpot(access_token=emu.access_token, host=emu.url, ssl_ca_cert=str(ca.ca_path))
        since = str(int((T0 + timedelta(minutes=7 * (args.deals - 5000))).timestamp() * 1000))
        window = {"filterGroups": [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE",
                                                 "value": since}]}],
                  "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}], "limit": 200,
                  "properties": ["dealname", "dealstage", "amount"]}
        deals_search, calls_search = hs.crm.deals.search_api, hs.crm.objects.search_api
        page = timed("deals search, last 5,000 modified, first page of 200",
                     lambda: deals_search.do_search(public_object_search_request=window))
        print(f"    total={page.total}")
        window["after"] = "4800"
        timed("deals search, same window, page at after=4800", lambda: deals_search.do_search(
            public_object_search_request=window))
        timed("calls search, all, sorted by hs_lastmodifieddate DESC (limit 200)", lambda: calls_search.do_search(
            "calls", public_object_search_request={"sorts": [{"propertyName": "hs_lastmodifieddate",
                                                              "direction": "DESCENDING"}], "limit": 200}))
        basic = hs.crm.deals.basic_api
        timed("deals list page of 50 with history + inline emails", lambda: basic.get_page(
            limit=50, after="50000", properties_with_history=["dealstage"], associations=["emails"]))
        ids = [{"id": str(i)} for i in range(1, 101)]
        timed("deals batch read 100", lambda: hs.crm.deals.batch_api.read({"inputs": ids, "properties": ["amount"]}))
        timed("v4 batch read deals->calls for 100 deals", lambda: hs.crm.associations.v4.batch_api.get_page(
            "deals", "calls", {"inputs": ids}))
    print(f"peak RSS overall: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
