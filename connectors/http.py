"""HTTP behaviour every connector shares: retries with backoff that honour Retry-After,
and a request-rate budget per vendor."""

from __future__ import annotations

import threading
import time
from typing import Callable, TypeVar

import tenacity

from pydantic import BaseModel, ConfigDict, Field
from urllib3.util.retry import Retry

T = TypeVar("T")


class RetrySettings(BaseModel):
    """Transient failures (5xx, 429, dropped connections) are retried with exponential backoff;
    a Retry-After header from the server wins over the computed delay."""

    model_config = ConfigDict(extra="forbid")
    attempts: int = Field(default=5, ge=0, le=20)
    backoff_seconds: float = Field(default=1.0, ge=0)


def retry_policy(settings: RetrySettings, retry_posts: bool = False,
                 statuses: tuple[int, ...] = (429, 500, 502, 503, 504)) -> Retry:
    """urllib3's retry: backoff on 429/5xx and dropped connections, honouring Retry-After.

    Error statuses are retried for reads only, unless `retry_posts` says a vendor's POSTs
    are reads (HubSpot search and batch read). A POST that may have done its work (a
    create, a SOAP login whose bad password also answers 500) is never sent twice. Failed
    connections are retried for every method, since nothing reached the server.
    """
    methods = {"GET", "HEAD"} | ({"POST"} if retry_posts else set())
    return Retry(total=settings.attempts, backoff_factor=settings.backoff_seconds,
                 status_forcelist=statuses, allowed_methods=frozenset(methods),
                 respect_retry_after_header=True, raise_on_status=False)


def call_with_retries(fn: Callable[[], T], settings: RetrySettings, transient: Callable[[BaseException], bool],
                      retry_after: Callable[[BaseException], float | None]) -> T:
    """For clients without their own Retry-After-aware retry (google-api-python-client):
    retry `fn` on transient errors, waiting what the server asked for, else backing off."""
    def wait(state: tenacity.RetryCallState) -> float:
        asked = retry_after(state.outcome.exception())
        return asked if asked is not None else settings.backoff_seconds * 2 ** (state.attempt_number - 1)

    return tenacity.Retrying(stop=tenacity.stop_after_attempt(settings.attempts + 1), wait=wait,
                             retry=tenacity.retry_if_exception(transient), reraise=True)(fn)


class RateBudget:
    """At most `per_second` calls a second, spread evenly; shared by a connector's threads."""

    def __init__(self, per_second: float):
        self._interval = 1.0 / per_second
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = time.monotonic()
            wait = self._next - now
            self._next = max(now, self._next) + self._interval
        if wait > 0:
            time.sleep(wait)
