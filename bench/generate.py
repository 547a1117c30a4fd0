"""Generate a synthetic org by streaming its state at `org.now`; report counts, time and peak memory.

    .venv/bin/python bench/generate.py [--size large] [--seed 42] [--crm salesforce|hubspot|both]
                                       [--what crm|gmail|calendar|head|all]

`crm` streams the CRM records (Salesforce `records()` and/or HubSpot `hubspot_records()`),
`gmail` the mailboxes' messages, `calendar` the calendars' events; `all` does each in turn.
`head` times how soon streaming starts: the first 50,000 Salesforce records, the first 50,000
of the deal side (Opportunity, Task, Event) and the first deal, which come at once only if
nothing is materialised first (tests/test_org.py checks what they are, this how long they take).
"""

from __future__ import annotations

import argparse
import itertools
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


def _crm(org: SyntheticOrg) -> Counter:
    counts: Counter[str] = Counter()
    for sobject, _record in org.records(org.now):
        counts[f"salesforce {sobject}"] += 1
    for kind, _record in org.hubspot_records(org.now):
        counts[f"hubspot {kind}"] += 1
    return counts


def _gmail(org: SyntheticOrg) -> Counter:
    counts: Counter[str] = Counter()
    for _mailbox, message in org.gmail_messages(org.now):
        counts[f"messages: {message['truth']['kind']}"] += 1
        counts["messages: deleted"] += message["deletedAt"] is not None
    return counts


def _calendar(org: SyntheticOrg) -> Counter:
    counts: Counter[str] = Counter()
    for _calendar_id, event in org.calendar_events(org.now):
        counts[f"events: {event['truth']['kind']}"] += 1
        counts["events: cancelled"] += event["status"] == "cancelled"
        counts["events: recurring"] += "recurrence" in event
    return counts


def _head(org: SyntheticOrg, n: int = 50_000) -> Counter:
    counts: Counter[str] = Counter()
    for sobject, _record in itertools.islice(org.records(org.now), n):
        counts[f"first {n:,}: {sobject}"] += 1
    for sobject, _record in itertools.islice(org.records(org.now, objects=["Opportunity", "Task", "Event"]), n):
        counts[f"first {n:,} of the deal side: {sobject}"] += 1
    next(org.deals(org.now))
    counts["first deal"] += 1
    return counts


PARTS = {"crm": _crm, "gmail": _gmail, "calendar": _calendar, "head": _head}
ALL = ("crm", "gmail", "calendar")       # `all`: the full streams; `head` is asked for by name


def _report(name: str, counts: Counter, elapsed: float) -> None:
    total = sum(n for k, n in counts.items() if not k.endswith((": deleted", ": cancelled", ": recurring")))
    width = max(map(len, counts), default=5)
    print(f"[{name}]")
    for key, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"  {key:<{width}}  {n:>10,}")
    print(f"  {'total':<{width}}  {total:>10,}")
    print(f"  seconds: {elapsed:.1f}  ({total / max(elapsed, 1e-9):,.0f} records/s)"
          f"  peak RSS so far: {_peak_rss_mb():.0f} MB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=list(SIZES), default="large")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--crm", choices=["salesforce", "hubspot", "both"], default="salesforce")
    parser.add_argument("--what", choices=[*PARTS, "all"], default="crm")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    org = SyntheticOrg(seed=args.seed, size=args.size, crm=args.crm)
    print(f"size={args.size} seed={args.seed} crm={args.crm} as_of={org.now.isoformat()}"
          f"  (set up in {time.perf_counter() - started:.1f} s)")
    results = {}
    for name in (ALL if args.what == "all" else [args.what]):
        started = time.perf_counter()
        counts = PARTS[name](org)
        _report(name, counts, time.perf_counter() - started)
        results[name] = counts
    crm = results.get("crm")
    if crm:
        deals = crm["salesforce Opportunity"] + crm["hubspot deals"]
        activities = (crm["salesforce Task"] + crm["salesforce Event"] + crm["hubspot emails"] + crm["hubspot calls"]
                      + crm["hubspot meetings"] + crm["hubspot tasks"])
        print(f"CRM activities per deal: {activities / max(1, deals):.2f}")
    print(f"peak RSS: {_peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
