"""The HubSpot pull side as a dlt source.

  owners, deal_pipelines (+ deal_stages)   full read each run (small)
  companies, contacts, deals, emails, meetings, calls, tasks
                                           first run: list every record; then search on the
                                           last-modified property from the cursor minus a
                                           lookback, re-windowing past search's 10,000 cap
  deal_property_history                    every past value of dealstage, amount, closedate,
                                           owner, re-read for each deal that changed
  associations                             each changed record's links, replaced as a whole;
                                           every record's links once a day (association_sweep_hours)
  archived_records                         what HubSpot archived (deleted or merged away)
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import dlt
from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest, PublicFetchAssociationsBatchRequest
from hubspot.crm.objects import BatchReadInputSimplePublicObjectId, PublicObjectSearchRequest

from connectors.errors import SourceRejected
from connectors.hubspot.client import VENDOR, HubSpotClient
from connectors.hubspot.settings import HubSpotSettings
from connectors.hubspot.streams import (MODIFIED_PROPERTIES, OBJECT_STREAMS, TYPES, ObjectStream, derive,
                                        rejected_column, typed_properties)
from connectors.landing import empty_table_marker
from connectors.rejections import rejected_text
from connectors.text import clean, clean_row, parse_number, parse_timestamp

SEARCH_CAP = 10_000       # search refuses to page past this many results
SEARCH_PAGE = 200
LIST_PAGE = 100
HISTORY_BATCH = 50        # batch read with property history takes fewer ids per call
ASSOCIATION_BATCH = 100
_REPLACE_LINKS = {"disposition": "merge", "strategy": "delete-insert"}


@dlt.source(name="hubspot", max_table_nesting=0)
def hubspot_source(settings: HubSpotSettings, streams: tuple[ObjectStream, ...] = OBJECT_STREAMS):
    client = HubSpotClient(settings)
    yield _owners(client)
    yield _pipelines(client)
    for stream in streams:
        objects = _objects(client, stream, settings)
        yield objects
        if stream.history:
            yield objects | _history(client, stream)
        if stream.associations:
            yield objects | _associations(client, stream)
    yield _archived(client, streams)
    yield _association_sweep(client, streams, settings.association_sweep_hours)


# ------------------------------------------------------------------ small full reads

def _owners(client: HubSpotClient):
    @dlt.resource(name="owners", primary_key="id", write_disposition="replace")
    def owners() -> Iterator[dict]:
        owners_api = client.api.crm.owners.owners_api
        for archived in (False, True):
            for owner in _paged(lambda after: client.call("owners", owners_api.get_page, limit=LIST_PAGE,
                                                          after=after, archived=archived)):
                yield clean_row({"id": owner.id, "email": (owner.email or "").lower() or None,
                                 "first_name": owner.first_name, "last_name": owner.last_name, "user_id": owner.user_id,
                                 "archived": bool(owner.archived), "created_at": owner.created_at,
                                 "updated_at": owner.updated_at})

    return owners


def _pipelines(client: HubSpotClient):
    @dlt.resource(name="deal_pipelines", primary_key="id", write_disposition="replace")
    def deal_pipelines() -> Iterator[dict]:
        result = client.call("deal_pipelines", client.api.crm.pipelines.pipelines_api.get_all, "deals")
        for pipeline in result.results:
            yield clean_row({"id": pipeline.id, "label": pipeline.label, "display_order": pipeline.display_order,
                             "archived": bool(pipeline.archived)})
            for stage in pipeline.stages:
                meta = stage.metadata or {}
                yield dlt.mark.with_table_name(clean_row({
                    "pipeline_id": pipeline.id, "id": stage.id, "label": stage.label,
                    "display_order": stage.display_order, "archived": bool(stage.archived),
                    "probability": _number("deal_stages", "probability", meta.get("probability")),
                    "is_closed": str(meta.get("isClosed", "false")).lower() == "true",
                }), "deal_stages")

    return deal_pipelines


# ------------------------------------------------------------------ CRM objects, incremental

def _objects(client: HubSpotClient, stream: ObjectStream, settings: HubSpotSettings):
    columns = {"id": {"data_type": "text", "nullable": False}, "created_at": {"data_type": "timestamp"},
               "updated_at": {"data_type": "timestamp"}, "archived": {"data_type": "bool"},
               **{p: {"data_type": TYPES.get(p, "text")} for p in (*stream.properties, *stream.derived)},
               **{rejected_column(p): {"data_type": "text"} for p in typed_properties(stream)}}
    lookback = settings.lookback_minutes * 60

    @dlt.resource(name=stream.name, primary_key="id", write_disposition="merge", columns=columns)
    def read(cursor=dlt.sources.incremental("updated_at", initial_value=settings.start_date, lag=lookback)):
        first_run = cursor.last_value <= settings.start_date
        pages = _list_all(client, stream) if first_run else _search_since(client, stream, cursor.start_value)
        rows = 0
        for page in pages:
            # Whole pages, so the history and association transformers batch their calls.
            yield [_row(stream, obj) for obj in page]
            rows += len(page)
        if rows == 0:
            yield empty_table_marker()

    return read


def _list_all(client: HubSpotClient, stream: ObjectStream) -> Iterator[list]:
    basic = client.api.crm.objects.basic_api
    yield from _pages(lambda after: client.call(stream.name, basic.get_page, stream.name, limit=LIST_PAGE,
                                                after=after, properties=list(stream.properties), archived=False))


def _search_since(client: HubSpotClient, stream: ObjectStream, since: datetime) -> Iterator[list]:
    """Everything modified at or after `since`, oldest first.

    Search cannot page past 10,000 results, so when a window fills up, a new window starts
    at the last modification time seen; the rows read twice at that instant merge away.
    """
    search = client.api.crm.objects.search_api
    window = since
    while True:
        last_seen, offset = window, 0
        while True:
            request = PublicObjectSearchRequest(
                filter_groups=[{"filters": [{"propertyName": stream.modified_property, "operator": "GTE",
                                             "value": str(_epoch_ms(window))}]}],
                sorts=[{"propertyName": stream.modified_property, "direction": "ASCENDING"}],
                properties=list(stream.properties), limit=SEARCH_PAGE, after=str(offset))
            page = client.call(stream.name, search.do_search, stream.name, request, search=True)
            if page.results:
                yield page.results
                last_seen = _modified(stream, page.results[-1]) or last_seen
            if not (page.paging and page.paging.next):
                return
            offset = int(page.paging.next.after)
            if offset >= SEARCH_CAP:
                break
        if last_seen <= window:
            raise SourceRejected(VENDOR, stream.name, f"more than {SEARCH_CAP:,} records share the modification "
                                 f"time {window.isoformat()}; search cannot page through them")
        window = last_seen


def _row(stream: ObjectStream, obj: Any) -> dict:
    props = {name: clean(value) for name, value in (obj.properties or {}).items()}
    row = {"id": obj.id, "created_at": obj.created_at, "updated_at": obj.updated_at, "archived": bool(obj.archived)}
    for name in stream.properties:
        value = row[name] = _typed(stream.name, name, props.get(name))
        if value is _UNTYPED:
            # NULL in the typed column; the vendor's text kept beside it, so the record is
            # reported (model.rejected_values) for as long as it holds the value, no longer.
            row[name], row[rejected_column(name)] = None, rejected_text(props[name])
    row.update(derive(stream, props))
    return row


# ------------------------------------------------------------------ per changed record: history, links

def _history(client: HubSpotClient, stream: ObjectStream):
    table = f"{stream.name.removesuffix('s')}_property_history"
    batch = client.api.crm.objects.batch_api

    def read(ids: list[str]) -> Any:
        request = BatchReadInputSimplePublicObjectId(inputs=[{"id": i} for i in ids], properties=[],
                                                     properties_with_history=list(stream.history))
        return client.call(table, batch.read, stream.name, request, archived=False)

    @dlt.transformer(name=table, write_disposition=_REPLACE_LINKS, merge_key="record_id",
                     columns={"value": {"data_type": "text"}, "rejected_value": {"data_type": "text"}})
    def history(rows: list[dict]) -> Iterator[dict]:
        for ids in _chunks(_ids(rows), HISTORY_BATCH):
            for obj in _batch_read(read, ids, client.settings.retry.attempts):
                for prop, values in (obj.properties_with_history or {}).items():
                    for v in values:
                        yield _history_row(stream, obj.id, prop, v)

    return history


def _batch_read(read: Callable[[list[str]], Any], ids: list[str], attempts: int) -> list:
    """Every object a batch read returns. The ids a 207 answer reports it could not get are
    asked for again, a few times: HubSpot reports records it could not read at that moment
    that way. Ids still missing then are records deleted since they were listed."""
    results, pending = [], ids
    for _ in range(attempts + 1):
        result = read(pending)
        results += result.results
        pending = [i for error in (getattr(result, "errors", None) or []) for i in (error.context or {}).get("ids", [])]
        if not pending:
            break
    return results


def _history_row(stream: ObjectStream, record_id: str, prop: str, version: Any) -> dict:
    """A past value as text, as HubSpot keeps it. The model casts the values of typed properties,
    so one that does not type is stored NULL with the vendor's text in rejected_value."""
    value, rejected = clean(version.value), None
    if value not in (None, "") and _typed(stream.name, prop, value) is _UNTYPED:
        value, rejected = None, rejected_text(value)
    return {"record_id": record_id, "property": prop, "value": value, "rejected_value": rejected,
            "changed_at": version.timestamp, "source_type": version.source_type}


_LINK_COLUMNS = {**{c: {"data_type": "text"} for c in ("from_type", "from_id", "to_type", "to_id", "label")},
                 "type_id": {"data_type": "bigint"}}


def _associations(client: HubSpotClient, stream: ObjectStream):
    @dlt.transformer(name=f"{stream.name}_associations", table_name="associations",
                     write_disposition=_REPLACE_LINKS, merge_key=["from_type", "from_id"], columns=_LINK_COLUMNS)
    def links(rows: list[dict]) -> Iterator[dict]:
        yield from _association_rows(client, stream, _ids(rows))

    return links


def _association_sweep(client: HubSpotClient, streams: tuple[ObjectStream, ...], every_hours: float):
    """Re-read every record's links now and then: HubSpot does not bump a record's modified
    date when a link is added or removed, so the per-change reads alone would miss it."""

    @dlt.resource(name="association_sweep", table_name="associations", write_disposition=_REPLACE_LINKS,
                  merge_key=["from_type", "from_id"], columns=_LINK_COLUMNS)
    def sweep() -> Iterator[dict]:
        state = dlt.current.resource_state()
        now = datetime.now(timezone.utc)
        last = state.get("last_sweep")
        if last is None:      # the first run lists every record, and reads their links with them
            state["last_sweep"] = now.isoformat()
            return
        if (now - datetime.fromisoformat(last)).total_seconds() < every_hours * 3600:
            return
        basic = client.api.crm.objects.basic_api
        for stream in streams:
            if not stream.associations:
                continue
            for page in _pages(lambda after, s=stream: client.call(s.name, basic.get_page, s.name, limit=LIST_PAGE,
                                                                   after=after, properties=["hs_object_id"])):
                yield from _association_rows(client, stream, [obj.id for obj in page])
        state["last_sweep"] = now.isoformat()

    return sweep


def _association_rows(client: HubSpotClient, stream: ObjectStream, ids: list[str]) -> Iterator[dict]:
    """Every link of these records to the stream's associated types. A record's links are
    replaced as a whole; one with none keeps a row with to_id NULL, so its old links are
    still deleted by the merge."""
    batch = client.api.crm.associations.v4.batch_api
    for chunk in _chunks(ids, ASSOCIATION_BATCH):
        linked: set[str] = set()
        for to_type in stream.associations:
            request = BatchInputPublicFetchAssociationsBatchRequest(
                inputs=[PublicFetchAssociationsBatchRequest(id=i) for i in chunk])
            result = client.call(f"{stream.name}_associations", batch.get_page, stream.name, to_type, request)
            for item in result.results:
                for target in item.to:
                    for kind in target.association_types:
                        linked.add(item._from.id)
                        yield {"from_type": stream.name, "from_id": item._from.id, "to_type": to_type,
                               "to_id": str(target.to_object_id), "type_id": kind.type_id, "label": kind.label}
        for orphan in sorted(set(chunk) - linked):
            yield {"from_type": stream.name, "from_id": orphan, "to_type": None, "to_id": None,
                   "type_id": None, "label": None}


def _archived(client: HubSpotClient, streams: tuple[ObjectStream, ...]):
    basic = client.api.crm.objects.basic_api

    @dlt.resource(name="archived_records", primary_key=["object_type", "id"], write_disposition="replace")
    def archived() -> Iterator[dict]:
        for stream in streams:
            for obj in _paged(lambda after, s=stream: client.call("archived_records", basic.get_page, s.name,
                                                                  limit=LIST_PAGE, after=after, archived=True)):
                yield {"object_type": stream.name, "id": obj.id, "archived_at": obj.archived_at,
                       "updated_at": obj.updated_at}

    return archived


# ------------------------------------------------------------------ helpers

def _pages(fetch: Callable[[str | None], Any]) -> Iterator[list]:
    """Each page's results from an `after`-paged list endpoint."""
    after = None
    while True:
        page = fetch(after)
        if page.results:
            yield page.results
        if not (page.paging and page.paging.next):
            return
        after = page.paging.next.after


def _paged(fetch: Callable[[str | None], Any]) -> Iterator[Any]:
    for page in _pages(fetch):
        yield from page


def _ids(rows: list) -> list[str]:
    return [r["id"] for r in (rows if isinstance(rows, list) else [rows]) if isinstance(r, dict) and "id" in r]


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _epoch_ms(value: datetime) -> int:
    return int(value.astimezone(timezone.utc).timestamp() * 1000)


def _modified(stream: ObjectStream, obj: Any) -> datetime | None:
    raw = (obj.properties or {}).get(stream.modified_property)
    return _timestamp(stream.name, stream.modified_property, raw) if raw else obj.updated_at


_UNTYPED = object()      # a value of a typed property that is not of its type


def _typed(stream: str, name: str, raw: str | None) -> Any:
    """HubSpot's string typed by TYPES, None for no value, or _UNTYPED. The last-modified
    properties are HubSpot's own and drive the cursor: one that does not type stops the stream."""
    kind = TYPES.get(name)
    if raw is None or raw == "" or kind is None:
        return raw if raw != "" else None
    value = {"timestamp": parse_timestamp, "double": parse_number, "bool": _boolean}[kind](raw)
    if value is None and name in MODIFIED_PROPERTIES:
        raise SourceRejected(VENDOR, stream, f"property {name} is not a date-time: {raw[:40]!r}")
    return _UNTYPED if value is None else value


def _boolean(raw: str) -> bool | None:
    return {"true": True, "false": False}.get(raw.lower())


def _timestamp(stream: str, name: str, raw: str) -> datetime:
    value = parse_timestamp(raw)
    if value is None:
        raise SourceRejected(VENDOR, stream, f"property {name} is not a date-time: {raw[:40]!r}")
    return value


def _number(stream: str, name: str, raw: Any) -> float | None:
    if raw is None or raw == "":
        return None
    value = parse_number(str(raw))
    if value is None:
        raise SourceRejected(VENDOR, stream, f"property {name} is not a number: {str(raw)[:40]!r}")
    return value
