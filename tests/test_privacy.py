"""The privacy switch (privacy.personal_fields, pipeline_model/privacy.py): no contact name or
email in plaintext anywhere in the model, metrics or history in hash and drop mode, on DuckDB
and PostgreSQL; owners still plaintext; matching exactly as in keep mode; the key never shown.

One sandbox (crm=both, with Gmail and Calendar) feeds every warehouse below, in this order:
  DuckDB:     keep (full chain)  -> hash (metrics job: the keep -> hash switch)
              -> hash under another key (metrics job)
  PostgreSQL: hash (full chain)  -> drop (metrics job: the hash -> drop switch)
Each state is read into memory when it is reached; the tests only compare those.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import defaultdict
from datetime import datetime, timezone

import dagster as dg
from dagster._serdes import serialize_value
import pytest
import yaml

from jobs.config import load_config
from jobs.runner import run_job
from pipeline_model.privacy import PSEUDONYMS
from pipeline_model.warehouse import Warehouse
from tests.conftest import running_sandbox, unthrottled_config, warehouse_backend, with_warehouse

KEY = "test-privacy-key-6d0f3b9e2a71c4"          # test keys: the tests check they never show
OTHER_KEY = "another-test-privacy-key-0c94e8a1"
KEY_ENV = "DEALSYNC_PRIVACY_KEY"
SCANNED_SCHEMAS = ("model", "metrics", "history")
PSEUDONYM_SCHEMA = "raw_privacy"         # the plaintext -> pseudonym maps: raw, by design
# Columns that hold a personal value (or a pseudonym of one) in some mode; the matching outcome
# is every other column. Contact ids are compared by the source records they merge.
PERSONAL_COLUMNS = {
    "model.source_contacts": {"name", "email", "email_key"},
    "model.contacts": {"name", "email"},
    "model.identity_map": {"match_key"},
    "model.activity_records": {"from_address", "to_addresses", "cc_addresses"},
    "model.activity_participants": {"address"},
}
CONTACT_ID_COLUMNS = {"contact_id"}
# Bookkeeping whose value each backend computes its own way (a hash of a deal's history rows).
BACKEND_COLUMNS = {"history.daily_pipeline_snapshot_deals": {"fingerprint"}}


def _state(warehouse: Warehouse) -> dict[str, list[dict]]:
    """Every table and view of the scanned schemas and raw_privacy, row by row."""
    tables = warehouse.fetch(
        "select table_schema, table_name from information_schema.tables where table_schema in (?, ?, ?, ?)",
        [*SCANNED_SCHEMAS, PSEUDONYM_SCHEMA])
    return {f"{s}.{t}": warehouse.fetch_dicts(f"select * from {s}.{t}") for s, t in tables}


def _pseudonyms(state: dict) -> list[dict]:
    return [r for table in PSEUDONYMS.values() for r in state.get(table, [])]


def _mode(config, mode: str, key_env: str = KEY_ENV) -> None:
    raw = yaml.safe_load(config.read_text())
    raw["privacy"] = {"personal_fields": mode, "key_env": key_env}
    config.write_text(yaml.safe_dump(raw))


def _run(config, inst, job="full_chain"):
    outcome = run_job(config, instance=inst, job=job)
    assert outcome.success, outcome.error
    return outcome


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("privacy")
    states: dict[str, dict] = {}
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append
    logging.getLogger().addHandler(handler)
    dealsync_log = logging.getLogger("dealsync")
    level, dealsync_log.level = dealsync_log.level, logging.INFO        # what `dealsync run` logs
    with pytest.MonkeyPatch.context() as mp, running_sandbox(tmp, mp, crm="both", google=True) as box, \
            dg.DagsterInstance.ephemeral() as inst, warehouse_backend("duckdb", tmp / "duckdb") as duck, \
            warehouse_backend("postgres", tmp / "postgres") as pg:
        mp.setenv(KEY_ENV, KEY)
        configs = {}
        for backend, block in (("duckdb", duck), ("postgres", pg)):
            configs[backend] = unthrottled_config(box, tmp / f"{backend}.yaml", tmp / f"{backend}.duckdb")
            with_warehouse(configs[backend], block)
        warehouses = {b: Warehouse(load_config(c).warehouse) for b, c in configs.items()}

        _run(configs["duckdb"], inst)                           # keep: the default
        states["keep"] = _state(warehouses["duckdb"])
        _mode(configs["duckdb"], "hash")
        states["hash_log"] = _run(configs["duckdb"], inst, job="metrics")
        states["hash"] = _state(warehouses["duckdb"])
        _mode(configs["postgres"], "hash")
        _run(configs["postgres"], inst)
        states["hash_pg"] = _state(warehouses["postgres"])
        _mode(configs["postgres"], "drop")
        _run(configs["postgres"], inst, job="metrics")
        states["drop_pg"] = _state(warehouses["postgres"])
        mp.setenv(KEY_ENV, OTHER_KEY)
        _run(configs["duckdb"], inst, job="metrics")
        states["other_key"] = _state(warehouses["duckdb"])
        states["meta"] = warehouses["duckdb"].fetch_dicts("select * from dealsync_meta.privacy")
        states["people"] = _people(box.org)
        states["logs"] = "\n".join(serialize_value(e) for run in inst.get_runs() for e in inst.all_logs(run.run_id))
        logging.getLogger().removeHandler(handler)
        dealsync_log.setLevel(level)
        states["python_logs"] = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in records)
        yield states


def _people(org) -> dict[str, set[str]]:
    """The sandbox org's ground truth: its contacts' emails and full names (lower case), and its
    owners' (a contact who shares a rep's name is left out: the rep's name is meant to show)."""
    owners = {"emails": {u.email.lower() for u in org._users},
              "names": {f"{u.first} {u.last}".lower() for u in org._users}}
    emails, names = set(), set()
    for account in org._accounts_upto(org._horizon):
        for c in org._contacts(account):
            emails.add(c.email.lower())
            names.add(f"{c.first} {c.last}".lower())
    return {"emails": emails - owners["emails"], "names": names - owners["names"], **{f"owner_{k}": v for k, v in owners.items()}}


_EMAIL = re.compile(r"[^\s,;<>\"'()]+@[^\s,;<>\"'()]+")
_WORD = re.compile(r"[^\s,;<>\"()]+")


def _plaintext(state: dict, people: dict) -> dict[str, set]:
    """Where a contact's email or full name shows: 'table.column' -> the values found there."""
    found = defaultdict(set)
    for table, rows in state.items():
        if table.startswith(PSEUDONYM_SCHEMA + "."):
            continue                     # raw_*: the plaintext -> pseudonym map, by design
        for row in rows:
            for column, value in row.items():
                if not isinstance(value, str):
                    continue
                text = value.lower()
                words = _WORD.findall(text)
                hits = {e for e in _EMAIL.findall(text) if e in people["emails"]}
                hits |= {f"{a} {b}" for a, b in zip(words, words[1:]) if f"{a} {b}" in people["names"]}
                if hits:
                    found[f"{table}.{column}"] |= hits
    return found


def _outcome(state: dict) -> dict[str, list]:
    """Each model, metric and history table without its personal columns, contact ids replaced by
    the source records the contact merges: what the matching decided, whatever the mode."""
    records = defaultdict(set)
    for r in state["model.identity_map"]:
        if r["entity"] == "contact":
            records[r["canonical_id"]].add(r["record_id"])
    contact = {cid: "contact of " + ",".join(sorted(rs)) for cid, rs in records.items()}
    out = {}
    for table, rows in state.items():
        if table.startswith(PSEUDONYM_SCHEMA + "."):
            continue
        skip = PERSONAL_COLUMNS.get(table, set()) | BACKEND_COLUMNS.get(table, set())
        out[table] = sorted(repr(sorted(
            (k, contact.get(v, v) if k in CONTACT_ID_COLUMNS or (k == "canonical_id" and row.get("entity") == "contact")
             else _plain(v)) for k, v in row.items() if k not in skip)) for row in rows)
    return out


def _plain(value):
    """As test_end_to_end compares the backends: floats summed in another order differ in the
    last bits, and PostgreSQL returns timestamps in the session's zone object."""
    if isinstance(value, float):
        return float(f"{value:.11g}")
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc)
    return value


def _rows(state: dict, table: str) -> list[str]:
    skip = BACKEND_COLUMNS.get(table, set())
    return sorted(repr(sorted((k, _plain(v)) for k, v in row.items() if k not in skip)) for row in state[table])


def _same_outcome(a: dict, b: dict) -> None:
    oa, ob = _outcome(a), _outcome(b)
    assert set(oa) == set(ob)
    differ = [t for t in oa if oa[t] != ob[t]]
    assert not differ, f"the matching differs in {differ}"


def _column(state, table, column):
    return [r[column] for r in state[table]]


@pytest.mark.slow
def test_keep_mode_holds_the_plaintext_the_scan_looks_for(worlds):
    """The scan below would see the contacts: in keep mode it finds them where the design says."""
    assert not [t for t in worlds["keep"] if t.startswith(PSEUDONYM_SCHEMA + ".")]   # keep: no map kept
    found = _plaintext(worlds["keep"], worlds["people"])
    assert {"model.source_contacts.name", "model.source_contacts.email", "model.contacts.name",
            "model.contacts.email", "model.identity_map.match_key", "model.activity_participants.address",
            "model.activity_records.to_addresses"} <= set(found)
    assert len(found["model.contacts.email"]) > 500


@pytest.mark.slow
@pytest.mark.parametrize("state", ["hash", "hash_pg", "drop_pg", "other_key"])
def test_no_contact_name_or_email_in_plaintext_anywhere(worlds, state):
    """Every text column of every model, metric and history table and view, on both backends."""
    assert _plaintext(worlds[state], worlds["people"]) == {}
    assert sum(len(rows) for rows in worlds[state].values()) > 50_000


@pytest.mark.slow
@pytest.mark.parametrize("state", ["hash", "hash_pg", "drop_pg"])
def test_owners_stay_plaintext(worlds, state):
    s = worlds[state]
    owners = {r["email"] for r in s["model.owners"]}
    assert owners and owners <= worlds["people"]["owner_emails"]
    assert {r["name"].lower() for r in s["model.owners"]} <= worlds["people"]["owner_names"]
    internal = {r["address"] for r in s["model.activity_participants"] if r["owner_id"] is not None}
    assert internal and internal <= owners


@pytest.mark.slow
@pytest.mark.parametrize("state", ["hash", "hash_pg", "drop_pg", "other_key"])
def test_matching_is_the_same_as_on_plaintext(worlds, state):
    """Clusters of identity_map, deal_contacts, participants, deal_activities, every metric:
    equal to keep mode's, but for the pseudonymised columns."""
    _same_outcome(worlds["keep"], worlds[state])
    rules = defaultdict(int)
    for r in worlds[state]["model.deal_activities"]:
        rules[r["match_rule"]] += 1
    assert rules["contact_open_deal"] > 0 and rules["crm_link"] > 0


@pytest.mark.slow
def test_hash_mode_pseudonymises_names_and_emails(worlds):
    s = worlds["hash"]
    emails = _column(s, "model.contacts", "email")
    assert emails and all(e is None or re.fullmatch(r"h:[0-9a-f]{32}@[a-z0-9.-]+", e) or e in worlds["people"]["owner_emails"]
                          for e in emails)
    assert all(n is None or re.fullmatch(r"h:[0-9a-f]{32}", n) for n in _column(s, "model.contacts", "name"))
    # The domain survives: company matching and contacts.email_domain work on it.
    assert all(r["email_domain"] == r["email"].split("@", 1)[1] for r in s["model.contacts"] if r["email"])
    # canonical ids come from the keyed match key, not md5 of the email (a dictionary reverses that).
    keep_ids = {r["contact_id"] for r in worlds["keep"]["model.contacts"]}
    plain_md5 = {"con_" + hashlib.md5(f"contact:{e}".encode()).hexdigest()[:16] for e in worlds["people"]["emails"]}
    assert plain_md5 & keep_ids
    assert not plain_md5 & {r["contact_id"] for r in s["model.contacts"]}


@pytest.mark.slow
def test_drop_mode_nulls_names_and_emails_and_keeps_keyed_match_keys(worlds):
    s = worlds["drop_pg"]
    for table in ("model.contacts", "model.source_contacts"):
        assert all(r["name"] is None and r["email"] is None for r in s[table]), table
    keys = [r["match_key"] for r in s["model.identity_map"] if r["entity"] == "contact" and r["match_key"]]
    assert len(keys) > 500 and all(k.startswith("h:") for k in keys)
    # The same pseudonyms as hash mode under the same key (on the other backend).
    assert set(keys) == {r["match_key"] for r in worlds["hash"]["model.identity_map"]
                         if r["entity"] == "contact" and r["match_key"]}


@pytest.mark.slow
def test_same_key_same_pseudonyms_on_both_backends_another_key_others(worlds):
    def by_value(state):
        return {(r["kind"], r["value"]): r["pseudonym"] for r in _pseudonyms(state)}

    duck, pg, other = by_value(worlds["hash"]), by_value(worlds["hash_pg"]), by_value(worlds["other_key"])
    assert len(duck) > 1000 and duck == pg
    assert other.keys() == duck.keys()
    changed = [k for k in duck if duck[k] != other[k]]
    unchanged = {duck[k] for k in duck if duck[k] == other[k]}
    assert len(changed) > 1000
    assert all(not p.startswith("h:") for p in unchanged)     # only owners' and blank addresses stay
    # Every model table equal row for row across the backends.
    assert set(worlds["hash"]) == set(worlds["hash_pg"])
    for table in worlds["hash"]:
        assert _rows(worlds["hash"], table) == _rows(worlds["hash_pg"], table), table


@pytest.mark.slow
def test_a_key_change_rebuilds_with_the_new_key_only(worlds):
    other = {r["pseudonym"] for r in _pseudonyms(worlds["other_key"])}
    first = {r["pseudonym"] for r in _pseudonyms(worlds["hash"])} - other
    keys = {r["match_key"] for r in worlds["other_key"]["model.identity_map"]}
    assert first and not first & keys
    assert [(m["mode"], len(m["key_fingerprint"])) for m in worlds["meta"]] == [("hash", 16)]


@pytest.mark.slow
def test_the_key_never_reaches_the_warehouse_or_the_event_log(worlds):
    for state in ("hash", "hash_pg", "drop_pg", "other_key"):
        for table, rows in worlds[state].items():
            assert not any(KEY in repr(r) or OTHER_KEY in repr(r) for r in rows), (state, table)
    assert "raw_privacy/contact_pseudonyms" in worlds["logs"]
    assert KEY not in worlds["logs"] and OTHER_KEY not in worlds["logs"]
    assert "pseudonyms (personal_fields: hash)" in worlds["python_logs"]
    assert KEY not in worlds["python_logs"] and OTHER_KEY not in worlds["python_logs"]
    assert "rebuilt from scratch" in worlds["logs"]


def test_a_missing_key_is_a_preflight_error_naming_the_variable(tmp_path, monkeypatch, capsys):
    from jobs.preflight import problems

    path = tmp_path / "dealsync.yaml"
    path.write_text(yaml.safe_dump({"sources": {"hubspot": {"access_token_env": "DEALSYNC_TEST_HS_TOKEN",
                                                             "host": "http://127.0.0.1:9"}},
                                    "privacy": {"personal_fields": "hash", "key_env": "DEALSYNC_TEST_PRIVACY_KEY"}}))
    monkeypatch.setenv("DEALSYNC_TEST_HS_TOKEN", "token")
    monkeypatch.delenv("DEALSYNC_TEST_PRIVACY_KEY", raising=False)
    found = [p for p in problems(load_config(path)) if p.startswith("privacy")]
    assert found == ["privacy: environment variable DEALSYNC_TEST_PRIVACY_KEY (privacy key, for personal_fields: "
                     "hash) not set"]
    outcome = run_job(path, tmp_path / "warehouse.duckdb")
    assert not outcome.success and any("DEALSYNC_TEST_PRIVACY_KEY" in f for f in outcome.failures)
    # Set, it is a secret: not in the checks' output, the config's repr, or an invalid config's error.
    monkeypatch.setenv("DEALSYNC_TEST_PRIVACY_KEY", KEY)
    config = load_config(path)
    assert not [p for p in problems(config) if p.startswith("privacy")]
    assert KEY not in repr(config) and KEY not in str(config.model_dump())
    from jobs.config import privacy_key

    assert KEY not in repr(privacy_key(config)) and KEY not in str(privacy_key(config))
    assert KEY not in capsys.readouterr().out


def test_keep_mode_needs_no_key(tmp_path, monkeypatch):
    from jobs.preflight import problems

    path = tmp_path / "dealsync.yaml"
    path.write_text(yaml.safe_dump({"sources": {"hubspot": {"access_token_env": "DEALSYNC_TEST_HS_TOKEN",
                                                             "host": "http://127.0.0.1:9"}}}))
    monkeypatch.setenv("DEALSYNC_TEST_HS_TOKEN", "token")
    monkeypatch.delenv(KEY_ENV, raising=False)
    assert not [p for p in problems(load_config(path)) if p.startswith("privacy")]


def test_a_value_without_a_pseudonym_comes_out_null_never_plaintext(tmp_path):
    """Fail closed: the wrapped SELECT reads the pseudonym table only, whatever the mode."""
    from pipeline_model.privacy import PERSONAL, substituted, write_pseudonyms
    from pipeline_model.warehouse import WarehouseSettings

    warehouse = Warehouse(WarehouseSettings(path=tmp_path / "w.duckdb"))
    table = PSEUDONYMS["model.source_contacts"]
    write_pseudonyms(warehouse, table, [("email", "known@x.com", "h:00@x.com"), ("name", "Known Person", "h:01")])
    select = ("select * from (values ('Known Person', 'known@x.com', 'known@x.com'), "
              "('Jane Roe', 'jane@y.com', 'jane@y.com')) v(name, email, email_key)")
    columns = ["name", "email", "email_key"]
    personal = PERSONAL["model.source_contacts"]
    rows = sorted(warehouse.fetch(substituted(select, columns, personal, "hash", table)), key=repr)
    assert rows == sorted([("h:01", "h:00@x.com", "h:00@x.com"), (None, None, None)], key=repr)
    assert warehouse.fetch(substituted(select, columns, personal, "drop", table) + " order by 3") == \
        [(None, None, "h:00@x.com"), (None, None, None)]


def test_pseudonyms_keep_domains_owners_and_list_shape():
    from pydantic import SecretStr

    from pipeline_model.privacy import Pseudonymiser

    p = Pseudonymiser(SecretStr(KEY), ["rep@acme.com"])
    q = Pseudonymiser(SecretStr(OTHER_KEY), ["rep@acme.com"])
    jane = p.email("jane@customer.io")
    assert re.fullmatch(r"h:[0-9a-f]{32}@customer\.io", jane) and jane == p.email("jane@customer.io")
    assert jane != p.email("john@customer.io") and jane != q.email("jane@customer.io")
    assert p.email("rep@acme.com") == "rep@acme.com"
    assert p.address(" Rep@Acme.com", "rep@acme.com") == " Rep@Acme.com"      # an owner's: as sent
    assert p.address(" Jane@Customer.io ", "jane@customer.io") == jane
    assert p.address("  ", "") == "  "
    assert p.name("Jane Roe") == p.name(" jane roe ") != q.name("Jane Roe")
    assert p.fingerprint() != q.fingerprint() and KEY not in p.fingerprint()


def test_every_change_of_mode_or_key_and_only_that_drops_model_and_metrics(tmp_path):
    from pydantic import SecretStr

    from pipeline_model.privacy import PrivacySettings, prepare
    from pipeline_model.warehouse import WarehouseSettings

    warehouse = Warehouse(WarehouseSettings(path=tmp_path / "w.duckdb"))

    def step(mode: str, key: str | None) -> bool:
        warehouse.run_in_transaction(["create schema if not exists model", "create schema if not exists metrics",
                                      "create schema if not exists history",
                                      "create table if not exists model.t (x integer)",
                                      "create table if not exists metrics.t (x integer)",
                                      "create table if not exists history.t (x integer)"])
        dropped = prepare(warehouse, PrivacySettings(personal_fields=mode), SecretStr(key) if key else None)
        assert warehouse.table_exists("history", "t")                  # history holds no personal field
        assert warehouse.table_exists("model", "t") is not dropped
        assert warehouse.table_exists("metrics", "t") is not dropped
        return dropped

    assert [step("keep", None), step("keep", None), step("hash", KEY), step("hash", KEY), step("hash", OTHER_KEY),
            step("drop", OTHER_KEY), step("keep", None)] == [False, False, True, False, True, True, True]
    assert KEY not in repr(warehouse.fetch("select * from dealsync_meta.privacy"))
    with pytest.raises(ValueError, match="privacy key"):
        prepare(warehouse, PrivacySettings(personal_fields="hash"), None)


def test_a_run_building_a_new_version_records_the_switch_only_with_its_publish(tmp_path):
    # A PostgreSQL run builds the model as a new version (pipeline_model.writer); until it is
    # published, the published model is the old mode's, and the record must keep saying so.
    from pydantic import SecretStr

    from pipeline_model.privacy import PrivacySettings, prepare
    from pipeline_model.warehouse import WarehouseSettings

    warehouse = Warehouse(WarehouseSettings(path=tmp_path / "w.duckdb"))
    warehouse.run_in_transaction(["create schema model", "create table model.t (x integer)"])
    with_publish: list = []
    assert prepare(warehouse, PrivacySettings(personal_fields="hash"), SecretStr(KEY), with_publish.extend)
    assert warehouse.table_exists("model", "t")                         # the published version stays
    assert not warehouse.table_exists("dealsync_meta", "privacy")       # the run has not published
    warehouse.run_in_transaction(with_publish)                           # ... now it has
    assert not prepare(warehouse, PrivacySettings(personal_fields="hash"), SecretStr(KEY))
