"""What every connector does to text before it lands, and how it types vendor strings strictly.

Text is kept exactly, with two deliberate exceptions, both forced by the destinations:
  - NUL (U+0000) is removed: PostgreSQL text cannot hold it, and a value must read the same
    on both backends.
  - A lone surrogate (a JSON escape such as "\\ud800" that is half of a pair) becomes U+FFFD:
    it is not a character, and no UTF-8 writer (dlt's, the warehouse's) accepts it.

Numbers and date-times that vendors send as strings (HubSpot) are typed by one strict grammar
each; anything else is not guessed at ("1,200" is neither 1 nor 1200): the caller stores NULL
and reports the value (connectors.rejections).
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Any

_UNWRITABLE = re.compile("[\x00\ud800-\udfff]")
# Plain decimal, optional exponent; bounded so that every accepted value is a finite double
# (no "NaN", "inf", "1e400", "1_000", "١٢", " 12").
_NUMBER = re.compile(r"[-+]?[0-9]{1,18}(\.[0-9]{1,18})?([eE][-+]?[0-9]{1,2})?")
_EPOCH_MS = re.compile(r"[0-9]{1,15}")
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ].*)?", re.S)


def clean_text(value: str) -> str:
    """`value` as the warehouse can store it: NUL removed, lone surrogates replaced by U+FFFD."""
    if not _UNWRITABLE.search(value):
        return value
    return _UNWRITABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", value)


def clean(value: Any) -> Any:
    return clean_text(value) if isinstance(value, str) else value


def clean_row(row: dict) -> dict:
    return {key: clean(value) for key, value in row.items()}


def parse_number(raw: str) -> float | None:
    """The number `raw` spells in plain decimal, or None if it spells none."""
    if not _NUMBER.fullmatch(raw):
        return None
    value = float(raw)
    return value if math.isfinite(value) else None


def parse_timestamp(raw: str) -> datetime | None:
    """Epoch milliseconds or an ISO 8601 date / date-time (UTC unless it says otherwise), or None."""
    try:
        if _EPOCH_MS.fullmatch(raw):
            return datetime.fromtimestamp(int(raw) / 1000, tz=timezone.utc)
        if not _ISO_DAY.fullmatch(raw):
            return None
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
