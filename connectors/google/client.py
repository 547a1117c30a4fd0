"""Build google-api-python-client services for one user, and translate their failures.

The vendor client is used unchanged. Two of its traps shape this module: batches must be
sent to an explicit batch URI (`new_batch_http_request()` ignores the endpoint), and a
batch refreshes expired credentials through its own bare HTTP object, so we refresh them
first through ours, which trusts the configured CA bundle.
"""

from __future__ import annotations

import http.client
import json
import time
from contextlib import contextmanager
from typing import Any, Iterator

import google.auth.exceptions
import httplib2
from google.auth.transport.requests import Request
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from connectors.errors import SourceRejected, SourceUnreachable, StreamRefused
from connectors.http import RateBudget, call_with_retries
from connectors.google.settings import GoogleSettings
from connectors.secrets import read_secret

VENDOR = "google"
SCOPES = ["https://www.googleapis.com/auth/gmail.readonly", "https://www.googleapis.com/auth/calendar.readonly"]


class GoogleUser:
    """Gmail and Calendar services acting as one mailbox owner."""

    def __init__(self, settings: GoogleSettings, user: str):
        self.settings, self.user = settings, user
        self.credentials = _credentials(settings, user)
        self.http = AuthorizedHttp(self.credentials, http=httplib2.Http(
            ca_certs=str(settings.ca_bundle) if settings.ca_bundle else None, timeout=settings.timeout_seconds))
        gmail_url, calendar_url = str(settings.gmail_url).rstrip("/"), str(settings.calendar_url).rstrip("/")
        self.gmail = build("gmail", "v1", http=self.http, static_discovery=True,
                           client_options={"api_endpoint": gmail_url + "/"})
        self.calendar = build("calendar", "v3", http=self.http, static_discovery=True,
                              client_options={"api_endpoint": calendar_url + "/"})
        self.gmail_batch_uri = gmail_url + "/batch/gmail/v1"
        self.budget = RateBudget(settings.requests_per_second)

    def execute(self, request: Any) -> Any:
        self.budget.acquire()
        return self._retried(request.execute)

    def _retried(self, fn):
        return call_with_retries(fn, self.settings.retry, _transient, _retry_after)

    def batch(self, requests: list[Any]) -> list[tuple[Any, HttpError | None]]:
        """Run requests as Gmail batches; (response, error) per request, in order.

        A batch is not retried as a whole by the client: the batch request itself is retried
        when it fails in transit, and then the parts that failed for a transient reason (429,
        5xx, rate-limit 403) are sent again, alone, after a wait; parts refused with 401 (the
        access token expired under the batch) after a token refresh.
        """
        results: dict[int, tuple[Any, HttpError | None]] = {}
        pending = list(range(len(requests)))
        for attempt in range(self.settings.retry.attempts + 1):
            self._retried(lambda: self._send_batch(requests, pending, results))
            expired = [i for i in pending if _status(results[i][1]) == 401]
            failed = [i for i in pending if _transient(results[i][1]) or i in expired]
            if not failed or attempt == self.settings.retry.attempts:
                break
            if expired:
                self._fresh_token(force=True)
            time.sleep(max([_retry_after(results[i][1]) or 0 for i in failed] +
                           [self.settings.retry.backoff_seconds * 2 ** attempt]))
            pending = failed
        return [results[i] for i in range(len(requests))]

    def _send_batch(self, requests: list[Any], indexes: list[int], results: dict) -> None:
        self._fresh_token()
        self.budget.acquire()
        batch = BatchHttpRequest(callback=lambda rid, resp, exc: results.__setitem__(int(rid), (resp, exc)),
                                 batch_uri=self.gmail_batch_uri)
        for i in indexes:
            batch.add(requests[i], request_id=str(i))
        batch.execute(http=self.http)

    def _fresh_token(self, force: bool = False) -> None:
        if force or not self.credentials.valid:
            self._retried(lambda: self.credentials.refresh(_refresh_request(self.settings)))


def _status(exc: BaseException | None) -> int | None:
    return exc.status_code if isinstance(exc, HttpError) else None


def _transient(exc: BaseException | None) -> bool:
    """A failure that a later try may not meet: a dropped, timed-out or truncated exchange, a
    token endpoint out of reach, 429, 5xx, or a rate-limit 403. A refused connection is not
    (nothing listens there), nor is anything the server said on purpose."""
    if isinstance(exc, ConnectionRefusedError):
        return False
    if isinstance(exc, (OSError, http.client.HTTPException, httplib2.HttpLib2Error,
                        google.auth.exceptions.TransportError)):
        return not isinstance(exc, httplib2.ServerNotFoundError)
    if not isinstance(exc, HttpError):
        return False
    if exc.status_code in (429, 500, 502, 503, 504):
        return True
    reasons = {d.get("reason") for d in (exc.error_details or []) if isinstance(d, dict)}
    return exc.status_code == 403 and bool(reasons & {"rateLimitExceeded", "userRateLimitExceeded"})


def _retry_after(exc: BaseException) -> float | None:
    value = getattr(getattr(exc, "resp", None), "get", lambda *_: None)("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _credentials(settings: GoogleSettings, user: str):
    auth = settings.auth
    if auth.method == "service_account":
        key = json.loads(read_secret(auth.service_account_key_env, "Google service-account key").get_secret_value())
        return service_account.Credentials.from_service_account_info(key, scopes=SCOPES, subject=user)
    token_env = auth.refresh_token_envs.get(user)
    if token_env is None:
        raise SourceRejected(VENDOR, None, f"no refresh token configured for {user} "
                             "(sources.google.auth.refresh_token_envs)")
    return user_credentials.Credentials(
        token=None, refresh_token=read_secret(token_env, f"Google refresh token of {user}").get_secret_value(),
        token_uri=str(auth.token_uri), scopes=SCOPES,
        client_id=read_secret(auth.client_id_env, "Google OAuth client id").get_secret_value(),
        client_secret=read_secret(auth.client_secret_env, "Google OAuth client secret").get_secret_value())


def _refresh_request(settings: GoogleSettings) -> Request:
    import requests

    session = requests.Session()
    if settings.ca_bundle:
        session.trust_env = False
        session.verify = str(settings.ca_bundle)
    return Request(session=session)


@contextmanager
def translate_errors(stream: str, user: str, url: str) -> Iterator[None]:
    try:
        yield
    except HttpError as exc:
        # A permission removed, a mailbox or calendar gone: for good (a rate-limit 403 was retried).
        error = StreamRefused if exc.status_code in (401, 403, 404) else SourceRejected
        raise error(VENDOR, stream, f"HTTP {exc.status_code} for {user}: {exc.reason}") from None
    except google.auth.exceptions.TransportError as exc:
        raise SourceUnreachable(VENDOR, stream, f"cannot reach the token endpoint ({_first(exc)})") from None
    except google.auth.exceptions.RefreshError as exc:
        # Revoked credentials (invalid_grant): no later try gets a token either.
        raise StreamRefused(VENDOR, stream, f"cannot obtain a token for {user}: {_first(exc)}") from None
    except (httplib2.HttpLib2Error, OSError) as exc:
        raise SourceUnreachable(VENDOR, stream, f"cannot reach {url} ({_first(exc)})") from None


def _first(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
