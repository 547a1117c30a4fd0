"""Sync, advance simulated time, sync again: the warehouse follows exactly, and the second
sync asks Salesforce only for what changed (counted in the emulator's request log)."""

from __future__ import annotations

import requests
from simple_salesforce import Salesforce

from jobs.config import load_config
from jobs.runner import run_job
from pipeline_model.warehouse import Warehouse

ADVANCE_DAYS = 21


def _opportunities(org, as_of) -> dict[str, dict]:
    return {r["Id"]: r for obj, r in org.records(as_of) if obj == "Opportunity"}


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


def _query_log(emulator, sobject):
    return [r for r in emulator.request_log if r.kind in ("query", "queryMore") and r.sobject == sobject]


def test_second_sync_reads_only_changes_and_reflects_them(sandbox, sandbox_config, instance):
    org, emulator = sandbox.org, sandbox.salesforce
    before_at = emulator.now
    before = _opportunities(org, before_at)
    assert run_job(sandbox_config, instance=instance).success

    sandbox.advance(ADVANCE_DAYS)
    after_at = emulator.now
    after = _opportunities(org, after_at)
    for victim in _delete_two_deals_like_a_rep(sandbox, after):
        after[victim] = {**after[victim], "IsDeleted": True, "SystemModstamp": after_at}
    new = set(after) - set(before)
    deleted = {i for i, r in after.items() if r["IsDeleted"] and not before.get(i, {}).get("IsDeleted", False)}
    changed = {i for i in set(after) & set(before) if after[i] != before[i]} - deleted
    assert new and deleted and changed, "the advance should create, change and delete opportunities"

    emulator.clear_log()
    outcome = run_job(sandbox_config, instance=instance)
    assert outcome.success, outcome.error

    # What a correct ">= last cursor (to the second)" query returns: the changes plus the
    # rows sharing the previous cursor's second, which dlt drops as already seen.
    cursor = max(r["SystemModstamp"] for r in before.values()).replace(microsecond=0)
    expected_served = sum(1 for r in after.values() if r["SystemModstamp"] >= cursor)
    queries = _query_log(emulator, "Opportunity")
    assert len(queries) == 1 and queries[0].include_deleted
    assert queries[0].records_returned == expected_served
    assert expected_served - len(new | changed | deleted) <= 3
    assert outcome.rows_by_asset["raw_salesforce/opportunities"] == len(new | changed | deleted)

    warehouse = Warehouse(load_config(sandbox_config).warehouse)
    live = {i: r for i, r in after.items() if not r["IsDeleted"]}
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
    assert warehouse.fetch("select count(*), sum(amount) from model.deals") == before
    assert warehouse.fetch("select count(*) from (select id from raw_salesforce.opportunities "
                           "group by id having count(*) > 1) dup")[0][0] == 0
