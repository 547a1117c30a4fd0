"""The HubSpot pull through the real hubspot-api-client against the emulator: full, then
incremental through search; past search's 10,000-result cap; through 429 bursts."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest

from jobs.config import load_config
from jobs.runner import run_job
from pipeline_model.warehouse import Warehouse
from tests.conftest import running_sandbox, write_config

LOOKBACK_MINUTES = 10


@pytest.fixture
def hubspot_box(tmp_path, monkeypatch):
    with running_sandbox(tmp_path, monkeypatch, seed=11, crm="hubspot") as box:
        yield box


@pytest.fixture
def hubspot_config(hubspot_box, tmp_path):
    return write_config(hubspot_box, tmp_path, only="hubspot", retry={"attempts": 6, "backoff_seconds": 0.01},
                        lookback_minutes=LOOKBACK_MINUTES, requests_per_second=200, search_requests_per_second=200)


def _truth(org, as_of, kind):
    return {r["id"]: r for k, r in org.hubspot_records(as_of) if k == kind}


def _assert_raw_matches(box, config_path):
    warehouse = Warehouse(load_config(config_path).warehouse)
    for kind, columns in (("deals", ("dealstage", "amount")), ("contacts", ("email",)), ("emails", ("hs_email_subject",))):
        truth = _truth(box.org, box.now, kind)
        live = {i: r for i, r in truth.items() if not r["archived"]}
        archived = {i for (i,) in warehouse.fetch("select id from raw_hubspot.archived_records where object_type = ?", [kind])}
        rows = {r["id"]: r for r in warehouse.fetch_dicts(f"select * from raw_hubspot.{kind}") if r["id"] not in archived}
        assert set(rows) == set(live), kind
        for i, record in live.items():
            for column in columns:
                expected = record["properties"].get(column)
                got = rows[i][column]
                assert (None if expected is None else type(got)(expected) if not isinstance(got, str) else expected) == got, (kind, i, column)
        assert archived == {i for i, r in truth.items() if r["archived"]}, kind


def test_full_then_incremental_sync_through_search(hubspot_box, hubspot_config, instance, caplog):
    emulator = hubspot_box.hubspot
    caplog.set_level(logging.INFO, logger="dealsync.progress")
    first = run_job(hubspot_config, job="sync", instance=instance)
    assert first.success, first.error
    assert {r.kind for r in emulator.request_log if r.object_type == "deals"} >= {"list", "batch_read", "associations"}
    # Each stream's progress counts its records and the pages (requests) it read.
    for stream in ("owners", "companies", "contacts", "deals", "deal_property_history"):
        assert re.search(rf"hubspot {stream}: [1-9][\d,]* records, [1-9][\d,]* pages?", caplog.text), caplog.text
    _assert_raw_matches(hubspot_box, hubspot_config)

    cursor = max(r["updatedAt"] for r in _truth(hubspot_box.org, hubspot_box.now, "deals").values())
    hubspot_box.advance(10)
    emulator.clear_log()
    second = run_job(hubspot_config, job="sync", instance=instance)
    assert second.success, second.error
    _assert_raw_matches(hubspot_box, hubspot_config)

    searches = [r for r in emulator.request_log if r.kind == "search" and r.object_type == "deals"]
    assert searches and not [r for r in emulator.request_log if r.kind == "list" and r.object_type == "deals"
                             and str(r.params.get("archived", "")).lower() != "true"]
    since = cursor - timedelta(minutes=LOOKBACK_MINUTES)
    changed = [r for r in _truth(hubspot_box.org, hubspot_box.now, "deals").values()
               if not r["archived"] and r["updatedAt"] >= since.replace(microsecond=(since.microsecond // 1000) * 1000)]
    assert sum(r.records_returned for r in searches) == len(changed)
    history = Warehouse(load_config(hubspot_config).warehouse).fetch(
        "select count(distinct record_id) from raw_hubspot.deal_property_history")[0][0]
    assert history == len([r for r in _truth(hubspot_box.org, hubspot_box.now, "deals").values() if not r["archived"]])


@pytest.mark.slow
def test_search_past_the_10000_result_cap(hubspot_box, hubspot_config, instance):
    assert run_job(hubspot_config, job="sync", instance=instance).success
    start = hubspot_box.now + timedelta(minutes=1)
    template = next(iter(_truth(hubspot_box.org, hubspot_box.now, "contacts").values()))
    bulk = []
    for n in range(10_450):
        stamp = start + timedelta(seconds=n // 3)   # three records share each second
        bulk.append(("contacts", {**template, "id": str(80_000_000_000 + n), "createdAt": stamp, "updatedAt": stamp,
                                  "history": {}, "mergedObjectIds": [],
                                  "properties": {**template["properties"], "email": f"bulk{n}@bulk.example",
                                                 "hs_object_id": str(80_000_000_000 + n),
                                                 "lastmodifieddate": stamp.isoformat().replace("+00:00", "Z"),
                                                 "hs_lastmodifieddate": stamp.isoformat().replace("+00:00", "Z")}}))
    hubspot_box.hubspot.load(bulk)
    hubspot_box.hubspot.clear_log()
    outcome = run_job(hubspot_config, job="sync", instance=instance)
    assert outcome.success, outcome.error
    warehouse = Warehouse(load_config(hubspot_config).warehouse)
    assert warehouse.fetch("select count(*) from raw_hubspot.contacts where email like 'bulk%'")[0][0] == 10_450
    windows = {str(r.body["filterGroups"][0]["filters"][0]["value"]) for r in hubspot_box.hubspot.request_log
               if r.kind == "search" and r.object_type == "contacts"}
    assert len(windows) >= 2, "crossing the cap needs a second search window"
    assert all(r.status < 400 for r in hubspot_box.hubspot.request_log if r.kind == "search")


def test_429_bursts_are_absorbed(hubspot_box, hubspot_config, instance):
    hubspot_box.hubspot.fail_next(429, times=3, retry_after=0, path_contains="/crm/v3/objects/contacts")
    hubspot_box.hubspot.fail_next(429, times=2, retry_after=0, path_contains="/crm/v3/objects/deals")
    outcome = run_job(hubspot_config, job="sync", instance=instance)
    assert outcome.success, outcome.error
    assert sum(1 for r in hubspot_box.hubspot.request_log if r.status == 429) == 5
    _assert_raw_matches(hubspot_box, hubspot_config)


@pytest.mark.slow
def test_revoked_token_fails_clearly_and_the_next_run_recovers(hubspot_box, hubspot_config, instance, monkeypatch):
    assert run_job(hubspot_config, job="sync", instance=instance).success
    hubspot_box.hubspot.rotate_token("pat-na1-new-token")
    hubspot_box.advance(5)
    failed = run_job(hubspot_config, job="sync", instance=instance)
    assert not failed.success
    assert "hubspot stream" in failed.error and "HTTP 401" in failed.error
    assert "pat-na1" not in failed.error
    monkeypatch.setenv("DEALSYNC_SANDBOX_HUBSPOT_TOKEN", "pat-na1-new-token")
    assert run_job(hubspot_config, job="sync", instance=instance).success
    _assert_raw_matches(hubspot_box, hubspot_config)


def _linked(config_path) -> set[tuple[str, str]]:
    return set(Warehouse(load_config(config_path).warehouse).fetch(
        "select from_id, to_id from raw_hubspot.associations where from_type = 'deals' and to_type = 'contacts'"))


@pytest.mark.slow
def test_a_link_added_without_touching_either_record_is_caught_by_the_sweep(hubspot_box, tmp_path, instance):
    from hubspot import HubSpot

    config = write_config(hubspot_box, tmp_path, only="hubspot", association_sweep_hours=0,
                          requests_per_second=200, search_requests_per_second=200)
    assert run_job(config, job="sync", instance=instance).success
    deals = sorted(i for i, r in _truth(hubspot_box.org, hubspot_box.now, "deals").items() if not r["archived"])
    contacts = sorted(i for i, r in _truth(hubspot_box.org, hubspot_box.now, "contacts").items() if not r["archived"])
    deal, contact = deals[0], next(c for c in contacts if (deals[0], c) not in _linked(config))

    # A rep links the contact to the deal in HubSpot: neither record's modified date moves.
    client = HubSpot(access_token=hubspot_box.credentials["DEALSYNC_SANDBOX_HUBSPOT_TOKEN"],
                     host=hubspot_box.hubspot.url, ssl_ca_cert=str(hubspot_box.ca.ca_path))
    client.crm.associations.v4.basic_api.create_default("deals", deal, "contacts", contact)

    assert run_job(config, job="sync", instance=instance).success
    assert (deal, contact) in _linked(config)
