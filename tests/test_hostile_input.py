"""Hostile input: whatever a vendor or a config file holds, a sync ends with a clean record or a
reported, typed rejection naming the record; never a crashed sync, a corrupted row, a value
guessed at, or text that changes meaning in SOQL, a filter, the warehouse or the report.

The escaping and validation functions are checked directly with hypothesis (derandomized,
bounded, no example database); the chain is checked end to end by putting hostile records into
the emulators' stores, where a vendor would hold them, and syncing them over HTTPS.
"""

from __future__ import annotations

import html
import io
import math
import re
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from connectors.google.settings import GoogleSettings
from connectors.hubspot.streams import OBJECT_STREAMS, checked_name
from connectors.rejections import REJECTED_TEXT_LIMIT
from connectors.salesforce.client import connect
from connectors.salesforce.soql import UnsafeSoql, identifier, incremental_select, like_literal, string_literal
from connectors.salesforce.streams import STREAMS
from connectors.text import clean_text, parse_number, parse_timestamp
from jobs.config import ConfigError, load_config
from jobs.report import build_report, chart_label, stage_label, write_report
from jobs.runner import run_job
from jobs.summary import print_summary, rejected_lines
from pipeline_model.warehouse import Warehouse
from sandbox.hubspot.schema import wire_datetime
from sandbox.salesforce.soql import Compare, Like, parse, storage_literal
from tests.conftest import running_sandbox, synced_on_both_backends, unthrottled_config
from tests.report_fixtures import contract_warehouse
from tests.test_report import _render, dump_dom

# Deterministic for a seed: the same examples every run, nothing written into the repo.
PROPERTY = settings(derandomize=True, database=None, max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# Every kind of character, lone surrogates (what a JSON escape "\ud800" decodes to) included.
ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=60)
SOQL_TEXT = st.text(st.characters(exclude_characters="\x00"), max_size=60) | st.sampled_from(
    ["'", "\\", "\\'", "' OR Name LIKE '%", "'; DELETE FROM Opportunity; --", "%_\\%", "\n\r\t\b\f\"'"])

# Text a vendor could hold in a name, and what the warehouse keeps of it (NUL removed, a lone
# surrogate replaced: the two documented normalisations).
HOSTILE_NAMES = [
    "O'Brien & Sons", "back\\slash \\' \\\\ end\\", "'; DELETE FROM deals; --", "' OR Name LIKE '%",
    "Emoji 🚀💰 family 👩‍👩‍👧 flag 🇺🇦", "שלום עולם – صفقة كبيرة", "zero\u200bwidth\u200d\u2060 \u202eRTL override",
    "ctrl \x01\x07\x1b[31m\x7f tab\tnewline\nCR\r", "nul\x00inside", "lone \ud800 surrogate \udfff",
    "<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "</style></script>{{ 7*7 }} &amp; &lt; %{y}",
    "[bold red]rich[/] markup [/]", "x" * 60_000,     # HubSpot keeps up to 65,536 characters a property
]
BAD_AMOUNTS = ["$1,200.50", "1.2e400", "NaN", "1,200", " 12", "1_000", "€5", "١٢٣", "inf", "0x10"]
BAD_DATES = ["31/12/2026", "2026-13-45", "yesterday", "2026-02-31", "20261231T"]


def kept(text: str) -> str:
    return re.sub("[\ud800-\udfff]", "\ufffd", text.replace("\x00", ""))


# ================================================================== properties: escaping

@PROPERTY
@given(SOQL_TEXT)
def test_a_soql_string_literal_reads_back_as_exactly_its_value_and_nothing_more(value):
    query = parse(f"SELECT Id FROM Opportunity WHERE Name = {string_literal(value)} ORDER BY Id")
    assert isinstance(query.where, Compare) and query.where.op == "="      # one comparison, no injected OR
    assert storage_literal("string", query.where.value) == value
    assert [o.ref.field.name for o in query.order_by] == ["Id"]            # the rest of the query intact


@PROPERTY
@given(SOQL_TEXT)
def test_a_soql_like_literal_is_one_pattern_whose_wildcards_are_literal(value):
    query = parse(f"SELECT Id FROM Opportunity WHERE Name LIKE {like_literal(value)}")
    assert isinstance(query.where, Like)
    assert re.sub(r"\\([%_])", "", query.where.pattern.raw).count("%") == 0   # every % escaped


def test_a_soql_string_cannot_carry_nul():
    with pytest.raises(UnsafeSoql):
        string_literal("a\x00b")


@PROPERTY
@given(ANY_TEXT)
def test_a_soql_identifier_is_a_salesforce_api_name_or_refused(name):
    try:
        checked = identifier(name)
    except UnsafeSoql:
        return
    assert checked == name and re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name)


@pytest.mark.parametrize("name", ["Name, (SELECT Id FROM Users)", "Id FROM User --", "Name'", "a__b__c", "_x",
                                  "Amount ", "x_", ""])
def test_soql_identifiers_that_are_not_names_are_refused(name):
    with pytest.raises(UnsafeSoql):
        identifier(name)


def test_every_query_dealsync_sends_is_built_from_checked_names():
    for stream in STREAMS:
        soql = incremental_select(stream.sobject, stream.fields, stream.cursor,
                                  datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc))
        assert parse(soql).sobject.name == stream.sobject
    for name in ("Custom_Field__c", "Account__r", "CurrencyIsoCode"):
        assert identifier(name) == name


@PROPERTY
@given(ANY_TEXT)
def test_hubspot_names_reaching_urls_and_filters_are_plain_names_or_refused(name):
    try:
        checked_name(name)
    except ValueError:
        return
    assert re.fullmatch(r"[a-z0-9_]+", name)


def test_every_hubspot_object_and_property_dealsync_asks_for_is_a_plain_name():
    for stream in OBJECT_STREAMS:
        for name in (stream.name, *stream.properties, stream.modified_property, *stream.history):
            assert checked_name(name) == name


# ================================================================== properties: text and types

@PROPERTY
@given(ANY_TEXT)
def test_cleaned_text_is_writable_everywhere_and_unchanged_unless_it_had_to_be(value):
    cleaned = clean_text(value)
    cleaned.encode("utf-8")                               # no lone surrogate left
    assert "\x00" not in cleaned
    assert cleaned == kept(value)
    assert clean_text(cleaned) == cleaned


_DUCK = duckdb.connect()       # the model's casts, run by the warehouse engine itself
_DECIMALS = st.from_regex(r"\A[-+]?[0-9]{1,18}(\.[0-9]{1,18})?([eE][-+]?[0-9]{1,2})?\Z")


@PROPERTY
@given(_DECIMALS)
def test_a_plain_decimal_is_read_as_the_number_it_spells_and_the_warehouse_agrees(text):
    value = parse_number(text)
    assert value == float(text) and math.isfinite(value)
    # the model casts a past amount's text the same way, and must not fail on what the connector let through
    assert _DUCK.execute("select cast(? as double)", [text]).fetchone()[0] == value


@PROPERTY
@given(ANY_TEXT | st.sampled_from(BAD_AMOUNTS))
def test_anything_else_is_not_a_number_rather_than_a_guess(text):
    value = parse_number(text)
    if value is not None:
        assert re.fullmatch(r"[-+]?[0-9.]+([eE][-+]?[0-9]+)?", text) and math.isfinite(value)


@pytest.mark.parametrize("text", BAD_AMOUNTS + [""])
def test_amounts_with_symbols_separators_or_overflow_are_refused(text):
    assert parse_number(text) is None


_DATE_LIKE = st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{3})?)?Z?)?\Z") \
    | st.from_regex(r"\A[0-9]{1,16}\Z") | ANY_TEXT | st.sampled_from(BAD_DATES)
# close_date_changes' reading of a past close date (ISO, or epoch milliseconds), as SQL
_CLOSE_DATE_SQL = ("select case when substr(v, 5, 1) = '-' then cast(substr(v, 1, 10) as date) "
                   "else cast('1970-01-01' as date) + cast(floor(cast(v as bigint) / 86400000.0) as integer) end "
                   "from (select cast(? as varchar) as v) t")


@PROPERTY
@given(_DATE_LIKE)
def test_a_date_time_is_read_strictly_and_what_is_read_the_model_reads_the_same_day(text):
    value = parse_timestamp(text)
    if value is None:
        return
    assert value.tzinfo is not None
    day = _DUCK.execute(_CLOSE_DATE_SQL, [text]).fetchone()[0]
    # the model takes an ISO value's calendar day as written, an epoch value's UTC day
    assert day == (value.date() if "-" in text else value.astimezone(timezone.utc).date())


@pytest.mark.parametrize("text", BAD_DATES)
def test_dates_in_other_formats_or_out_of_range_are_refused(text):
    assert parse_timestamp(text) is None


# ================================================================== config values that reach a request

@pytest.mark.parametrize("field, value", [
    ("mailboxes", ["rep@example.com/../../users/ceo@example.com"]), ("mailboxes", ["rep@example.com\nX: y"]),
    ("calendars", ["primary?showDeleted=false"]), ("calendars", ["a b@example.com"]),
    ("gmail_query", "in:inbox\r\nfrom:x"),
])
def test_config_values_bound_for_a_google_request_are_validated_and_named(tmp_path, field, value):
    config = tmp_path / "dealsync.yaml"
    google = {"mailboxes": ["rep@example.com"], field: value}
    config.write_text(yaml.safe_dump({"sources": {"google": google}}))
    with pytest.raises(ConfigError) as error:
        load_config(config)
    assert f"sources.google.{field}" in str(error.value)
    assert str(value if isinstance(value, str) else value[0]) not in str(error.value)   # no echo of the value


# Google Workspace user names: letters, digits, dashes, underscores, apostrophes, dots (and + aliases).
_WORKSPACE_ADDRESSES = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._'+-]{0,30}@[a-z0-9-]{1,20}(\.[a-z]{2,10}){1,2}\Z")


@PROPERTY
@given(_WORKSPACE_ADDRESSES)
def test_every_workspace_address_is_accepted_as_a_mailbox(address):
    assert GoogleSettings(mailboxes=[address], calendars=[address]).mailboxes == [address]


@PROPERTY
@given(ANY_TEXT)
def test_a_chart_label_is_literal_text_to_plotly(stage):
    # plotly.js reads <b>, <a href=...> and %{field} in labels and hover templates: none survives
    label = chart_label(stage)
    assert not set(label) & set("<>\"'%") and html.unescape(label) == stage_label(stage)


# ================================================================== end to end: HubSpot and Gmail, both backends

def _plant_hubspot(box) -> dict[str, dict]:
    """Hostile names, amounts and close dates on existing deals, in the emulator's store, where the
    vendor keeps them (HubSpot's amount and dates arrive as strings holding whatever was set), the
    latest history entry changed with them. Returns deal id -> the properties planted."""
    store = box.hubspot.store
    ids = [r[0] for r in store.execute("select id from objects where type = 'deals' and archived = 0 order by id")]
    columns = {"dealname": HOSTILE_NAMES, "amount": [*BAD_AMOUNTS, "", "1200.50"], "closedate": BAD_DATES}
    planted = {}
    for i, deal_id in enumerate(ids[:max(map(len, columns.values()))]):
        row = store.get("deals", deal_id, history=True)
        change = {prop: values[i] for prop, values in columns.items() if i < len(values)}
        row.properties.update(change)
        for prop in ("amount", "closedate"):
            if prop in change and row.history.get(prop):
                row.history[prop][-1]["value"] = change[prop]
        store.save(row)
        planted[str(deal_id)] = {**change, "history": {p for p in ("amount", "closedate")
                                                       if p in change and row.history.get(p)}}
    return planted


def _plant_gmail(box) -> dict:
    """A message whose Subject is 1 MB of mixed text, whose From has a right-to-left display name
    with markup, and whose Date is no date: Gmail passes headers on as the sender wrote them."""
    mailbox = box.org.mailboxes()[0]
    subject = ("Ünïcødé 🚀 שלום '\\ <b>\x00" * 50_000)[:1_000_000]
    message = {"id": "ffff000000000001", "threadId": "ffff000000000001", "labelIds": ["INBOX"],
               "internalDate": wire_datetime(box.now - timedelta(days=1)),
               "historyId": box.google.store.current_history(mailbox) + 1,
               "headers": [{"name": "From", "value": '"שלום <script>" <evil@example.com>'},
                           {"name": "To", "value": mailbox}, {"name": "Subject", "value": subject},
                           {"name": "Date", "value": "yesterday"}, {"name": "Message-ID", "value": "<x'y\\z@h>"}]}
    box.google.store.upsert_messages([(mailbox, message)])
    return {"mailbox": mailbox, "id": message["id"], "subject": subject}


@pytest.fixture(scope="module")
def hostile_world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    planted: dict = {}

    def plant(box) -> None:
        planted["deals"], planted["gmail"] = _plant_hubspot(box), _plant_gmail(box)

    with synced_on_both_backends(tmp, prepare=plant, crm="hubspot", google=True) as synced:
        yield synced, planted, tmp


def _expected_rejections(planted: dict) -> set[tuple]:
    expected = set()
    for deal_id, change in planted["deals"].items():
        for prop, bad in (("amount", BAD_AMOUNTS), ("closedate", BAD_DATES)):
            if change.get(prop) in bad:
                expected.add(("hubspot", "deals", deal_id, prop, change[prop]))
                if prop in change["history"]:
                    expected.add(("hubspot", "deals", deal_id, f"{prop} (history)", change[prop]))
    gmail = planted["gmail"]
    expected.add(("google", "gmail_messages", f"{gmail['mailbox']}:{gmail['id']}", "Date", "yesterday"))
    return expected


@pytest.mark.parametrize("backend", ["duckdb", "postgres"])
def test_hostile_text_round_trips_exactly_into_raw_and_model(hostile_world, backend):
    synced, planted, _ = hostile_world
    warehouse = synced[backend][2]
    raw = {r["id"]: r for r in warehouse.fetch_dicts("select id, dealname from raw_hubspot.deals")}
    model = {r["source_id"]: r for r in warehouse.fetch_dicts(
        "select source_id, name from model.deals where source_system = 'hubspot'")}
    named = {i: c["dealname"] for i, c in planted["deals"].items() if "dealname" in c}
    assert len(named) == len(HOSTILE_NAMES)
    for deal_id, name in named.items():
        assert raw[deal_id]["dealname"] == kept(name), deal_id
        assert model[deal_id]["name"] == kept(name), deal_id
    gmail = planted["gmail"]
    (subject, sender, sent_at, message_id), = warehouse.fetch(
        "select subject, from_address, sent_at, message_id from raw_google.gmail_messages where id = ?",
        [gmail["id"]])
    assert len(subject.encode()) > 1_000_000 and subject == kept(gmail["subject"])
    assert (sender, sent_at, message_id) == ("evil@example.com", None, "<x'y\\z@h>")


@pytest.mark.parametrize("backend", ["duckdb", "postgres"])
def test_a_value_that_does_not_type_is_null_and_reported_naming_the_record(hostile_world, backend):
    synced, planted, _ = hostile_world
    warehouse = synced[backend][2]
    reported = {tuple(r) for r in warehouse.fetch(
        "select vendor, object_type, record_id, field, value from model.rejected_values")}
    assert reported == _expected_rejections(planted)
    deals = {r["source_id"]: r for r in warehouse.fetch_dicts(
        "select source_id, amount_original, close_date from model.deals where source_system = 'hubspot'")}
    raw = {r["id"]: r for r in warehouse.fetch_dicts(
        "select id, amount, rejected_amount, closedate, rejected_closedate from raw_hubspot.deals")}
    for deal_id, change in planted["deals"].items():
        if "amount" in change:
            typed = None if change["amount"] in BAD_AMOUNTS or change["amount"] == "" else float(change["amount"])
            assert raw[deal_id]["amount"] == deals[deal_id]["amount_original"] == typed, change["amount"]
            assert raw[deal_id]["rejected_amount"] == (change["amount"] if change["amount"] in BAD_AMOUNTS else None)
        if "closedate" in change:
            assert raw[deal_id]["closedate"] is None and deals[deal_id]["close_date"] is None
            assert raw[deal_id]["rejected_closedate"] == change["closedate"]
    # typed values never became text: dlt made no variant column (amount__v_text) anywhere
    assert warehouse.fetch("select table_schema, table_name, column_name from information_schema.columns "
                           "where table_schema like 'raw_%' and column_name like '%\\_\\_v\\_%' escape '\\'") == []


def test_the_run_summary_names_each_rejected_value_and_survives_markup_in_data(hostile_world):
    synced, planted, _ = hostile_world
    box, outcome, warehouse, _ = synced["duckdb"]
    out = io.StringIO()
    print_summary(outcome, warehouse, Console(file=out, width=250, color_system=None))
    text = out.getvalue()
    expected = _expected_rejections(planted)
    assert f"warning: {len(expected)} value(s) could not be typed and are NULL in the model" in text
    first = sorted(expected)[0]
    assert f"{first[0]} {first[1]} {first[2]} {first[3]}: {first[4]!r} is not a" in text
    assert len(rejected_lines(warehouse)) == 1 + 5 + 1          # the count, five records, "and N more"


def test_a_corrected_record_is_no_longer_reported(hostile_world):
    synced, planted, tmp = hostile_world
    box, _, warehouse, instance = synced["duckdb"]
    deal_id = next(i for i, c in planted["deals"].items() if c.get("amount") == "$1,200.50")
    box.advance(1)
    store = box.hubspot.store
    row = store.get("deals", int(deal_id), history=True)
    row.properties.update(amount="1200.50", hs_lastmodifieddate=wire_datetime(box.now))
    row.history["amount"].append({"value": "1200.50", "timestamp": wire_datetime(box.now), "sourceType": "CRM_UI"})
    row.updated_at = wire_datetime(box.now)
    store.save(row)
    outcome = run_job(tmp / "duckdb.yaml", instance=instance)
    assert outcome.success, outcome.error
    # Its amount types now; its close date still does not, and HubSpot's history still holds the
    # past amount "$1,200.50": both stay reported, the current amount no longer.
    still_bad = {r[3] for r in _expected_rejections(planted) if r[2] == deal_id and r[3] != "amount"}
    assert still_bad >= {"closedate", "amount (history)"}
    reported = {f for (f,) in warehouse.fetch("select field from model.rejected_values where record_id = ?", [deal_id])}
    assert reported == still_bad
    assert warehouse.fetch("select amount_original from model.deals where source_id = ?", [deal_id]) == [(1200.5,)]


# ================================================================== the report

REPORT_HOSTILE = ["<script>alert('deal')</script>", '"><img src=x onerror=alert(1)>', "</style><b>bold</b>",
                  "{{ 7*7 }} ${7*7} %{y}", "&amp; &lt;b&gt; &#60;", "שלום 🚀 \u202egnp.exe"]


def _hostile_report_warehouse(path: Path) -> Warehouse:
    """The report's contract tables, with hostile deal, account, rep and stage names wherever the
    report shows a name: the stalled-deal table, the team table, and the charts' stage labels."""
    warehouse = contract_warehouse(path)
    statements = []
    for i, text in enumerate(REPORT_HOSTILE):
        statements += [("update model.owners set name = ? where owner_id = ?", [[text, f"own_{i + 1}"]]),
                       ("update metrics.stalled_deals set name = ?, detail = ? where deal_id = ?",
                        [[text, text, f"salesforce:006{i:06d}"]])]
    # A stage outside the ladder, in every chart that labels stages.
    for table in ("pipeline_by_stage", "funnel", "lost_at_stage", "time_in_stage", "pipeline_trend"):
        statements.append((f"update metrics.{table} set stage = ? where stage = 'proposal'", [[REPORT_HOSTILE[0]]]))
    warehouse.run_in_transaction(statements)
    return warehouse


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        (self.scripts if self._in_script else self.text).append(data)


def _elements(page: str) -> _Elements:
    parser = _Elements()
    parser.feed(page)
    return parser


def _assert_nothing_injected(parser: _Elements, scripts: int) -> None:
    assert not [t for t, _ in parser.tags if t in ("img", "b", "iframe", "object")]
    assert not [(t, a) for t, attrs in parser.tags for a in attrs if a.startswith("on")]
    assert sum(t == "style" for t, _ in parser.tags) == 1
    assert sum(t == "script" for t, _ in parser.tags) == scripts


def test_the_report_shows_hostile_names_as_literal_text_and_injects_nothing(tmp_path):
    page = build_report(_hostile_report_warehouse(tmp_path / "warehouse.duckdb"))
    parser = _elements(page)
    charts = page.count('class="plotly-graph-div"')
    assert charts >= 5
    _assert_nothing_injected(parser, scripts=charts + 2)      # plotly.js, each chart's, the table sorter
    text = "".join(parser.text)
    for hostile in REPORT_HOSTILE:
        assert hostile in text, hostile                       # shown, and shown as written
    for script in parser.scripts:
        # inside a chart's JSON no markup survives: plotly writes < as \u003c, our labels are escaped
        assert "<script" not in script.lower() and "<img" not in script and "</style" not in script
    decoded = re.sub(r"\\u([0-9a-f]{4})", lambda m: chr(int(m.group(1), 16)), "".join(parser.scripts))
    assert chart_label(REPORT_HOSTILE[0]) in decoded           # the label plotly gets is escaped for it


def test_in_a_browser_the_hostile_report_runs_no_injected_script_and_draws_its_charts(tmp_path):
    out = write_report(_hostile_report_warehouse(tmp_path / "warehouse.duckdb"), tmp_path / "report.html")
    census = _render(out, tmp_path)
    assert not census.console, census.console                 # an alert() or a script error would be logged
    assert census.charts and all(svgs >= 1 and marks > 0 for svgs, marks in census.charts.values())
    dom, _ = dump_dom(out, tmp_path)
    parser = _elements(dom)
    assert not [t for t, _ in parser.tags if t in ("img", "iframe", "object")]
    assert not [(t, a) for t, attrs in parser.tags for a in attrs if a.startswith("on")]
    drawn = "".join(parser.text)
    for hostile in REPORT_HOSTILE:
        assert hostile in drawn, hostile                      # tables and charts show it as text


# ================================================================== end to end: Salesforce

# Salesforce names hold up to 120 characters of any text (it keeps no NUL, nor half a character).
SALESFORCE_NAMES = [n for n in HOSTILE_NAMES if len(n) <= 120 and n == kept(n)]


def test_hostile_salesforce_names_sync_exactly_and_are_found_by_escaped_soql(tmp_path, monkeypatch):
    with running_sandbox(tmp_path, monkeypatch) as box, dg.DagsterInstance.ephemeral() as instance:
        store = box.salesforce.store
        ids = _first_ids(box, "Opportunity", len(SALESFORCE_NAMES))
        accounts = _first_ids(box, "Account", len(SALESFORCE_NAMES))
        for opportunity, account, name in zip(ids, accounts, SALESFORCE_NAMES):
            store.update("Opportunity", opportunity, {"Name": name})
            store.update("Account", account, {"Name": name})
        config = unthrottled_config(box, tmp_path / "dealsync.yaml", tmp_path / "warehouse.duckdb")
        outcome = run_job(config, instance=instance)
        assert outcome.success, outcome.error

        warehouse = Warehouse(load_config(config).warehouse)
        deals = dict(warehouse.fetch("select source_id, name from model.deals where source_system = 'salesforce'"))
        raw_accounts = dict(warehouse.fetch("select id, name from raw_salesforce.accounts"))
        for opportunity, account, name in zip(ids, accounts, SALESFORCE_NAMES):
            assert deals[opportunity] == name and raw_accounts[account] == name

        sf = connect(load_config(config).sources.salesforce)
        for opportunity, name in zip(ids, SALESFORCE_NAMES):
            for where in (f"Name = {string_literal(name)}", f"Name LIKE {like_literal(name)}"):
                found = sf.query_all(f"SELECT Id, Name FROM Opportunity WHERE {where}")["records"]
                assert [(r["Id"], r["Name"]) for r in found] == [(opportunity, name)], where


def _first_ids(box, sobject: str, n: int) -> list[str]:
    page = box.salesforce.store.query(f"SELECT Id FROM {sobject} ORDER BY Id LIMIT {n}", now=box.now)
    return [r["Id"] for r in page.records]
