"""CRM search request -> SQL over the ``objects`` table.

filterGroups are ORed, the filters in a group ANDed. Each property compares by its kind:
datetimes as epoch ms (filter values may be epoch-ms or ISO strings), numbers numerically,
strings case-insensitively. ``hs_object_id``, ``createdate`` and the last-modified
properties map to indexed columns, so the incremental pattern
``hs_lastmodifieddate GTE x ORDER BY hs_lastmodifieddate`` never scans.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sandbox.hubspot.schema import property_kind, to_ms, to_number

MAX_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS = 5, 10, 25
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_COMPARE = {"EQ": "=", "NEQ": "!=", "LT": "<", "LTE": "<=", "GT": ">", "GTE": ">="}
_OPERATORS = set(_COMPARE) | {"BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY",
                              "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}
_COLUMNS = {"hs_object_id": ("id", "number"), "createdate": ("created_ms", "datetime"),
            "hs_lastmodifieddate": ("updated_ms", "datetime"), "lastmodifieddate": ("updated_ms", "datetime")}
# Free-text ``query`` looks in these (HubSpot's default searchable properties, roughly).
_TEXT_PROPERTIES = ("dealname", "name", "domain", "email", "firstname", "lastname", "hs_task_subject",
                    "hs_email_subject", "hs_meeting_title", "hs_call_title", "hs_note_body")


class SearchError(ValueError):
    """A request HubSpot would answer with 400 VALIDATION_ERROR."""


@dataclass
class Column:
    sql: str          # expression in the comparable domain (ms, number, lower-case text)
    raw: str          # the stored expression, for HAS_PROPERTY
    kind: str


def column(name: str, known: set[str]) -> Column:
    if name in _COLUMNS:
        sql, kind = _COLUMNS[name]
        return Column(sql, sql, kind)
    if not isinstance(name, str) or name not in known or not _NAME_RE.match(name):
        raise SearchError(f"Property \"{name}\" does not exist")
    raw = f"json_extract(props, '$.\"{name}\"')"     # safe: name is a known, plain identifier
    kind = property_kind(name)
    sql = {"datetime": f"hs_ms({raw})", "number": f"hs_num({raw})", "string": f"lower({raw})"}[kind]
    return Column(sql, raw, kind)


def where_sql(filter_groups, query: str | None, known: set[str]) -> tuple[str, list]:
    groups = filter_groups or []
    if not isinstance(groups, list) or len(groups) > MAX_GROUPS:
        raise SearchError(f"Too many filter groups: at most {MAX_GROUPS} are allowed")
    if sum(len(g.get("filters") or []) for g in groups if isinstance(g, dict)) > MAX_FILTERS:
        raise SearchError(f"Too many filters: at most {MAX_FILTERS} are allowed in total")
    params: list = []
    ors = [_group_sql(g, known, params) for g in groups]
    clauses = [" OR ".join(f"({o})" for o in ors)] if ors else []
    if query:
        clauses.append(_query_sql(query, known, params))
    return " AND ".join(f"({c})" for c in clauses), params


def _group_sql(group, known: set[str], params: list) -> str:
    filters = group.get("filters") if isinstance(group, dict) else None
    if not isinstance(filters, list) or not filters:
        raise SearchError("Each filter group needs at least one filter")
    if len(filters) > MAX_FILTERS_PER_GROUP:
        raise SearchError(f"Too many filters in a group: at most {MAX_FILTERS_PER_GROUP} are allowed")
    return " AND ".join(_filter_sql(f, known, params) for f in filters)


def _filter_sql(f: dict, known: set[str], params: list) -> str:
    op = str(f.get("operator") or "EQ").upper()
    if op not in _OPERATORS:
        raise SearchError(f"Unknown operator {op}")
    col = column(f.get("propertyName"), known)
    if op == "HAS_PROPERTY":
        return f"({col.raw} IS NOT NULL AND {col.raw} != '')"
    if op == "NOT_HAS_PROPERTY":
        return f"({col.raw} IS NULL OR {col.raw} = '')"
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        params.append(_like(f.get("value")))
        like = f"lower(coalesce({col.raw}, '')) LIKE ? ESCAPE '\\'"
        return like if op == "CONTAINS_TOKEN" else f"NOT ({like})"
    if op in ("IN", "NOT_IN"):
        values = f.get("values")
        if not isinstance(values, list) or not values:
            raise SearchError(f"{op} needs a non-empty 'values' list")
        params.extend(_value(col, v) for v in values)
        marks = ",".join("?" * len(values))
        return f"{col.sql} IN ({marks})" if op == "IN" else f"({col.sql} IS NULL OR {col.sql} NOT IN ({marks}))"
    if op == "BETWEEN":
        params.extend([_value(col, f.get("value")), _value(col, f.get("highValue"))])
        return f"{col.sql} BETWEEN ? AND ?"
    params.append(_value(col, f.get("value")))
    if op == "NEQ":   # records without the property count as "not equal"
        return f"({col.sql} IS NULL OR {col.sql} != ?)"
    return f"{col.sql} {_COMPARE[op]} ?"


def _value(col: Column, value):
    if value is None:
        raise SearchError("Filter value is missing")
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if col.kind == "datetime":
        ms = to_ms(text)
        if ms is None:
            raise SearchError(f"{text} is not a valid date (use epoch milliseconds or ISO-8601)")
        return ms
    if col.kind == "number":
        number = to_number(text)
        if number is None:
            raise SearchError(f"{text} is not a number")
        return number
    return text.lower()


def _like(value) -> str:
    token = str(value or "").lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return "%" + token.replace("*", "%") + "%"


def _query_sql(query: str, known: set[str], params: list) -> str:
    fields = [column(p, known).raw for p in _TEXT_PROPERTIES if p in known] or ["''"]
    params.extend([_like(query)] * len(fields))
    return " OR ".join(f"lower(coalesce({f}, '')) LIKE ? ESCAPE '\\'" for f in fields)


def order_sql(sorts, known: set[str]) -> str:
    """One sort (HubSpot allows one), then id so pages are stable; default id order."""
    if not sorts:
        return "id ASC"
    if not isinstance(sorts, list) or len(sorts) > 1:
        raise SearchError("Only one sort is allowed")
    name, direction = _sort_spec(sorts[0])
    col = column(name, known)
    return f"{col.sql} {direction}, id {direction}"


def _sort_spec(sort) -> tuple[str, str]:
    # The client types ``sorts`` as list[str]: accept "prop", "-prop" and the documented dict.
    if isinstance(sort, str):
        return (sort[1:], "DESC") if sort.startswith("-") else (sort, "ASC")
    if isinstance(sort, dict) and sort.get("propertyName"):
        direction = str(sort.get("direction") or "ASCENDING").upper()
        if direction not in ("ASCENDING", "DESCENDING"):
            raise SearchError(f"Unknown sort direction {direction}")
        return sort["propertyName"], "ASC" if direction == "ASCENDING" else "DESC"
    raise SearchError("A sort needs a propertyName")
