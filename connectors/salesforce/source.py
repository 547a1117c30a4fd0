"""The Salesforce pull side as a dlt source: one incremental resource per stream.

Cursor rule: each run asks for `SystemModstamp >= last cursor` (truncated to the
second, since SOQL literals carry no milliseconds) and dlt drops the rows it has
already seen at the boundary. A strict `>` would lose rows that share the last
timestamp; `>=` with de-duplication loses nothing and repeats nothing.
The cursor lives in dlt's state, which is stored in the warehouse with the rows
it describes, so it can never run ahead of them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Iterator

import dlt
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceRefusedRequest

from connectors.errors import StreamRefused
from connectors.landing import empty_table_marker
from connectors.progress import page_read
from connectors.report import PullReport
from connectors.text import clean
from connectors.salesforce.client import VENDOR, connect, error_codes, translate_errors
from connectors.salesforce.settings import SalesforceSettings
from connectors.salesforce.soql import incremental_select
from connectors.salesforce.streams import STREAMS, Stream

# Salesforce field type -> dlt column type.
_DLT_TYPES = {
    "datetime": "timestamp", "date": "date", "boolean": "bool", "int": "bigint",
    "currency": "double", "percent": "double", "double": "double",
}


@dlt.source(name="salesforce", max_table_nesting=0)
def salesforce_source(settings: SalesforceSettings, streams: tuple[Stream, ...] = STREAMS,
                      report: PullReport | None = None):
    sf = connect(settings)
    budget = _ApiBudget(sf, settings.max_api_usage_percent, report or PullReport())
    for stream in streams:
        try:
            field_types = _describe(sf, stream, str(settings.login_url))
        except StreamRefused as exc:
            yield _refused(stream, exc)
            continue
        yield _resource(sf, stream, field_types, settings.start_date, budget)


def _refused(stream: Stream, error: StreamRefused):
    """A stream whose describe was refused: reading it raises the refusal, so landing stops this
    stream alone (connectors.landing), as it does any stream refused while it reads."""
    @dlt.resource(name=stream.name, primary_key="Id", write_disposition="merge")
    def refused() -> Iterator[dict]:
        raise error
        yield

    return refused


class _ApiBudget:
    """Ends a pull early, and successfully, when the org's daily API allowance runs low.

    Rows arrive in cursor order, so a stream cut short has loaded a clean prefix and the
    next run resumes from its cursor: nothing is skipped, nothing is read twice.
    """

    def __init__(self, sf: Salesforce, max_percent: float, report: PullReport):
        self.sf, self.max_percent, self.report = sf, max_percent, report

    def spent(self) -> str | None:
        usage = self.sf.api_usage.get("api-usage")
        if usage and usage.total and usage.used * 100 >= usage.total * self.max_percent:
            return (f"API usage {usage.used}/{usage.total} reached max_api_usage_percent "
                    f"({self.max_percent:g} %); resuming next run")
        return None

    def stop(self, stream: Stream, reason: str) -> None:
        self.report.stop(stream.name, reason)


def _describe(sf: Salesforce, stream: Stream, url: str) -> dict[str, str]:
    """The Salesforce type of each field the stream reads: all of `stream.fields`, which must
    exist in this org, and those of `stream.optional` the org has."""
    with translate_errors(stream.name, url):
        described = {f["name"]: f["type"] for f in getattr(sf, stream.sobject).describe()["fields"]}
    missing = [f for f in stream.fields if f not in described]
    if missing:
        raise StreamRefused(VENDOR, stream.name,
                             f"{stream.sobject} has no field(s) {', '.join(missing)} in this org "
                             "(or the integration user cannot see them: check field-level security)")
    return {f: described[f] for f in (*stream.fields, *stream.optional) if f in described}


def _resource(sf: Salesforce, stream: Stream, field_types: dict[str, str], start: datetime, budget: _ApiBudget):
    # An optional field the org lacks still gets its (text) column, left NULL: the raw table has
    # the same columns in every org.
    columns = {f: {"data_type": _DLT_TYPES.get(t, "text"), "nullable": f != "Id"} for f, t in field_types.items()}
    columns.update({f: {"data_type": "text", "nullable": True} for f in stream.optional if f not in field_types})

    @dlt.resource(name=stream.name, primary_key="Id", write_disposition="merge", columns=columns)
    def read(cursor=dlt.sources.incremental(stream.cursor, initial_value=start)) -> Iterator[dict]:
        soql = incremental_select(stream.sobject, field_types, stream.cursor, cursor.last_value)
        rows = yield from _read_within_budget(sf, stream, soql, field_types, budget)
        if rows == 0:
            yield empty_table_marker()

    return read


def _read_within_budget(sf: Salesforce, stream: Stream, soql: str, field_types: dict[str, str],
                        budget: _ApiBudget) -> Iterator[dict]:
    """Yield the query's rows until done or until the API budget is spent; return how many."""
    rows = 0
    if reason := budget.spent():
        budget.stop(stream, reason)
        return rows
    with translate_errors(stream.name, sf.base_url):
        try:
            for record in _records(sf, stream, soql):
                yield _typed(record, field_types)
                rows += 1
                if reason := budget.spent():
                    budget.stop(stream, reason)
                    break
        except SalesforceRefusedRequest as exc:
            if "REQUEST_LIMIT_EXCEEDED" not in error_codes(exc):
                raise
            budget.stop(stream, "the org's daily API request limit is exhausted; resuming next run")
    return rows


def _records(sf: Salesforce, stream: Stream, soql: str) -> Iterator[dict]:
    """The query's records, page after page (simple-salesforce's query_all_iter, with each page
    counted in the stream's progress)."""
    result = sf.query(soql, include_deleted=stream.tracks_deletes)
    while True:
        page_read(stream.name)
        yield from result["records"]
        if result["done"]:
            return
        result = sf.query_more(result["nextRecordsUrl"], identifier_is_url=True)


def _typed(record: dict[str, Any], field_types: dict[str, str]) -> dict[str, Any]:
    out = {}
    for name, sf_type in field_types.items():
        value = record.get(name)
        if value is not None and sf_type == "datetime":
            value = datetime.fromisoformat(value)
        elif value is not None and sf_type == "date":
            value = date.fromisoformat(value)
        out[name] = clean(value)
    return out
