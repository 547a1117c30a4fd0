"""Sync, advance simulated time, sync again: the warehouse follows exactly, and the second
sync asks Salesforce only for what changed (counted in the emulator's request log)."""

from __future__ import annotations

from collections import defaultdict

import requests
from simple_salesforce import Salesforce

from connectors.salesforce.streams import STREAMS
from jobs.config import load_config
from jobs.runner import run_job
from pipeline_model.warehouse import Warehouse

ADVANCE_DAYS = 21


def _by_object(org, as_of) -> dict[str, dict[str, dict]]:
    out: dict[str, dict[str, dict]] = defaultdict(dict)
    for obj, record in org.records(as_of):
        out[obj][record["Id"]] = record
    return out


def _delete_two_deals_like_a_rep(sandbox, records) -> list[str]:
    """Delete two open deals through the Salesforce API, as a rep would in the CRM."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sandbox.ca.ca_path)
    sf = Salesforce(instance_url=sandbox.salesforce.url, session_id=sandbox.salesforce.issue_session(),
                    session=session)
    victims = sorted(i for i, r in records.items() if not r["IsDeleted"] and not r["IsClosed"])[:2]
    for victim in victims:
        sf.Opportunity.delete(victim)
    return victims


def test_second_sync_reads_only_changes_and_reflects_them(sandbox, sandbox_config, instance):
    org, emulator = sandbox.org, sandbox.salesforce
    before = _by_object(org, emulator.now)
    assert run_job(sandbox_config, instance=instance).success

    sandbox.advance(ADVANCE_DAYS)
    after = _by_object(org, emulator.now)
    opps_before, opps_after = before["Opportunity"], after["Opportunity"]
    for victim in _delete_two_deals_like_a_rep(sandbox, opps_after):
        opps_after[victim] = {**opps_after[victim], "IsDeleted": True, "SystemModstamp": emulator.now}
    new = set(opps_after) - set(opps_before)
    deleted = {i for i, r in opps_after.items() if r["IsDeleted"] and not opps_before.get(i, {}).get("IsDeleted")}
    changed = {i for i in set(opps_after) & set(opps_before) if opps_after[i] != opps_before[i]} - deleted
    assert new and deleted and changed, "the advance should create, change and delete opportunities"

    emulator.clear_log()
    outcome = run_job(sandbox_config, instance=instance)
    assert outcome.success, outcome.error

    for stream in STREAMS:
        old, now = before[stream.sobject], after[stream.sobject]
        last = max(r["SystemModstamp"] for r in old.values())
        # A correct ">= cursor (to the second)" query returns the changes plus the few rows
        # sharing the cursor's second, which dlt recognises as already loaded and drops.
        served = [r for r in now.values() if r["SystemModstamp"] >= last.replace(microsecond=0)
                  and (stream.tracks_deletes or not r.get("IsDeleted"))]
        changes = [r for r in now.values() if r["SystemModstamp"] > last]
        queries = [r for r in emulator.request_log if r.kind == "query" and r.sobject == stream.sobject]
        assert len(queries) == 1 and queries[0].include_deleted == stream.tracks_deletes, stream.name
        assert queries[0].records_returned == len(served), stream.name
        assert outcome.rows_by_asset[f"raw_salesforce/{stream.name}"] == len(changes), stream.name
    assert outcome.rows_by_asset["raw_salesforce/opportunities"] == len(new | changed | deleted)

    warehouse = Warehouse(load_config(sandbox_config).warehouse)
    live = {i: r for i, r in opps_after.items() if not r["IsDeleted"]}
    rows = {r["source_id"]: r for r in warehouse.fetch_dicts("select * from model.deals")}
    assert set(rows) == set(live)
    for i, r in live.items():
        got = rows[i]
        assert (got["source_stage"], got["amount"], got["close_date"], got["is_closed"]) == \
            (r["StageName"], r["Amount"], r["CloseDate"], r["IsClosed"]), i
    raw_deleted = {i for (i,) in warehouse.fetch("select id from raw_salesforce.opportunities where is_deleted")}
    assert deleted <= raw_deleted


def test_rerun_without_changes_lands_nothing_new(sandbox, sandbox_config, instance):
    assert run_job(sandbox_config, instance=instance).success
    warehouse = Warehouse(load_config(sandbox_config).warehouse)
    before = warehouse.fetch("select count(*), sum(amount) from model.deals")
    outcome = run_job(sandbox_config, instance=instance)
    assert outcome.success
    assert all(rows == 0 for asset, rows in outcome.rows_by_asset.items() if asset.startswith("raw_")), \
        outcome.rows_by_asset
    assert warehouse.fetch("select count(*), sum(amount) from model.deals") == before
    assert warehouse.fetch("select count(*) from (select id from raw_salesforce.opportunities "
                           "group by id having count(*) > 1) dup")[0][0] == 0
