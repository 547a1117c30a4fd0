"""The Salesforce emulator, driven by the real simple-salesforce client over HTTPS."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta, timezone

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from sandbox.salesforce import soql
from sandbox.salesforce.emulator import SalesforceEmulator, normalize_id
from sandbox.salesforce.schema import OBJECTS, STANDARD_STAGES, make_id
from sandbox.tls import LocalCA

NOW = datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)
USER = make_id("005", 1)
ACCOUNT = make_id("001", 1)
PASSWORD, TOKEN = "sandbox-password", "SANDBOXTOKEN"


def rec(sobject: str, n: int, **values) -> tuple[str, dict]:
    """A complete record of ``sobject`` with every schema field, typed as the org types them."""
    obj = OBJECTS[sobject]
    defaults = {"id": make_id(obj.key_prefix, n), "boolean": False, "datetime": NOW}
    record = {f.name: defaults.get(f.type) for f in obj.fields}
    if "Name" in record:
        record["Name"] = f"{sobject} {n}"
    if sobject == "Opportunity":
        record.update(StageName="Prospecting", CloseDate=date(2024, 6, 30), AccountId=ACCOUNT, OwnerId=USER)
    unknown = set(values) - set(record)
    assert not unknown, unknown
    record.update(values)
    return sobject, record


def opp(n: int, **values) -> tuple[str, dict]:
    return rec("Opportunity", n, **values)


def base_records() -> list[tuple[str, dict]]:
    return [rec("User", 1, LastName="Owner", Email="owner@example.com", IsActive=True),
            rec("Account", 1, Name="Acme"), rec("Contact", 1, AccountId=ACCOUNT, LastName="Doe")]


class RewriteSession(requests.Session):
    """What the connector must do for SOAP login: send login.salesforce.com to the emulator."""

    def __init__(self, emu: SalesforceEmulator):
        super().__init__()
        self.trust_env = False                     # REQUESTS_CA_BUNDLE would override verify
        self.verify = str(emu.ca.ca_path)
        self.target = emu.url

    def request(self, method, url, *args, **kwargs):
        if url.startswith("https://login.salesforce.com"):
            url = self.target + url[len("https://login.salesforce.com"):]
        return super().request(method, url, *args, **kwargs)


@pytest.fixture(scope="session")
def ca(tmp_path_factory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def emu(ca):
    with SalesforceEmulator(ca=ca, clock=NOW) as emulator:
        emulator.load(base_records())
        yield emulator


def http(emu: SalesforceEmulator) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.verify = str(emu.ca.ca_path)
    return s


def direct(emu: SalesforceEmulator) -> Salesforce:
    return Salesforce(instance_url=emu.url, session_id=emu.issue_session(), session=http(emu))


def soap(emu: SalesforceEmulator, password: str = PASSWORD) -> Salesforce:
    return Salesforce(username=emu.username, password=password, security_token=TOKEN,
                      session=RewriteSession(emu))


def ids(records) -> list[str]:
    return [r["Id"] for r in records]


# --------------------------------------------------------------------------- TLS, login


def test_local_ca_is_reused_across_restarts(tmp_path):
    first = LocalCA(tmp_path)
    pem = first.ca_path.read_bytes()
    again = LocalCA(tmp_path)
    assert again.ca_path.read_bytes() == pem
    assert again.server_context().verify_mode is not None


def test_soap_login_success_points_client_at_emulator(emu):
    sf = soap(emu)
    assert sf.sf_instance == f"127.0.0.1:{emu.port}"
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 1
    assert [e.kind for e in emu.request_log] == ["login", "query"]


def test_soap_login_failure_raises_authentication_failed(emu):
    with pytest.raises(SalesforceAuthenticationFailed) as err:
        soap(emu, password="wrong")
    assert err.value.code == "INVALID_LOGIN"
    assert "Invalid username, password, security token" in err.value.auth_message
    assert emu.request_log[-1].status == 500
    assert PASSWORD not in repr(emu.request_log) and TOKEN not in repr(emu.request_log)


def test_rest_without_valid_session_is_401_json_array(emu):
    resp = http(emu).get(f"{emu.url}/services/data/v59.0/query/", params={"q": "SELECT Id FROM Account"},
                         headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 401
    assert resp.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert resp.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_expired_session_direct_auth_raises(emu):
    sf = direct(emu)
    sf.query("SELECT Id FROM Account")
    emu.expire_sessions()
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM Account")


def test_expired_session_soap_login_relogs_transparently(emu):
    sf = soap(emu)
    old_session = sf.session_id
    emu.expire_sessions()
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 1
    assert sf.Account.get(ACCOUNT)["Name"] == "Acme"          # SFType shares the new session
    assert sf.session_id != old_session
    assert [(e.kind, e.status) for e in emu.request_log] == [
        ("login", 200), ("query", 401), ("login", 200), ("query", 200), ("sobject", 200)]


# --------------------------------------------------------------------------- queries


def test_paging_over_2000_records_returns_each_once_in_order(emu):
    emu.load(opp(i, Amount=float(i)) for i in range(1, 4502))
    sf = direct(emu)
    emu.clear_log()
    got = list(sf.query_all_iter("SELECT Id, Amount FROM Opportunity ORDER BY Amount DESC"))
    assert ids(got) == [make_id("006", i) for i in range(4501, 0, -1)]
    assert [(e.kind, e.records_returned) for e in emu.request_log] == [
        ("query", 2000), ("queryMore", 2000), ("queryMore", 501)]
    first = sf.query("SELECT Id FROM Opportunity")
    assert first["totalSize"] == 4501 and first["done"] is False
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    assert first["nextRecordsUrl"].endswith("-2000")


def test_batch_size_header_sets_page_size(emu):
    emu.load(opp(i) for i in range(1, 1001))
    sf = direct(emu)
    emu.clear_log()
    got = list(sf.query_all_iter("SELECT Id FROM Opportunity", headers={"Sforce-Query-Options": "batchSize=300"}))
    assert len(set(ids(got))) == 1000
    assert [e.records_returned for e in emu.request_log] == [300, 300, 300, 100]


def test_where_datetimes_in_and_or_order_limit_count(emu):
    day = timedelta(days=1)
    emu.load([
        opp(1, SystemModstamp=NOW - 2 * day, StageName="Prospecting", Amount=100.0),
        opp(2, SystemModstamp=NOW - day, StageName="Qualification", Amount=None),
        opp(3, SystemModstamp=NOW, StageName="Closed Won", Amount=300.0, IsWon=True, IsClosed=True),
        opp(4, SystemModstamp=NOW + day, StageName="Closed Lost", Amount=50.0, IsClosed=True),
    ])
    sf = direct(emu)

    def q(where_etc: str) -> list[str]:
        return ids(sf.query_all(f"SELECT Id FROM Opportunity {where_etc}")["records"])

    o = {i: make_id("006", i) for i in range(1, 5)}
    assert q("WHERE SystemModstamp >= 2024-05-01T10:00:00Z ORDER BY SystemModstamp") == [o[3], o[4]]
    assert q("WHERE SystemModstamp > 2024-05-01T10:00:00.000+00:00 ORDER BY SystemModstamp") == [o[4]]
    assert q("where stagename in ('Closed Won', 'Closed Lost') order by Amount") == [o[4], o[3]]
    assert q("WHERE StageName NOT IN ('Closed Won', 'Closed Lost') ORDER BY Id") == [o[1], o[2]]
    assert q("WHERE (IsClosed = true AND Amount > 100) OR Amount = null ORDER BY Id") == [o[2], o[3]]
    assert q("WHERE IsWon = false AND (Amount < 100 OR StageName LIKE 'prosp%') ORDER BY Id") == [o[1], o[4]]
    assert q("ORDER BY Amount DESC NULLS LAST LIMIT 3") == [o[3], o[1], o[4]]
    assert q("ORDER BY Amount ASC LIMIT 2") == [o[2], o[4]]                 # nulls first on ASC
    assert q("WHERE CloseDate = 2024-06-30 AND Amount != 300 ORDER BY Id") == [o[1], o[2], o[4]]
    assert q("WHERE SystemModstamp = LAST_N_DAYS:1 ORDER BY Id") == [o[2], o[3]]
    assert sf.query("SELECT COUNT() FROM Opportunity WHERE IsClosed = true") == \
        {"totalSize": 2, "done": True, "records": []}


def test_parent_relationship_fields_are_nested(emu):
    emu.load([opp(1), opp(2, AccountId=None)])
    records = direct(emu).query("SELECT Id, Account.Name, Name FROM Opportunity ORDER BY Id")["records"]
    assert list(records[0]) == ["attributes", "Id", "Account", "Name"]
    assert records[0]["Account"] == {
        "attributes": {"type": "Account", "url": f"/services/data/v59.0/sobjects/Account/{ACCOUNT}"},
        "Name": "Acme"}
    assert records[1]["Account"] is None


def test_query_all_sees_deleted_rows_query_does_not(emu):
    emu.load([opp(1), opp(2, IsDeleted=True)])
    sf = direct(emu)
    assert ids(sf.query_all("SELECT Id FROM Opportunity")["records"]) == [make_id("006", 1)]
    assert sf.query_all("SELECT Id FROM Opportunity WHERE IsDeleted = true")["totalSize"] == 0
    all_rows = sf.query_all("SELECT Id, IsDeleted FROM Opportunity ORDER BY Id", include_deleted=True)
    assert [r["IsDeleted"] for r in all_rows["records"]] == [False, True]
    entry = emu.request_log[-1]
    assert (entry.kind, entry.include_deleted, entry.path) == ("query", True, "/services/data/v59.0/queryAll/")


def test_query_all_continuation_uses_query_path_and_keeps_deleted(emu):
    emu.load(opp(i, IsDeleted=i % 2 == 0) for i in range(1, 2501))
    sf = direct(emu)
    first = sf.query("SELECT Id FROM Opportunity", include_deleted=True)
    assert first["totalSize"] == 2500 and "/query/" in first["nextRecordsUrl"]
    rest = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert len(rest["records"]) == 500 and rest["done"] is True
    locator = first["nextRecordsUrl"].rsplit("/", 1)[1]
    again = sf.query_more(locator, include_deleted=True)                # /queryAll/<locator> works too
    assert ids(again["records"]) == ids(rest["records"])


def test_values_are_typed_on_the_wire(emu):
    emu.load([opp(1, Amount=15000, Probability=10.0, IsWon=True,
                  SystemModstamp=datetime(2024, 5, 1, 12, 30, 5, 250000, tzinfo=timezone(timedelta(hours=2))))])
    resp = http(emu).get(
        f"{emu.url}/services/data/v61.0/query",
        params={"q": "SELECT Name, Amount, Probability, CloseDate, IsWon, Type, SystemModstamp FROM Opportunity"},
        headers={"Authorization": f"Bearer {emu.issue_session()}"})
    assert resp.status_code == 200
    assert resp.headers["Sforce-Limit-Info"] == "api-usage=1/15000"
    record = resp.json()["records"][0]
    assert record == {
        "attributes": {"type": "Opportunity", "url": f"/services/data/v61.0/sobjects/Opportunity/{make_id('006', 1)}"},
        "Name": "Opportunity 1", "Amount": 15000.0, "Probability": 10.0, "CloseDate": "2024-06-30",
        "IsWon": True, "Type": None, "SystemModstamp": "2024-05-01T10:30:05.250+0000"}
    assert isinstance(record["Amount"], float)
    assert datetime.fromisoformat(record["SystemModstamp"]) == datetime(2024, 5, 1, 10, 30, 5, 250000, timezone.utc)


def test_query_errors_surface_as_malformed_request(emu):
    sf = direct(emu)
    cases = {
        "SELECT Id FROM Opportunity WHERE": "MALFORMED_QUERY",
        "SELECT Id FROM Opportunity WHERE Amount > 1 AND Amount < 5 OR Amount = 3": "MALFORMED_QUERY",
        "SELECT Id, Foo FROM Opportunity": "INVALID_FIELD",
        "SELECT Id FROM Opportunity WHERE CloseDate > '2024-01-01'": "INVALID_FIELD",
        "SELECT Id FROM Foo": "INVALID_TYPE",
    }
    for query, code in cases.items():
        with pytest.raises(SalesforceMalformedRequest) as err:
            sf.query(query)
        assert err.value.content[0]["errorCode"] == code, query
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query("SELECT Id, Foo FROM Opportunity")
    assert "No such column 'Foo' on entity 'Opportunity'" in err.value.content[0]["message"]
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query("SELECT Id FROM Opportunity WHERE")
    assert err.value.content[0]["message"] == (
        "\nSELECT Id FROM Opportunity WHERE\n" + " " * 31 + "^\nERROR at Row:1:Column:32\nunexpected token: <EOF>")
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query_more("01g000000000999AAA-2000")
    assert err.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_bulk2_query_pages_csv(emu):
    emu.load(opp(i, Amount=float(i), IsDeleted=i == 5) for i in range(1, 2502))
    sf = direct(emu)
    emu.clear_log()
    pages = list(sf.bulk2.Opportunity.query("SELECT Id, Amount, IsWon, Type, SystemModstamp, Account.Name "
                                            "FROM Opportunity ORDER BY Amount", max_records=1000, wait=0))
    assert len(pages) == 3
    lines = "".join(p.split("\n", 1)[1] for p in pages).splitlines()     # drop each page's header
    assert pages[0].split("\n", 1)[0] == '"Id","Amount","IsWon","Type","SystemModstamp","Account.Name"'
    assert len(lines) == 2500 and make_id("006", 5) not in "".join(lines)
    assert lines[0] == f'"{make_id("006", 1)}","1.0","false",,"2024-05-01T10:00:00.000Z","Acme"'
    assert [e.kind for e in emu.request_log] == ["bulk2"] * 5                 # create, poll, 3 pages
    assert [e.records_returned for e in emu.request_log[2:]] == [1000, 1000, 500]
    everything = "".join(sf.bulk2.Opportunity.query_all("SELECT Id FROM Opportunity", wait=0))
    assert everything.count("\n") == 2502                                        # header + all rows


# --------------------------------------------------------------------------- describe


def test_describe_global_object_and_metadata(emu):
    sf = direct(emu)
    names = {o["name"]: o for o in sf.describe()["sobjects"]}
    assert set(names) == set(OBJECTS) and names["Opportunity"]["keyPrefix"] == "006"
    desc = sf.Opportunity.describe()
    fields = {f["name"]: f for f in desc["fields"]}
    assert [f["name"] for f in desc["fields"]] == OBJECTS["Opportunity"].field_names
    stage = fields["StageName"]
    assert (stage["type"], stage["nillable"], stage["updateable"]) == ("picklist", False, True)
    assert [v["value"] for v in stage["picklistValues"]] == [s["ApiName"] for s in STANDARD_STAGES]
    assert fields["AccountId"]["referenceTo"] == ["Account"]
    assert fields["AccountId"]["relationshipName"] == "Account"
    assert fields["SystemModstamp"]["updateable"] is False
    assert sf.Opportunity.metadata()["objectDescribe"]["name"] == "Opportunity"
    with pytest.raises(SalesforceResourceNotFound):
        sf.restful("sobjects/Foo/describe")
    assert [e.kind for e in emu.request_log] == ["describe"] * 4


# --------------------------------------------------------------------------- currencies

CURRENCIES = ("USD", "EUR", "GBP")


@pytest.fixture
def multi(ca):
    """A multi-currency org (USD corporate): its accounts, contacts and deals carry CurrencyIsoCode."""
    with SalesforceEmulator(ca=ca, clock=NOW, currencies=CURRENCIES) as emulator:
        emulator.load([(obj, {**r, "CurrencyIsoCode": "EUR"} if obj in ("Account", "Contact") else r)
                       for obj, r in base_records()])
        emulator.load([("Opportunity", {**opp(1, Amount=900.0)[1], "CurrencyIsoCode": "EUR"})])
        yield emulator


def test_a_single_currency_org_has_no_currency_field(emu):
    sf = direct(emu)
    for sobject in OBJECTS:
        assert "CurrencyIsoCode" not in {f["name"] for f in getattr(sf, sobject).describe()["fields"]}, sobject
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.query("SELECT Id, CurrencyIsoCode FROM Opportunity")
    assert err.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Opportunity.create({"Name": "Euro deal", "StageName": "Prospecting", "CloseDate": "2024-06-30",
                               "CurrencyIsoCode": "EUR"})
    assert err.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_a_multi_currency_org_describes_and_serves_currency(multi):
    sf = direct(multi)
    for sobject in OBJECTS:
        fields = {f["name"]: f for f in getattr(sf, sobject).describe()["fields"]}
        if sobject not in ("Account", "Contact", "Opportunity", "OpportunityHistory"):
            assert "CurrencyIsoCode" not in fields, sobject
            continue
        currency = fields["CurrencyIsoCode"]
        assert (currency["type"], currency["nillable"], currency["restrictedPicklist"]) == ("picklist", False, True)
        assert [(v["value"], v["defaultValue"]) for v in currency["picklistValues"]] == [
            ("USD", True), ("EUR", False), ("GBP", False)]
    rows = sf.query("SELECT Id, Amount, CurrencyIsoCode, Account.CurrencyIsoCode FROM Opportunity "
                    "WHERE CurrencyIsoCode = 'EUR'")["records"]
    assert [(r["Id"], r["Amount"], r["CurrencyIsoCode"], r["Account"]["CurrencyIsoCode"]) for r in rows] == [
        (make_id("006", 1), 900.0, "EUR", "EUR")]


def test_a_multi_currency_org_defaults_checks_and_records_currency(multi):
    sf = direct(multi)
    plain = sf.Opportunity.create({"Name": "Home deal", "StageName": "Prospecting", "CloseDate": "2024-06-30",
                                   "Amount": 100.0})["id"]
    pound = sf.Opportunity.create({"Name": "Pound deal", "StageName": "Prospecting", "CloseDate": "2024-06-30",
                                   "Amount": 200.0, "CurrencyIsoCode": "GBP"})["id"]
    assert sf.Opportunity.get(plain)["CurrencyIsoCode"] == "USD"        # the creating user's: corporate
    assert sf.Opportunity.get(pound)["CurrencyIsoCode"] == "GBP"
    sf.Opportunity.update(plain, {"CurrencyIsoCode": "EUR", "Amount": 120.0})
    history = sf.query_all("SELECT OpportunityId, Amount, CurrencyIsoCode FROM OpportunityHistory "
                           "ORDER BY CreatedDate, Id")["records"]
    assert [(h["OpportunityId"], h["Amount"], h["CurrencyIsoCode"]) for h in history] == [
        (plain, 100.0, "USD"), (pound, 200.0, "GBP"), (plain, 120.0, "EUR")]
    for bad in ("JPY", None):
        with pytest.raises(SalesforceMalformedRequest) as err:
            sf.Opportunity.update(pound, {"CurrencyIsoCode": bad})
        assert err.value.content[0]["errorCode"] == "INVALID_CURRENCY_ISO"
    assert sf.Opportunity.get(pound)["CurrencyIsoCode"] == "GBP"


def test_an_org_and_its_emulator_agree_on_currencies(ca):
    from sandbox.org import SyntheticOrg

    with SalesforceEmulator(ca=ca, clock=NOW) as single:
        with pytest.raises(ValueError, match="currencies"):
            single.attach_org(SyntheticOrg(seed=1, size="small", currencies=CURRENCIES))
    with SalesforceEmulator(ca=ca, clock=NOW, currencies=CURRENCIES) as several:
        with pytest.raises(ValueError, match="currencies"):
            several.attach_org(SyntheticOrg(seed=1, size="small"))


# --------------------------------------------------------------------------- writes


def test_create_get_update_delete_round_trip(emu):
    emu.load([opp(1)])
    sf = direct(emu)
    created = sf.Task.create({"Subject": "Follow up", "WhatId": make_id("006", 1), "WhoId": make_id("003", 1),
                              "OwnerId": USER, "ActivityDate": "2024-05-03", "Priority": "High"})
    assert created["success"] is True and created["errors"] == []
    task_id = created["id"]
    assert task_id.startswith("00T") and normalize_id(task_id) == task_id
    task = sf.Task.get(task_id)
    assert task["Status"] == "Not Started" and task["IsClosed"] is False and task["IsDeleted"] is False
    assert task["CreatedDate"] == task["SystemModstamp"] == "2024-05-01T10:00:00.000+0000"

    emu.now = NOW + timedelta(hours=1)
    assert sf.Task.update(task_id, {"Status": "Completed"}) == 204
    task = sf.Task.get(task_id)
    assert task["IsClosed"] is True
    assert task["LastModifiedDate"] == task["SystemModstamp"] == "2024-05-01T11:00:00.000+0000"
    assert task["CreatedDate"] == "2024-05-01T10:00:00.000+0000"

    emu.now = NOW + timedelta(hours=2)
    assert sf.Task.delete(task_id) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Task.get(task_id)
    gone = sf.query_all(f"SELECT IsDeleted, LastModifiedDate, SystemModstamp FROM Task WHERE Id = '{task_id}'",
                        include_deleted=True)["records"][0]
    assert gone["IsDeleted"] is True
    assert (gone["LastModifiedDate"], gone["SystemModstamp"]) == (
        "2024-05-01T11:00:00.000+0000", "2024-05-01T12:00:00.000+0000")


def test_write_validation_errors(emu):
    sf = direct(emu)
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Task.create({"Status": "Not Started"})
    assert err.value.content == [{"message": "Required fields are missing: [Subject]",
                                  "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["Subject"]}]
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Task.create({"Subject": "x", "Bogus": 1})
    assert err.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Task.create({"Subject": "x", "WhatId": make_id("006", 777)})
    assert err.value.content[0]["errorCode"] == "INVALID_CROSS_REFERENCE_KEY"
    with pytest.raises(SalesforceResourceNotFound) as err:
        sf.Opportunity.update(make_id("006", 404), {"Amount": 1})
    assert err.value.content[0]["errorCode"] == "NOT_FOUND"
    assert direct(emu).query("SELECT COUNT() FROM Task")["totalSize"] == 0


def test_stage_change_derives_flags_and_writes_history(emu):
    emu.load([opp(1, Amount=1000.0, Probability=10.0)])
    sf = direct(emu)
    sf.Opportunity.update(make_id("006", 1), {"StageName": "Closed Won"})
    o = sf.Opportunity.get(make_id("006", 1))
    assert (o["IsClosed"], o["IsWon"], o["Probability"], o["ForecastCategoryName"]) == (True, True, 100.0, "Closed")
    history = sf.query_all("SELECT OpportunityId, StageName, Amount, ExpectedRevenue FROM OpportunityHistory")
    assert [(h["OpportunityId"], h["StageName"], h["ExpectedRevenue"]) for h in history["records"]] == [
        (make_id("006", 1), "Closed Won", 1000.0)]
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Opportunity.update(make_id("006", 1), {"StageName": "Nope"})
    assert err.value.content[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


def composite(sf: Salesforce, records: list[dict], all_or_none: bool = False):
    return sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": all_or_none, "records": records})


def test_composite_update_per_record_results(emu):
    emu.load([opp(1, Amount=1.0), opp(2, Amount=2.0), opp(3, IsDeleted=True)])
    sf = direct(emu)
    t = {"type": "Opportunity"}
    results = composite(sf, [
        {"attributes": t, "id": make_id("006", 1), "Amount": 10.0},
        {"attributes": t, "id": make_id("006", 3), "Amount": 30.0},
        {"attributes": t, "id": make_id("001", 1), "Amount": 40.0},
        {"attributes": t, "Id": make_id("006", 999), "Amount": 50.0},
        {"attributes": t, "id": make_id("006", 2), "IsWon": True},
    ])
    assert results[0] == {"id": make_id("006", 1), "success": True, "errors": []}
    codes = [r["errors"][0]["statusCode"] if not r["success"] else None for r in results]
    assert codes == [None, "ENTITY_IS_DELETED", "MALFORMED_ID", "INVALID_CROSS_REFERENCE_KEY",
                     "INVALID_FIELD_FOR_INSERT_UPDATE"]
    amounts = sf.query_all("SELECT Amount FROM Opportunity ORDER BY Id", include_deleted=True)["records"]
    assert [r["Amount"] for r in amounts] == [10.0, 2.0, None]


def test_composite_all_or_none_rolls_back_everything(emu):
    emu.load([opp(1, Amount=1.0), opp(2, Amount=2.0)])
    sf = direct(emu)
    t = {"type": "Opportunity"}
    results = composite(sf, [{"attributes": t, "id": make_id("006", 1), "Amount": 10.0},
                             {"attributes": t, "id": make_id("006", 2), "StageName": "Bogus"}], all_or_none=True)
    assert results[0] == {"success": False, "errors": [{
        "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
        "fields": []}]}
    assert results[1]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    amounts = [r["Amount"] for r in sf.query_all("SELECT Amount FROM Opportunity ORDER BY Id")["records"]]
    assert amounts == [1.0, 2.0]
    assert sf.query("SELECT COUNT() FROM OpportunityHistory")["totalSize"] == 0


def test_composite_over_200_records_is_rejected(emu):
    sf = direct(emu)
    records = [{"attributes": {"type": "Opportunity"}, "id": make_id("006", i), "Amount": 1} for i in range(201)]
    with pytest.raises(SalesforceMalformedRequest) as err:
        composite(sf, records)
    assert err.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    resp = http(emu).patch(f"{emu.url}/services/data/v59.0/composite/sobjects/",
                           json={"records": records[:1]},
                           headers={"Authorization": f"Bearer {emu.issue_session()}"})
    assert resp.status_code == 200 and resp.json()[0]["errors"][0]["statusCode"] == "INVALID_CROSS_REFERENCE_KEY"


# --------------------------------------------------------------------------- limits, faults, control


def test_limit_info_is_parsed_and_limit_enforced(ca):
    with SalesforceEmulator(ca=ca, clock=NOW, api_limit=3) as emu:
        sf = direct(emu)
        sf.query("SELECT Id FROM Account")
        assert sf.api_usage["api-usage"].used == 1 and sf.api_usage["api-usage"].total == 3
        assert sf.restful("limits")["DailyApiRequests"] == {"Max": 3, "Remaining": 1}
        sf.query("SELECT Id FROM Account")
        with pytest.raises(SalesforceRefusedRequest) as err:
            sf.query("SELECT Id FROM Account")
        assert err.value.content == [{"message": "TotalRequests Limit exceeded.",
                                      "errorCode": "REQUEST_LIMIT_EXCEEDED"}]


def test_fail_next_injects_errors_then_recovers(emu):
    sf = direct(emu)
    emu.fail_next(503, "SERVER_UNAVAILABLE", "try later", times=2, retry_after=7)
    for _ in range(2):
        with pytest.raises(SalesforceGeneralError) as err:
            sf.query("SELECT Id FROM Account")
        assert err.value.status == 503
        assert err.value.content == [{"message": "try later", "errorCode": "SERVER_UNAVAILABLE"}]
    resp = http(emu).get(f"{emu.url}/services/data/v59.0/limits",
                         headers={"Authorization": f"Bearer {emu.issue_session()}"})
    assert resp.status_code == 200
    emu.fail_next(503, "SERVER_UNAVAILABLE", "again", retry_after=7)
    resp = http(emu).get(f"{emu.url}/services/data/v59.0/limits",
                         headers={"Authorization": f"Bearer {emu.issue_session()}"})
    assert (resp.status_code, resp.headers["Retry-After"]) == (503, "7")
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 1


class FakeOrg:
    """The org interface the emulator relies on: records(as_of), changes(since, until), now."""

    def __init__(self):
        self.now = NOW
        self.calls: list[tuple] = []

    def records(self, as_of):
        self.calls.append(("records", as_of))
        yield from base_records()
        yield opp(1, Amount=100.0)

    def changes(self, since, until):
        self.calls.append(("changes", since, until))
        yield opp(1, Amount=150.0, SystemModstamp=since + timedelta(hours=1))
        yield opp(2, Amount=70.0, CreatedDate=until, SystemModstamp=until)


def test_attach_org_and_advance(ca):
    org = FakeOrg()
    with SalesforceEmulator(ca=ca, clock=NOW - timedelta(days=30)) as emu:
        assert emu.attach_org(org) == {"User": 1, "Account": 1, "Contact": 1, "Opportunity": 1}
        assert emu.now == NOW
        sf = direct(emu)
        assert emu.advance(1.5) == {"Opportunity": 2}
        assert emu.now == NOW + timedelta(days=1.5)
        assert org.calls[-1] == ("changes", NOW, NOW + timedelta(days=1.5))
        rows = sf.query_all("SELECT Id, Amount FROM Opportunity WHERE SystemModstamp > 2024-05-01T10:00:00Z "
                            "ORDER BY SystemModstamp")["records"]
        assert [(r["Id"], r["Amount"]) for r in rows] == [(make_id("006", 1), 150.0), (make_id("006", 2), 70.0)]

        session = http(emu)
        resp = session.post(f"{emu.url}/__sandbox/advance", json={"days": 1})
        assert resp.status_code == 200
        later = (NOW + timedelta(days=2.5)).isoformat()
        assert resp.json() == {"now": later, "counts": {"Opportunity": 2},   # alone, it moves only itself
                               "emulators": {"salesforce": {"url": emu.url, "now": later,
                                                            "counts": {"Opportunity": 2}}}}
        status = session.get(f"{emu.url}/__sandbox/status").json()
        assert status["now"] == "2024-05-03T22:00:00+00:00"
        assert status["counts"]["Opportunity"] == 2 and status["counts"]["Task"] == 0
        assert [e.kind for e in emu.request_log[-2:]] == ["control", "control"]


def test_request_log_counts_by_kind(emu):
    emu.load(opp(i) for i in range(1, 2101))
    sf = soap(emu)
    list(sf.query_all_iter("SELECT Id FROM Opportunity"))
    sf.Opportunity.describe()
    sf.Opportunity.update(make_id("006", 1), {"Amount": 5.0})
    composite(sf, [{"attributes": {"type": "Opportunity"}, "id": make_id("006", 2), "Amount": 6.0}])
    sf.restful("limits")
    with pytest.raises(SalesforceMalformedRequest):
        sf.query("SELECT Nope FROM Opportunity")
    kinds = Counter(e.kind for e in emu.request_log)
    assert kinds == {"login": 1, "query": 2, "queryMore": 1, "describe": 1, "sobject": 1,
                     "composite": 1, "limits": 1}
    failed = emu.request_log[-1]
    assert (failed.status, failed.soql, failed.records_returned) == (400, "SELECT Nope FROM Opportunity", 0)
    assert sum(e.records_returned for e in emu.request_log if e.kind in ("query", "queryMore")) == 2100
    emu.clear_log()
    assert emu.request_log == []


# --------------------------------------------------------------------------- SOQL unit checks


def test_soql_parser_details():
    q = soql.parse("select ID, account.NAME from OPPORTUNITY where name = 'O\\'Brien' limit 5")
    assert [f.path for f in q.fields] == ["Id", "Account.Name"]
    assert q.sobject.name == "Opportunity" and q.limit == 5
    assert q.where.value.value == "O\\'Brien" and soql.storage_literal("string", q.where.value) == "O'Brien"
    assert soql.date_literal_range("LAST_N_DAYS", 7, NOW) == (date(2024, 4, 24), date(2024, 5, 2))
    with pytest.raises(soql.SoqlError) as err:
        soql.parse("SELECT Id FROM Opportunity WHERE Owner.Foo = 'x'")
    assert err.value.error_code == "INVALID_FIELD"
    with pytest.raises(soql.SoqlError) as err:
        soql.parse("SELECT Id FROM Opportunity\nWHERE Name = 'x' AND")
    assert "ERROR at Row:2:Column:20" in err.value.message
