"""Building SOQL text: every identifier validated, every value escaped or formatted.

Identifiers (objects, fields) are never escaped, only checked against Salesforce's API-name
rule (a letter, then letters, digits and single underscores; custom names end in __c and the
like), so nothing but a name can reach the FROM or SELECT list. String values are quoted with
SOQL's backslash escapes (Salesforce "Quoted String Escape Sequences"); LIKE patterns also
escape its wildcards. Date-times are formatted from datetime objects, never passed through.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Iterable

_IDENTIFIER = re.compile(r"[A-Za-z](?:[A-Za-z0-9]|_(?!_))*(?:__[A-Za-z]{1,10})?")
_ESCAPES = {"\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t",
            "\b": "\\b", "\f": "\\f"}
_LIKE_ESCAPES = {**_ESCAPES, "%": "\\%", "_": "\\_"}


class UnsafeSoql(ValueError):
    """A name that is not a Salesforce API name, or a value SOQL cannot carry."""


def identifier(name: str) -> str:
    if not isinstance(name, str) or len(name) > 80 or not _IDENTIFIER.fullmatch(name) or name.endswith("_"):
        raise UnsafeSoql(f"not a Salesforce API name: {str(name)[:80]!r}")
    return name


def string_literal(value: str) -> str:
    """`value` as a quoted SOQL string literal that reads back as exactly `value`."""
    return "'" + _escape(value, _ESCAPES) + "'"


def like_literal(value: str) -> str:
    """A LIKE pattern matching exactly `value` (its % and _ taken literally)."""
    return "'" + _escape(value, _LIKE_ESCAPES) + "'"


def _escape(value: str, table: dict[str, str]) -> str:
    if "\x00" in value:
        raise UnsafeSoql("a SOQL string cannot hold NUL")
    return "".join(table.get(ch, ch) for ch in value)


def datetime_literal(value: datetime) -> str:
    # Truncated to the second: SOQL date-time literals carry no milliseconds.
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def incremental_select(sobject: str, fields: Iterable[str], cursor: str, since: datetime) -> str:
    """Every row of `sobject` with `cursor` at or after `since`, in cursor order."""
    columns = ", ".join(identifier(f) for f in fields)
    return (f"SELECT {columns} FROM {identifier(sobject)} WHERE {identifier(cursor)} >= {datetime_literal(since)} "
            f"ORDER BY {identifier(cursor)} ASC, Id ASC")
