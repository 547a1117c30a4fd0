"""A local Salesforce REST emulator the real simple-salesforce client talks to over HTTPS.

Serves SOAP login, query/queryAll/queryMore, describe, sObject CRUD, sObject Collections
update, limits, getUpdated/getDeleted, Bulk 2.0 query jobs, and two control endpoints
(``/__sandbox/…``) for out-of-process use. Wire formats follow /work/shared/reference/saas-api-wire-reference.md §A.

Data lives in ``Store`` (SQLite); a synthetic org (``sandbox.org``) feeds it via
``attach_org`` and ``advance``. The clock is simulated: ``now`` only moves when told to,
and every write is stamped with it.

By default the org has a single currency and, as a real one, no CurrencyIsoCode field.
``currencies=("USD", "EUR", …)`` makes it a multi-currency org (corporate currency first):
the objects of ``schema.CURRENCY_OBJECTS`` have CurrencyIsoCode, a restricted picklist of those
codes that defaults to the corporate one on create.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
import threading
import xml.etree.ElementTree as ET
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterable, Sequence
from urllib.parse import parse_qs
from xml.sax.saxutils import escape as xml_escape

from sandbox.salesforce import soql
from sandbox.salesforce.schema import OBJECTS, STANDARD_STAGES, Field, SObject, make_id, objects_for
from sandbox.salesforce.store import InvalidLocator, QueryPage, Store, to_storage
from sandbox.httpserver import HttpsEmulator, Response as _Response
from sandbox.tls import LocalCA
from sandbox.world import advance_reply, status_reply

log = logging.getLogger(__name__)

ORG_ID = make_id("00D", 1)
API_USER_ID = make_id("005", 900_000_000_000)    # the integration user writes are stamped with
FIRST_WRITE_ID = 900_000_000_001                 # above anything the generator numbers
VERSIONS = {"56.0": "Winter '23", "57.0": "Spring '23", "58.0": "Summer '23", "59.0": "Winter '24",
            "60.0": "Spring '24", "61.0": "Summer '24", "62.0": "Winter '25"}
JSON_TYPE = "application/json;charset=UTF-8"
MAX_COLLECTION = 200

_REST_RE = re.compile(r"^/services/data(?:/v(\d+\.\d+))?(/.*)?$")
_SOAP_RE = re.compile(r"^/services/Soap/u/(\d+\.\d+)/?")
_BATCH_RE = re.compile(r"batchSize\s*=\s*(\d+)", re.I)
_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")

# --------------------------------------------------------------------------- object rules

_READ_ONLY_OBJECTS = {"OpportunityHistory", "OpportunityStage"}
_UNDELETABLE = {"User"} | _READ_ONLY_OBJECTS
_SYSTEM_FIELDS = {"Id", "IsDeleted", "CreatedDate", "CreatedById", "LastModifiedDate", "SystemModstamp"}
_DERIVED = {("Contact", "Name"), ("User", "Name"), ("Opportunity", "IsClosed"),
            ("Opportunity", "IsWon"), ("Task", "IsClosed")}
_REQUIRED = {"Account": ("Name",), "Contact": ("LastName",), "User": ("LastName",),
             "Opportunity": ("Name", "StageName", "CloseDate"), "Task": ("Subject",)}
_POLYMORPHIC = {"WhatId", "WhoId"}          # may point at several object types in Salesforce
_HISTORY_TRACKED = ("StageName", "Amount", "Probability", "CloseDate", "ForecastCategoryName")
_STAGES = {s["ApiName"]: s for s in STANDARD_STAGES}
_FORECAST = ["Omitted", "Pipeline", "Best Case", "Commit", "Closed"]
_PICKLISTS = {
    ("Opportunity", "StageName"): list(_STAGES),
    ("OpportunityHistory", "StageName"): list(_STAGES),
    ("Opportunity", "ForecastCategoryName"): _FORECAST,
    ("OpportunityStage", "ForecastCategoryName"): _FORECAST,
    ("OpportunityHistory", "ForecastCategory"): _FORECAST,
    ("Opportunity", "Type"): ["Existing Customer - Upgrade", "Existing Customer - Replacement",
                              "Existing Customer - Downgrade", "New Customer"],
    ("Opportunity", "LeadSource"): ["Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"],
    ("Account", "Type"): ["Prospect", "Customer - Direct", "Customer - Channel", "Channel Partner / Reseller",
                          "Installation Partner", "Technology Partner", "Other"],
    ("Account", "Industry"): ["Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications",
                              "Construction", "Consulting", "Education", "Electronics", "Energy", "Engineering",
                              "Entertainment", "Environmental", "Finance", "Food & Beverage", "Government",
                              "Healthcare", "Hospitality", "Insurance", "Machinery", "Manufacturing", "Media",
                              "Not For Profit", "Recreation", "Retail", "Shipping", "Technology",
                              "Telecommunications", "Transportation", "Utilities", "Other"],
    ("Task", "Status"): ["Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred"],
    ("Task", "Priority"): ["High", "Normal", "Low"],
    ("Task", "TaskSubtype"): ["Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn"],
}
_CREATE_DEFAULTS = {"Task": {"Status": "Not Started", "Priority": "Normal", "TaskSubtype": "Task"}}
_CURRENCY = "CurrencyIsoCode"       # multi-currency orgs only
_LABELS = {"StageName": "Stage", "CloseDate": "Close Date", "IsDeleted": "Deleted", "Amount": "Amount",
           "SystemModstamp": "System Modstamp", "ForecastCategoryName": "Forecast Category",
           "ExpectedRevenue": "Expected Amount", "WhatId": "Related To ID", "WhoId": "Name ID",
           "ActivityDate": "Due Date Only", "TaskSubtype": "Task Subtype", "ApiName": "Api Name",
           "MasterLabel": "Master Label", "DurationInMinutes": "Duration", "IsAllDayEvent": "All-Day Event"}
_PLURALS = {"Opportunity": "Opportunities", "OpportunityHistory": "Opportunity History",
            "OpportunityStage": "Opportunity Stages"}
_SOAP_TYPES = {"id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "currency": "xsd:double",
               "percent": "xsd:double", "double": "xsd:double", "int": "xsd:int", "date": "xsd:date",
               "datetime": "xsd:dateTime"}
_LENGTHS = {"id": 18, "reference": 18, "string": 255, "email": 80, "url": 255, "picklist": 255, "textarea": 32000}


def _label(name: str) -> str:
    if name in _LABELS:
        return _LABELS[name]
    if name.endswith("Id") and len(name) > 2:
        return _split_camel(name[:-2]) + " ID"
    if name.startswith("Is") and name[2:3].isupper():
        return _split_camel(name[2:])
    return _split_camel(name)


def _split_camel(name: str) -> str:
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)


def _writable(obj: str, field: str) -> bool:
    return obj not in _READ_ONLY_OBJECTS and field not in _SYSTEM_FIELDS and (obj, field) not in _DERIVED


def _nillable(obj: str, fld: Field) -> bool:
    return not (fld.type in ("id", "boolean") or fld.name in _SYSTEM_FIELDS
                or fld.name in _REQUIRED.get(obj, ()) or fld.name == _CURRENCY)


def _id_suffix(id15: str) -> str:
    """Salesforce's 3-character case-checksum that turns a 15-char id into 18 chars."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    return "".join(alphabet[sum(1 << i for i, ch in enumerate(id15[k:k + 5]) if "A" <= ch <= "Z")]
                   for k in (0, 5, 10))


def normalize_id(value) -> str | None:
    """15- or 18-char id -> 18-char id; None when it isn't a well-formed Salesforce id.

    18-char ids are taken as they are: ``schema.make_id`` always ends ids in "AAA", which is
    not the real case-checksum for prefixes with capitals (00T, 00U, 01J), so checking the
    suffix would reject the org's own Task and Event ids."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        return None
    return value if len(value) == 18 else value + _id_suffix(value)


# --------------------------------------------------------------------------- errors & log

class ApiError(Exception):
    """A REST error: rendered as Salesforce's JSON array body."""

    def __init__(self, status: int, error_code: str, message: str, fields: list[str] | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.status, self.error_code, self.message = status, error_code, message
        self.fields, self.headers = fields, headers or {}

    def body(self) -> list[dict]:
        item = {"message": self.message, "errorCode": self.error_code}
        if self.fields is not None:
            item["fields"] = self.fields
        return [item]


@dataclass
class RecordError:
    """A per-record failure (SaveResult ``errors`` use ``statusCode``, not ``errorCode``)."""
    status_code: str
    message: str
    fields: list[str]

    def as_save_error(self) -> dict:
        return {"statusCode": self.status_code, "message": self.message, "fields": self.fields}

    def as_api_error(self, status: int = 400) -> ApiError:
        return ApiError(status, self.status_code, self.message, self.fields)


_NOT_FOUND = ("NOT_FOUND", "The requested resource does not exist")
_ROLLED_BACK = RecordError("ALL_OR_NONE_OPERATION_ROLLED_BACK",
                           "Record rolled back because not all records were valid and the request "
                           "was using AllOrNone header", [])


@dataclass
class LoggedRequest:
    method: str
    path: str                       # no query string: SOQL goes to ``soql``
    kind: str                       # login query queryMore describe sobject composite limits bulk2 control other
    sobject: str | None = None
    soql: str | None = None
    include_deleted: bool = False
    status: int = 0
    records_returned: int = 0


def _json(status: int, payload, headers: dict | None = None) -> _Response:
    return _Response(status, json.dumps(payload, separators=(",", ":")).encode(), JSON_TYPE, headers)


def _error(exc: ApiError) -> _Response:
    return _json(exc.status, exc.body(), exc.headers)


# --------------------------------------------------------------------------- emulator

class SalesforceEmulator(HttpsEmulator):
    def __init__(self, *, ca: LocalCA, host: str = "127.0.0.1", port: int = 0,
                 username: str = "ops@sandbox.dealsync.example", password: str = "sandbox-password",
                 security_token: str = "SANDBOXTOKEN", api_limit: int = 15000,
                 db_path=None, clock: datetime | None = None, currencies: Sequence[str] = ()):
        super().__init__(ca=ca, host=host, port=port, name="salesforce")
        self.username = username
        self._secret = password + security_token     # what SOAP login sends; never logged
        self.api_limit = api_limit
        self.currencies = tuple(currencies)          # () single-currency org; else corporate first
        self.store = Store(db_path, objects_for(bool(self.currencies)))
        self.now = (clock or datetime.now(timezone.utc)).astimezone(timezone.utc)
        self.org = None
        self.request_log: list[LoggedRequest] = []
        self._lock = threading.Lock()
        self._sessions: set[str] = set()
        self._issued: list[str] = []   # every session ever handed out, for tests that hunt for leaks
        self._api_usage = 0
        self._faults: list[list] = []
        self.hidden_fields: set[tuple[str, str]] = set()   # (sobject, field) gone from describe and SOQL
        self.denied_objects: set[str] = set()              # sobjects the API user may not read
        self._ids = itertools.count(FIRST_WRITE_ID)
        self.bulk_jobs: OrderedDict[str, BulkJob] = OrderedDict()

    # ----------------------------------------------------------------- data

    def load(self, records: Iterable[tuple[str, dict]]) -> dict[str, int]:
        return self.store.upsert(records)

    def attach_org(self, org) -> dict[str, int]:
        """Load the org's state as of its ``now`` and adopt its clock. An org with ``currencies``
        needs an emulator created with the same ones (its records carry CurrencyIsoCode)."""
        currencies = tuple(getattr(org, "currencies", ()))
        if currencies != self.currencies:
            raise ValueError(f"the org's currencies {currencies} differ from the emulator's {self.currencies}: "
                             "create the emulator with currencies=org.currencies")
        self.org = org
        counts = self.load(org.records(org.now))
        self.now = org.now
        return counts

    def advance(self, days: float) -> dict[str, int]:
        """Move the clock; with an org attached, apply what changed in between."""
        since, until = self.now, self.now + timedelta(days=days)
        counts = self.load(self.org.changes(since, until)) if self.org is not None else {}
        self.now = until
        return counts

    # ----------------------------------------------------------------- sessions, faults, log

    def issue_session(self) -> str:
        """A fresh session id, as SOAP login would hand out (for direct session_id auth)."""
        token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(32)}"
        with self._lock:
            self._sessions.add(token)
            self._issued.append(token)
        return token

    def issued_sessions(self) -> list[str]:
        with self._lock:
            return list(self._issued)

    def expire_sessions(self) -> None:
        with self._lock:
            self._sessions.clear()

    def fail_next(self, status: int, error_code: str, message: str, times: int = 1,
                  retry_after: int | None = None, kind: str | None = None) -> None:
        """The next ``times`` authenticated REST calls (of request ``kind`` only, when given,
        e.g. 'queryMore' to fail mid-stream) answer with this error instead."""
        with self._lock:
            self._faults.append([status, error_code, message, times, retry_after, kind])

    # Permanent failures, for tests of a stream that stops for good while the others go on.
    def hide_field(self, sobject: str, field: str, hidden: bool = True) -> None:
        """The field is gone from the object (deleted, or hidden by field-level security):
        describe leaves it out and SOQL naming it answers INVALID_FIELD."""
        (self.hidden_fields.add if hidden else self.hidden_fields.discard)((sobject, field))

    def deny_object(self, sobject: str, denied: bool = True) -> None:
        """The API user loses read access to the object: describe and queries answer 403."""
        (self.denied_objects.add if denied else self.denied_objects.discard)(sobject)

    def _check_access(self, sobject: str | None, soql_text: str | None = None) -> None:
        if sobject in self.denied_objects:
            raise ApiError(403, "INSUFFICIENT_ACCESS", f"insufficient access rights on object {sobject}")
        for obj, field in self.hidden_fields:
            if obj == sobject and soql_text and re.search(rf"\b{field}\b", soql_text, re.IGNORECASE):
                raise ApiError(400, "INVALID_FIELD", f"No such column '{field}' on entity '{obj}'. If you are "
                               "attempting to use a custom field, be sure to append the '__c' after the custom "
                               "field name. Please reference your WSDL or the describe call for the appropriate "
                               "names.")

    # Seeded faults (sandbox/faults.py): a session that expires under the client.
    def vendor_fault_kinds(self, method: str, raw_path: str) -> tuple[str, ...]:
        return ("expired_session",) if raw_path.startswith("/services/data/v") else ()

    def vendor_fault(self, kind: str, method: str, raw_path: str, headers, body: bytes) -> _Response:
        self.expire_sessions()
        return self.handle(method, raw_path, headers, body)

    def fault_response(self, status: int, headers: dict) -> _Response:
        code = "REQUEST_LIMIT_EXCEEDED" if status == 429 else "SERVER_UNAVAILABLE"
        return _json(status, [{"message": "sandbox fault: try again later", "errorCode": code}], headers)

    @property
    def api_usage(self) -> int:
        return self._api_usage

    def reset_api_usage(self) -> None:
        with self._lock:
            self._api_usage = 0

    def clear_log(self) -> None:
        self.request_log.clear()

    # ----------------------------------------------------------------- request entry point

    def handle(self, method: str, raw_path: str, headers, body: bytes) -> _Response:
        path, _, query_string = raw_path.partition("?")
        entry = LoggedRequest(method, path, "other")
        try:
            resp = self._route(method, path, query_string, headers, body, entry)
        except ApiError as exc:
            resp = _error(exc)
        except Exception:                       # a bug here must not look like a hang
            log.exception("salesforce emulator failed on %s %s", method, path)
            resp = _json(500, [{"message": "An unexpected error occurred in the sandbox",
                                "errorCode": "UNKNOWN_EXCEPTION"}])
        entry.status = resp.status
        self.request_log.append(entry)
        return resp

    def _route(self, method, path, query_string, headers, body, entry) -> _Response:
        if path.startswith("/__sandbox/"):
            entry.kind = "control"
            return self._control(method, path, body)
        if _SOAP_RE.match(path):
            entry.kind = "login"
            return self._soap_login(method, _SOAP_RE.match(path).group(1), body)
        m = _REST_RE.match(path)
        if not m:
            raise ApiError(404, *_NOT_FOUND)
        version, rest = m.group(1), (m.group(2) or "").strip("/")
        if version is None:
            if rest:
                raise ApiError(404, *_NOT_FOUND)
            return _json(200, [{"label": label, "url": f"/services/data/v{v}", "version": v}
                               for v, label in VERSIONS.items()])
        segments = rest.split("/") if rest else []
        entry.kind = _classify(method, segments)
        if entry.kind == "query":       # logged even if the call fails before it runs
            entry.soql = (parse_qs(query_string).get("q") or [None])[0]
            entry.include_deleted = segments[0] == "queryAll"
        return self._rest(method, version, segments, parse_qs(query_string), headers, body, entry)

    # ----------------------------------------------------------------- REST plumbing

    def _rest(self, method, version, segments, params, headers, body, entry) -> _Response:
        self._authenticate(headers)
        with self._lock:
            self._api_usage += 1
            usage = self._api_usage
            fault = self._take_fault(entry.kind)
        limit_header = {"Sforce-Limit-Info": f"api-usage={usage}/{self.api_limit}"}
        try:
            if usage > self.api_limit:
                raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            if fault:
                status, code, message, retry_after = fault
                raise ApiError(status, code, message,
                               headers={"Retry-After": str(retry_after)} if retry_after is not None else None)
            resp = _RestCall(self, method, version, segments, params, headers, body, entry).dispatch()
        except ApiError as exc:
            resp = _error(exc)
        except soql.SoqlError as exc:
            resp = _error(ApiError(400, exc.error_code, exc.message))
        resp.headers = {**(resp.headers or {}), **limit_header}
        return resp

    def _authenticate(self, headers) -> None:
        auth = headers.get("Authorization") or ""
        scheme, _, token = auth.partition(" ")
        with self._lock:
            valid = scheme.lower() in ("bearer", "oauth") and token.strip() in self._sessions
        if not valid:
            raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")

    def _take_fault(self, kind: str):
        fault = next((f for f in self._faults if f[5] in (None, kind)), None)
        if fault is None:
            return None
        fault[3] -= 1
        if fault[3] <= 0:
            self._faults.remove(fault)
        return fault[0], fault[1], fault[2], fault[4]

    def next_id(self, prefix: str) -> str:
        with self._lock:
            return make_id(prefix, next(self._ids))

    def add_bulk_job(self, job: "BulkJob") -> None:
        with self._lock:
            self.bulk_jobs[job.info["id"]] = job
            while len(self.bulk_jobs) > MAX_BULK_JOBS:
                self.bulk_jobs.popitem(last=False)

    # ----------------------------------------------------------------- SOAP login

    def _soap_login(self, method: str, version: str, body: bytes) -> _Response:
        if method != "POST":
            raise ApiError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are POST")
        username, password = _login_credentials(body)
        if username != self.username or not secrets.compare_digest((password or "").encode(), self._secret.encode()):
            return _Response(500, _LOGIN_FAULT.encode(), "text/xml;charset=UTF-8")
        session = self.issue_session()
        server_url = f"{self.url}/services/Soap/u/{version}/{ORG_ID[:15]}"
        xml = _LOGIN_OK.format(server_url=xml_escape(server_url), session=xml_escape(session),
                               user_id=API_USER_ID, org_id=ORG_ID, username=xml_escape(self.username))
        return _Response(200, xml.encode(), "text/xml;charset=UTF-8")

    # ----------------------------------------------------------------- control endpoints

    def _control(self, method: str, path: str, body: bytes) -> _Response:
        action = path[len("/__sandbox/"):].strip("/")
        if action == "status" and method == "GET":
            return _json(200, status_reply(self))
        if action == "advance" and method == "POST":
            try:
                days = float(json.loads(body or b"{}")["days"])
            except (ValueError, KeyError, TypeError):
                raise ApiError(400, "JSON_PARSER_ERROR", 'expected a JSON body {"days": <number>}') from None
            return _json(200, advance_reply(self, days))
        raise ApiError(404, *_NOT_FOUND)


def _classify(method: str, segments: list[str]) -> str:
    head = segments[0] if segments else ""
    if head in ("query", "queryAll"):
        return "queryMore" if len(segments) > 1 else "query"
    if head == "limits":
        return "limits"
    if head == "composite":
        return "composite"
    if head == "jobs":
        return "bulk2"
    if head == "sobjects":
        if len(segments) == 1 or (len(segments) == 2 and method == "GET") or segments[2:3] == ["describe"]:
            return "describe"
        return "sobject"
    return "other"


def _login_credentials(body: bytes) -> tuple[str | None, str | None]:
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None, None
    found = {}
    for el in root.iter():
        local = el.tag.rpartition("}")[2]
        if local in ("username", "password"):
            found[local] = (el.text or "").strip()
    return found.get("username"), found.get("password")


_LOGIN_OK = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><loginResponse><result>\
<metadataServerUrl>{server_url}</metadataServerUrl><passwordExpired>false</passwordExpired><sandbox>true</sandbox>\
<serverUrl>{server_url}</serverUrl><sessionId>{session}</sessionId><userId>{user_id}</userId>\
<userInfo><organizationId>{org_id}</organizationId><userId>{user_id}</userId><userName>{username}</userName></userInfo>\
</result></loginResponse></soapenv:Body></soapenv:Envelope>"""

_LOGIN_FAULT = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" \
xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\
<soapenv:Body><soapenv:Fault><faultcode>INVALID_LOGIN</faultcode>\
<faultstring>INVALID_LOGIN: Invalid username, password, security token; or user locked out.</faultstring>\
<detail><sf:LoginFault xmlns:sf="urn:fault.partner.soap.sforce.com"><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>\
<sf:exceptionMessage>Invalid username, password, security token; or user locked out.</sf:exceptionMessage>\
</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"""


# --------------------------------------------------------------------------- REST resources

class _RestCall:
    """One authenticated REST request under /services/data/vNN.N/."""

    def __init__(self, emu: SalesforceEmulator, method, version, segments, params, headers, body, entry):
        self.emu, self.store = emu, emu.store
        self.method, self.version, self.segments = method, version, segments
        self.params, self.headers, self.body, self.entry = params, headers, body, entry
        self.base = f"/services/data/v{version}"

    def dispatch(self) -> _Response:
        seg = self.segments
        head = seg[0] if seg else ""
        if not seg:
            return self.only("GET", self.resources)
        if head == "limits" and len(seg) == 1:
            return self.only("GET", self.limits)
        if head in ("query", "queryAll") and len(seg) <= 2:
            return self.only("GET", self.query)
        if head == "sobjects":
            return self.sobjects()
        if seg == ["composite", "sobjects"]:
            return self.only("PATCH", self.collection_update)
        if seg[:2] == ["jobs", "query"]:
            return _BulkQuery(self).dispatch()
        raise ApiError(404, *_NOT_FOUND)

    def only(self, method: str, handler) -> _Response:
        if self.method != method:
            raise ApiError(405, "METHOD_NOT_ALLOWED",
                           f"HTTP Method '{self.method}' not allowed. Allowed are {method}")
        return handler()

    # -- discovery
    def resources(self) -> _Response:
        names = ("sobjects", "query", "queryAll", "limits", "composite", "jobs")
        return _json(200, {n: f"{self.base}/{n}" for n in names})

    def limits(self) -> _Response:
        used = min(self.emu.api_usage, self.emu.api_limit)
        return _json(200, {"DailyApiRequests": {"Max": self.emu.api_limit, "Remaining": self.emu.api_limit - used}})

    # -- query
    def query(self) -> _Response:
        include_deleted = self.segments[0] == "queryAll"
        batch = _batch_size(self.headers)
        if len(self.segments) == 2:
            try:
                page = self.store.query_more(self.segments[1], batch_size=batch, version=self.version)
            except InvalidLocator:
                raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator") from None
        else:
            text = (self.params.get("q") or [""])[0]
            if not text.strip():
                raise ApiError(400, "MALFORMED_QUERY", "A query string must be provided as the q parameter")
            self.entry.soql = text
            found = re.search(r"\bFROM\s+(\w+)", text, re.IGNORECASE)
            obj = self.store.sobject(found.group(1)) if found else None
            self.emu._check_access(obj.name if obj else None, text)
            page = self.store.query(text, include_deleted=include_deleted, batch_size=batch or 2000,
                                    now=self.emu.now, version=self.version)
        return self.query_response(page)

    def query_response(self, page: QueryPage) -> _Response:
        e = self.entry
        e.sobject, e.soql, e.include_deleted = page.sobject, page.soql, page.include_deleted
        e.records_returned = len(page.records)
        payload = {"totalSize": page.total_size, "done": page.done}
        if not page.done:
            # Salesforce points queryAll continuations at /query/ too.
            payload["nextRecordsUrl"] = f"{self.base}/query/{page.next_locator}"
        payload["records"] = page.records
        return _json(200, payload)

    # -- sobjects
    def sobjects(self) -> _Response:
        seg = self.segments
        if len(seg) == 1:
            return self.only("GET", self.global_describe)
        obj = self.store.sobject(seg[1])
        if obj is None:
            raise ApiError(404, *_NOT_FOUND)
        self.entry.sobject = obj.name
        self.emu._check_access(obj.name)
        if len(seg) == 2:
            if self.method == "POST":
                return self.create(obj)
            return self.only("GET", lambda: _json(200, {"objectDescribe": self.object_summary(obj),
                                                        "recentItems": []}))
        if len(seg) == 3 and seg[2] == "describe":
            return self.only("GET", lambda: _json(200, self.describe(obj)))
        if len(seg) == 3 and seg[2] in ("updated", "deleted"):
            return self.only("GET", lambda: self.replication(obj, seg[2] == "deleted"))
        if len(seg) == 3:
            return self.record(obj, seg[2])
        raise ApiError(404, *_NOT_FOUND)

    def global_describe(self) -> _Response:
        return _json(200, {"encoding": "UTF-8", "maxBatchSize": MAX_COLLECTION,
                           "sobjects": [self.object_summary(o) for o in self.store.objects.values()]})

    def object_summary(self, obj: SObject) -> dict:
        url = f"{self.base}/sobjects/{obj.name}"
        read_only = obj.name in _READ_ONLY_OBJECTS
        return {
            "name": obj.name, "label": _split_camel(obj.name),
            "labelPlural": _PLURALS.get(obj.name, _split_camel(obj.name) + "s"),
            "keyPrefix": obj.key_prefix, "custom": False, "queryable": True, "retrieveable": True,
            "replicateable": True, "searchable": not read_only, "layoutable": not read_only,
            "createable": not read_only, "updateable": not read_only,
            "deletable": obj.name not in _UNDELETABLE,
            "urls": {"sobject": url, "describe": f"{url}/describe", "rowTemplate": f"{url}/{{ID}}"},
        }

    def describe(self, obj: SObject) -> dict:
        fields = [f for f in obj.fields if (obj.name, f.name) not in self.emu.hidden_fields]
        return {**self.object_summary(obj), "fields": [self.describe_field(obj, f) for f in fields]}

    def describe_field(self, obj: SObject, fld: Field) -> dict:
        writable = _writable(obj.name, fld.name)
        currency = fld.name == _CURRENCY
        picklist = list(self.emu.currencies) if currency else _PICKLISTS.get((obj.name, fld.name), [])
        label = obj.name + " ID" if fld.name == "Id" else (
            f"{_split_camel(obj.name)} Currency" if currency else _label(fld.name))
        return {
            "name": fld.name, "label": label,
            "type": fld.type, "soapType": _SOAP_TYPES.get(fld.type, "xsd:string"),
            "length": _LENGTHS.get(fld.type, 0), "nillable": _nillable(obj.name, fld),
            "createable": writable, "updateable": writable, "defaultedOnCreate": fld.type == "boolean"
            or fld.name in _SYSTEM_FIELDS or currency, "custom": False, "calculated": False, "unique": False,
            "filterable": True, "sortable": fld.type != "textarea", "idLookup": fld.name == "Id",
            "externalId": False, "restrictedPicklist": fld.name in ("StageName", _CURRENCY) and bool(picklist),
            "referenceTo": [fld.reference_to] if fld.reference_to else [],
            "relationshipName": soql.relationship_name(fld),
            "picklistValues": [{"value": v, "label": v, "active": True,
                                "defaultValue": currency and v == picklist[0], "validFor": None}
                               for v in picklist],
        }

    def replication(self, obj: SObject, deleted: bool) -> _Response:
        try:
            start = soql.wire_datetime(soql.parse_datetime(self.params["start"][0]))
            end = soql.wire_datetime(soql.parse_datetime(self.params["end"][0]))
        except (KeyError, ValueError):
            raise ApiError(400, "INVALID_REPLICATION_DATE",
                           "start and end must be ISO-8601 datetimes with a time zone") from None
        rows = self.store.changed_ids(obj.name, start, end, deleted=deleted)
        if deleted:
            return _json(200, {"deletedRecords": [{"id": i, "deletedDate": d} for i, d in rows],
                               "earliestDateAvailable": start, "latestDateCovered": end})
        return _json(200, {"ids": [i for i, _ in rows], "latestDateCovered": end})

    # -- single records
    def record(self, obj: SObject, raw_id: str) -> _Response:
        record_id = normalize_id(raw_id)
        current = self.store.get(obj.name, record_id, self.version) if record_id else None
        if current is None or not record_id.startswith(obj.key_prefix):
            raise ApiError(404, *_NOT_FOUND)
        if self.method == "GET":
            if current.get("IsDeleted"):
                raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
            self.entry.records_returned = 1
            return _json(200, current)
        writer = _Writer(self.emu)
        if self.method == "PATCH":
            fields = self.json_body(dict)
            fields.pop("attributes", None)
            if fields.get("Id") == record_id or fields.get("Id") == raw_id:
                fields.pop("Id")
            error = writer.update(obj, record_id, fields)
        elif self.method == "DELETE":
            error = writer.delete(obj, record_id)
        else:
            raise ApiError(405, "METHOD_NOT_ALLOWED",
                           f"HTTP Method '{self.method}' not allowed. Allowed are GET,PATCH,DELETE")
        if error:
            raise error.as_api_error(404 if error.status_code == "ENTITY_IS_DELETED" else 400)
        return _Response(204)

    def create(self, obj: SObject) -> _Response:
        fields = self.json_body(dict)
        fields.pop("attributes", None)
        result = _Writer(self.emu).create(obj, fields)
        if isinstance(result, RecordError):
            raise result.as_api_error()
        return _json(201, {"id": result, "success": True, "errors": []})

    # -- sObject Collections
    def collection_update(self) -> _Response:
        payload = self.json_body(dict)
        records = payload.get("records")
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ApiError(400, "JSON_PARSER_ERROR", "records must be a list of sObjects")
        if len(records) > MAX_COLLECTION:
            raise ApiError(400, "EXCEEDED_ID_LIMIT",
                           f"record limit reached. cannot submit more than {MAX_COLLECTION} records into this call")
        first_type = (records[0].get("attributes") or {}).get("type") if records else None
        self.entry.sobject = first_type if isinstance(first_type, str) else None
        results = _Writer(self.emu).update_collection(records, bool(payload.get("allOrNone")))
        return _json(200, results)

    def json_body(self, expected_type):
        try:
            value = json.loads(self.body or b"null")
        except ValueError as exc:
            raise ApiError(400, "JSON_PARSER_ERROR", f"The request body is not valid JSON: {exc}") from None
        if not isinstance(value, expected_type):
            raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        return value


def _batch_size(headers) -> int | None:
    m = _BATCH_RE.search(headers.get("Sforce-Query-Options") or "")
    return int(m.group(1)) if m else None


# --------------------------------------------------------------------------- Bulk API 2.0 query

_DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
_LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
MAX_BULK_JOBS = 64
DEFAULT_BULK_PAGE = 100_000


@dataclass
class BulkJob:
    """A Bulk 2.0 query job. The query runs (snapshots) at creation, so the job is complete
    by the first poll; results page through the snapshot."""
    info: dict
    locator: str
    query: soql.Query
    total: int
    state: str = "UploadComplete"
    columns: list[str] = field(default_factory=list)


class _BulkQuery:
    """/jobs/query[/{id}[/results]] as simple-salesforce's ``sf.bulk2.<Object>`` uses them."""

    def __init__(self, call: _RestCall):
        self.call, self.emu, self.seg = call, call.emu, call.segments

    def dispatch(self) -> _Response:
        if len(self.seg) == 2:
            return self.call.only("POST", self.create)
        job = self.emu.bulk_jobs.get(self.seg[2])
        if job is None:
            raise ApiError(404, *_NOT_FOUND)
        self.call.entry.sobject, self.call.entry.soql = job.query.sobject.name, job.query.text
        self.call.entry.include_deleted = job.info["operation"] == "queryAll"
        if len(self.seg) == 4 and self.seg[3] == "results":
            return self.call.only("GET", lambda: self.results(job))
        if len(self.seg) != 3:
            raise ApiError(404, *_NOT_FOUND)
        if self.call.method == "DELETE":
            self.emu.bulk_jobs.pop(job.info["id"], None)
            return _Response(204)
        if self.call.method == "PATCH":          # abort_job / close_job
            job.state = self.call.json_body(dict).get("state") or job.state
            return _json(200, {**job.info, "state": job.state})
        return self.call.only("GET", lambda: _json(200, self.status(job)))

    def create(self) -> _Response:
        body = self.call.json_body(dict)
        operation, text = body.get("operation"), body.get("query")
        if operation not in ("query", "queryAll") or not isinstance(text, str):
            raise ApiError(400, "INVALIDJOB", "operation must be query or queryAll, with a query")
        delimiter, ending = body.get("columnDelimiter", "COMMA"), body.get("lineEnding", "LF")
        if delimiter not in _DELIMITERS or ending not in _LINE_ENDINGS:
            raise ApiError(400, "INVALIDJOB", f"unsupported columnDelimiter/lineEnding {delimiter}/{ending}")
        locator, q, total = self.emu.store.snapshot(text, include_deleted=operation == "queryAll", now=self.emu.now)
        stamp = soql.wire_datetime(self.emu.now)
        info = {"id": self.emu.next_id("750"), "operation": operation, "object": q.sobject.name,
                "createdById": API_USER_ID, "createdDate": stamp, "systemModstamp": stamp,
                "state": "UploadComplete", "concurrencyMode": "Parallel", "contentType": "CSV",
                "apiVersion": float(self.call.version), "lineEnding": ending, "columnDelimiter": delimiter}
        self.emu.add_bulk_job(BulkJob(info, locator, q, total, columns=[f.path for f in q.fields]))
        self.call.entry.sobject, self.call.entry.soql = q.sobject.name, text
        self.call.entry.include_deleted = operation == "queryAll"
        return _json(200, info)

    def status(self, job: BulkJob) -> dict:
        if job.state == "UploadComplete":
            job.state = "JobComplete"
        return {**job.info, "state": job.state, "numberRecordsProcessed": job.total, "retries": 0,
                "totalProcessingTime": 0}

    def results(self, job: BulkJob) -> _Response:
        if job.state != "JobComplete":
            raise ApiError(400, "JOB_NOT_COMPLETE", f"Job {job.info['id']} is not complete: {job.state}")
        params = self.call.params
        try:
            offset = int((params.get("locator") or ["0"])[0] or 0)
            limit = int((params.get("maxRecords") or [DEFAULT_BULK_PAGE])[0])
        except ValueError:
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid locator or maxRecords") from None
        try:
            rows = self.emu.store.snapshot_rows(job.locator, offset, max(limit, 1))
        except InvalidLocator:
            raise ApiError(404, "NOT_FOUND", "The job's results are no longer available") from None
        end = offset + len(rows)
        self.call.entry.records_returned = len(rows)
        headers = {"Sforce-NumberOfRecords": str(len(rows)),
                   "Sforce-Locator": str(end) if end < job.total else "null"}
        return _Response(200, self.csv(job, rows).encode(), "text/csv", headers)

    def csv(self, job: BulkJob, rows: list[list]) -> str:
        delimiter, newline = _DELIMITERS[job.info["columnDelimiter"]], _LINE_ENDINGS[job.info["lineEnding"]]
        types = [f.field.type for f in job.query.fields]
        lines = [delimiter.join(_csv_quote(c) for c in job.columns)]
        lines += [delimiter.join(_csv_value(t, v) for t, v in zip(types, row)) for row in rows]
        return newline.join(lines) + newline


def _csv_quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _csv_value(field_type: str, value) -> str:
    """Bulk CSV conventions: every value quoted, null empty, true/false, datetimes in Z form."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return _csv_quote("true" if value else "false")
    if field_type == "datetime":
        value = value[:-5] + "Z"
    return _csv_quote(str(value))


# --------------------------------------------------------------------------- writes

class _Rollback(Exception):
    pass


class _Writer:
    """Salesforce write semantics: field checks, defaults, derived fields, audit stamps,
    and OpportunityHistory rows, applied to the store."""

    def __init__(self, emu: SalesforceEmulator):
        self.emu, self.store = emu, emu.store
        self.stamp = soql.wire_datetime(emu.now)

    # -- entry points
    def create(self, obj: SObject, fields: dict) -> str | RecordError:
        if obj.name in _READ_ONLY_OBJECTS:
            return RecordError("INVALID_TYPE_FOR_OPERATION", f"entity type cannot be inserted: {obj.name}", [])
        with self.store.transaction():
            values = self.coerce(obj, fields)
            error = self.check(obj, fields, values, creating=True)
            if error:
                return error
            record_id = self.emu.next_id(obj.key_prefix)
            row = self.defaults(obj, record_id)
            row.update(values)
            self.derive(obj, row, explicit=fields.keys(), current=None)
            self.store.insert(obj.name, row)
            if obj.name == "Opportunity":
                self.history(row)
            return record_id

    def update(self, obj: SObject, record_id: str, fields: dict) -> RecordError | None:
        if obj.name in _READ_ONLY_OBJECTS:
            return RecordError("INVALID_TYPE_FOR_OPERATION", f"entity type cannot be updated: {obj.name}", [])
        with self.store.transaction():
            current, error = self.live_record(obj, record_id)
            if error:
                return error
            values = self.coerce(obj, fields)
            error = self.check(obj, fields, values, creating=False)
            if error:
                return error
            stored = {f.name: to_storage(f.type, current[f.name]) for f in obj.fields}
            merged = {**stored, **values}
            self.derive(obj, merged, explicit=fields.keys(), current=stored)
            changes = {k: v for k, v in merged.items() if v != stored[k]}
            changes.update({k: self.stamp for k in ("LastModifiedDate", "SystemModstamp") if obj.field(k)})
            self.store.update(obj.name, record_id, changes)
            if obj.name == "Opportunity" and any(merged[k] != stored[k] for k in _HISTORY_TRACKED):
                self.history(merged)
            return None

    def live_record(self, obj: SObject, record_id: str) -> tuple[dict | None, RecordError | None]:
        """The stored record, or the error a write to a missing or deleted record gets."""
        current = self.store.get(obj.name, record_id)
        if current is None:
            return None, RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
        if current.get("IsDeleted"):
            return None, RecordError("ENTITY_IS_DELETED", "entity is deleted", [])
        return current, None

    def delete(self, obj: SObject, record_id: str) -> RecordError | None:
        if obj.name in _UNDELETABLE:
            return RecordError("INVALID_TYPE_FOR_OPERATION", f"entity type cannot be deleted: {obj.name}", [])
        with self.store.transaction():
            current, error = self.live_record(obj, record_id)
            if error:
                return error
            # Deletion moves the row to the recycle bin: SystemModstamp moves, LastModifiedDate doesn't.
            self.store.update(obj.name, record_id, {"IsDeleted": 1, "SystemModstamp": self.stamp})
            return None

    def update_collection(self, records: list[dict], all_or_none: bool) -> list[dict]:
        outcomes: list = []
        try:
            with self.store.transaction():
                outcomes = [self.update_one(rec) for rec in records]
                if all_or_none and any(isinstance(o, RecordError) for o in outcomes):
                    raise _Rollback
        except _Rollback:
            outcomes = [o if isinstance(o, RecordError) else _ROLLED_BACK for o in outcomes]
        return [{"success": False, "errors": [o.as_save_error()]} if isinstance(o, RecordError)
                else {"id": o, "success": True, "errors": []} for o in outcomes]

    def update_one(self, record: dict) -> str | RecordError:
        fields = dict(record)
        type_name = (fields.pop("attributes", None) or {}).get("type")
        raw_id = fields.pop("id", None) or fields.pop("Id", None)
        fields.pop("Id", None)
        obj = self.store.sobject(type_name) if isinstance(type_name, str) else None
        if obj is None:
            raise ApiError(400, "INVALID_TYPE", f"sObject type '{type_name}' is not supported." if type_name
                           else "Every record must have attributes.type")
        if raw_id is None:
            return RecordError("MISSING_ARGUMENT", "Id not specified in an update call", [])
        record_id = normalize_id(raw_id)
        if record_id is None or not record_id.startswith(obj.key_prefix):
            return RecordError("MALFORMED_ID", f"{obj.name} ID: id value of incorrect type: {raw_id}", ["Id"])
        return self.update(obj, record_id, fields) or record_id

    # -- rules
    def coerce(self, obj: SObject, fields: dict) -> dict:
        """JSON values -> stored values. Unknown fields or unparseable values fail the whole
        request, as Salesforce's JSON deserializer does."""
        values = {}
        for name, value in fields.items():
            fld = obj.field(name)
            if fld is None:
                raise ApiError(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}")
            try:
                values[fld.name] = to_storage(fld.type, value)
            except (ValueError, TypeError):
                raise ApiError(400, "JSON_PARSER_ERROR",
                               f"Cannot deserialize instance of {fld.type} from value {value!r} "
                               f"for field {fld.name}") from None
        return values

    def check(self, obj: SObject, fields: dict, values: dict, *, creating: bool) -> RecordError | None:
        locked = [n for n in values if not _writable(obj.name, n)]
        if locked:
            return RecordError("INVALID_FIELD_FOR_INSERT_UPDATE",
                               f"Unable to create/update fields: {', '.join(locked)}. Please check the security "
                               "settings of this field and verify that it is read/write for your profile or "
                               "permission set.", locked)
        required = _REQUIRED.get(obj.name, ())
        missing = [n for n in required if (n in values or creating) and values.get(n) in (None, "")]
        if missing:
            return RecordError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]",
                               missing)
        stage = values.get("StageName")
        if obj.name == "Opportunity" and stage is not None and stage not in _STAGES:
            return RecordError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                               f"Stage: bad value for restricted picklist field: {stage}", ["StageName"])
        if _CURRENCY in values and values[_CURRENCY] not in self.emu.currencies:
            return RecordError("INVALID_CURRENCY_ISO", f"Currency ISO Code: invalid currency code: "
                               f"{values[_CURRENCY]}", [_CURRENCY])
        return self.check_references(obj, values)

    def check_references(self, obj: SObject, values: dict) -> RecordError | None:
        for name, value in values.items():
            fld = obj.field(name)
            if fld.type != "reference" or value is None:
                continue
            ref_id = normalize_id(value)
            target = self.object_for(ref_id) if ref_id else None
            if target is None or not self.store.exists(target.name, ref_id):
                return RecordError("INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id", [name])
            if target.name != fld.reference_to and name not in _POLYMORPHIC:
                return RecordError("FIELD_INTEGRITY_EXCEPTION",
                                   f"{_label(name)}: id value of incorrect type: {value}", [name])
            values[name] = ref_id
        return None

    def object_for(self, record_id: str) -> SObject | None:
        return next((o for o in self.store.objects.values() if record_id.startswith(o.key_prefix)), None)

    def defaults(self, obj: SObject, record_id: str) -> dict:
        row = {f.name: 0 for f in obj.fields if f.type == "boolean"}
        row.update(_CREATE_DEFAULTS.get(obj.name, {}))
        row.update(Id=record_id)
        for name in ("CreatedDate", "LastModifiedDate", "SystemModstamp"):
            if obj.field(name):
                row[name] = self.stamp
        if obj.field("CreatedById"):
            row["CreatedById"] = API_USER_ID
        if obj.field("OwnerId"):
            row["OwnerId"] = API_USER_ID       # Salesforce makes the creating user the owner
        if obj.field(_CURRENCY):
            row[_CURRENCY] = self.emu.currencies[0]     # the creating user's currency: the corporate one
        return row

    def derive(self, obj: SObject, row: dict, *, explicit, current: dict | None) -> None:
        """Fields Salesforce computes: stage flags and defaults, task closure, contact names."""
        if obj.name == "Opportunity" and (current is None or row["StageName"] != current["StageName"]):
            stage = _STAGES[row["StageName"]]
            row["IsClosed"], row["IsWon"] = int(stage["IsClosed"]), int(stage["IsWon"])
            if "Probability" not in explicit:
                row["Probability"] = stage["DefaultProbability"]
            if "ForecastCategoryName" not in explicit:
                row["ForecastCategoryName"] = stage["ForecastCategoryName"]
        if obj.name == "Task" and "Status" in row:
            row["IsClosed"] = int(row["Status"] == "Completed")
        if obj.name in ("Contact", "User") and (current is None or {"FirstName", "LastName"} & set(explicit)):
            row["Name"] = " ".join(p for p in (row.get("FirstName"), row.get("LastName")) if p) or None

    def history(self, opp: dict) -> None:
        amount, probability = opp.get("Amount"), opp.get("Probability")
        currency = {_CURRENCY: opp.get(_CURRENCY)} if self.store.objects["OpportunityHistory"].field(_CURRENCY) else {}
        self.store.insert("OpportunityHistory", {
            "Id": self.emu.next_id(OBJECTS["OpportunityHistory"].key_prefix), "OpportunityId": opp["Id"],
            "StageName": opp.get("StageName"), "Amount": amount, "Probability": probability,
            "CloseDate": opp.get("CloseDate"), "ForecastCategory": opp.get("ForecastCategoryName"),
            "ExpectedRevenue": amount * probability / 100 if amount is not None and probability is not None else None,
            "IsDeleted": 0, "CreatedDate": self.stamp, "CreatedById": API_USER_ID, "SystemModstamp": self.stamp,
            **currency,
        })


# --------------------------------------------------------------------------- HTTP server
