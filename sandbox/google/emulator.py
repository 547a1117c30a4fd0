"""A local Google emulator (Gmail v1, Calendar v3, batch, OAuth2 token endpoint) that the real
google-api-python-client / google-auth / httplib2 stack talks to over HTTPS, unchanged.

Routes:
  POST /token                                   OAuth2 token endpoint (refresh_token, jwt-bearer)
  GET  /gmail/v1/users/{userId}/…               profile, labels, messages, messages/{id}, history
  *    /calendar/v3/…                           users/me/calendarList, calendars/{id}[/events[/{id}]]
  POST /batch, /batch/gmail/v1, /batch/calendar/v3   multipart/mixed batches
  GET  /__sandbox/status, POST /__sandbox/advance    control (no auth)

Data lives in ``Store`` (SQLite); a synthetic org (``sandbox.org``) feeds it via
``attach_org``/``advance``. The clock is simulated: ``now`` only moves when told to.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterable
from urllib.parse import parse_qs, unquote

from sandbox.google import batch
from sandbox.google.auth import Auth, OAuthError, Principal
from sandbox.google.calendar import CalendarApi, wire_event
from sandbox.google.gmail import GmailApi
from sandbox.google.store import Store
from sandbox.google.wire import ApiError, Call, bad_request, json_response, not_found, to_ms
from sandbox.httpserver import HttpsEmulator, Response
from sandbox.tls import LocalCA
from sandbox.world import advance_reply, status_reply

log = logging.getLogger(__name__)

BATCH_LIMITS = {"/batch": 100, "/batch/gmail/v1": 100, "/batch/calendar/v3": 50}
_SECRET_PARAMS = {"access_token", "key", "client_secret", "refresh_token", "assertion"}
_GMAIL_KINDS = {("profile", 3): "profile", ("labels", 3): "labels.list", ("messages", 3): "messages.list",
                ("messages", 4): "messages.get", ("history", 3): "history.list"}


@dataclass
class LoggedRequest:
    method: str
    path: str                        # no query string: parameters are in ``params``
    api: str                         # gmail calendar batch token control other
    kind: str                        # profile messages.list messages.get history.list events.list …
    user: str | None = None          # whom the access token acts as
    params: dict = field(default_factory=dict)      # query parameters, tokens and secrets removed
    status: int = 0
    items_returned: int = 0
    batch_parts: int = 0             # on the outer "batch" entry
    in_batch: bool = False           # a part of a batch (each part is logged on its own too)


@dataclass
class _Fault:
    status: int
    reason: str
    message: str | None
    times: int
    retry_after: int | None
    path_contains: str | None


class GoogleEmulator(HttpsEmulator):
    def __init__(self, *, ca: LocalCA, host: str = "127.0.0.1", port: int = 0, history_retention_days: float = 30,
                 sync_token_ttl_days: float = 30, db_path=None, clock: datetime | None = None):
        super().__init__(ca=ca, host=host, port=port, name="google")
        self.history_retention_days = history_retention_days
        self.sync_token_ttl_days = sync_token_ttl_days
        self.store = Store(db_path)
        self.now = (clock or datetime.now(timezone.utc)).astimezone(timezone.utc)
        self.org = None
        self.request_log: list[LoggedRequest] = []
        self.inserted_events: list[dict] = []
        self.auth = Auth(token_uri=lambda: self.url + "/token", known_user=self._known_user)
        self._gmail, self._calendar = GmailApi(self), CalendarApi(self)
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- credentials

    def register_service_account(self, scopes=None) -> dict:
        """A service-account key dict for Credentials.from_service_account_info; ``scopes``
        limits its domain-wide delegation (None: any)."""
        return self.auth.register_service_account(scopes)

    def register_oauth_client(self, user: str, scopes=None) -> dict:
        """{"client_id","client_secret","refresh_token","token_uri","scopes"} for a user grant
        (default scopes: gmail.readonly + calendar)."""
        return self.auth.register_oauth_client(user, scopes)

    def revoke(self, refresh_token: str) -> None:
        """The refresh token stops working (invalid_grant), as when a user revokes access."""
        self.auth.revoke(refresh_token)

    def revoke_service_accounts(self, revoked: bool = True) -> None:
        """Every service-account key is deleted in the Cloud console (or restored): token requests
        signed with it answer invalid_grant, and the access tokens issued with it stop working."""
        keys = {a.key_id for a in self.auth._accounts.values()}
        if revoked:
            self.auth.revoked_keys |= keys
            self.expire_tokens()
        else:
            self.auth.revoked_keys -= keys

    def expire_tokens(self) -> None:
        """Every access token issued so far answers 401; clients must refresh through /token."""
        self.auth.expire_tokens()

    def _known_user(self, address: str) -> bool:
        return self.store.mailbox(address) is not None or self.store.calendar(address) is not None

    # ----------------------------------------------------------------- data

    def load_gmail(self, items: Iterable[tuple[str, dict]]) -> dict[str, int]:
        return {"messages": self.store.upsert_messages(items)}

    def load_calendar(self, items: Iterable[tuple[str, dict]]) -> dict[str, int]:
        return {"events": self.store.upsert_events((c, wire_event(c, e)) for c, e in items)}

    def add_mailboxes(self, addresses: Iterable[str]) -> None:
        self.store.add_mailboxes(addresses)

    def add_calendars(self, calendar_ids: Iterable[str]) -> None:
        self.store.add_calendars(calendar_ids)

    def attach_org(self, org) -> dict[str, int]:
        """Load the org's mailboxes and calendars as of its ``now`` and adopt its clock."""
        self.org = org
        self.store.add_mailboxes(org.mailboxes())
        self.store.add_calendars(org.calendars())
        counts = {**self.load_gmail(org.gmail_messages(org.now)), **self.load_calendar(org.calendar_events(org.now))}
        self.now = org.now
        return counts

    def advance(self, days: float) -> dict[str, int]:
        """Move the clock; with an org attached, apply what it did in between."""
        since, until = self.now, self.now + timedelta(days=days)
        counts = {"messages": 0, "events": 0}
        if self.org is not None:
            counts.update(self.load_gmail(self.org.gmail_changes(since, until)))
            counts.update(self.load_calendar(self.org.calendar_changes(since, until)))
        self.now = until
        return counts

    def expire_history(self, mailbox: str | None = None) -> None:
        """Every historyId older than the mailbox's current one answers 404 (all mailboxes if None)."""
        self.store.raise_floor(mailbox)

    def invalidate_sync_tokens(self, calendar_id: str | None = None) -> None:
        """The next use of any sync token issued so far (for one calendar or all) answers 410."""
        self.store.bump_generation(calendar_id)

    # ----------------------------------------------------------------- faults & log

    def fail_next(self, status: int, reason: str, times: int = 1, retry_after: int | None = None,
                  path_contains: str | None = None, message: str | None = None) -> None:
        """The next ``times`` matching requests answer this error instead. Without
        ``path_contains`` it hits Gmail/Calendar calls (batch parts included) but never /token
        or the outer batch request; with it, any request whose path+query contains the text."""
        with self._lock:
            self._faults.append(_Fault(status, reason, message, times, retry_after, path_contains))

    def _take_fault(self, raw_path: str, api_call: bool) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                hit = (fault.path_contains in raw_path) if fault.path_contains is not None else api_call
                if hit:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear_log(self) -> None:
        self.request_log.clear()

    # ----------------------------------------------------------------- request entry point

    def handle(self, method: str, raw_path: str, headers, body: bytes) -> Response:
        path = raw_path.partition("?")[0]
        if path.startswith("/__sandbox/"):
            return self._logged(LoggedRequest(method, path, "control", path.rsplit("/", 1)[-1]),
                                lambda e: self._control(method, path, body))
        if path == "/token":
            return self._logged(LoggedRequest(method, path, "token", "token"),
                                lambda e: self._token(method, raw_path, headers, body, e))
        if path in BATCH_LIMITS:
            return self._logged(LoggedRequest(method, path, "batch", "batch"),
                                lambda e: self._batch(method, raw_path, headers, body, e))
        return self.api_call(method, raw_path, headers.get("Authorization"), body)

    def _logged(self, entry: LoggedRequest, run) -> Response:
        self.request_log.append(entry)          # in arrival order: a batch before its parts
        try:
            resp = run(entry)
        except ApiError as exc:
            resp = exc.response()
        except Exception:                       # a bug here must not look like a hang
            log.exception("google emulator failed on %s %s", entry.method, entry.path)
            resp = ApiError(500, "backendError").response()
        entry.status = resp.status
        return resp

    def api_call(self, method: str, raw_path: str, authorization: str | None, body: bytes,
                 in_batch: bool = False) -> Response:
        """One Gmail/Calendar request, direct or from a batch part."""
        path, _, query = raw_path.partition("?")
        params = parse_qs(query, keep_blank_values=True)
        api, kind, segments = _classify(method, path)
        entry = LoggedRequest(method, path, api, kind, params=_loggable(params), in_batch=in_batch)
        return self._logged(entry, lambda e: self._dispatch(method, raw_path, segments, params, authorization,
                                                            body, e))

    def _dispatch(self, method, raw_path, segments, params, authorization, body, entry) -> Response:
        if entry.api not in ("gmail", "calendar"):
            raise not_found()
        principal: Principal = self.auth.authenticate(authorization)
        entry.user = principal.user
        fault = self._take_fault(raw_path, api_call=True)      # quotas apply to authenticated calls
        if fault:
            raise _fault_error(fault)
        call = Call(method, segments, params, body, principal, entry, to_ms(self.now))
        return (self._gmail if entry.api == "gmail" else self._calendar).handle(call)

    # ----------------------------------------------------------------- token endpoint & batch

    def _token(self, method, raw_path, headers, body, entry) -> Response:
        form = parse_qs(body.decode("utf-8", "replace"))
        entry.params = {k: v[0] for k, v in form.items() if k in ("grant_type", "scope")}
        fault = self._take_fault(raw_path, api_call=False)
        if fault:
            error = OAuthError(fault.status, fault.reason, fault.message or fault.reason)
            return json_response(error.status, error.payload(), _retry_after(fault))
        if method != "POST":
            return json_response(405, {"error": "invalid_request", "error_description": "POST only"})
        try:
            payload, principal = self.auth.token(body, headers.get("Content-Type") or "")
        except OAuthError as exc:
            return json_response(exc.status, exc.payload())
        entry.user = principal.user
        return json_response(200, payload)

    # Seeded faults (sandbox/faults.py): expired access tokens, historyIds and syncTokens, batch parts.
    def vendor_fault_kinds(self, method: str, raw_path: str) -> tuple[str, ...]:
        path, _, query = raw_path.partition("?")
        if path in BATCH_LIMITS:
            return ("partial_batch",)
        api, kind, _ = _classify(method, path)
        if api == "other":
            return ()
        specific = {"history.list": "expired_history"}.get(kind)
        if kind == "events.list" and "syncToken=" in query:
            specific = "expired_sync_token"
        return ("expired_token", specific) if specific else ("expired_token",)

    def vendor_fault(self, kind: str, method: str, raw_path: str, headers, body: bytes) -> Response:
        if kind == "expired_history":
            return ApiError(404, "notFound", "Requested entity was not found.").response()
        if kind == "expired_sync_token":
            return ApiError(410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required.").response()
        if kind == "expired_token":
            self.expire_tokens()
            return self.handle(method, raw_path, headers, body)
        entry = LoggedRequest(method, raw_path.partition("?")[0], "batch", "batch")
        return self._logged(entry, lambda e: self._batch(method, raw_path, headers, body, e, fail_part=True))

    def fault_response(self, status: int, headers: dict) -> Response:
        reason = "rateLimitExceeded" if status == 429 else "backendError"
        return ApiError(status, reason, "sandbox fault: try again later", headers=headers).response()

    def _batch(self, method, raw_path, headers, body, entry, fail_part: bool = False) -> Response:
        fault = self._take_fault(raw_path, api_call=False)
        if fault:
            raise _fault_error(fault)
        if method != "POST":
            raise ApiError(405, "httpMethodNotAllowed", "Batch requests must be POST")
        parts = batch.parse(headers.get("Content-Type") or "", body)
        entry.batch_parts = entry.items_returned = len(parts)
        limit = BATCH_LIMITS[entry.path]
        if len(parts) > limit:
            raise batch.too_many(limit)
        # A part's own Authorization wins over the outer one, as Google documents; the outer
        # request itself is not authenticated (each part answers 401 on its own).
        outer_auth = headers.get("Authorization")
        entry.user = self._user_of(outer_auth)
        answers = [(p.content_id, self.api_call(p.method, p.raw_path, p.headers.get("authorization") or outer_auth,
                                                p.body, in_batch=True)) for p in parts]
        if fail_part and answers:          # one part of the batch fails on its own, the rest succeed
            middle = len(answers) // 2
            answers[middle] = (answers[middle][0], ApiError(503, "backendError", "Backend Error").response())
        return batch.render(answers)

    def _user_of(self, authorization: str | None) -> str | None:
        try:
            return self.auth.authenticate(authorization).user
        except ApiError:
            return None

    # ----------------------------------------------------------------- control endpoints

    def _control(self, method: str, path: str, body: bytes) -> Response:
        action = path[len("/__sandbox/"):].strip("/")
        if action == "status" and method == "GET":
            return json_response(200, status_reply(self))
        if action == "advance" and method == "POST":
            try:
                days = float(json.loads(body or b"{}")["days"])
            except (ValueError, KeyError, TypeError):
                raise bad_request('expected a JSON body {"days": <number>}') from None
            return json_response(200, advance_reply(self, days))
        if action == "expire-tokens" and method == "POST":
            self.expire_tokens()
            return json_response(200, {})
        raise not_found()


def _classify(method: str, path: str) -> tuple[str, str, list[str]]:
    """(api, kind, segments after the API prefix) for the request log and routing."""
    for prefix, api in (("/gmail/v1/", "gmail"), ("/calendar/v3/", "calendar")):
        if path.startswith(prefix):
            segments = [unquote(s) for s in path[len(prefix):].strip("/").split("/")]
            kind = _gmail_kind(segments) if api == "gmail" else _calendar_kind(method, segments)
            return api, kind, segments
    return "other", "other", []


def _gmail_kind(seg: list[str]) -> str:
    return _GMAIL_KINDS.get((seg[2], len(seg)), "other") if len(seg) >= 3 else "other"


def _calendar_kind(method: str, seg: list[str]) -> str:
    if seg[:3] == ["users", "me", "calendarList"]:
        return "calendarList.list" if len(seg) == 3 else "calendarList.get"
    if seg[:1] == ["calendars"] and len(seg) == 2:
        return "calendars.get"
    if seg[:1] == ["calendars"] and seg[2:3] == ["events"]:
        if len(seg) == 3:
            return "events.insert" if method == "POST" else "events.list"
        return "events.get"
    return "other"


def _loggable(params: dict) -> dict:
    return {k: (v[0] if len(v) == 1 else v) for k, v in params.items() if k not in _SECRET_PARAMS}


def _fault_error(fault: _Fault) -> ApiError:
    return ApiError(fault.status, fault.reason, fault.message, headers=_retry_after(fault))


def _retry_after(fault: _Fault) -> dict | None:
    return {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
