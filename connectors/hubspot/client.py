"""Build a hubspot-api-client from `HubSpotSettings`, pace it, and translate its failures.

The vendor client is used unchanged: its own urllib3 `Retry` does the backoff (POSTs
included, because HubSpot's search and batch-read POSTs are reads), and every call we
make first takes a slot from the vendor's rate budget.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

import urllib3
from hubspot import HubSpot

from connectors.errors import SourceRejected, SourceUnreachable, StreamRefused
from connectors.http import RateBudget, retry_policy
from connectors.progress import page_read
from connectors.hubspot.settings import HubSpotSettings
from connectors.secrets import read_secret

VENDOR = "hubspot"


class HubSpotClient:
    """The vendor client plus the budgets its calls must respect."""

    def __init__(self, settings: HubSpotSettings):
        self.settings = settings
        self.url = str(settings.host).rstrip("/")
        token = self._token()
        options: dict[str, Any] = {"host": self.url, "retry": retry_policy(settings.retry, retry_posts=True)}
        if settings.ca_bundle:
            options["ssl_ca_cert"] = str(settings.ca_bundle)
        self.api = HubSpot(access_token=token.get_secret_value(), **options)
        self._calls = RateBudget(settings.requests_per_second)
        self._searches = RateBudget(settings.search_requests_per_second)

    def call(self, stream: str, fn: Callable[..., Any], *args, search: bool = False, **kwargs) -> Any:
        """One request (a page of `stream`, the table it lands in), paced and translated."""
        (self._searches if search else self._calls).acquire()
        page_read(stream)
        with translate_errors(stream, self.url):
            try:
                return fn(*args, _request_timeout=self.settings.timeout_seconds, **kwargs)
            except Exception as exc:
                if getattr(exc, "status", None) != 401:
                    raise
            # An expired or rotated token: read it again from its variable and try once more;
            # a second 401 is a refusal for good.
            self._reauthenticate(fn)
            return fn(*args, _request_timeout=self.settings.timeout_seconds, **kwargs)

    def _token(self):
        return read_secret(self.settings.access_token_env, "HubSpot private-app access token")

    def _reauthenticate(self, fn: Callable[..., Any]) -> None:
        token = self._token().get_secret_value()
        self.api.access_token = token
        # `fn` is bound to an API object that copied the token when it was made.
        bound = getattr(fn, "__self__", None)
        if bound is not None and hasattr(bound, "api_client"):
            bound.api_client.configuration.access_token = token


@contextmanager
def translate_errors(stream: str | None, url: str) -> Iterator[None]:
    """HubSpot's per-module ApiException classes share no base but Exception: read `.status`."""
    try:
        yield
    except urllib3.exceptions.MaxRetryError as exc:
        raise SourceUnreachable(VENDOR, stream, f"cannot reach {url} ({_reason(exc.reason)})") from None
    except urllib3.exceptions.HTTPError as exc:
        raise SourceUnreachable(VENDOR, stream, f"cannot reach {url} ({_reason(exc)})") from None
    except Exception as exc:
        status = getattr(exc, "status", None)
        if status is None:
            raise
        # A token refused twice, a missing scope, an object type that is gone: for good.
        error = StreamRefused if stream and status in (401, 403, 404) else SourceRejected
        raise error(VENDOR, stream, f"HTTP {status}: {_api_message(exc)}") from None


def _api_message(exc: Exception) -> str:
    import json

    body = getattr(exc, "body", None) or ""
    try:
        parsed = json.loads(body)
        return f"{parsed.get('category') or parsed.get('errorType')}: {parsed.get('message')}"
    except (ValueError, AttributeError):
        return str(body)[:300] or getattr(exc, "reason", "") or "no details"


def _reason(exc: object) -> str:
    text = str(exc)
    for marker in ("Connection refused", "timed out", "Name or service not known", "CERTIFICATE_VERIFY_FAILED"):
        if marker in text:
            return marker.lower()
    return text.splitlines()[0][:200]
