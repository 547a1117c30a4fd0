"""A local HubSpot CRM emulator the real ``hubspot-api-client`` talks to over HTTPS.

Serves CRM objects v3 (list, get, search, batch, create/update/archive), deal pipelines,
owners and associations v4, plus control endpoints (``/__sandbox/…``, no auth) for
out-of-process use. Wire formats follow /work/shared/reference/saas-api-wire-reference.md §B.

Behaviours reproduced on purpose, because they break real connectors:
- search refuses to page past 10,000 results (400), so connectors must re-window;
- association changes don't move ``hs_lastmodifieddate``;
- 429s with HubSpot's headers and body under ``rate_limit``/``fail_next``;
- v4 association batch reads report objects without associations as 207 errors;
- a merged-away id still reads (as the record it was merged into).

Time is simulated: ``now`` only moves with ``advance``; every write is stamped with it.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterable
from urllib.parse import parse_qs, unquote

from sandbox.httpserver import HttpsEmulator, Response
from sandbox.hubspot import api
from sandbox.hubspot.errors import AUTH_MISSING, HubSpotError, RateLimitError, correlation_id
from sandbox.hubspot.schema import AssociationType, object_type, wire_datetime
from sandbox.hubspot.store import Store
from sandbox.tls import LocalCA
from sandbox.world import advance_reply, status_reply

log = logging.getLogger(__name__)

JSON_TYPE = "application/json;charset=utf-8"
FIRST_WRITE_ID = 90_000_000_001           # above every org id range (sandbox/org_hubspot.py tops out near 5e10)
DEFAULT_DAILY, DEFAULT_SECONDLY = 500_000, 15   # what a private app's headers advertise


@dataclass
class LoggedRequest:
    method: str
    path: str                         # no query string
    kind: str                         # list get search batch_read batch_update create update archive
    #                                   associations pipelines owners control other
    object_type: str | None = None
    params: dict = field(default_factory=dict)   # query parameters (the token is a header: never here)
    body: object = None               # parsed JSON body, if any
    status: int = 0
    records_returned: int = 0


# --------------------------------------------------------------------------- rate limits

class RateLimiter:
    """HubSpot's limits: per second (search has its own) and per day. Seconds are wall
    clock (``clock`` can be replaced in tests); days follow the emulator's simulated date."""

    def __init__(self):
        self.per_second: int | None = None
        self.daily: int | None = None
        self.search_per_second: int | None = None
        self.clock = time.monotonic
        self._recent: deque[float] = deque()          # last 10 s of admitted calls
        self._search: deque[float] = deque()
        self._day, self._used = None, 0

    def configure(self, per_second, daily, search_per_second) -> None:
        self.per_second, self.daily, self.search_per_second = per_second, daily, search_per_second
        self._recent.clear()
        self._search.clear()
        self._used = 0

    def admit(self, *, is_search: bool, day) -> dict:
        """Count the call and return the rate headers; raise RateLimitError when over."""
        now = self.clock()
        if day != self._day:
            self._day, self._used = day, 0
        _prune(self._recent, now - 10)
        _prune(self._search, now - 1)
        if self.daily is not None and self._used >= self.daily:
            raise RateLimitError("DAILY", self.headers(now))     # no Retry-After: wait for tomorrow
        window, limit = (self._search, self.search_per_second) if is_search else (self._recent, self.per_second)
        in_last_second = [t for t in window if t > now - 1]
        if limit is not None and len(in_last_second) >= limit:
            wait = max(1, math.ceil(in_last_second[0] + 1 - now))
            raise RateLimitError("SECONDLY", {**self.headers(now), "Retry-After": str(wait)})
        window.append(now)
        if is_search:
            self._recent.append(now)
        self._used += 1
        return self.headers(now)

    def headers(self, now: float) -> dict:
        secondly = self.per_second or DEFAULT_SECONDLY
        daily = self.daily or DEFAULT_DAILY
        last_second = sum(1 for t in self._recent if t > now - 1)
        return {"X-HubSpot-RateLimit-Daily": str(daily),
                "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, daily - self._used)),
                "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                "X-HubSpot-RateLimit-Max": str(secondly * 10),
                "X-HubSpot-RateLimit-Remaining": str(max(0, secondly * 10 - len(self._recent))),
                "X-HubSpot-RateLimit-Secondly": str(secondly),
                "X-HubSpot-RateLimit-Secondly-Remaining": str(max(0, secondly - last_second))}


def _prune(window: deque, older_than: float) -> None:
    while window and window[0] <= older_than:
        window.popleft()


def retry_after_header(seconds: float) -> str:
    # urllib3's Retry rejects a non-integer Retry-After (InvalidHeader), and HubSpot sends
    # whole seconds: round fractions up.
    return str(max(0, math.ceil(seconds)))


# --------------------------------------------------------------------------- emulator

class HubSpotEmulator(HttpsEmulator):
    INLINE_ASSOCIATION_LIMIT = 500        # v3 ``associations=`` ids per record before paging

    def __init__(self, *, ca: LocalCA, host: str = "127.0.0.1", port: int = 0,
                 access_token: str = "pat-na1-sandbox-token", db_path=None, clock: datetime | None = None):
        super().__init__(ca=ca, host=host, port=port, name="hubspot")
        self.store = Store(db_path)
        self.now = (clock or datetime.now(timezone.utc)).astimezone(timezone.utc)
        self.org = None
        self.request_log: list[LoggedRequest] = []
        self.writes: list[dict] = []
        self.limiter = RateLimiter()
        self._token = access_token
        self._retired: set[str] = set()
        self._faults: list[dict] = []
        self.missing_scopes: set[str] = set()    # object types the private app may no longer read
        self._lock = threading.Lock()
        self._ids = None

    # ----------------------------------------------------------------- data

    def load(self, records: Iterable[tuple[str, dict]]) -> dict[str, int]:
        """Upsert README-shaped (kind, record) pairs (sandbox/README.md, "HubSpot")."""
        return self.store.upsert(records)

    def attach_org(self, org) -> dict[str, int]:
        """Load the org's HubSpot state as of its ``now`` and adopt its clock."""
        self.org = org
        counts = self.load(org.hubspot_records(org.now))
        self.now = org.now
        return counts

    def advance(self, days: float) -> dict[str, int]:
        """Move the clock; with an org attached, apply what changed in between."""
        since, until = self.now, self.now + timedelta(days=days)
        counts = self.load(self.org.hubspot_changes(since, until)) if self.org is not None else {}
        self.now = until
        return counts

    def next_id(self) -> int:
        with self._lock:
            if self._ids is None:
                self._ids = itertools.count(max(FIRST_WRITE_ID, self.store.max_id() + 1))
            return next(self._ids)

    def link(self, kind: AssociationType, from_id: int, to_id: int, writes: list | None = None) -> None:
        """Associate both directions, as HubSpot does; the records themselves are untouched."""
        stamp = wire_datetime(self.now)
        self.store.associate(kind.from_type, from_id, kind.to_type, to_id, kind.id, "HUBSPOT_DEFINED", None, stamp)
        self.store.associate(kind.to_type, to_id, kind.from_type, from_id, kind.reverse_id, "HUBSPOT_DEFINED",
                             None, stamp)
        if writes is not None:
            writes.append({"op": "associate", "object": kind.from_type, "id": str(from_id),
                           "properties": {}, "toType": kind.to_type, "toId": str(to_id), "typeId": kind.id})

    def unlink(self, from_type: str, from_id: int, to_type: str, to_id: int, writes: list | None = None) -> None:
        self.store.unassociate(from_type, from_id, to_type, to_id)
        self.store.unassociate(to_type, to_id, from_type, from_id)
        if writes is not None:
            writes.append({"op": "unassociate", "object": from_type, "id": str(from_id), "properties": {},
                           "toType": to_type, "toId": str(to_id)})

    # ----------------------------------------------------------------- tokens, faults, limits, log

    @property
    def access_token(self) -> str:
        return self._token

    def rotate_token(self, new_token: str) -> None:
        """From now on only ``new_token`` works; the old one gets 401 (expired-token tests)."""
        with self._lock:
            self._retired.add(self._token)
            self._token = new_token

    def fail_next(self, status: int, times: int = 1, retry_after: float | None = None,
                  path_contains: str | None = None) -> None:
        """The next ``times`` API calls (whose path contains ``path_contains``) fail with
        ``status`` and HubSpot's body for it; ``retry_after`` adds a Retry-After header."""
        with self._lock:
            self._faults.append({"status": status, "times": times, "retry_after": retry_after,
                                 "path_contains": path_contains})

    def revoke_scope(self, object_type: str, revoked: bool = True) -> None:
        """The private app loses its read scope for one object type (crm.objects.<type>.read):
        every call on that type answers 403 MISSING_SCOPES, as HubSpot does."""
        (self.missing_scopes.add if revoked else self.missing_scopes.discard)(object_type)

    def _check_scope(self, segments: list[str]) -> None:
        # /crm/v3/objects/{type}/..., /crm/v4/associations/{type}/...
        kind = segments[3] if len(segments) > 3 and segments[:1] == ["crm"] else None
        if kind in self.missing_scopes:
            raise HubSpotError(403, "This app hasn't been granted all required scopes to make this call. Read "
                               "more about required scopes here: https://developers.hubspot.com/scopes.",
                               "MISSING_SCOPES", errors=[{"message": "One or more of the following scopes are "
                                                          "required.", "context": {"requiredScopes": [
                                                              f"crm.objects.{kind}.read"]}}])

    # Seeded faults (sandbox/faults.py): an expired token, a batch read that fails for some ids.
    def vendor_fault_kinds(self, method: str, raw_path: str) -> tuple[str, ...]:
        if not raw_path.startswith("/crm/"):
            return ()
        path = raw_path.partition("?")[0]
        batch_read = method == "POST" and path.startswith("/crm/v3/objects/") and path.endswith("/batch/read")
        return ("expired_token", "partial_batch") if batch_read else ("expired_token",)

    def vendor_fault(self, kind: str, method: str, raw_path: str, headers, body: bytes) -> Response:
        if kind == "expired_token":
            error = HubSpotError(401, "The OAuth token used to make this call expired 0 hour(s) ago.",
                                 "EXPIRED_AUTHENTICATION")
            return _json(401, error.body(correlation_id()))
        resp = self.handle(method, raw_path, headers, body)
        return _partial(resp) if resp.status == 200 else resp

    def fault_response(self, status: int, headers: dict) -> Response:
        if status == 429:
            error = RateLimitError("TEN_SECONDLY_ROLLING", headers)
        else:
            error = HubSpotError(status, _FAULT_MESSAGES.get(status, "Injected sandbox failure"), headers=headers)
        return _json(status, error.body(correlation_id()), error.headers)

    def rate_limit(self, per_second: int | None, daily: int | None = None,
                   search_per_second: int | None = None) -> None:
        """Enforce HubSpot-style limits (None = unlimited); exceeding them gives real 429s."""
        with self._lock:
            self.limiter.configure(per_second, daily, search_per_second)

    def clear_log(self) -> None:
        self.request_log.clear()

    # ----------------------------------------------------------------- request entry point

    def handle(self, method: str, raw_path: str, headers, body: bytes) -> Response:
        path, _, query = raw_path.partition("?")
        path = "/" + unquote(path).lstrip("/")       # tolerate a host given with a trailing "/"
        params = parse_qs(query, keep_blank_values=True)
        segments = [s for s in path.split("/") if s]
        entry = LoggedRequest(method, path, *_classify(method, segments), params=_flat(params))
        entry.body = _parsed(body)
        cid = correlation_id()
        try:
            resp = self._route(method, segments, params, headers, body, entry)
        except HubSpotError as exc:
            resp = _json(exc.status, exc.body(cid), exc.headers)
        except Exception:                      # a bug here must not look like a hang
            log.exception("hubspot emulator failed on %s %s", method, path)
            resp = _json(500, HubSpotError(500, "internal error").body(cid))
        resp.headers = {"X-HubSpot-Correlation-Id": cid, **(resp.headers or {})}
        entry.status = resp.status
        self.request_log.append(entry)
        return resp

    def _route(self, method, segments, params, headers, body, entry) -> Response:
        if segments[:1] == ["__sandbox"]:
            return self._control(method, segments[1:], body)
        self._authenticate(headers)
        self._check_scope(segments)
        self._inject_fault("/" + "/".join(segments))
        with self._lock:
            rate_headers = self.limiter.admit(is_search=entry.kind == "search", day=self.now.date())
        req = api.Request(self, method, segments, params, body)
        try:
            reply = _dispatch(req)
        finally:
            self.writes.extend(req.writes)
        entry.records_returned = reply.records
        if reply.status == 204:
            return Response(204, headers=rate_headers)
        return _json(reply.status, reply.payload, rate_headers)

    def _authenticate(self, headers) -> None:
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        token = token.strip()
        with self._lock:
            valid = scheme.lower() == "bearer" and token == self._token
            retired = token in self._retired
        if retired:
            raise HubSpotError(401, "The OAuth token used to make this call expired 0 hour(s) ago.",
                               "EXPIRED_AUTHENTICATION")
        if not valid:
            raise HubSpotError(401, AUTH_MISSING, "INVALID_AUTHENTICATION")

    def _inject_fault(self, path: str) -> None:
        with self._lock:
            fault = next((f for f in self._faults if not f["path_contains"] or f["path_contains"] in path), None)
            if fault is None:
                return
            fault["times"] -= 1
            if fault["times"] <= 0:
                self._faults.remove(fault)
        headers = {} if fault["retry_after"] is None else {"Retry-After": retry_after_header(fault["retry_after"])}
        if fault["status"] == 429:
            raise RateLimitError("TEN_SECONDLY_ROLLING", {**self.limiter.headers(self.limiter.clock()), **headers})
        raise HubSpotError(fault["status"], _FAULT_MESSAGES.get(fault["status"], "Injected sandbox failure"),
                           headers=headers)

    # ----------------------------------------------------------------- control endpoints

    def _control(self, method: str, segments: list[str], body: bytes) -> Response:
        action = "/".join(segments)
        if action == "status" and method == "GET":
            return _json(200, status_reply(self))
        if method != "POST":
            raise HubSpotError(404, f"No sandbox control endpoint {method} {action}", "OBJECT_NOT_FOUND")
        args = _control_args(body)
        if action == "advance":
            return _json(200, advance_reply(self, float(_required(args, "days"))))
        if action == "fail_next":
            self.fail_next(int(_required(args, "status")), int(args.get("times", 1)), args.get("retry_after"),
                           args.get("path_contains"))
        elif action == "rate_limit":
            self.rate_limit(args.get("per_second"), args.get("daily"), args.get("search_per_second"))
        elif action == "rotate_token":
            self.rotate_token(str(_required(args, "token")))
        else:
            raise HubSpotError(404, f"No sandbox control endpoint {action}", "OBJECT_NOT_FOUND")
        return _json(200, {"ok": True})


_FAULT_MESSAGES = {500: "internal error", 502: "Bad Gateway", 503: "Service Unavailable",
                   504: "Gateway Timeout", 403: "This app hasn't been granted all required scopes to make this call.",
                   409: "Conflict", 400: "There was a problem with the request."}


def _partial(resp: Response) -> Response:
    """A batch read's answer as a 207: the second half of the ids reported not found."""
    payload = json.loads(resp.body)
    results = payload.get("results") or []
    keep, lost = results[:len(results) // 2], results[len(results) // 2:]
    if not lost:
        return resp
    error = {"status": "error", "category": "OBJECT_NOT_FOUND",
             "message": "Could not get some objects, they may be deleted or not exist. Check that ids are valid.",
             "context": {"ids": [r["id"] for r in lost]}, "errors": [], "links": {}}
    payload.update(results=keep, numErrors=1, errors=[error])
    return _json(207, payload, resp.headers)


def _control_args(body: bytes) -> dict:
    try:
        args = json.loads(body or b"{}")
    except ValueError:
        args = None
    if not isinstance(args, dict):
        raise HubSpotError(400, "expected a JSON object body", "VALIDATION_ERROR")
    return args


def _required(args: dict, name: str):
    if args.get(name) is None:
        raise HubSpotError(400, f"missing {name!r}", "VALIDATION_ERROR")
    return args[name]


# --------------------------------------------------------------------------- routing

def _dispatch(req: api.Request) -> api.Reply:
    seg, method = req.segments, req.method
    if seg[:3] == ["crm", "v3", "objects"] and len(seg) >= 4:
        return _objects(req, api.object_type_or_400(seg[3]), seg[4:])
    if seg[:3] == ["crm", "v3", "pipelines"] and len(seg) >= 4:
        return _only(method, "GET", lambda: api.pipelines(req, seg[3:]))
    if seg[:3] == ["crm", "v3", "owners"] and len(seg) <= 4:
        return _only(method, "GET", lambda: api.owners(req, seg[3] if len(seg) == 4 else None))
    if seg[:3] == ["crm", "v4", "objects"] and len(seg) >= 6 and seg[5] == "associations":
        return _v4_object(req, seg)
    if seg[:3] == ["crm", "v4", "associations"] and len(seg) == 7 and seg[5] == "batch":
        return _v4_batch(req, seg)
    raise HubSpotError(404, f"No route for {method} /{'/'.join(seg)}", "OBJECT_NOT_FOUND")


def _objects(req: api.Request, otype: str, rest: list[str]) -> api.Reply:
    writes, method = api.Writes(req, otype), req.method
    if not rest:
        return writes.list() if method == "GET" else _only(method, "POST", writes.create)
    if rest == ["search"]:
        return _only(method, "POST", writes.search)
    if len(rest) == 2 and rest[0] == "batch":
        actions = {"read": writes.batch_read, "update": writes.batch_update, "create": writes.batch_create,
                   "archive": writes.batch_archive}
        if rest[1] not in actions:
            raise HubSpotError(404, f"Unsupported batch action {rest[1]}", "OBJECT_NOT_FOUND")
        return _only(method, "POST", actions[rest[1]])
    if len(rest) == 1:
        handlers = {"GET": lambda: writes.get(rest[0]), "PATCH": lambda: writes.update(rest[0]),
                    "DELETE": lambda: writes.archive(rest[0])}
        if method not in handlers:
            raise HubSpotError(405, f"HTTP method {method} is not supported here", "VALIDATION_ERROR")
        return handlers[method]()
    raise HubSpotError(404, f"No route for /{'/'.join(req.segments)}", "OBJECT_NOT_FOUND")


def _v4_object(req: api.Request, seg: list[str]) -> api.Reply:
    """/crm/v4/objects/{from}/{id}/associations/{to}[/{toId}] and .../default/{to}/{toId}"""
    assoc, method = api.Associations(req), req.method
    from_type, from_id = api.object_type_or_400(seg[3]), seg[4]
    rest = seg[6:]
    if len(rest) == 3 and rest[0] == "default":
        return _only(method, "PUT", lambda: assoc.create_default(from_type, from_id,
                                                                   api.object_type_or_400(rest[1]), rest[2]))
    to_type = api.object_type_or_400(rest[0]) if rest else None
    if len(rest) == 1:
        return _only(method, "GET", lambda: assoc.get_page(from_type, from_id, to_type))
    if len(rest) == 2:
        if method == "DELETE":
            return assoc.archive(from_type, from_id, to_type, rest[1])
        return _only(method, "PUT", lambda: assoc.create(from_type, from_id, to_type, rest[1]))
    raise HubSpotError(404, f"No route for /{'/'.join(seg)}", "OBJECT_NOT_FOUND")


def _v4_batch(req: api.Request, seg: list[str]) -> api.Reply:
    assoc = api.Associations(req)
    from_type, to_type = api.object_type_or_400(seg[3]), api.object_type_or_400(seg[4])
    actions = {"read": lambda: assoc.batch_read(from_type, to_type),
               "archive": lambda: assoc.batch_archive(from_type, to_type)}
    if seg[6] not in actions:
        raise HubSpotError(404, f"Unsupported association batch action {seg[6]}", "OBJECT_NOT_FOUND")
    return _only(req.method, "POST", actions[seg[6]])


def _only(method: str, allowed: str, handler) -> api.Reply:
    if method != allowed:
        raise HubSpotError(405, f"HTTP method {method} is not supported here; use {allowed}", "VALIDATION_ERROR")
    return handler()


def _classify(method: str, seg: list[str]) -> tuple[str, str | None]:
    """(log kind, object type) from the path alone, so failed calls are logged right too."""
    if seg[:1] == ["__sandbox"]:
        return "control", None
    if seg[:3] == ["crm", "v3", "objects"] and len(seg) >= 4:
        return _object_kind(method, seg[4:]), object_type(seg[3]) or seg[3]
    if seg[:3] == ["crm", "v3", "pipelines"]:
        return "pipelines", object_type(seg[3]) if len(seg) > 3 else None
    if seg[:3] == ["crm", "v3", "owners"]:
        return "owners", None
    if seg[:2] == ["crm", "v4"] and len(seg) > 3:
        return "associations", object_type(seg[3]) or seg[3]
    return "other", None


def _object_kind(method: str, rest: list[str]) -> str:
    if not rest:
        return "list" if method == "GET" else "create"
    if rest == ["search"]:
        return "search"
    if rest[0] == "batch" and len(rest) == 2:
        return {"read": "batch_read", "update": "batch_update", "create": "create",
                "archive": "archive"}.get(rest[1], "other")
    return {"GET": "get", "PATCH": "update", "DELETE": "archive"}.get(method, "other") if len(rest) == 1 else "other"


def _flat(params: dict[str, list[str]]) -> dict:
    return {k: v[0] if len(v) == 1 else v for k, v in params.items()}


def _parsed(body: bytes):
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


def _json(status: int, payload, headers: dict | None = None) -> Response:
    return Response(status, json.dumps(payload, separators=(",", ":")).encode(), JSON_TYPE, headers)
