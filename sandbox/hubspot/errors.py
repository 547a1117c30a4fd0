"""HubSpot's error bodies (reference §B.8).

Standard errors: ``{"status":"error","message","correlationId","category",...}``.
Rate-limit errors differ: ``errorType: RATE_LIMIT`` and ``policyName``, no ``category``.
"""

from __future__ import annotations

import json
import uuid

AUTH_MISSING = ("Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
                "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")
_CATEGORIES = {400: "VALIDATION_ERROR", 401: "INVALID_AUTHENTICATION", 403: "MISSING_SCOPES",
               404: "OBJECT_NOT_FOUND", 405: "VALIDATION_ERROR", 409: "CONFLICT", 414: "VALIDATION_ERROR"}
_RATE_MESSAGES = {"SECONDLY": "You have reached your secondly limit.",
                  "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
                  "DAILY": "You have reached your daily limit."}


def correlation_id() -> str:
    return str(uuid.uuid4())


class HubSpotError(Exception):
    """Raised anywhere in request handling; rendered as HubSpot's JSON error body."""

    def __init__(self, status: int, message: str, category: str | None = None, *,
                 headers: dict | None = None, **extra):
        super().__init__(message)
        self.status, self.message = status, message
        self.category = category or _CATEGORIES.get(status, "INTERNAL_ERROR" if status >= 500 else "ERROR")
        self.headers = headers or {}
        self.extra = extra                      # context, errors, subCategory, links

    def body(self, cid: str) -> dict:
        return {"status": "error", "message": self.message, "correlationId": cid, "category": self.category,
                **self.extra}


class RateLimitError(HubSpotError):
    def __init__(self, policy: str, headers: dict | None = None):
        super().__init__(429, _RATE_MESSAGES.get(policy, "You have reached your limit."), headers=headers)
        self.policy = policy

    def body(self, cid: str) -> dict:
        return {"status": "error", "message": self.message, "errorType": "RATE_LIMIT", "correlationId": cid,
                "policyName": self.policy, "requestId": correlation_id()}


def validation(message: str, **extra) -> HubSpotError:
    return HubSpotError(400, message, "VALIDATION_ERROR", **extra)


def property_errors(problems: list[tuple[str, str, str]]) -> HubSpotError:
    """(name, error code, message) per bad property -> HubSpot's 'Property values were not valid'."""
    details = [{"isValid": False, "message": msg, "error": code, "name": name} for name, code, msg in problems]
    return validation(
        "Property values were not valid: " + json.dumps(details, separators=(",", ":")),
        errors=[{"message": msg, "code": code, "context": {"propertyName": [name]}} for name, code, msg in problems])


def not_found(object_id: str) -> HubSpotError:
    return HubSpotError(404, "Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND",
                        context={"id": [str(object_id)]})


def batch_error(category: str, message: str, context: dict, **extra) -> dict:
    """One StandardError inside a 207 batch response."""
    return {"status": "error", "category": category, "message": message, "context": context,
            "errors": [], "links": {}, **extra}
