"""Time loading N synthetic Gmail messages into the Google emulator, then reading them back.

    .venv/bin/python bench/google_emulator.py [N] [--mailboxes M] [--db PATH]

Messages are generated lazily, the way the org streams them, so peak memory reflects the
store, not the input. One mailbox is then listed in full and fetched in batches of 100
through the real googleapiclient over HTTPS.
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

import httplib2  # noqa: E402
from google.oauth2 import service_account  # noqa: E402
from google_auth_httplib2 import AuthorizedHttp  # noqa: E402
from googleapiclient.discovery import build  # noqa: E402
from googleapiclient.http import BatchHttpRequest  # noqa: E402

from sandbox.google import GoogleEmulator  # noqa: E402
from sandbox.tls import LocalCA  # noqa: E402

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def synthetic(n: int, mailboxes: list[str]):
    for i in range(n):
        at = T0 + timedelta(seconds=61 * i)
        body = f"Hello,\nfollowing up on proposal {i}.\n" * 8
        yield mailboxes[i % len(mailboxes)], {
            "id": f"{0x18f0000000000000 + i:016x}", "threadId": f"{0x18f0000000000000 + i // 3:016x}",
            "labelIds": ["INBOX", "UNREAD"] if i % 3 else ["SENT"], "snippet": body[:100], "internalDate": at,
            "historyId": 10_000 + i, "body": body, "sizeEstimate": 3000,
            "headers": [{"name": "From", "value": "Bea Buyer <bea@acme.example>"},
                        {"name": "To", "value": mailboxes[i % len(mailboxes)]},
                        {"name": "Subject", "value": f"Re: proposal {i}"}],
            "deletedAt": None, "deletedHistoryId": None, "truth": {"kind": "deal", "deal": None}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=500_000)
    ap.add_argument("--mailboxes", type=int, default=50)
    ap.add_argument("--db", help="SQLite file (default: a temporary file)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="google-bench-") as tmp:
        run(args, Path(tmp))
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def run(args, workdir: Path) -> None:
    mailboxes = [f"rep{k}@bench.example" for k in range(args.mailboxes)]
    ca = LocalCA(workdir / "tls")
    with GoogleEmulator(ca=ca, db_path=args.db or workdir / "google.sqlite", clock=T0 + timedelta(days=400)) as emu:
        t = time.perf_counter()
        counts = emu.load_gmail(synthetic(args.n, mailboxes))
        load_s = time.perf_counter() - t
        print(f"loaded {counts} in {load_s:.1f}s ({args.n / load_s:,.0f} messages/s)")

        creds = service_account.Credentials.from_service_account_info(
            emu.register_service_account(), scopes=["https://www.googleapis.com/auth/gmail.readonly"],
            subject=mailboxes[0])
        http = AuthorizedHttp(creds, http=httplib2.Http(ca_certs=str(ca.ca_path)))
        httplib2.CA_CERTS = str(ca.ca_path)      # batch refreshes use a bare httplib2.Http()
        service = build("gmail", "v1", http=http, static_discovery=True, client_options={"api_endpoint": emu.url + "/"})

        t = time.perf_counter()
        ids, request = [], service.users().messages().list(userId="me", maxResults=500)
        while request is not None:
            page = request.execute()
            ids += [m["id"] for m in page.get("messages", [])]
            request = service.users().messages().list_next(request, page)
        list_s = time.perf_counter() - t
        print(f"listed {len(ids):,} ids of one mailbox in {list_s:.2f}s")

        t = time.perf_counter()
        fetched = 0

        def count(_id, response, exception):
            nonlocal fetched
            fetched += exception is None

        for start in range(0, min(len(ids), 2000), 100):
            batch = BatchHttpRequest(callback=count, batch_uri=emu.url + "/batch/gmail/v1")
            for msg_id in ids[start:start + 100]:
                batch.add(service.users().messages().get(userId="me", id=msg_id, format="metadata"))
            batch.execute()
        print(f"fetched {fetched:,} messages (metadata) in batches of 100 in {time.perf_counter() - t:.2f}s")


if __name__ == "__main__":
    main()
