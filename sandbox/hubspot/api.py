"""The CRM resources the emulator serves, one ``Request`` per authenticated call.

Status codes follow the client's ``response_types_map`` exactly (an unlisted 2xx makes the
client return None silently): list/get/update/search 200, single create 201, batch
read/update 200|207, batch create 201, archive 204, v4 labelled create 201, v4 default 200.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sandbox.hubspot import search
from sandbox.hubspot.errors import HubSpotError, batch_error, not_found, property_errors, validation
from sandbox.hubspot.schema import (
    ASSOCIATION_TYPES, DEFAULT_PROPERTIES, ENGAGEMENTS, READ_ONLY_PROPERTIES, SINGULAR, TYPE_IDS,
    always_properties, association_label, default_association, modified_property, object_type, to_number,
    wire_datetime, wire_value,
)
from sandbox.hubspot.store import ObjectRow

if TYPE_CHECKING:
    from sandbox.hubspot.emulator import HubSpotEmulator

MAX_LIST, MAX_LIST_WITH_HISTORY, MAX_SEARCH, MAX_BATCH = 100, 50, 200, 100
SEARCH_WINDOW = 10_000                 # search never pages past the 10,000th result
MAX_ASSOCIATION_PAGE, MAX_ASSOCIATION_BATCH = 500, 1000
MAX_OWNERS = 500
WRITE_SOURCE = {"sourceType": "INTEGRATION", "sourceId": "sandbox-private-app"}


@dataclass
class Reply:
    status: int
    payload: object = None             # JSON-able, or None for 204
    records: int = 0                   # for the request log


@dataclass
class Request:
    emu: "HubSpotEmulator"
    method: str
    segments: list[str]
    params: dict[str, list[str]]
    body: bytes
    writes: list = field(default_factory=list)

    # ----------------------------------------------------------------- parameters

    def values(self, name: str) -> list[str]:
        """Repeated and/or comma-separated: HubSpot accepts both (the client repeats)."""
        return [v.strip() for raw in self.params.get(name, []) for v in raw.split(",") if v.strip()]

    def flag(self, name: str, default: bool = False) -> bool:
        raw = (self.params.get(name) or [None])[0]
        if raw is None or raw == "":
            return default
        if raw.lower() not in ("true", "false"):
            raise validation(f"Invalid value for boolean parameter {name}: {raw}")
        return raw.lower() == "true"     # the client sends str(bool): "True"/"False"

    def integer(self, name: str, default: int, maximum: int, why: str = "") -> int:
        raw = (self.params.get(name) or [None])[0]
        value = _int(raw, name) if raw not in (None, "") else default
        if value < 1 or value > maximum:
            raise validation(f"{name} must be between 1 and {maximum}{why}, got {value}")
        return value

    def cursor(self, name: str = "after") -> int:
        raw = (self.params.get(name) or [None])[0]
        return _int(raw, name) if raw not in (None, "") else 0

    def json(self, expected=dict):
        try:
            value = json.loads(self.body or b"null")
        except ValueError as exc:
            raise validation(f"Invalid input JSON on line 1: {exc}") from None
        if not isinstance(value, expected):
            raise validation(f"Invalid input JSON: expected {'an object' if expected is dict else 'an array'}")
        return value

    # ----------------------------------------------------------------- shaping

    def shape(self, row: ObjectRow, properties: list[str] | None, history: list[str] | None = None,
              associations: dict | None = None) -> dict:
        known = self.emu.store.known_properties(row.type)
        obj = {"id": str(row.id), "properties": _select(row, properties, history, known),
               "createdAt": row.created_at, "updatedAt": row.updated_at, "archived": row.archived}
        if row.archived:
            obj["archivedAt"] = row.archived_at
        if history:
            obj["propertiesWithHistory"] = {n: _history(row, n) for n in history if n in known}
        if associations:
            obj["associations"] = associations
        if row.merged:
            obj["mergedObjectIds"] = row.merged
        return obj

    def batch_payload(self, results: list, errors: list) -> tuple[int, dict]:
        stamp = wire_datetime(self.emu.now)
        payload = {"status": "COMPLETE", "results": results, "startedAt": stamp, "completedAt": stamp}
        if errors:
            payload.update(numErrors=len(errors), errors=errors)
        return (207 if errors else 200), payload


def _int(raw, name: str) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise validation(f"Invalid value for {name}: {raw}") from None


def _select(row: ObjectRow, properties: list[str] | None, history: list[str] | None, known: set[str]) -> dict:
    props = row.properties
    if not properties and not history:
        names = [n for n in DEFAULT_PROPERTIES[row.type] if n != "hs_createdate" or n in props]
    else:
        wanted = [n for n in (properties or []) + (history or []) if n in known]
        names = wanted + list(always_properties(row.type))
    return {n: props.get(n) for n in sorted(set(names))}


def _history(row: ObjectRow, name: str) -> list[dict]:
    entries = (row.history or {}).get(name)
    if entries:
        return entries
    value = row.properties.get(name)
    # A value the org gave without history: HubSpot would still show when it was set.
    return [{"value": value, "timestamp": row.created_at, "sourceType": "CRM_UI"}] if value is not None else []


def object_type_or_400(name: str) -> str:
    found = object_type(name)
    if found is None:
        raise validation(f"Unable to infer object type from: {name}")
    return found


# ===================================================================== objects (read)

class Objects:
    """/crm/v3/objects/{type}[/...]"""

    def __init__(self, req: Request, otype: str):
        self.req, self.emu, self.store, self.type = req, req.emu, req.emu.store, otype

    def list(self) -> Reply:
        req = self.req
        history = req.values("propertiesWithHistory")
        limit = req.integer("limit", 10, MAX_LIST_WITH_HISTORY if history else MAX_LIST,
                            " when propertiesWithHistory is requested" if history else "")
        rows = self.store.page(self.type, archived=req.flag("archived"), after=req.cursor(), limit=limit + 1,
                               history=bool(history))
        more = rows[limit] if len(rows) > limit else None
        rows = rows[:limit]
        inline = self.inline_associations(rows, req.values("associations"))
        results = [req.shape(r, req.values("properties"), history, inline.get(r.id)) for r in rows]
        payload = {"results": results}
        if more is not None:
            payload["paging"] = {"next": {"after": str(more.id),
                                          "link": f"{self.emu.url}/crm/v3/objects/{self.type}?after={more.id}"}}
        return Reply(200, payload, len(results))

    def get(self, raw_id: str) -> Reply:
        req = self.req
        history = req.values("propertiesWithHistory")
        row = self.find(raw_id, archived=req.flag("archived"), id_property=(req.params.get("idProperty") or [None])[0],
                        history=bool(history))
        if row is None:
            raise not_found(raw_id)
        inline = self.inline_associations([row], req.values("associations"))
        return Reply(200, req.shape(row, req.values("properties"), history, inline.get(row.id)), 1)

    def find(self, key: str, *, archived: bool, id_property: str | None, history: bool) -> ObjectRow | None:
        """By id (or a unique property); a merged-away id resolves to the record it was merged into."""
        if id_property and id_property != "hs_object_id":
            hit = self.store.find_by_property(self.type, id_property, str(key), archived=archived)
            return self.store.get(self.type, hit.id, history=history) if hit else None
        try:
            object_id = int(key)
        except (TypeError, ValueError):
            return None
        row = self.store.get(self.type, object_id, history=history)
        if row is not None and row.archived == archived:
            return row
        survivor = None if archived else self.store.survivor(self.type, object_id)
        if survivor is not None:
            row = self.store.get(self.type, survivor, history=history)
            return row if row is not None and not row.archived else None
        return None

    def inline_associations(self, rows: list[ObjectRow], wanted: list[str]) -> dict[int, dict]:
        """v3 ``associations=`` : {object id: {"contacts": {"results": [...], "paging"?}}}."""
        out: dict[int, dict] = {}
        cap = self.emu.INLINE_ASSOCIATION_LIMIT
        for to_type in dict.fromkeys(t for t in map(object_type, wanted) if t):
            links = self.store.associations(self.type, [r.id for r in rows], to_type)
            for from_id, items in links.items():
                page = {"results": [{"id": str(a.to_id), "type": association_label(a.type_id, self.type, to_type)}
                                    for a in items[:cap]]}
                if len(items) > cap:
                    after = items[cap].to_id
                    page["paging"] = {"next": {"after": str(after), "link": (
                        f"{self.emu.url}/crm/v4/objects/{self.type}/{from_id}/associations/{to_type}?after={after}")}}
                out.setdefault(from_id, {})[to_type] = page
        return out

    # ----------------------------------------------------------------- search

    def search(self) -> Reply:
        body = self.req.json()
        limit, after = _int(body.get("limit", 10), "limit"), _int(body.get("after") or 0, "after")
        if not 0 <= limit <= MAX_SEARCH:
            raise validation(f"limit must be between 0 and {MAX_SEARCH}, got {limit}")
        if after >= SEARCH_WINDOW:
            # Real HubSpot: paging past the 10,000th result is a 400; connectors must re-window.
            raise validation(f"Search results are limited to {SEARCH_WINDOW} total; 'after' must be lower "
                             f"than {SEARCH_WINDOW}, got {after}. Narrow the query (e.g. by hs_lastmodifieddate).",
                             context={"after": [str(after)]})
        known = self.store.known_properties(self.type)
        try:
            where, params = search.where_sql(body.get("filterGroups"), body.get("query"), known)
            order = search.order_sql(body.get("sorts"), known)
        except search.SearchError as exc:
            raise validation("There was a problem with the request.", errors=[{"message": str(exc)}]) from None
        total, rows = self.store.search(self.type, where, params, order, min(limit, SEARCH_WINDOW - after), after)
        properties = [p for p in body.get("properties") or [] if isinstance(p, str)]
        payload = {"total": total, "results": [self.req.shape(r, properties) for r in rows]}
        if rows and after + len(rows) < total:      # limit 0 asks for the total only
            payload["paging"] = {"next": {"after": str(after + len(rows))}}
        return Reply(200, payload, len(rows))

    # ----------------------------------------------------------------- batch read

    def batch_read(self) -> Reply:
        body = self.req.json()
        inputs = _inputs(body)
        history = [p for p in body.get("propertiesWithHistory") or [] if isinstance(p, str)]
        archived = self.req.flag("archived")
        found, missing = {}, []
        for item in inputs:
            key = str(item.get("id"))
            row = self.find(key, archived=archived, id_property=body.get("idProperty"), history=bool(history))
            if row is None:
                missing.append(key)
            else:
                found.setdefault(row.id, row)
        results = [self.req.shape(r, body.get("properties") or [], history) for r in found.values()]
        errors = [batch_error("OBJECT_NOT_FOUND", f"Could not get some {SINGULAR[self.type].upper()} objects, "
                              "they may be deleted or not exist. Check that ids are valid.",
                              {"ids": missing})] if missing else []
        status, payload = self.req.batch_payload(results, errors)
        return Reply(status, payload, len(results))


def _inputs(body: dict, maximum: int = MAX_BATCH) -> list[dict]:
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        raise validation("Invalid input JSON: 'inputs' must be an array of objects")
    if len(inputs) > maximum:
        raise validation(f"Batch input is limited to {maximum} inputs, got {len(inputs)}",
                         context={"maxInputs": [str(maximum)]})
    return inputs


# ===================================================================== objects (write)

class Writes(Objects):
    """Creates, updates and archives, with HubSpot's write semantics: unknown or read-only
    properties fail the whole request (400); changes stamp the emulator clock on the
    last-modified property and prepend property history; unchanged values are no-ops."""

    def create(self) -> Reply:
        body = self.req.json()
        with self.store.transaction():
            row = self.create_one(body)
        return Reply(201, self.req.shape(row, list(row.properties)), 1)

    def batch_create(self) -> Reply:
        inputs = _inputs(self.req.json())
        with self.store.transaction():
            for item in inputs:                     # validate everything before writing anything
                self.check_create(item)
            rows = [self.create_one(item) for item in inputs]
        status, payload = self.req.batch_payload([self.req.shape(r, list(r.properties)) for r in rows], [])
        return Reply(201, payload, len(rows))

    def update(self, raw_id: str) -> Reply:
        properties = self.properties_of(self.req.json())
        self.check_properties(properties)
        id_property = (self.req.params.get("idProperty") or [None])[0]
        with self.store.transaction():
            row = self.find(raw_id, archived=False, id_property=id_property, history=True)
            if row is None:
                raise not_found(raw_id)
            self.apply(row, properties)
        return Reply(200, self.req.shape(row, list(properties)), 1)

    def batch_update(self) -> Reply:
        inputs = _inputs(self.req.json())
        ids = [str(i.get("id")) for i in inputs]
        if len(set(ids)) != len(ids):
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            raise validation("Duplicate IDs found in batch input: " + ", ".join(duplicates))
        for item in inputs:
            self.check_properties(self.properties_of(item))
        results, missing = [], []
        with self.store.transaction():
            for item in inputs:
                row = self.find(str(item.get("id")), archived=False, id_property=item.get("idProperty"), history=True)
                if row is None:
                    missing.append(str(item.get("id")))
                    continue
                self.apply(row, self.properties_of(item))
                results.append(self.req.shape(row, list(self.properties_of(item))))
        errors = [batch_error("OBJECT_NOT_FOUND", f"Could not update some {SINGULAR[self.type].upper()} objects, "
                              "they may be archived or not exist. Check that ids are valid.",
                              {"ids": missing})] if missing else []
        status, payload = self.req.batch_payload(results, errors)
        return Reply(status, payload, len(results))

    def archive(self, raw_id: str) -> Reply:
        with self.store.transaction():
            self.archive_one(raw_id)
        return Reply(204)

    def batch_archive(self) -> Reply:
        inputs = _inputs(self.req.json())
        with self.store.transaction():
            for item in inputs:
                self.archive_one(str(item.get("id")))
        return Reply(204)

    # ----------------------------------------------------------------- rules

    def properties_of(self, item: dict) -> dict:
        props = item.get("properties")
        if props is None:
            return {}
        if not isinstance(props, dict):
            raise validation("Invalid input JSON: 'properties' must be an object")
        return props

    def check_properties(self, props: dict) -> None:
        known = self.store.known_properties(self.type)
        problems = []
        for name, value in props.items():
            if name in READ_ONLY_PROPERTIES:
                problems.append((name, "READ_ONLY_VALUE", f"{name} is a read only property; its value cannot be set."))
            elif name not in known:
                problems.append((name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'))
            elif isinstance(value, (dict, list)):
                problems.append((name, "INVALID_OPTION", f"{value!r} is not a valid value for {name}"))
            elif name == "dealstage" and self.type == "deals" and not self.stage(props.get("pipeline"), value):
                problems.append((name, "INVALID_OPTION", f"{value} was not one of the allowed options"))
        if problems:
            raise property_errors(problems)

    def stage(self, pipeline: str | None, stage_id) -> dict | None:
        pipelines = self.store.pipelines("deals")
        if not pipelines:
            return {"id": stage_id, "metadata": {}}          # no pipelines loaded: anything goes
        for p in pipelines:
            if pipeline in (None, p["id"]):
                hit = next((s for s in p["stages"] if s["id"] == stage_id), None)
                if hit:
                    return hit
        return None

    def check_create(self, body: dict) -> list[tuple]:
        props = self.properties_of(body)
        self.check_properties(props)
        if self.type in ENGAGEMENTS and not props.get("hs_timestamp"):
            raise property_errors([("hs_timestamp", "REQUIRED_PROPERTY", "hs_timestamp is required")])
        return self.check_associations(body.get("associations") or [])

    def check_associations(self, specs: list) -> list[tuple]:
        """Create-body associations -> [(type, to_type, to_id)]; a bad one fails the request."""
        links = []
        for spec in specs:
            to_id = str(((spec or {}).get("to") or {}).get("id"))
            for t in (spec or {}).get("types") or []:
                kind = ASSOCIATION_TYPES.get(_int(t.get("associationTypeId"), "associationTypeId"))
                if kind is None or kind.from_type != self.type:
                    raise validation(f"Association type {t.get('associationTypeId')} is not valid from "
                                     f"{SINGULAR[self.type]}", subCategory="crm.associations.INVALID_ASSOCIATION_TYPE")
                if not _live(self.store, kind.to_type, to_id):
                    raise validation(f"One or more associations are invalid: {kind.to_type} {to_id} does not exist",
                                     context={"id": [to_id]})
                links.append((kind, int(to_id)))
        return links

    def create_one(self, body: dict) -> ObjectRow:
        links = self.check_create(body)
        stamp, given = wire_datetime(self.emu.now), self.properties_of(body)
        object_id = self.emu.next_id()
        row = ObjectRow(self.type, object_id, stamp, stamp, False, None,
                        {"hs_object_id": str(object_id), "createdate": stamp, modified_property(self.type): stamp},
                        [], {})
        if self.type in ENGAGEMENTS:
            row.properties["hs_createdate"] = stamp
        if self.type == "deals":
            given = {"pipeline": "default", **given}
        self.set_values(row, given, stamp)
        self.store.save(row)
        for kind, to_id in links:
            self.emu.link(kind, object_id, to_id)
        self.req.writes.append({"op": "create", "object": self.type, "id": str(object_id), "properties": dict(given),
                                "associations": [{"typeId": k.id, "toType": k.to_type, "toId": str(t)}
                                                 for k, t in links]})
        return row

    def apply(self, row: ObjectRow, props: dict) -> None:
        stamp = wire_datetime(self.emu.now)
        self.req.writes.append({"op": "update", "object": self.type, "id": str(row.id), "properties": dict(props)})
        if self.set_values(row, props, stamp):
            row.properties[modified_property(self.type)] = stamp
            if "hs_lastmodifieddate" in row.properties:      # contacts carry both stamps
                row.properties["hs_lastmodifieddate"] = stamp
            row.updated_at = stamp
            self.store.save(row)

    def set_values(self, row: ObjectRow, props: dict, stamp: str) -> bool:
        values = {k: wire_value(v) for k, v in props.items()}
        changed = {k: v for k, v in values.items() if row.properties.get(k) != v}
        if self.type == "deals" and "dealstage" in changed:
            changed.update(self.stage_effects(row.properties.get("dealstage"), changed, stamp))
        for name, value in changed.items():
            row.properties[name] = value
            row.history.setdefault(name, []).insert(0, {"value": value, "timestamp": stamp, **WRITE_SOURCE})
        return bool(changed)

    def stage_effects(self, old: str | None, changed: dict, stamp: str) -> dict:
        """What HubSpot computes when a deal changes stage."""
        stage = self.stage(changed.get("pipeline"), changed["dealstage"]) or {"metadata": {}}
        meta = stage["metadata"]
        effects = {f"hs_date_entered_{changed['dealstage']}": stamp}
        if old:
            effects[f"hs_date_exited_{old}"] = stamp
        if "probability" in meta:
            closed = meta.get("isClosed") == "true"
            effects.update(hs_deal_stage_probability=meta["probability"], hs_is_closed=meta.get("isClosed", "false"),
                           hs_is_closed_won="true" if closed and to_number(meta["probability"]) == 1.0 else "false")
        self.store.learn_properties("deals", effects)
        return effects

    def archive_one(self, raw_id: str) -> None:
        row = self.find(raw_id, archived=False, id_property=None, history=True)
        if row is None:
            return                                   # HubSpot answers 204 for unknown ids too
        stamp = wire_datetime(self.emu.now)
        row.archived, row.archived_at, row.updated_at = True, stamp, stamp
        self.store.save(row)
        self.req.writes.append({"op": "archive", "object": self.type, "id": str(row.id), "properties": {}})


def _live(store, otype: str, raw_id) -> bool:
    try:
        row = store.get(otype, int(raw_id))
    except (TypeError, ValueError):
        return False
    return row is not None and not row.archived


# ===================================================================== associations v4

class Associations:
    """/crm/v4/objects/{from}/{id}/associations/... and /crm/v4/associations/{from}/{to}/batch/...

    Creating or removing an association never touches either record's hs_lastmodifieddate:
    that is HubSpot's behaviour, and the reason connectors must re-read associations."""

    def __init__(self, req: Request):
        self.req, self.emu, self.store = req, req.emu, req.emu.store

    def get_page(self, from_type: str, from_id: str, to_type: str) -> Reply:
        limit = self.req.integer("limit", MAX_ASSOCIATION_PAGE, MAX_ASSOCIATION_PAGE)
        groups = self.grouped(from_type, _int(from_id, "objectId"), to_type, self.req.cursor())
        payload = {"results": groups[:limit]}
        if len(groups) > limit:
            after = groups[limit]["toObjectId"]
            payload["paging"] = {"next": {"after": str(after), "link": (
                f"{self.emu.url}/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}?after={after}")}}
        return Reply(200, payload, len(payload["results"]))

    def grouped(self, from_type: str, from_id: int, to_type: str, after: int = 0) -> list[dict]:
        """One entry per associated object, with all its association types."""
        groups: dict[int, dict] = {}
        for a in self.store.associations(from_type, [from_id], to_type).get(from_id, []):
            if a.to_id >= after:
                entry = groups.setdefault(a.to_id, {"toObjectId": a.to_id, "associationTypes": []})
                entry["associationTypes"].append({"category": a.category, "typeId": a.type_id, "label": a.label})
        return list(groups.values())

    def batch_read(self, from_type: str, to_type: str) -> Reply:
        results, errors = [], []
        for item in _inputs(self.req.json(), MAX_ASSOCIATION_BATCH):
            key = str(item.get("id"))
            groups = self.grouped(from_type, _int(key, "id"), to_type, _int(item.get("after") or 0, "after"))
            if not groups:
                # Real HubSpot reports an object without associations as an error (207).
                errors.append(batch_error(
                    "OBJECT_NOT_FOUND", f"No {to_type} is associated with {SINGULAR[from_type]} {key}.",
                    {"fromObjectId": [key]}, subCategory="crm.associations.NO_ASSOCIATIONS_FOUND"))
                continue
            result = {"from": {"id": key}, "to": groups[:MAX_ASSOCIATION_PAGE]}
            if len(groups) > MAX_ASSOCIATION_PAGE:
                result["paging"] = {"next": {"after": str(groups[MAX_ASSOCIATION_PAGE]["toObjectId"])}}
            results.append(result)
        status, payload = self.req.batch_payload(results, errors)
        return Reply(status, payload, len(results))

    def create(self, from_type: str, from_id: str, to_type: str, to_id: str) -> Reply:
        specs = self.req.json(list)
        kinds = [self.spec_type(s, from_type, to_type) for s in specs]
        self.require_objects(from_type, from_id, to_type, to_id)
        with self.store.transaction():
            for kind in kinds:
                self.emu.link(kind, int(from_id), int(to_id), self.req.writes)
        return Reply(201, {"fromObjectTypeId": TYPE_IDS[from_type], "fromObjectId": int(from_id),
                           "toObjectTypeId": TYPE_IDS[to_type], "toObjectId": int(to_id), "labels": []}, 1)

    def create_default(self, from_type: str, from_id: str, to_type: str, to_id: str) -> Reply:
        kind = default_association(from_type, to_type)
        if kind is None:
            raise validation(f"No default association between {from_type} and {to_type}")
        self.require_objects(from_type, from_id, to_type, to_id)
        with self.store.transaction():
            self.emu.link(kind, int(from_id), int(to_id), self.req.writes)
        results = [{"from": {"id": str(f)}, "to": {"id": str(t)},
                    "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": k}}
                   for f, t, k in ((from_id, to_id, kind.id), (to_id, from_id, kind.reverse_id))]
        status, payload = self.req.batch_payload(results, [])
        return Reply(status, payload, len(results))

    def archive(self, from_type: str, from_id: str, to_type: str, to_id: str) -> Reply:
        with self.store.transaction():
            self.emu.unlink(from_type, _int(from_id, "objectId"), to_type, _int(to_id, "toObjectId"), self.req.writes)
        return Reply(204)

    def batch_archive(self, from_type: str, to_type: str) -> Reply:
        with self.store.transaction():
            for item in _inputs(self.req.json(), MAX_ASSOCIATION_BATCH):
                from_id = _int(((item.get("from") or {}).get("id")), "from.id")
                for target in item.get("to") or []:
                    self.emu.unlink(from_type, from_id, to_type, _int(target.get("id"), "to.id"), self.req.writes)
        return Reply(204)

    def spec_type(self, spec, from_type: str, to_type: str):
        type_id = _int((spec or {}).get("associationTypeId"), "associationTypeId")
        kind = ASSOCIATION_TYPES.get(type_id)
        if kind is None or (kind.from_type, kind.to_type) != (from_type, to_type):
            raise validation(f"associationTypeId {type_id} is not valid between {from_type} and {to_type}",
                             subCategory="crm.associations.INVALID_ASSOCIATION_TYPE")
        return kind

    def require_objects(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        for otype, raw in ((from_type, from_id), (to_type, to_id)):
            if not _live(self.store, otype, raw):
                raise HubSpotError(404, f"No {SINGULAR[otype]} with id {raw} exists", "OBJECT_NOT_FOUND",
                                   context={"id": [str(raw)]})


# ===================================================================== owners, pipelines

def owners(req: Request, owner_id: str | None) -> Reply:
    store = req.emu.store
    if owner_id:
        return _owner(req, owner_id)
    limit = req.integer("limit", 100, MAX_OWNERS)
    email = (req.params.get("email") or [None])[0]
    rows = store.owners(archived=req.flag("archived"), after=req.cursor(), limit=limit + 1, email=email)
    payload = {"results": rows[:limit]}
    if len(rows) > limit:
        after = rows[limit]["id"]
        payload["paging"] = {"next": {"after": after, "link": f"{req.emu.url}/crm/v3/owners/?after={after}"}}
    return Reply(200, payload, len(payload["results"]))


def _owner(req: Request, owner_id: str) -> Reply:
    by = (req.params.get("idProperty") or ["id"])[0]
    archived = req.flag("archived")
    if by == "userId":
        found = next((o for o in req.emu.store.owners(archived=archived, after=0, limit=1_000_000, email=None)
                      if str(o.get("userId")) == owner_id), None)
    else:
        found = req.emu.store.owner(_int(owner_id, "ownerId"))
        found = found if found and found["archived"] == archived else None
    if found is None:
        raise not_found(owner_id)
    return Reply(200, found, 1)


def pipelines(req: Request, segments: list[str]) -> Reply:
    """/crm/v3/pipelines/{type}[/{id}[/stages[/{stageId}]]]"""
    otype = object_type_or_400(segments[0])
    rows = req.emu.store.pipelines(otype)
    if len(segments) == 1:
        return Reply(200, {"results": rows}, len(rows))
    pipeline = next((p for p in rows if p["id"] == segments[1]), None)
    if pipeline is None:
        raise HubSpotError(404, f"Unable to find pipeline {segments[1]}", "OBJECT_NOT_FOUND",
                           context={"pipelineId": [segments[1]]})
    if len(segments) == 2:
        return Reply(200, pipeline, 1)
    if segments[2] != "stages" or len(segments) > 4:
        raise HubSpotError(404, "Not found", "OBJECT_NOT_FOUND")
    if len(segments) == 3:
        return Reply(200, {"results": pipeline["stages"]}, len(pipeline["stages"]))
    stage = next((s for s in pipeline["stages"] if s["id"] == segments[3]), None)
    if stage is None:
        raise HubSpotError(404, f"Unable to find stage {segments[3]}", "OBJECT_NOT_FOUND")
    return Reply(200, stage, 1)
