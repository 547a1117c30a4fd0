"""Seeded vendor faults: which request of an emulator fails, and how.

A `FaultPlan` decides for each request whether it fails, as a pure function of the seed,
the emulator, the request (method, path, sorted query, body without its volatile bits) and
how often that same request has been seen. The same sync under the same plan therefore
meets the same faults, whatever the timing. At most `max_per_request` faults hit one
identical request, so a client that retries a few times always gets through: that is what
lets a sync under faults end equal to a fault-free one.

Transport kinds (sandbox/httpserver.py, every emulator):
  server_error   503 with the vendor's error body
  rate_limited   429 with Retry-After, in a burst: the same request's next try is refused too
  timeout        no answer until the client gives up (or `hold_seconds`), then the socket closes
  dropped        the connection closes with no answer
  truncated      the real answer, cut in half under a Content-Length for all of it
Vendor kinds (each emulator's `vendor_fault`, on the requests where the vendor has them):
  expired_session     Salesforce: every session expires, the call answers 401 INVALID_SESSION_ID
  expired_token       HubSpot 401 EXPIRED_AUTHENTICATION; Google: access tokens expire, 401
  partial_batch       HubSpot batch read 207 with per-id errors; a Gmail batch with one part 503
  expired_history     Gmail history.list 404 (the historyId is older than Gmail keeps)
  expired_sync_token  Calendar events.list with a syncToken 410 fullSyncRequired
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

TRANSPORT = ("server_error", "rate_limited", "timeout", "dropped", "truncated")
VENDOR = ("expired_session", "expired_token", "partial_batch", "expired_history", "expired_sync_token")
KINDS = TRANSPORT + VENDOR


@dataclass
class FaultPlan:
    seed: int
    rate: float = 0.1                      # share of requests that fail (before the per-request cap)
    kinds: tuple[str, ...] = KINDS
    max_per_request: int = 2
    retry_after: float = 0                 # seconds, in a 429's Retry-After
    hold_seconds: float = 10.0             # a timeout's longest wait for the client to give up
    injected: Counter = field(default_factory=Counter)      # (emulator, kind) -> faults injected
    _seen: Counter = field(default_factory=Counter)          # request key -> times seen
    _faulted: Counter = field(default_factory=Counter)       # request key -> faults injected
    _bursts: dict = field(default_factory=dict)              # request key -> 429s still to send
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(KINDS)}")

    def decide(self, emulator: str, key: str, vendor_kinds: tuple[str, ...] = ()) -> str | None:
        """The fault for this occurrence of request `key`, or None. `vendor_kinds` are the vendor
        faults this request can meet; they are preferred over transport faults when chosen, since
        far fewer requests can meet them."""
        with self._lock:
            key = f"{emulator}|{key}"
            occurrence = self._seen[key]
            self._seen[key] += 1
            if self._faulted[key] >= self.max_per_request:
                return None
            kind = self._bursts.pop(key, None) or self._draw(key, occurrence, vendor_kinds)
            if kind is None:
                return None
            if kind == "rate_limited" and self._faulted[key] + 1 < self.max_per_request:
                self._bursts[key] = kind
            self._faulted[key] += 1
            self.injected[(emulator, kind)] += 1
            return kind

    def _draw(self, key: str, occurrence: int, vendor_kinds: tuple[str, ...]) -> str | None:
        digest = hashlib.sha256(f"{self.seed}|{key}|{occurrence}".encode()).digest()
        if int.from_bytes(digest[:4], "big") / 2 ** 32 >= self.rate:
            return None
        specific = [k for k in vendor_kinds if k in self.kinds]
        general = [k for k in TRANSPORT if k in self.kinds]
        pick = int.from_bytes(digest[4:8], "big")
        # Half of a request's faults are its vendor's own, when it has any.
        pool = specific if specific and (not general or pick % 2) else general
        return pool[(pick // 2) % len(pool)] if pool else None

    def counts(self) -> dict[str, int]:
        """kind -> faults injected, over every emulator."""
        with self._lock:
            out: Counter = Counter()
            for (_, kind), n in self.injected.items():
                out[kind] += n
            return dict(out)

    def describe(self) -> dict:
        with self._lock:
            return {"seed": self.seed, "rate": self.rate, "kinds": list(self.kinds),
                    "max_per_request": self.max_per_request,
                    "injected": {f"{e}:{k}": n for (e, k), n in sorted(self.injected.items())}}

    @classmethod
    def from_json(cls, args: dict) -> "FaultPlan":
        allowed = {"seed", "rate", "kinds", "max_per_request", "retry_after", "hold_seconds"}
        unknown = set(args) - allowed
        if unknown or "seed" not in args:
            raise ValueError(f"expected {{'seed': int, ...}} with keys from {sorted(allowed)}")
        if "kinds" in args:
            args = {**args, "kinds": tuple(args["kinds"])}
        return cls(**args)


_BOUNDARY = re.compile(rb"boundary=\"?([^\";]+)")
# In a batch's parts: their ids, each part's access token (a fresh one every run) and Host (the
# emulator's port).
_VOLATILE_LINES = re.compile(rb"(?im)^(content-id|authorization|host):.*$")
# In a token request: the signed assertion (it carries the time) and the secrets.
_VOLATILE_FORM = {"assertion", "refresh_token", "client_secret", "client_assertion"}


def request_key(method: str, raw_path: str, content_type: str, body: bytes) -> str:
    """A request as the plan sees it: method, path, sorted query and a digest of the body, with
    what differs between two sends of the same request taken out (a multipart boundary, batch
    part ids and tokens, a token request's signed assertion)."""
    parts = urlsplit(raw_path)
    query = "&".join(f"{k}={v}" for k, v in sorted(parse_qsl(parts.query, keep_blank_values=True)))
    match = _BOUNDARY.search(content_type.encode())
    if match:
        body = body.replace(match.group(1), b"")
    if content_type.startswith("application/x-www-form-urlencoded"):
        form = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        body = "&".join(f"{k}={v}" for k, v in sorted(form) if k not in _VOLATILE_FORM).encode()
    body = _VOLATILE_LINES.sub(b"", body)
    return f"{method} {parts.path}?{query} {hashlib.sha256(body).hexdigest()[:16]}"
