"""The Salesforce pull side as a dlt source: one incremental resource per stream.

Cursor rule: each run asks for `SystemModstamp >= last cursor` (truncated to the
second, since SOQL literals carry no milliseconds) and dlt drops the rows it has
already seen at the boundary. A strict `>` would lose rows that share the last
timestamp; `>=` with de-duplication loses nothing and repeats nothing.
The cursor lives in dlt's state, which is stored in the warehouse with the rows
it describes, so it can never run ahead of them.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Iterator

import dlt
from simple_salesforce import Salesforce

from connectors.errors import SourceRejected
from connectors.salesforce.client import VENDOR, connect, translate_errors
from connectors.salesforce.settings import SalesforceSettings
from connectors.salesforce.streams import STREAMS, Stream

# Salesforce field type -> dlt column type.
_DLT_TYPES = {
    "datetime": "timestamp", "date": "date", "boolean": "bool", "int": "bigint",
    "currency": "double", "percent": "double", "double": "double",
}


@dlt.source(name="salesforce", max_table_nesting=0)
def salesforce_source(settings: SalesforceSettings, streams: tuple[Stream, ...] = STREAMS):
    sf = connect(settings)
    for stream in streams:
        field_types = _describe(sf, stream, str(settings.login_url))
        yield _resource(sf, stream, field_types, settings.start_date)


def _describe(sf: Salesforce, stream: Stream, url: str) -> dict[str, str]:
    """The Salesforce type of each field the stream reads; every field must exist in this org."""
    with translate_errors(stream.name, url):
        described = {f["name"]: f["type"] for f in getattr(sf, stream.sobject).describe()["fields"]}
    missing = [f for f in stream.fields if f not in described]
    if missing:
        raise SourceRejected(VENDOR, stream.name,
                             f"{stream.sobject} has no field(s) {', '.join(missing)} in this org "
                             "(or the integration user cannot see them: check field-level security)")
    return {f: described[f] for f in stream.fields}


def _resource(sf: Salesforce, stream: Stream, field_types: dict[str, str], start: datetime):
    columns = {f: {"data_type": _DLT_TYPES.get(t, "text"), "nullable": f != "Id"} for f, t in field_types.items()}

    @dlt.resource(name=stream.name, primary_key="Id", write_disposition="merge", columns=columns)
    def read(cursor=dlt.sources.incremental(stream.cursor, initial_value=start)) -> Iterator[dict]:
        soql = (f"SELECT {', '.join(stream.fields)} FROM {stream.sobject} "
                f"WHERE {stream.cursor} >= {_soql_datetime(cursor.last_value)} "
                f"ORDER BY {stream.cursor} ASC, Id ASC")
        with translate_errors(stream.name, sf.base_url):
            for record in sf.query_all_iter(soql, include_deleted=stream.tracks_deletes):
                yield _typed(record, field_types)

    return read


def _soql_datetime(value: datetime) -> str:
    # Truncate to the second: the >= then re-reads the boundary second, dlt de-duplicates it.
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _typed(record: dict[str, Any], field_types: dict[str, str]) -> dict[str, Any]:
    out = {}
    for name, sf_type in field_types.items():
        value = record.get(name)
        if value is not None and sf_type == "datetime":
            value = datetime.fromisoformat(value)
        elif value is not None and sf_type == "date":
            value = date.fromisoformat(value)
        out[name] = value
    return out
