"""HubSpot CRM vocabulary the emulator needs: object types, association types, property
kinds and defaults, and the wire formats of datetimes.

Wire rules (see /work/shared/reference/saas-api-wire-reference.md §B): every property value
is a string or null; datetimes are ISO-8601 UTC with milliseconds and a ``Z``.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

OBJECT_TYPES = ("contacts", "companies", "deals", "emails", "meetings", "calls", "tasks", "notes")
ENGAGEMENTS = ("emails", "meetings", "calls", "tasks", "notes")

TYPE_IDS = {"contacts": "0-1", "companies": "0-2", "deals": "0-3", "notes": "0-46", "meetings": "0-47",
            "calls": "0-48", "emails": "0-49", "tasks": "0-27"}
SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal", "emails": "email",
            "meetings": "meeting", "calls": "call", "tasks": "task", "notes": "note"}

_ALIASES = {**{t: t for t in OBJECT_TYPES}, **{s: t for t, s in SINGULAR.items()},
            **{i: t for t, i in TYPE_IDS.items()}}


def object_type(name: str) -> str | None:
    """Path spelling -> plural type. HubSpot accepts plural, singular and type ids (0-3)."""
    return _ALIASES.get(name.lower()) if isinstance(name, str) else None


# ----------------------------------------------------------------------- associations

# (forward id, reverse id, from, to, v3 label suffix). HUBSPOT_DEFINED ids as in
# hubspot/crm/association_type.py of the client; "_unlabeled" marks the non-primary
# company links that HubSpot reports next to the primary ones.
_PAIRS = [
    (1, 2, "contacts", "companies", ""), (279, 280, "contacts", "companies", "_unlabeled"),
    (3, 4, "deals", "contacts", ""),
    (5, 6, "deals", "companies", ""), (341, 342, "deals", "companies", "_unlabeled"),
    (194, 193, "calls", "contacts", ""), (182, 181, "calls", "companies", ""), (206, 205, "calls", "deals", ""),
    (198, 197, "emails", "contacts", ""), (186, 185, "emails", "companies", ""), (210, 209, "emails", "deals", ""),
    (200, 199, "meetings", "contacts", ""), (188, 187, "meetings", "companies", ""),
    (212, 211, "meetings", "deals", ""),
    (202, 201, "notes", "contacts", ""), (190, 189, "notes", "companies", ""), (214, 213, "notes", "deals", ""),
    (204, 203, "tasks", "contacts", ""), (192, 191, "tasks", "companies", ""), (216, 215, "tasks", "deals", ""),
]


class AssociationType:
    def __init__(self, type_id: int, reverse_id: int, from_type: str, to_type: str, suffix: str):
        self.id, self.reverse_id = type_id, reverse_id
        self.from_type, self.to_type = from_type, to_type
        self.label = f"{SINGULAR[from_type]}_to_{SINGULAR[to_type]}{suffix}"   # v3 inline "type"


ASSOCIATION_TYPES: dict[int, AssociationType] = {}
for _fwd, _rev, _from, _to, _suffix in _PAIRS:
    ASSOCIATION_TYPES[_fwd] = AssociationType(_fwd, _rev, _from, _to, _suffix)
    ASSOCIATION_TYPES[_rev] = AssociationType(_rev, _fwd, _to, _from, _suffix)

# What PUT .../associations/default/... creates: the unlabeled link where there are two.
_DEFAULT_OVERRIDES = {("deals", "companies"): 341, ("companies", "deals"): 342,
                      ("contacts", "companies"): 279, ("companies", "contacts"): 280}


def default_association(from_type: str, to_type: str) -> AssociationType | None:
    type_id = _DEFAULT_OVERRIDES.get((from_type, to_type))
    if type_id is None:
        type_id = next((t.id for t in ASSOCIATION_TYPES.values()
                        if t.from_type == from_type and t.to_type == to_type), None)
    return ASSOCIATION_TYPES.get(type_id) if type_id is not None else None


def association_label(type_id: int, from_type: str, to_type: str) -> str:
    known = ASSOCIATION_TYPES.get(type_id)
    return known.label if known else f"{SINGULAR[from_type]}_to_{SINGULAR[to_type]}"


# ----------------------------------------------------------------------- properties

def modified_property(object_type_: str) -> str:
    """Contacts keep their last-modified stamp in ``lastmodifieddate``, the rest in hs_…"""
    return "lastmodifieddate" if object_type_ == "contacts" else "hs_lastmodifieddate"


def always_properties(object_type_: str) -> tuple[str, ...]:
    """Returned with every object whatever was asked for."""
    return ("createdate", modified_property(object_type_), "hs_object_id")


# What a list/get/search returns when no ``properties`` are requested.
DEFAULT_PROPERTIES = {
    "deals": ("amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate",
              "hs_object_id", "pipeline"),
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    **{t: ("createdate", "hs_createdate", "hs_lastmodifieddate", "hs_object_id") for t in ENGAGEMENTS},
}

_COMMON = ("hs_object_id", "createdate", "hs_lastmodifieddate", "hubspot_owner_id", "hs_merged_object_ids")
_ENGAGEMENT_COMMON = _COMMON + ("hs_timestamp", "hs_createdate")
SCHEMA_PROPERTIES: dict[str, frozenset[str]] = {
    "deals": frozenset(_COMMON + ("dealname", "amount", "dealstage", "pipeline", "closedate", "hs_is_closed",
                                  "hs_is_closed_won", "hs_deal_stage_probability", "dealtype",
                                  "deal_currency_code")),
    "companies": frozenset(_COMMON + ("name", "domain", "industry", "lifecyclestage")),
    "contacts": frozenset(_COMMON + ("lastmodifieddate", "email", "firstname", "lastname", "jobtitle",
                                     "company", "associatedcompanyid", "lifecyclestage")),
    "emails": frozenset(_ENGAGEMENT_COMMON + ("hs_email_subject", "hs_email_direction", "hs_email_status",
                                              "hs_email_headers", "hs_email_text", "hs_email_html")),
    "meetings": frozenset(_ENGAGEMENT_COMMON + ("hs_meeting_title", "hs_meeting_start_time",
                                                "hs_meeting_end_time", "hs_meeting_outcome", "hs_meeting_body")),
    "calls": frozenset(_ENGAGEMENT_COMMON + ("hs_call_title", "hs_call_duration", "hs_call_direction",
                                             "hs_call_status", "hs_call_body")),
    "tasks": frozenset(_ENGAGEMENT_COMMON + ("hs_task_subject", "hs_task_status", "hs_task_type",
                                             "hs_task_body", "hs_task_priority")),
    "notes": frozenset(_ENGAGEMENT_COMMON + ("hs_note_body",)),
}
_DYNAMIC_PREFIXES = {"deals": ("hs_date_entered_", "hs_date_exited_")}

READ_ONLY_PROPERTIES = frozenset({"hs_object_id", "hs_lastmodifieddate", "lastmodifieddate",
                                  "hs_merged_object_ids", "hs_createdate"})

_DATETIME_PROPERTIES = frozenset({"createdate", "hs_createdate", "hs_lastmodifieddate", "lastmodifieddate",
                                  "closedate", "hs_timestamp", "hs_meeting_start_time", "hs_meeting_end_time",
                                  "notes_last_updated", "hs_lastactivitydate"})
_NUMBER_PROPERTIES = frozenset({"hs_object_id", "amount", "hs_deal_stage_probability", "hs_call_duration",
                                "associatedcompanyid", "num_associated_contacts"})


def is_schema_property(object_type_: str, name: str) -> bool:
    return name in SCHEMA_PROPERTIES.get(object_type_, ()) or name.startswith(
        _DYNAMIC_PREFIXES.get(object_type_, ("\0",)))


def property_kind(name: str) -> str:
    """How search compares a property: 'datetime' (epoch ms), 'number' or 'string'."""
    if name in _DATETIME_PROPERTIES or name.startswith(("hs_date_entered_", "hs_date_exited_")):
        return "datetime"
    if name in _NUMBER_PROPERTIES:
        return "number"
    return "string"


# ----------------------------------------------------------------------- values

def wire_datetime(value) -> str | None:
    """datetime (or an ISO string) -> '2024-05-01T10:00:00.123Z'."""
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_datetime(value)
    elif type(value) is date:
        value = datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_datetime(text: str) -> datetime:
    """ISO datetime or date, or epoch milliseconds, as HubSpot accepts them."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=timezone.utc)
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def to_ms(value) -> int | None:
    """Property value / datetime -> epoch ms; None when it isn't a datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return int(dt.timestamp() * 1000)
    try:
        text = str(value).strip()
        if text.lstrip("-").isdigit():
            return int(text)
        return to_ms(parse_datetime(text))
    except ValueError:
        return None


def to_number(value) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def wire_value(value) -> str | None:
    """Any Python value -> HubSpot's string form (booleans lowercase, datetimes ISO)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime, date)):
        return wire_datetime(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
