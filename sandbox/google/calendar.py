"""Calendar v3 under /calendar/v3/: calendarList, calendars.get, events.list/get/insert.

Wire shapes per the reference §D. The parts a sync depends on:
- events.list pages end with ``nextSyncToken`` (never alongside ``nextPageToken``);
- ``syncToken`` returns what changed since, cancelled events as ``status:"cancelled"`` stubs,
  refuses timeMin/timeMax/orderBy/q/iCalUID/updatedMin (400) and answers 410
  ``fullSyncRequired`` once invalidated or older than ``sync_token_ttl_days``;
- ``singleEvents=true`` expands recurring series into instances ``<id>_<YYYYMMDDTHHMMSSZ>``;
  ``orderBy=startTime`` needs it (400 otherwise).

Sync tokens and page tokens are self-describing (no server state): a sync token holds the
store's change counter (``seq``) when the full sync began, the calendar, its generation and
the issue time.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sandbox.google import recurrence
from sandbox.google.auth import CALENDAR_LIST, CALENDAR_READ, CALENDAR_WRITE, require_scope
from sandbox.google.wire import (ApiError, Call, bad_request, bounded_int, decode_token, encode_token, first, flag,
                                 UTC, from_ms, json_response, not_found, parse_rfc3339, rfc3339, rfc3339_ms, to_ms)

DAY_MS = 86_400_000
EXPANSION_HORIZON_DAYS = 365       # open-ended series expand this far past now without timeMax
SYNC_FORBIDDEN = ("timeMin", "timeMax", "orderBy", "q", "iCalUID", "updatedMin", "privateExtendedProperty",
                  "sharedExtendedProperty")
DEFAULT_REMINDERS = [{"method": "popup", "minutes": 10}]
_ID_RE = re.compile(r"^[a-v0-9]{5,1024}$")
_BASE32HEX = "0123456789abcdefghijklmnopqrstuv"


# --------------------------------------------------------------------------- README record -> wire form

def wire_event(calendar_id: str, event: dict) -> dict:
    """A README-shaped (or events.insert) event in Calendar's wire form, ground truth dropped."""
    e = {k: v for k, v in event.items() if k != "truth" and v is not None}
    e["id"] = str(e["id"])
    e["updated"] = rfc3339_ms(e["updated"])
    e["created"] = rfc3339_ms(e.get("created") or e["updated"])
    e["start"], e["end"] = _edge(e["start"]), _edge(e["end"])
    for key in ("creator", "organizer"):
        if key in e:
            e[key] = _person(e[key], calendar_id)
    attendees = [_person(a, calendar_id) for a in e.get("attendees") or []]
    if attendees:
        e["attendees"] = attendees
    else:
        e.pop("attendees", None)
    defaults = {"status": "confirmed", "htmlLink": _html_link(e["id"], calendar_id), "iCalUID": f"{e['id']}@google.com",
                "sequence": 0, "reminders": {"useDefault": True}, "eventType": "default"}
    merged = {**defaults, **e}
    head = {"kind": "calendar#event", "etag": _etag(e["updated"]), "id": e["id"], "status": merged["status"]}
    return {**head, **{k: v for k, v in merged.items() if k not in head}}


def _edge(value: dict) -> dict:
    """{"dateTime": datetime|str[, "timeZone"]} or {"date": date|str} in wire form."""
    if value.get("dateTime") is not None:
        moment = value["dateTime"]
        if isinstance(moment, str):
            moment = _parse_local(moment, value.get("timeZone"))
        edge = {"dateTime": rfc3339(moment)}
        if value.get("timeZone"):
            edge["timeZone"] = value["timeZone"]
        return edge
    day = value["date"]
    return {"date": day.isoformat() if isinstance(day, date) else date.fromisoformat(day).isoformat()}


def _parse_local(text: str, tz_name: str | None) -> datetime:
    """A dateTime without offset is local to its timeZone; Calendar refuses it without one."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        if not tz_name:
            raise ValueError("no time zone")
        moment = moment.replace(tzinfo=recurrence.zone(tz_name))
    return moment


def _person(person: dict, calendar_id: str) -> dict:
    # Google sends boolean flags only when true, and marks the calendar owner with self.
    out = {k: v for k, v in person.items() if v is not False and v is not None}
    if (out.get("email") or "").lower() == calendar_id.lower():
        out["self"] = True
    return out


def _etag(updated: str) -> str:
    return f'"{to_ms(updated) * 1000}"'


def _html_link(event_id: str, calendar_id: str) -> str:
    eid = base64.urlsafe_b64encode(f"{event_id} {calendar_id}".encode()).decode().rstrip("=")
    return f"https://www.google.com/calendar/event?eid={eid}"


# --------------------------------------------------------------------------- list options

@dataclass
class ListOptions:
    single: bool
    order_by: str | None
    show_deleted: bool
    time_min: int | None
    time_max: int | None
    updated_min: int | None
    q: str | None
    ical_uid: str | None
    event_types: list[str]
    limit: int

    @classmethod
    def parse(cls, params: dict) -> "ListOptions":
        order_by = first(params, "orderBy")
        single = flag(params, "singleEvents")
        if order_by == "startTime" and not single:
            raise ApiError(400, "badRequest", "The requested ordering is not available for the particular query.")
        opts = cls(single=single, order_by=order_by, show_deleted=flag(params, "showDeleted"),
                   time_min=_time_param(params, "timeMin"), time_max=_time_param(params, "timeMax"),
                   updated_min=_time_param(params, "updatedMin"), q=first(params, "q"),
                   ical_uid=first(params, "iCalUID"), event_types=params.get("eventTypes", []),
                   limit=bounded_int(params, "maxResults", 250, 2500))
        if opts.time_min is not None and opts.time_max is not None and opts.time_min >= opts.time_max:
            raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")
        return opts

    def sort_key(self, item: dict, meta: tuple[int, int]) -> list:
        start_ms, updated_ms = meta
        if self.order_by == "startTime":
            return [start_ms, item["id"]]
        if self.order_by == "updated":
            return [updated_ms, item["id"]]
        return [item["id"]]


def _time_param(params: dict, name: str) -> int | None:
    raw = first(params, name)
    if not raw:
        return None
    try:
        return to_ms(parse_rfc3339(raw))
    except ValueError:
        raise ApiError(400, "badRequest", "Bad Request") from None


# --------------------------------------------------------------------------- the API

class CalendarApi:
    def __init__(self, emulator):
        self.emu = emulator
        self.store = emulator.store

    def handle(self, call: Call):
        seg = call.segments
        if seg[:3] == ["users", "me", "calendarList"] and len(seg) in (3, 4):
            require_scope(call.principal, CALENDAR_LIST)
            self._only(call, "GET")
            return self.calendar_list(call) if len(seg) == 3 else self.calendar_list_entry(call, seg[3])
        if len(seg) < 2 or seg[0] != "calendars":
            raise not_found("Not Found")
        require_scope(call.principal, CALENDAR_WRITE if call.method == "POST" else CALENDAR_READ)
        calendar = self._calendar(call, seg[1])
        if len(seg) == 2:
            self._only(call, "GET")
            return self.calendar_resource(call, calendar)
        if seg[2] == "events" and len(seg) == 3:
            if call.method == "POST":
                return self.insert(call, calendar)
            self._only(call, "GET")
            return self.list_events(call, calendar)
        if seg[2] == "events" and len(seg) == 4:
            self._only(call, "GET")
            return self.get_event(call, calendar, seg[3])
        raise not_found("Not Found")

    @staticmethod
    def _only(call: Call, method: str) -> None:
        if call.method != method:
            raise ApiError(405, "httpMethodNotAllowed", f"Method {call.method} is not supported by the sandbox")

    def _calendar(self, call: Call, calendar_id: str):
        """Only the token user's own calendars are visible: others' answer 404 as Google does
        for calendars not shared with the caller."""
        if calendar_id == "primary":
            calendar_id = call.principal.user
        calendar = self.store.calendar(calendar_id)
        if calendar is None or calendar["owner"].lower() != call.principal.user.lower():
            raise not_found("Not Found")
        return calendar

    # ----------------------------------------------------------------- calendars

    def calendar_list(self, call: Call):
        items = [_list_entry(c) for c in self.store.calendars_of(call.principal.user)]
        call.entry.items_returned = len(items)
        return json_response(200, {"kind": "calendar#calendarList", "etag": f'"{call.now_ms}"',
                                   "nextSyncToken": encode_token({"cl": call.now_ms}), "items": items})

    def calendar_list_entry(self, call: Call, calendar_id: str):
        calendar = self._calendar(call, calendar_id)
        call.entry.items_returned = 1
        return json_response(200, _list_entry(calendar))

    def calendar_resource(self, call: Call, calendar):
        call.entry.items_returned = 1
        return json_response(200, {"kind": "calendar#calendar", "etag": '"0"', "id": calendar["id"],
                                   "summary": calendar["id"], "timeZone": calendar["time_zone"],
                                   "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]}})

    # ----------------------------------------------------------------- events.list

    def list_events(self, call: Call, calendar):
        p = call.params
        since = self._sync_since(call, calendar) if first(p, "syncToken") else None
        opts = ListOptions.parse(p)
        if opts.updated_min is not None and opts.updated_min < call.now_ms - self._ttl_ms():
            raise ApiError(410, "updatedMinTooLongAgo", "The requested minimum modification time lies too far in "
                           "the past.")
        page = _page_cursor(first(p, "pageToken"))
        snapshot = page["s"] if page else self.store.last_seq()
        items = sorted(self._collect(call, calendar, opts, since), key=lambda pair: pair[0])
        if page:
            items = _after(items, page["k"])
        shown = items[:opts.limit]
        payload = self._envelope(call, calendar)
        if len(items) > opts.limit:
            payload["nextPageToken"] = encode_token({"k": shown[-1][0], "s": snapshot})
        else:
            payload["nextSyncToken"] = encode_token({"c": calendar["id"].lower(), "s": snapshot,
                                                     "g": calendar["generation"], "t": call.now_ms})
        payload["items"] = [item for _, item in shown]
        call.entry.items_returned = len(shown)
        return json_response(200, payload)

    def _sync_since(self, call: Call, calendar) -> int:
        forbidden = [name for name in SYNC_FORBIDDEN if first(call.params, name)]
        if forbidden:
            raise bad_request(f"The parameter '{forbidden[0]}' cannot be used with syncToken.", "invalid")
        token = decode_token(first(call.params, "syncToken"))
        if (not token or token.get("c") != calendar["id"].lower() or token.get("g") != calendar["generation"]
                or not isinstance(token.get("s"), int) or not isinstance(token.get("t"), int)
                or call.now_ms - token["t"] > self._ttl_ms()):
            raise ApiError(410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required.")
        return token["s"]

    def _ttl_ms(self) -> int:
        return int(self.emu.sync_token_ttl_days * DAY_MS)

    def _envelope(self, call: Call, calendar) -> dict:
        return {"kind": "calendar#events", "etag": f'"{call.now_ms * 1000}"', "summary": calendar["id"],
                "description": "", "updated": rfc3339_ms(call.now_ms), "timeZone": calendar["time_zone"],
                "accessRole": "owner", "defaultReminders": DEFAULT_REMINDERS}

    def _collect(self, call: Call, calendar, opts: ListOptions, since: int | None):
        """(sort key, item) for every event or instance the request selects."""
        changes = since is not None or opts.updated_min is not None
        rows = self.store.events(calendar["id"], since_seq=since, updated_min_ms=opts.updated_min,
                                 time_min_ms=opts.time_min, time_max_ms=opts.time_max,
                                 with_cancelled=changes or opts.show_deleted)
        horizon = opts.time_max or call.now_ms + EXPANSION_HORIZON_DAYS * DAY_MS
        for row in rows:
            event = json.loads(row["doc"])
            if not _matches(event, opts):
                continue
            cancelled = row["status"] == "cancelled"
            if row["recurring"] and (opts.single or opts.time_min or opts.time_max):
                instances = [i for i in _instances(event, horizon) if _in_window(i[1], opts)]
                if opts.single:
                    for start_ms, instance in instances:
                        item = _stub(instance) if cancelled else instance
                        yield opts.sort_key(item, (start_ms, row["updated_ms"])), item
                    continue
                if not instances:
                    continue
            item = _stub(event) if cancelled else event
            yield opts.sort_key(item, (row["start_ms"], row["updated_ms"])), item

    # ----------------------------------------------------------------- events.get / insert

    def get_event(self, call: Call, calendar, event_id: str):
        row = self.store.event(calendar["id"], event_id)
        if row is not None:
            event = json.loads(row["doc"])
        else:
            event = self._instance(calendar, event_id, call.now_ms)
        if event is None:
            raise not_found("Not Found")
        call.entry.items_returned = 1
        return json_response(200, event)

    def _instance(self, calendar, instance_id: str, now_ms: int) -> dict | None:
        base_id, _, stamp = instance_id.rpartition("_")
        row = self.store.event(calendar["id"], base_id) if base_id else None
        if row is None or not row["recurring"]:
            return None
        horizon = max(now_ms + EXPANSION_HORIZON_DAYS * DAY_MS, _stamp_ms(stamp) + DAY_MS)
        return next((i for _, i in _instances(json.loads(row["doc"]), horizon) if i["id"] == instance_id), None)

    def insert(self, call: Call, calendar):
        body = _json_body(call.body)
        self.emu.inserted_events.append(body)
        event = _new_event(body, calendar["id"], call.now_ms)
        if not self.store.insert_event(calendar["id"], event):
            raise ApiError(409, "duplicate", "The requested identifier already exists.")
        call.entry.items_returned = 1
        return json_response(200, event)


# --------------------------------------------------------------------------- helpers

def _list_entry(calendar) -> dict:
    primary = calendar["id"].lower() == calendar["owner"].lower()
    entry = {"kind": "calendar#calendarListEntry", "etag": '"0"', "id": calendar["id"], "summary": calendar["id"],
             "timeZone": calendar["time_zone"], "colorId": "14", "backgroundColor": "#9fe1e7",
             "foregroundColor": "#000000", "selected": True, "accessRole": "owner",
             "defaultReminders": DEFAULT_REMINDERS,
             "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]}}
    if primary:
        entry["primary"] = True
    return entry


def _matches(event: dict, opts: ListOptions) -> bool:
    if opts.ical_uid and event.get("iCalUID") != opts.ical_uid:
        return False
    if opts.event_types and event.get("eventType", "default") not in opts.event_types:
        return False
    if opts.q:
        people = " ".join(f"{a.get('email', '')} {a.get('displayName', '')}" for a in event.get("attendees", []))
        text = " ".join(str(event.get(k, "")) for k in ("summary", "description", "location")) + " " + people
        return opts.q.lower() in text.lower()
    return True


def _in_window(instance: dict, opts: ListOptions) -> bool:
    start, end = _edge_ms(instance["start"]), _edge_ms(instance["end"])
    return (opts.time_min is None or end > opts.time_min) and (opts.time_max is None or start < opts.time_max)


def _instances(event: dict, horizon_ms: int):
    """(start ms, instance) for each occurrence of a recurring base event, up to the horizon."""
    rule, exdates = recurrence.parse(event.get("recurrence", []))
    if rule is None:
        return
    all_day = "date" in event["start"]
    tz = recurrence.zone(event["start"].get("timeZone"))
    first_start = date.fromisoformat(event["start"]["date"]) if all_day else from_ms(_edge_ms(event["start"]))
    duration = _edge_ms(event["end"]) - _edge_ms(event["start"])
    base = {k: v for k, v in event.items() if k != "recurrence"}
    for start in recurrence.occurrences(first_start, rule, tz=tz, exdates=exdates, horizon_ms=horizon_ms):
        if all_day:
            start_edge = {"date": start.isoformat()}
            end_edge = {"date": (start + timedelta(days=round(duration / DAY_MS))).isoformat()}
            stamp = start.strftime("%Y%m%d")
        else:
            start_edge = {**event["start"], "dateTime": rfc3339(start)}
            end_edge = {**event["end"], "dateTime": rfc3339(to_ms(start) + duration)}
            stamp = start.strftime("%Y%m%dT%H%M%SZ")
        instance = {**base, "id": f"{event['id']}_{stamp}", "start": start_edge, "end": end_edge,
                    "recurringEventId": event["id"], "originalStartTime": dict(start_edge)}
        yield _edge_ms(start_edge), instance


def _stub(event: dict) -> dict:
    """What incremental sync sends for a cancelled event: no summary, times or attendees."""
    stub = {"kind": "calendar#event", "etag": event["etag"], "id": event["id"], "status": "cancelled",
            "updated": event["updated"]}
    for key in ("recurringEventId", "originalStartTime"):
        if key in event:
            stub[key] = event[key]
    return stub


def _edge_ms(edge: dict) -> int:
    return to_ms(edge["dateTime"]) if "dateTime" in edge else to_ms(date.fromisoformat(edge["date"]))


def _stamp_ms(stamp: str) -> int:
    try:
        fmt = "%Y%m%dT%H%M%SZ" if "T" in stamp else "%Y%m%d"
        return to_ms(datetime.strptime(stamp, fmt).replace(tzinfo=UTC))
    except ValueError:
        return 0


def _after(items: list, key: list) -> list:
    try:
        return [pair for pair in items if pair[0] > key]
    except TypeError:               # a page token from a request with another orderBy
        raise bad_request("Invalid page token value.", "invalid") from None


def _page_cursor(token: str | None) -> dict | None:
    if not token:
        return None
    cursor = decode_token(token)
    if not cursor or not isinstance(cursor.get("k"), list) or not isinstance(cursor.get("s"), int):
        raise bad_request("Invalid page token value.", "invalid")
    return cursor


def _json_body(body: bytes) -> dict:
    try:
        value = json.loads(body or b"null")
    except ValueError:
        raise bad_request("Parse Error", "parseError") from None
    if not isinstance(value, dict):
        raise bad_request("Parse Error", "parseError")
    return value


def _new_event(body: dict, calendar_id: str, now_ms: int) -> dict:
    """events.insert: validate the body the way Calendar does and add the server fields."""
    for edge in ("start", "end"):
        value = body.get(edge)
        if not isinstance(value, dict) or not (value.get("dateTime") or value.get("date")):
            raise bad_request(f"Missing {edge} time.", "required")
    if ("date" in body["start"]) != ("date" in body["end"]):
        raise bad_request("Start and end times must either both be date or both be dateTime.", "invalid")
    event_id = body.get("id") or "".join(secrets.choice(_BASE32HEX) for _ in range(26))
    if not isinstance(event_id, str) or not _ID_RE.match(event_id):
        raise bad_request("Invalid resource id value.", "invalid")
    stamp = rfc3339_ms(now_ms)
    record = {**body, "id": event_id, "created": stamp, "updated": stamp, "status": body.get("status", "confirmed"),
              "creator": {"email": calendar_id}, "organizer": {"email": calendar_id}, "sequence": 0}
    record["attendees"] = [{"responseStatus": "needsAction", **a} for a in body.get("attendees") or []]
    try:
        event = wire_event(calendar_id, record)
    except ValueError:
        raise bad_request("Missing time zone definition for start time.", "required") from None
    if _edge_ms(event["end"]) < _edge_ms(event["start"]):
        raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")
    return event

