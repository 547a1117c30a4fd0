"""The HubSpot emulator, driven by the real hubspot-api-client 12.0.0 over HTTPS.

Records are hand-made in exactly the shapes sandbox/README.md ("HubSpot") gives for
``org.hubspot_records`` / ``org.hubspot_changes``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import urllib3
from hubspot import HubSpot
from urllib3.util.retry import Retry

import hubspot.crm.contacts
import hubspot.crm.deals
from sandbox.hubspot.emulator import FIRST_WRITE_ID, HubSpotEmulator
from sandbox.tls import LocalCA

UTC = timezone.utc
T0 = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=30)
OWNER = "77"
STAGES = [("appointmentscheduled", "0.2", "false"), ("qualifiedtobuy", "0.4", "false"),
          ("presentationscheduled", "0.6", "false"), ("decisionmakerboughtin", "0.8", "false"),
          ("contractsent", "0.9", "false"), ("closedwon", "1.0", "true"), ("closedlost", "0.0", "true")]


# --------------------------------------------------------------------------- README-shaped records

def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def ms(dt: datetime) -> str:
    return str(int(dt.timestamp() * 1000))


def obj(kind: str, n: int, updated: datetime, *, history: dict | None = None, archived: bool = False,
        merged: list[str] | None = None, **props) -> tuple[str, dict]:
    properties = {"hs_object_id": str(n), "createdate": iso(T0), "hs_lastmodifieddate": iso(updated), **props}
    if kind == "contacts":                       # contacts carry lastmodifieddate too
        properties["lastmodifieddate"] = iso(updated)
    return kind, {"id": str(n), "properties": properties, "history": history or {}, "createdAt": T0,
                  "updatedAt": updated, "archived": archived, "archivedAt": updated if archived else None,
                  "mergedObjectIds": merged or []}


def deal(n: int, updated: datetime | None = None, stage: str = "appointmentscheduled", **props):
    updated = updated or T0 + timedelta(hours=n)
    history = {"dealstage": [{"value": stage, "timestamp": updated, "sourceType": "CRM_UI"},
                             {"value": "appointmentscheduled", "timestamp": T0, "sourceType": "CRM_UI"}]}
    values = {"dealname": f"Deal {n}", "amount": str(1000 * n), "dealstage": stage, "pipeline": "default",
              "closedate": iso(T0 + timedelta(days=60)), "hubspot_owner_id": OWNER, **props}
    return obj("deals", n, updated, history=history, **values)


def contact(n: int, updated: datetime | None = None, **props):
    return obj("contacts", n, updated or T0, email=f"person{n}@acme.example", firstname="Pat", lastname=f"N{n}",
               lifecyclestage="lead", **props)


def company(n: int, **props):
    return obj("companies", n, T0, name=f"Company {n}", domain=f"c{n}.example", **props)


def assoc(from_type: str, from_id: int, to_type: str, to_id: int, type_id: int, reverse_id: int):
    base = {"category": "HUBSPOT_DEFINED", "label": None, "createdAt": T0, "archived": False}
    return [("associations", {**base, "fromObjectType": from_type, "fromId": str(from_id), "toObjectType": to_type,
                              "toId": str(to_id), "associationTypeId": type_id}),
            ("associations", {**base, "fromObjectType": to_type, "fromId": str(to_id), "toObjectType": from_type,
                              "toId": str(from_id), "associationTypeId": reverse_id})]


def owner(n: int, archived: bool = False):
    return "owners", {"id": str(n), "email": f"rep{n}@sandbox.example", "firstName": "Rita", "lastName": f"Rep{n}",
                      "userId": 1000 + n, "teams": [{"id": "1", "name": "East", "primary": True}],
                      "createdAt": T0, "updatedAt": T0, "archived": archived}


def pipeline():
    stages = [{"id": sid, "label": sid.title(), "displayOrder": i, "createdAt": T0, "updatedAt": T0,
               "archived": False, "metadata": {"probability": p, "isClosed": closed}}
              for i, (sid, p, closed) in enumerate(STAGES)]
    return "pipelines", {"id": "default", "label": "Sales Pipeline", "displayOrder": 0, "createdAt": T0,
                         "updatedAt": T0, "archived": False, "stages": stages}


def base_records() -> list:
    records = [owner(77), owner(78), owner(79, archived=True), pipeline(), company(1)]
    records += [deal(n) for n in range(1, 26)]
    records += [contact(n) for n in range(201, 204)]
    records += assoc("deals", 1, "contacts", 201, 3, 4) + assoc("deals", 1, "contacts", 202, 3, 4)
    records += assoc("deals", 1, "companies", 1, 5, 6)
    records += [obj("tasks", 501, T0, hs_timestamp=iso(T0), hs_task_subject="Call Acme", hs_task_status="NOT_STARTED",
                    hs_task_type="CALL", hubspot_owner_id=OWNER)] + assoc("tasks", 501, "deals", 1, 216, 215)
    records += [deal(90, archived=True)]
    return records


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("hubspot-ca"))


@pytest.fixture
def emu(ca, monkeypatch):
    # This machine sets these to the system bundle; ssl_ca_cert must win regardless of them.
    for var in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(var, "/nonexistent/ca.pem")
    with HubSpotEmulator(ca=ca, clock=NOW) as emulator:
        emulator.load(base_records())
        yield emulator


def client(emu: HubSpotEmulator, token: str | None = None, **kwargs) -> HubSpot:
    """The connector's construction: every kwarg is setattr on each module's Configuration."""
    return HubSpot(access_token=token or emu.access_token, host=emu.url, ssl_ca_cert=str(emu.ca.ca_path), **kwargs)


@pytest.fixture
def hs(emu) -> HubSpot:
    return client(emu)


def raw(response) -> dict:
    """What was on the wire (``_preload_content=False`` returns the urllib3 response)."""
    return json.loads(response.data)


def api_error(call) -> Exception:
    """Each client module raises its own ApiException class: catch broadly, read .status."""
    with pytest.raises(Exception) as info:
        call()
    assert hasattr(info.value, "status"), info.value
    return info.value


def search_body(*filters, sorts=None, limit=10, after=None, properties=None, groups=None) -> dict:
    body = {"filterGroups": groups if groups is not None else ([{"filters": list(filters)}] if filters else []),
            "limit": limit}
    if sorts:
        body["sorts"] = sorts
    if after is not None:
        body["after"] = str(after)
    if properties:
        body["properties"] = properties
    return body


def modified_filter(op: str, when: datetime, iso_form: bool = False) -> dict:
    return {"propertyName": "hs_lastmodifieddate", "operator": op, "value": iso(when) if iso_form else ms(when)}


# --------------------------------------------------------------------------- list / get

def test_get_page_pages_by_cursor_with_only_requested_properties(emu, hs):
    api = hs.crm.deals.basic_api
    first = api.get_page(limit=10, properties=["dealname", "amount", "nonexistent_prop"])
    assert [d.id for d in first.results] == [str(n) for n in range(1, 11)]
    assert first.results[0].properties == {
        "dealname": "Deal 1", "amount": "1000", "createdate": iso(T0),
        "hs_lastmodifieddate": iso(T0 + timedelta(hours=1)), "hs_object_id": "1"}
    assert first.paging.next.after == "11"
    last = api.get_page(limit=10, after="21")
    assert [d.id for d in last.results] == ["21", "22", "23", "24", "25"]
    assert last.paging is None                          # omitted on the last page
    assert last.results[0].created_at == T0 and last.results[0].archived is False


def test_default_properties_when_none_requested(hs):
    deal_props = hs.crm.deals.basic_api.get_page(limit=1).results[0].properties
    assert set(deal_props) == {"amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate",
                               "hs_object_id", "pipeline"}
    contact_props = hs.crm.contacts.basic_api.get_page(limit=1).results[0].properties
    assert set(contact_props) == {"createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"}


def test_get_all_with_history_uses_pages_of_50_and_history_newest_first(emu, hs):
    emu.load(deal(n) for n in range(100, 180))
    deals = hs.crm.deals.get_all(properties=["dealstage"], properties_with_history=["dealstage", "amount"])
    assert len(deals) == 105
    pages = [e for e in emu.request_log if e.kind == "list"]
    assert [e.params["limit"] for e in pages] == ["50", "50", "50"]
    assert [e.records_returned for e in pages] == [50, 50, 5]
    history = deals[0].properties_with_history
    assert [h.value for h in history["dealstage"]] == ["appointmentscheduled", "appointmentscheduled"]
    assert history["dealstage"][0].timestamp > history["dealstage"][1].timestamp
    assert history["amount"][0].value == "1000" and history["amount"][0].source_type == "CRM_UI"


def test_properties_with_history_caps_limit_at_50(hs):
    api = hs.crm.deals.basic_api
    assert len(api.get_page(limit=50, properties_with_history=["dealstage"]).results) == 25
    err = api_error(lambda: api.get_page(limit=51, properties_with_history=["dealstage"]))
    assert err.status == 400 and json.loads(err.body)["category"] == "VALIDATION_ERROR"
    assert api_error(lambda: api.get_page(limit=101)).status == 400


def test_inline_associations_with_paging(emu, hs):
    page = hs.crm.deals.basic_api.get_page(limit=2, associations=["contacts", "companies", "bogus"])
    first = page.results[0].associations
    assert [(a.id, a.type) for a in first["contacts"].results] == [("201", "deal_to_contact"),
                                                                  ("202", "deal_to_contact")]
    assert [(a.id, a.type) for a in first["companies"].results] == [("1", "deal_to_company")]
    assert page.results[1].associations is None         # deal 2 has none: key omitted
    emu.INLINE_ASSOCIATION_LIMIT = 1
    capped = hs.crm.deals.basic_api.get_by_id("1", associations=["contacts"]).associations["contacts"]
    assert [a.id for a in capped.results] == ["201"] and capped.paging.next.after == "202"


def test_archived_lists_only_archived_records(hs):
    api = hs.crm.deals.basic_api
    live = hs.crm.deals.get_all()
    assert "90" not in {d.id for d in live}
    archived = api.get_page(archived=True)
    assert [d.id for d in archived.results] == ["90"]
    assert archived.results[0].archived is True and archived.results[0].archived_at is not None


def test_get_by_id_and_404(emu, hs):
    api = hs.crm.deals.basic_api
    got = api.get_by_id("7", properties=["dealstage"], properties_with_history=["dealstage"])
    assert got.id == "7" and got.properties["dealstage"] == "appointmentscheduled"
    assert len(got.properties_with_history["dealstage"]) == 2
    err = api_error(lambda: api.get_by_id("999"))
    assert err.status == 404
    body = json.loads(err.body)
    assert body["category"] == "OBJECT_NOT_FOUND" and body["status"] == "error" and body["correlationId"]
    assert api_error(lambda: api.get_by_id("90")).status == 404          # archived needs archived=True
    assert api.get_by_id("90", archived=True).archived is True
    by_email = hs.crm.contacts.basic_api.get_by_id("person202@acme.example", id_property="email")
    assert by_email.id == "202"


def test_merged_ids_read_as_the_survivor(emu, hs):
    emu.load([contact(300, merged=["301", "302"]), contact(302, archived=True)])
    api = hs.crm.contacts.basic_api
    survivor = api.get_by_id("301", properties=["hs_merged_object_ids"])
    assert survivor.id == "300" and survivor.properties["hs_merged_object_ids"] == "301;302"
    assert raw(api.get_by_id("300", _preload_content=False))["mergedObjectIds"] == ["301", "302"]
    archived_ids = {c.id for c in api.get_page(archived=True, limit=100).results}
    assert {"301", "302"} <= archived_ids                 # 301 was never sent: an archived stub
    read = hs.crm.contacts.batch_api.read({"inputs": [{"id": "301"}, {"id": "300"}], "properties": ["email"]})
    assert [r.id for r in read.results] == ["300"]


def test_values_are_strings_on_the_wire(hs):
    page = raw(hs.crm.deals.basic_api.get_page(limit=5, properties=["amount", "closedate", "hubspot_owner_id"],
                                               _preload_content=False))
    for record in page["results"]:
        assert all(v is None or isinstance(v, str) for v in record["properties"].values())
        assert record["id"] == record["properties"]["hs_object_id"]
        assert record["updatedAt"].endswith("Z") and isinstance(record["archived"], bool)
    stages = raw(hs.crm.pipelines.pipelines_api.get_all("deals", _preload_content=False))["results"][0]["stages"]
    assert all(isinstance(v, str) for s in stages for v in s["metadata"].values())


# --------------------------------------------------------------------------- search

def test_search_incremental_window_sorted_by_modified_date(hs):
    since = T0 + timedelta(hours=20)
    body = search_body(modified_filter("GTE", since), sorts=[{"propertyName": "hs_lastmodifieddate",
                                                              "direction": "ASCENDING"}],
                       limit=3, properties=["dealname"])
    first = hs.crm.deals.search_api.do_search(public_object_search_request=body)
    assert first.total == 6 and [d.id for d in first.results] == ["20", "21", "22"]
    assert set(first.results[0].properties) == {"dealname", "createdate", "hs_lastmodifieddate", "hs_object_id"}
    body["after"] = first.paging.next.after
    second = hs.crm.deals.search_api.do_search(public_object_search_request=body)
    assert [d.id for d in second.results] == ["23", "24", "25"] and second.paging is None
    iso_body = search_body(modified_filter("GT", since, iso_form=True), limit=100)
    assert hs.crm.deals.search_api.do_search(public_object_search_request=iso_body).total == 5


def test_search_operators_groups_and_sorts(emu, hs):
    emu.load([deal(26, stage="closedwon", dealtype=None), deal(27, stage="closedlost", dealtype="newbusiness")])
    search = hs.crm.deals.search_api.do_search

    def ids(*filters, **kw):
        return [d.id for d in search(public_object_search_request=search_body(*filters, limit=100, **kw)).results]

    assert ids({"propertyName": "dealstage", "operator": "IN", "values": ["closedwon", "CLOSEDLOST"]}) == ["26", "27"]
    between = {"propertyName": "amount", "operator": "BETWEEN", "value": "2000", "highValue": "4000"}
    assert ids(between) == ["2", "3", "4"]
    assert ids({"propertyName": "amount", "operator": "GT", "value": "25000"}) == ["26", "27"]
    assert ids({"propertyName": "dealtype", "operator": "HAS_PROPERTY"}) == ["27"]
    assert "26" in ids({"propertyName": "dealtype", "operator": "NOT_HAS_PROPERTY"})
    assert ids({"propertyName": "hs_object_id", "operator": "LTE", "value": "3"},
               sorts=[{"propertyName": "amount", "direction": "DESCENDING"}]) == ["3", "2", "1"]
    either = [{"filters": [{"propertyName": "hs_object_id", "operator": "EQ", "value": "5"}]},
              {"filters": [{"propertyName": "dealname", "operator": "EQ", "value": "deal 9"}]}]
    assert ids(groups=either) == ["5", "9"]
    assert ids({"propertyName": "dealstage", "operator": "NEQ", "value": "appointmentscheduled"}) == ["26", "27"]
    assert "90" not in ids()                              # archived records are never searchable


def test_search_contacts_by_lastmodifieddate(emu, hs):
    emu.load([contact(210, updated=T0 + timedelta(days=2))])
    body = search_body({"propertyName": "lastmodifieddate", "operator": "GT", "value": ms(T0 + timedelta(days=1))})
    found = hs.crm.contacts.search_api.do_search(public_object_search_request=body)
    assert [c.id for c in found.results] == ["210"]
    assert set(found.results[0].properties) == {"createdate", "email", "firstname", "hs_object_id", "lastmodifieddate",
                                                "lastname"}
    updated = hs.crm.contacts.basic_api.update("201", {"properties": {"lifecyclestage": "customer"}})
    assert updated.properties["lastmodifieddate"] == iso(NOW)
    both = hs.crm.contacts.basic_api.get_by_id("201", properties=["hs_lastmodifieddate"]).properties
    assert both["hs_lastmodifieddate"] == both["lastmodifieddate"] == iso(NOW)
    assert [c.id for c in hs.crm.contacts.search_api.do_search(public_object_search_request=body).results] == \
        ["201", "210"]


def test_search_validation_errors(hs):
    search = hs.crm.deals.search_api.do_search
    assert api_error(lambda: search(public_object_search_request=search_body(limit=201))).status == 400
    bad = search_body({"propertyName": "no_such_property", "operator": "EQ", "value": "x"})
    err = api_error(lambda: search(public_object_search_request=bad))
    assert err.status == 400 and json.loads(err.body)["category"] == "VALIDATION_ERROR"
    too_many = [{"filters": [{"propertyName": "hs_object_id", "operator": "EQ", "value": str(i)}]} for i in range(6)]
    assert api_error(lambda: search(public_object_search_request=search_body(groups=too_many))).status == 400


def test_search_refuses_to_page_past_10000_results(emu, hs):
    emu.load(deal(n, updated=T0 + timedelta(seconds=n)) for n in range(1000, 11100))
    search = hs.crm.deals.search_api.do_search
    body = search_body(modified_filter("GTE", T0), sorts=[{"propertyName": "hs_lastmodifieddate",
                                                            "direction": "ASCENDING"}], limit=100, after=9950)
    page = search(public_object_search_request=body)
    assert page.total == 10_125                            # the total is still reported in full
    assert len(page.results) == 50                         # nothing beyond the 10,000th result
    assert page.paging.next.after == "10000"               # ... yet it says there is more
    body["after"] = page.paging.next.after
    err = api_error(lambda: search(public_object_search_request=body))
    assert err.status == 400
    assert json.loads(err.body)["category"] == "VALIDATION_ERROR"
    # The way out: re-window on hs_lastmodifieddate from the last value seen.
    last = page.results[-1].properties["hs_lastmodifieddate"]
    rewindowed = search(public_object_search_request=search_body(
        {"propertyName": "hs_lastmodifieddate", "operator": "GT", "value": last}, limit=10))
    assert rewindowed.total == 10_125 - 10_000


# --------------------------------------------------------------------------- batch

def test_batch_read_200_and_207(hs):
    batch = hs.crm.deals.batch_api
    ok = batch.read({"inputs": [{"id": "1"}, {"id": "2"}], "properties": ["dealname"],
                     "propertiesWithHistory": ["dealstage"]})
    assert ok.status == "COMPLETE" and [r.id for r in ok.results] == ["1", "2"]
    assert ok.results[0].properties_with_history["dealstage"][0].value == "appointmentscheduled"
    assert not hasattr(ok, "errors")                       # 200 -> BatchResponseSimplePublicObject
    partial = batch.read({"inputs": [{"id": "1"}, {"id": "999"}, {"id": "90"}], "properties": ["dealname"]})
    assert [r.id for r in partial.results] == ["1"]
    assert partial.num_errors == 1 and partial.errors[0].category == "OBJECT_NOT_FOUND"
    assert partial.errors[0].context == {"ids": ["999", "90"]}
    err = api_error(lambda: batch.read({"inputs": [{"id": str(i)} for i in range(101)], "properties": []}))
    assert err.status == 400


def test_batch_update_bumps_modified_date_and_history(emu, hs):
    emu.now = NOW + timedelta(hours=3)
    result = hs.crm.deals.batch_api.update({"inputs": [
        {"id": "1", "properties": {"dealstage": "closedwon", "amount": "1000"}},
        {"id": "2", "properties": {"amount": "2000"}}]})         # deal 2: unchanged value
    assert result.status == "COMPLETE" and not hasattr(result, "errors")
    assert result.results[0].properties["dealstage"] == "closedwon"
    stamp = iso(NOW + timedelta(hours=3))
    d1 = hs.crm.deals.basic_api.get_by_id("1", properties=["hs_is_closed_won", "hs_deal_stage_probability",
                                                             "hs_date_entered_closedwon"],
                                          properties_with_history=["dealstage"])
    assert d1.properties["hs_lastmodifieddate"] == stamp and d1.updated_at == NOW + timedelta(hours=3)
    assert d1.properties["hs_is_closed_won"] == "true" and d1.properties["hs_deal_stage_probability"] == "1.0"
    assert d1.properties["hs_date_entered_closedwon"] == stamp
    newest = d1.properties_with_history["dealstage"][0]
    assert (newest.value, newest.source_type) == ("closedwon", "INTEGRATION")
    d2 = hs.crm.deals.basic_api.get_by_id("2")
    assert d2.properties["hs_lastmodifieddate"] == iso(T0 + timedelta(hours=2))   # no-op write
    assert [w["id"] for w in emu.writes] == ["1", "2"] and emu.writes[0]["properties"]["dealstage"] == "closedwon"
    found = hs.crm.deals.search_api.do_search(public_object_search_request=search_body(
        modified_filter("GTE", NOW + timedelta(hours=3))))
    assert [d.id for d in found.results] == ["1"]


def test_batch_update_207_for_unknown_and_archived_ids_400_for_bad_properties(emu, hs):
    batch = hs.crm.deals.batch_api
    partial = batch.update({"inputs": [{"id": "3", "properties": {"dealname": "Renamed"}},
                                       {"id": "999", "properties": {"dealname": "x"}},
                                       {"id": "90", "properties": {"dealname": "y"}}]})
    assert [r.id for r in partial.results] == ["3"] and partial.num_errors == 1
    assert partial.errors[0].context == {"ids": ["999", "90"]}
    err = api_error(lambda: batch.update({"inputs": [{"id": "3", "properties": {"no_such_prop": "1"}}]}))
    assert err.status == 400 and "PROPERTY_DOESNT_EXIST" in json.loads(err.body)["message"]
    err = api_error(lambda: batch.update({"inputs": [{"id": "3", "properties": {"dealstage": "nope"}}]}))
    assert err.status == 400
    err = api_error(lambda: batch.update({"inputs": [{"id": "3", "properties": {"hs_object_id": "4"}}]}))
    assert err.status == 400 and "READ_ONLY_VALUE" in json.loads(err.body)["message"]
    assert hs.crm.deals.basic_api.get_by_id("3", properties=["dealname"]).properties["dealname"] == "Renamed"


def test_single_update_and_archive(emu, hs):
    api = hs.crm.deals.basic_api
    updated = api.update("4", {"properties": {"dealname": "Patched"}})
    assert updated.properties["dealname"] == "Patched" and updated.properties["hs_lastmodifieddate"] == iso(NOW)
    assert api.archive("4") is None
    assert api_error(lambda: api.get_by_id("4")).status == 404
    assert api.get_by_id("4", archived=True).archived_at == NOW
    assert api_error(lambda: api.update("4", {"properties": {"dealname": "x"}})).status == 404
    hs.crm.deals.batch_api.archive({"inputs": [{"id": "5"}, {"id": "999"}]})
    assert [w["op"] for w in emu.writes] == ["update", "archive", "archive"]


# --------------------------------------------------------------------------- create

def test_create_task_with_association_201(emu, hs):
    body = {"properties": {"hs_timestamp": iso(NOW), "hs_task_subject": "Follow up", "hs_task_status": "NOT_STARTED",
                           "hs_task_type": "TODO", "hubspot_owner_id": OWNER},
            "associations": [{"to": {"id": "2"},
                              "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 216}]}]}
    task = hs.crm.objects.tasks.basic_api.create(simple_public_object_input_for_create=body)
    assert task is not None                                 # a 200 here would have returned None
    assert int(task.id) >= FIRST_WRITE_ID and task.properties["hs_object_id"] == task.id
    assert task.properties["hs_task_subject"] == "Follow up" and task.created_at == NOW
    from_deal = hs.crm.associations.v4.basic_api.get_page("deals", "2", "tasks")
    assert [(r.to_object_id, r.association_types[0].type_id) for r in from_deal.results] == [(task.id, 215)]
    assert emu.writes[-1] == {"op": "create", "object": "tasks", "id": task.id, "properties": body["properties"],
                              "associations": [{"typeId": 216, "toType": "deals", "toId": "2"}]}
    assert [e.kind for e in emu.request_log][0] == "create" and emu.request_log[0].status == 201


def test_create_rejects_bad_associations_and_missing_timestamp(emu, hs):
    tasks = hs.crm.objects.tasks.basic_api
    wrong_type = {"properties": {"hs_timestamp": iso(NOW), "hs_task_subject": "x"},
                  "associations": [{"to": {"id": "2"}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                                  "associationTypeId": 3}]}]}
    assert api_error(lambda: tasks.create(simple_public_object_input_for_create=wrong_type)).status == 400
    missing_deal = {**wrong_type, "associations": [{"to": {"id": "999"}, "types": [
        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 216}]}]}
    assert api_error(lambda: tasks.create(simple_public_object_input_for_create=missing_deal)).status == 400
    no_timestamp = {"properties": {"hs_task_subject": "x"}}
    assert api_error(lambda: tasks.create(simple_public_object_input_for_create=no_timestamp)).status == 400
    assert emu.writes == []


def test_batch_create_201(hs):
    created = hs.crm.deals.batch_api.create({"inputs": [
        {"properties": {"dealname": "New A", "dealstage": "qualifiedtobuy"}},
        {"properties": {"dealname": "New B", "dealstage": "appointmentscheduled"}}]})
    assert created.status == "COMPLETE" and [d.properties["dealname"] for d in created.results] == ["New A", "New B"]
    assert created.results[0].properties["pipeline"] == "default"
    assert created.results[0].properties["hs_deal_stage_probability"] == "0.4"


# --------------------------------------------------------------------------- pipelines, owners

def test_pipelines_and_stages(hs):
    api = hs.crm.pipelines.pipelines_api
    pipelines = api.get_all("deals").results
    assert [p.id for p in pipelines] == ["default"]
    stages = {s.id: s for s in pipelines[0].stages}
    assert list(stages) == [s[0] for s in STAGES]
    assert stages["closedwon"].metadata == {"probability": "1.0", "isClosed": "true"}
    assert stages["qualifiedtobuy"].metadata["isClosed"] == "false"
    assert stages["appointmentscheduled"].write_permissions == "CRM_PERMISSIONS_ENFORCEMENT"
    assert api.get_by_id("deals", "default").label == "Sales Pipeline"
    assert len(hs.crm.pipelines.pipeline_stages_api.get_all("deals", "default").results) == 7
    assert api_error(lambda: api.get_by_id("deals", "nope")).status == 404


def test_owners_paging_email_and_archived(emu, hs):
    api = hs.crm.owners.owners_api
    first = api.get_page(limit=1)
    assert [o.email for o in first.results] == ["rep77@sandbox.example"] and first.paging.next.after == "78"
    assert first.results[0].type == "PERSON" and first.results[0].teams[0].name == "East"
    assert [o.id for o in hs.crm.owners.get_all()] == ["77", "78"]
    assert [o.id for o in api.get_page(email="REP78@sandbox.example").results] == ["78"]
    assert [o.id for o in api.get_page(archived=True).results] == ["79"]
    assert api.get_by_id("1078", id_property="userId").id == "78"
    assert all(e.path == "/crm/v3/owners/" for e in emu.request_log[:4])   # the client's trailing slash


# --------------------------------------------------------------------------- associations v4

def test_v4_association_reads(hs):
    v4 = hs.crm.associations.v4
    page = v4.basic_api.get_page("deals", "1", "contacts", limit=1)
    assert [r.to_object_id for r in page.results] == ["201"] and page.paging.next.after == "202"
    assert page.results[0].association_types[0].category == "HUBSPOT_DEFINED"
    assert page.results[0].association_types[0].type_id == 3
    assert [r.to_object_id for r in v4.basic_api.get_page("deals", "1", "contacts", after="202").results] == ["202"]
    wire = raw(v4.basic_api.get_page("deals", "1", "contacts", _preload_content=False))
    assert wire["results"][0]["toObjectId"] == 201                  # a number on the wire
    batch = v4.batch_api.get_page("deals", "contacts", {"inputs": [{"id": "1"}]})
    assert [(r._from.id, [t.to_object_id for t in r.to]) for r in batch.results] == [("1", ["201", "202"])]
    partial = v4.batch_api.get_page("deals", "contacts", {"inputs": [{"id": "1"}, {"id": "2"}]})
    assert len(partial.results) == 1 and partial.num_errors == 1    # deal 2 has no contacts: 207
    assert partial.errors[0].sub_category == "crm.associations.NO_ASSOCIATIONS_FOUND"


def test_v4_association_writes_do_not_touch_modified_dates(emu, hs):
    v4, deals = hs.crm.associations.v4.basic_api, hs.crm.deals.basic_api
    before = {i: deals.get_by_id(i).properties["hs_lastmodifieddate"] for i in ("2", "3")}
    emu.now = NOW + timedelta(days=1)
    labelled = v4.create("deals", "2", "contacts", "203", [{"associationCategory": "HUBSPOT_DEFINED",
                                                           "associationTypeId": 3}])
    assert (labelled.from_object_type_id, labelled.to_object_id, labelled.labels) == ("0-3", "203", [])
    default = v4.create_default("deals", "3", "companies", "1")
    assert default.status == "COMPLETE"
    assert default.results[0].association_spec.association_type_id == 341
    assert [r.to_object_id for r in v4.get_page("contacts", "203", "deals").results] == ["2"]
    assert v4.archive("deals", "1", "contacts", "201") is None
    assert [r.to_object_id for r in v4.get_page("deals", "1", "contacts").results] == ["202"]
    assert v4.get_page("contacts", "201", "deals").results == []
    after = {i: deals.get_by_id(i).properties["hs_lastmodifieddate"] for i in ("2", "3")}
    assert after == before
    assert deals.get_by_id("1").properties["hs_lastmodifieddate"] == iso(T0 + timedelta(hours=1))
    window = search_body(modified_filter("GTE", NOW))
    assert hs.crm.deals.search_api.do_search(public_object_search_request=window).total == 0
    assert [w["op"] for w in emu.writes] == ["associate", "associate", "unassociate"]
    err = api_error(lambda: v4.create("deals", "2", "contacts", "203", [{"associationCategory": "HUBSPOT_DEFINED",
                                                                         "associationTypeId": 216}]))
    assert err.status == 400


# --------------------------------------------------------------------------- auth, faults, limits

def test_wrong_missing_and_rotated_tokens_401(emu):
    wrong = api_error(lambda: client(emu, token="pat-na1-wrong").crm.deals.basic_api.get_page())
    assert wrong.status == 401
    body = json.loads(wrong.body)
    assert body["category"] == "INVALID_AUTHENTICATION" and body["message"].startswith("Authentication credentials")
    assert body["correlationId"] and wrong.headers["X-HubSpot-Correlation-Id"] == body["correlationId"]
    missing = HubSpot(host=emu.url, ssl_ca_cert=str(emu.ca.ca_path))
    assert api_error(lambda: missing.crm.deals.basic_api.get_page()).status == 401
    old = client(emu)
    emu.rotate_token("pat-na1-rotated")
    err = api_error(lambda: old.crm.contacts.basic_api.get_page())
    assert err.status == 401 and json.loads(err.body)["category"] == "EXPIRED_AUTHENTICATION"
    assert isinstance(err, hubspot.crm.contacts.ApiException)
    assert not isinstance(err, hubspot.crm.deals.ApiException)       # per-module exception classes
    assert len(client(emu, token="pat-na1-rotated").crm.contacts.basic_api.get_page().results) == 3
    assert "pat-na1" not in json.dumps([e.params for e in emu.request_log])


def test_rate_limit_429_with_headers_and_retry_after(emu):
    hs = client(emu, retry=Retry(0))      # else urllib3's default Retry(3) sleeps Retry-After and retries GETs
    ticks = [100.0]
    emu.rate_limit(per_second=2)
    emu.limiter.clock = lambda: ticks[0]
    api = hs.crm.deals.basic_api
    _, status, headers = api.get_page_with_http_info(limit=1)
    assert status == 200 and headers["X-HubSpot-RateLimit-Secondly"] == "2"
    assert headers["X-HubSpot-RateLimit-Secondly-Remaining"] == "1" and headers["X-HubSpot-RateLimit-Daily"] == "500000"
    api.get_page(limit=1)
    err = api_error(lambda: api.get_page(limit=1))
    assert err.status == 429
    assert err.headers["Retry-After"] == "1" and err.headers["X-HubSpot-RateLimit-Secondly-Remaining"] == "0"
    body = json.loads(err.body)
    assert (body["errorType"], body["policyName"], body["status"]) == ("RATE_LIMIT", "SECONDLY", "error")
    assert "category" not in body
    ticks[0] += 1.01
    assert len(api.get_page(limit=1).results) == 1


def test_daily_and_search_limits(emu, hs):
    emu.limiter.clock = lambda: 5.0
    emu.rate_limit(per_second=None, daily=2)
    api = hs.crm.deals.basic_api
    api.get_page(limit=1)
    api.get_page(limit=1)
    err = api_error(lambda: api.get_page(limit=1))
    assert err.status == 429 and json.loads(err.body)["policyName"] == "DAILY" and "Retry-After" not in err.headers
    emu.advance(1)                                         # a new (simulated) day
    assert api.get_page(limit=1).results
    emu.rate_limit(per_second=None, search_per_second=1)
    search = hs.crm.deals.search_api.do_search
    search(public_object_search_request=search_body())
    assert api_error(lambda: search(public_object_search_request=search_body())).status == 429
    assert api.get_page(limit=1).results                   # the search limit is separate


def test_urllib3_retry_recovers_from_429_on_post(emu):
    retry = Retry(total=3, allowed_methods=None, status_forcelist=[429], respect_retry_after_header=True)
    hs = client(emu, retry=retry)
    emu.fail_next(429, times=2, retry_after=0, path_contains="/search")
    found = hs.crm.deals.search_api.do_search(public_object_search_request=search_body(limit=2))
    assert found.total == 25
    assert [e.status for e in emu.request_log if e.kind == "search"] == [429, 429, 200]


def test_default_retry_does_not_retry_post_and_exhausted_retries_raise_urllib3_error(emu):
    emu.fail_next(429, times=1, retry_after=0)
    plain = client(emu, retry=Retry(total=3, status_forcelist=[429]))       # POST not in allowed_methods
    err = api_error(lambda: plain.crm.deals.search_api.do_search(public_object_search_request=search_body()))
    assert err.status == 429 and json.loads(err.body)["errorType"] == "RATE_LIMIT"
    emu.fail_next(429, times=3, retry_after=0)
    stubborn = client(emu, retry=Retry(total=2, allowed_methods=None, status_forcelist=[429]))
    with pytest.raises(urllib3.exceptions.MaxRetryError):                  # not an ApiException
        stubborn.crm.deals.basic_api.get_page()
    assert emu.request_log[-1].status == 429
    emu.fail_next(503, path_contains="/owners")
    assert api_error(lambda: client(emu).crm.owners.owners_api.get_page()).status == 503
    assert client(emu).crm.deals.basic_api.get_page(limit=1).results       # the fault was used up


def test_fractional_retry_after_is_sent_as_whole_seconds(emu):
    emu.fail_next(429, retry_after=0.2)
    err = api_error(lambda: client(emu, retry=Retry(0)).crm.deals.basic_api.get_page())
    assert err.headers["Retry-After"] == "1"               # urllib3 rejects non-integer values


def test_client_without_retry_still_retries_get_429_with_retry_after(emu, hs):
    # urllib3's default Retry(3) honours Retry-After on 413/429/503 for idempotent methods,
    # so a bare HubSpot() client silently retries GETs (sleeping Retry-After) but not POSTs.
    emu.fail_next(429, times=2, retry_after=0)
    assert hs.crm.deals.basic_api.get_page(limit=1).results
    assert [e.status for e in emu.request_log] == [429, 429, 200]
    emu.fail_next(429, times=1, retry_after=0)
    err = api_error(lambda: hs.crm.deals.search_api.do_search(public_object_search_request=search_body()))
    assert err.status == 429


# --------------------------------------------------------------------------- time, org, log, control

class FakeOrg:
    """The two methods (and clock) the emulator uses from sandbox.org.SyntheticOrg."""

    def __init__(self, now: datetime, records: list, changes: list[tuple[datetime, tuple]]):
        self.now, self.records, self.changes, self.calls = now, records, changes, []

    def hubspot_records(self, as_of):
        self.calls.append(("records", as_of))
        return iter(self.records)

    def hubspot_changes(self, since, until):
        self.calls.append(("changes", since, until))
        return (rec for when, rec in self.changes if since < when <= until)


def test_attach_org_and_advance(ca):
    later = NOW + timedelta(days=1, hours=2)
    org = FakeOrg(NOW, base_records(), [(later, deal(3, updated=later, stage="contractsent")),
                                        (later, deal(30, updated=later)),
                                        (NOW + timedelta(days=9), deal(31))])
    with HubSpotEmulator(ca=ca) as emu:
        counts = emu.attach_org(org)
        assert counts["deals"] == 26 and counts["owners"] == 3 and emu.now == NOW
        assert emu.advance(2) == {"deals": 2}
        assert emu.now == NOW + timedelta(days=2)
        assert org.calls[-1] == ("changes", NOW, NOW + timedelta(days=2))
        hs = client(emu)
        changed = hs.crm.deals.search_api.do_search(public_object_search_request=search_body(
            modified_filter("GT", NOW), properties=["dealstage"]))
        assert {(d.id, d.properties["dealstage"]) for d in changed.results} == {("3", "contractsent"),
                                                                               ("30", "appointmentscheduled")}


def test_control_endpoints_need_no_token(emu):
    pool = urllib3.PoolManager(ca_certs=str(emu.ca.ca_path))
    status = pool.request("GET", emu.url + "/__sandbox/status")
    assert status.status == 200 and json.loads(status.data)["counts"]["deals"] == 26
    advanced = pool.request("POST", emu.url + "/__sandbox/advance", body=json.dumps({"days": 0.5}))
    assert json.loads(advanced.data)["now"] == (NOW + timedelta(hours=12)).isoformat()
    pool.request("POST", emu.url + "/__sandbox/fail_next", body=json.dumps({"status": 502}))
    assert api_error(lambda: client(emu).crm.deals.basic_api.get_page()).status == 502
    assert [e.kind for e in emu.request_log[:3]] == ["control", "control", "control"]


def test_request_log_kinds_params_and_counts(emu, hs):
    hs.crm.deals.basic_api.get_page(limit=3, properties=["dealname", "amount"], archived=False)
    hs.crm.deals.basic_api.get_by_id("1")
    hs.crm.deals.search_api.do_search(public_object_search_request=search_body(limit=4))
    hs.crm.deals.batch_api.read({"inputs": [{"id": "1"}, {"id": "2"}], "properties": []})
    hs.crm.deals.batch_api.update({"inputs": [{"id": "1", "properties": {"dealname": "Z"}}]})
    hs.crm.objects.notes.basic_api.create({"properties": {"hs_timestamp": iso(NOW), "hs_note_body": "n"}})
    hs.crm.associations.v4.basic_api.get_page("deals", "1", "contacts")
    hs.crm.pipelines.pipelines_api.get_all("deals")
    hs.crm.owners.owners_api.get_page()
    log = [(e.kind, e.object_type, e.status, e.records_returned) for e in emu.request_log]
    assert log == [("list", "deals", 200, 3), ("get", "deals", 200, 1), ("search", "deals", 200, 4),
                   ("batch_read", "deals", 200, 2), ("batch_update", "deals", 200, 1), ("create", "notes", 201, 1),
                   ("associations", "deals", 200, 2), ("pipelines", "deals", 200, 1), ("owners", None, 200, 2)]
    first = emu.request_log[0]
    assert first.params == {"limit": "3", "properties": ["dealname", "amount"], "archived": "False"}
    assert emu.request_log[2].body["limit"] == 4
    emu.clear_log()
    assert emu.request_log == []


def test_raw_http_accepts_comma_lists_and_lowercase_booleans(emu):
    pool = urllib3.PoolManager(ca_certs=str(emu.ca.ca_path))
    headers = {"Authorization": f"Bearer {emu.access_token}"}
    resp = pool.request("GET", emu.url + "/crm/v3/objects/deals?limit=2&properties=dealname,amount&archived=false",
                        headers=headers)
    body = json.loads(resp.data)
    assert resp.status == 200 and set(body["results"][0]["properties"]) >= {"dealname", "amount"}
    assert resp.headers["Content-Type"].startswith("application/json")
    assert pool.request("GET", emu.url + "/crm/v3/objects/widgets", headers=headers).status == 400
    assert pool.request("GET", emu.url + "/crm/v3/objects/deals", headers={}).status == 401


def test_file_backed_store_and_engagement_kinds(ca, tmp_path):
    with HubSpotEmulator(ca=ca, clock=NOW, db_path=tmp_path / "hubspot.sqlite") as emu:
        emu.load([obj(kind, 600 + i, T0, hs_timestamp=iso(T0), hubspot_owner_id=OWNER)
                  for i, kind in enumerate(("emails", "meetings", "calls", "tasks", "notes"))])
        hs = client(emu)
        assert [m.id for m in hs.crm.objects.meetings.basic_api.get_page().results] == ["601"]
        assert hs.crm.objects.basic_api.get_page("calls").results[0].id == "602"
        assert hs.crm.objects.emails.basic_api.get_by_id("600").properties["hs_object_id"] == "600"
    assert (tmp_path / "hubspot.sqlite").stat().st_size > 0
