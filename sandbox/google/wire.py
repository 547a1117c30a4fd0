"""Wire conventions shared by the Gmail and Calendar halves: errors, JSON, times, tokens.

Wire formats follow /work/shared/reference/saas-api-wire-reference.md §C–D.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import date, datetime, timezone
from http import HTTPStatus

from sandbox.httpserver import Response

JSON_TYPE = "application/json; charset=UTF-8"
UTC = timezone.utc

_STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 405: "METHOD_NOT_ALLOWED", 409: "ALREADY_EXISTS", 410: "FAILED_PRECONDITION",
                 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
_REASON_STATUS = {"failedPrecondition": "FAILED_PRECONDITION"}
_USAGE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "dailyLimitExceeded", "quotaExceeded"}
_DEFAULT_MESSAGES = {"rateLimitExceeded": "Rate Limit Exceeded", "userRateLimitExceeded": "User-rate limit exceeded.",
                     "dailyLimitExceeded": "Daily Limit Exceeded", "quotaExceeded": "Quota exceeded.",
                     "backendError": "Backend Error", "notFound": "Requested entity was not found.",
                     "failedPrecondition": "Precondition check failed."}


class ApiError(Exception):
    """A Google API error, rendered as the JSON error envelope."""

    def __init__(self, status: int, reason: str, message: str | None = None, *, domain: str | None = None,
                 headers: dict | None = None, location: tuple[str, str] | None = None,
                 item_message: str | None = None):
        message = message or _DEFAULT_MESSAGES.get(reason) or HTTPStatus(status).phrase
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message
        self.domain = domain or ("usageLimits" if reason in _USAGE_REASONS else "global")
        self.headers = headers or {}
        self.location = location            # (locationType, location), e.g. ("header", "Authorization")
        self.item_message = item_message or message     # errors[0].message may be terser

    def envelope(self) -> dict:
        item = {"message": self.item_message, "domain": self.domain, "reason": self.reason}
        if self.location:
            item["locationType"], item["location"] = self.location
        status = _REASON_STATUS.get(self.reason) or _STATUS_NAMES.get(self.status, HTTPStatus(self.status).name)
        return {"error": {"code": self.status, "message": self.message, "errors": [item], "status": status}}

    def response(self) -> Response:
        return json_response(self.status, self.envelope(), self.headers)


def not_found(message: str = "Requested entity was not found.") -> ApiError:
    return ApiError(404, "notFound", message)


def bad_request(message: str, reason: str = "invalidArgument") -> ApiError:
    return ApiError(400, reason, message)


def json_response(status: int, payload, headers: dict | None = None) -> Response:
    return Response(status, json.dumps(payload, separators=(",", ":")).encode(), JSON_TYPE, headers)


# --------------------------------------------------------------------------- times

def to_ms(value) -> int:
    """datetime / ISO string / epoch ms -> epoch ms (UTC)."""
    if isinstance(value, bool):
        raise TypeError(f"not a timestamp: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        value = parse_rfc3339(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the sandbox only takes timezone-aware times")
        return int(round(value.timestamp() * 1000))
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp() * 1000)
    raise TypeError(f"not a timestamp: {value!r}")


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def rfc3339_ms(value) -> str:
    """Google's resource timestamps: ``2024-05-01T10:00:00.000Z``."""
    dt = from_ms(to_ms(value))
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def rfc3339(value) -> str:
    """Event start/end times: ``2024-05-01T10:00:00Z`` (no fraction)."""
    return from_ms(to_ms(value)).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 timestamp that must carry an offset (Calendar rejects bare local times)."""
    dt = datetime.fromisoformat(text.strip().replace("z", "Z"))
    if dt.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return dt.astimezone(UTC)


# --------------------------------------------------------------------------- opaque tokens

def encode_token(payload: dict) -> str:
    """Page and sync tokens: opaque to clients, readable by us, no server-side state."""
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> dict | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value = json.loads(raw)
    except (ValueError, binascii.Error):
        return None
    return value if isinstance(value, dict) else None


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def bounded_int(params: dict, name: str, default: int, maximum: int) -> int:
    """maxResults-style parameters: Google clamps values above the maximum instead of failing."""
    raw = first(params, name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"Invalid value for {name}: {raw}") from None
    if value < 1:
        raise bad_request(f"Invalid value for {name}: {raw}")
    return min(value, maximum)


def first(params: dict, name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def flag(params: dict, name: str) -> bool:
    return (first(params, name) or "").lower() == "true"


@dataclass
class Call:
    """One authenticated API request, as the Gmail and Calendar handlers see it."""
    method: str
    segments: list[str]             # path segments after /gmail/v1/ or /calendar/v3/, percent-decoded
    params: dict[str, list[str]]
    body: bytes
    principal: "Principal"          # noqa: F821 - sandbox.google.auth.Principal
    entry: "LoggedRequest"          # noqa: F821 - sandbox.google.emulator.LoggedRequest
    now_ms: int
