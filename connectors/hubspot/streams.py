"""The HubSpot streams dealsync pulls: CRM objects with the properties it reads.

Every object stream is incremental on its last-modified property, keyed on id, merged
into its raw table. Property values arrive as strings; `TYPES` says which to type.
Email bodies (hs_email_text, hs_email_html) are never requested.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ObjectStream:
    name: str                          # raw table in raw_hubspot (= the API's object type)
    properties: tuple[str, ...]
    modified_property: str = "hs_lastmodifieddate"
    history: tuple[str, ...] = ()       # properties whose every past value is kept
    associations: tuple[str, ...] = ()  # object types whose links are read for each record
    derived: tuple[str, ...] = ()       # columns computed at landing from the properties (see derive)


# HubSpot's internal names. They reach URLs and search filters, so each is checked here, once,
# rather than escaped where it is used.
_NAME = re.compile(r"[a-z][a-z0-9_]{0,99}")


def checked_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a HubSpot object or property name: {name!r}")
    return name


def _stream(name: str, properties: str, **kw) -> ObjectStream:
    stream = ObjectStream(checked_name(name), tuple(checked_name(p) for p in properties.split()), **kw)
    for name in (stream.modified_property, *stream.history, *stream.associations):
        checked_name(name)
    return stream


_ENGAGEMENT_LINKS = ("deals", "contacts", "companies")

OBJECT_STREAMS: tuple[ObjectStream, ...] = (
    _stream("companies", "name domain industry hubspot_owner_id lifecyclestage createdate hs_lastmodifieddate"),
    _stream("contacts", "email firstname lastname jobtitle company associatedcompanyid hubspot_owner_id "
            "lifecyclestage createdate lastmodifieddate", modified_property="lastmodifieddate",
            associations=("companies",)),
    _stream("deals", "dealname amount dealstage pipeline closedate hubspot_owner_id hs_is_closed hs_is_closed_won "
            "hs_deal_stage_probability dealtype deal_currency_code createdate hs_lastmodifieddate",
            history=("dealstage", "amount", "closedate", "hubspot_owner_id"), associations=("contacts", "companies")),
    _stream("emails", "hs_timestamp hs_email_subject hs_email_direction hs_email_status hs_email_headers "
            "hubspot_owner_id createdate hs_lastmodifieddate", associations=_ENGAGEMENT_LINKS,
            derived=("from_email", "to_emails", "cc_emails")),
    _stream("meetings", "hs_timestamp hs_meeting_title hs_meeting_start_time hs_meeting_end_time "
            "hs_meeting_outcome hubspot_owner_id createdate hs_lastmodifieddate", associations=_ENGAGEMENT_LINKS),
    _stream("calls", "hs_timestamp hs_call_title hs_call_duration hs_call_direction hs_call_status "
            "hubspot_owner_id createdate hs_lastmodifieddate", associations=_ENGAGEMENT_LINKS),
    _stream("tasks", "hs_timestamp hs_task_subject hs_task_status hs_task_type hubspot_owner_id createdate "
            "hs_lastmodifieddate", associations=_ENGAGEMENT_LINKS),
)

# How to type HubSpot's string values (dlt column types); everything else stays text.
TYPES: dict[str, str] = {
    **{p: "timestamp" for p in ("createdate", "hs_lastmodifieddate", "lastmodifieddate", "closedate",
                                "hs_timestamp", "hs_meeting_start_time", "hs_meeting_end_time")},
    **{p: "double" for p in ("amount", "hs_deal_stage_probability", "hs_call_duration")},
    **{p: "bool" for p in ("hs_is_closed", "hs_is_closed_won")},
}


MODIFIED_PROPERTIES = frozenset(s.modified_property for s in OBJECT_STREAMS)


def typed_properties(stream: ObjectStream) -> tuple[str, ...]:
    """The stream's properties HubSpot sends as strings and dealsync types: each has a
    rejected_<name> column holding a value that did not type (the cursor's property excepted)."""
    return tuple(p for p in stream.properties if p in TYPES and p not in MODIFIED_PROPERTIES)


def rejected_column(prop: str) -> str:
    return f"rejected_{prop}"


def raw_tables(streams: tuple[ObjectStream, ...] = OBJECT_STREAMS) -> list[str]:
    """Every table the HubSpot source writes into raw_hubspot."""
    tables = ["owners", "deal_pipelines", "deal_stages"]
    for stream in streams:
        tables.append(stream.name)
        if stream.history:
            tables.append(f"{stream.name.removesuffix('s')}_property_history")
    return [*tables, "associations", "archived_records"]


def derive(stream: ObjectStream, props: dict) -> dict:
    """The stream's derived columns. Emails: the From/To/Cc addresses out of hs_email_headers
    (a JSON string), lower-cased and comma-separated like the Gmail connector's, so the
    model can match both the same way without parsing JSON in SQL."""
    if not stream.derived:
        return {}
    try:
        headers = json.loads(props.get("hs_email_headers") or "{}")
    except ValueError:
        headers = {}     # a malformed header blob leaves the addresses empty; the raw value is kept

    def emails(people) -> str | None:
        people = people if isinstance(people, list) else [people]
        found = [p["email"].strip().lower() for p in people if isinstance(p, dict) and p.get("email")]
        return ",".join(found) or None

    return {"from_email": emails(headers.get("from")), "to_emails": emails(headers.get("to")),
            "cc_emails": emails(headers.get("cc"))}
