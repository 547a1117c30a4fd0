"""History does not depend on the order of runs: a warehouse synced after each of a few
simulated days and one synced once at the end, from the same sandbox, hold the same daily
pipeline snapshot and the same pipeline trend, row for row.

The incremental warehouse recorded its as-of day at three moments in the middle of the
working day (rows that a fresh sync has to rebuild from the CRMs' history), and deals changed
stage, amount and close date in between; between its first two runs someone also deleted a
Salesforce opportunity, archived a HubSpot deal and handed a closed Salesforce opportunity to
another rep (Salesforce keeps no owner history: every past day then carries the new owner). The
fresh one reconstructs every day at once. Its backfill reaches back as far as the incremental
warehouse's first run did, so both cover the same days. And both hold the CRMs' history: on every
past day checked, each open deal has the stage, amount and close date it had at the end of it.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import dagster as dg
import pytest
import requests
import yaml
from simple_salesforce import Salesforce

from jobs.config import load_config
from jobs.runner import run_job
from pipeline_model.snapshot import TABLE as SNAPSHOT_TABLE
from pipeline_model.warehouse import Warehouse
from sandbox.runner import HUBSPOT_CREDENTIALS
from tests.conftest import running_sandbox, unthrottled_config, warehouse_backend, with_warehouse
from tests.truth import canonical_stage

pytestmark = pytest.mark.slow

BACKFILL_DAYS = 60
# Fractions of a day: each run's as-of moment falls inside the business day (13:00-23:00 UTC),
# so later that day deals still change after the run observed them.
ADVANCES = (1.7, 4.0)


def _configure(path, block: dict, as_of: datetime, backfill_days: int) -> None:
    with_warehouse(path, block)
    config = yaml.safe_load(path.read_text())
    config["metrics"].update(as_of=as_of.isoformat(), snapshot_backfill_days=backfill_days)
    path.write_text(yaml.safe_dump(config))


def _run(path, instance) -> Warehouse:
    outcome = run_job(path, instance=instance)
    assert outcome.success, outcome.error
    return Warehouse(load_config(path).warehouse)


def _normalised(value):
    if isinstance(value, float):
        return round(value, 6)          # sums in another order differ in the last bits
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc)
    return value


def _rows(warehouse: Warehouse, table: str) -> set[tuple]:
    rows = [tuple(_normalised(v) for v in row) for row in warehouse.fetch(f"select * from {table}")]
    assert len(rows) == len(set(rows)), f"{table} holds duplicate rows"
    return set(rows)


def _differences(incremental: Warehouse, fresh: Warehouse, table: str) -> tuple[int, list]:
    a, b = _rows(incremental, table), _rows(fresh, table)
    differ = sorted(a ^ b, key=repr)
    return len(differ), [("incremental" if r in a else "fresh", r) for r in differ[:6]]


def _edit_the_crms(box, warehouse: Warehouse) -> dict[str, str]:
    """Delete, archive and reassign deals that closed inside the window (so their past open days
    are in the snapshot), as a user would in each CRM; returns deal id -> what was done."""
    closed = warehouse.fetch(
        "select d.source_system, d.source_id from model.deals d where d.is_closed and d.deal_id in "
        f"(select deal_id from {SNAPSHOT_TABLE} where not is_closed) order by d.source_system, d.source_id")
    salesforce = [i for system, i in closed if system == "salesforce"]
    hubspot = [i for system, i in closed if system == "hubspot"]
    heir = warehouse.fetch("select u.id from raw_salesforce.opportunities o cross join raw_salesforce.users u "
                           "where o.id = ? and u.is_active and u.id <> o.owner_id order by u.id limit 1",
                           [salesforce[1]])[0][0]
    session = requests.Session()
    session.trust_env, session.verify = False, str(box.ca.ca_path)
    sf = Salesforce(instance_url=box.salesforce.url, session_id=box.salesforce.issue_session(), session=session)
    sf.Opportunity.delete(salesforce[0])
    sf.Opportunity.update(salesforce[1], {"OwnerId": heir})
    token = HUBSPOT_CREDENTIALS["DEALSYNC_SANDBOX_HUBSPOT_TOKEN"]
    session.delete(f"{box.hubspot.url}/crm/v3/objects/deals/{hubspot[0]}",
                   headers={"Authorization": f"Bearer {token}"}).raise_for_status()
    return {f"salesforce:{salesforce[0]}": "deleted", f"salesforce:{salesforce[1]}": "reassigned",
            f"hubspot:{hubspot[0]}": "archived"}


def _assert_the_edits_show(warehouse: Warehouse, edits: dict[str, str]) -> None:
    """The deleted and archived deals left every day; the reassigned one has its new owner on all."""
    for deal_id, edit in edits.items():
        owners = warehouse.fetch(f"select distinct s.owner_id = d.owner_id from {SNAPSHOT_TABLE} s "
                                 "left join model.deals d on d.deal_id = s.deal_id where s.deal_id = ?", [deal_id])
        assert owners == ([] if edit != "reassigned" else [(True,)]), (deal_id, edit, owners)


def _assert_history_is_the_crms(box, warehouse: Warehouse, days: list[date], edits: dict[str, str]) -> None:
    """Each open deal's stage, amount and close date on a past day are the generator's at the end of it."""
    live = {f"{d.source_system}:{d.id}" for d in box.org.deals(box.now) if not d.deleted} - set(edits)
    for day in days:
        end = datetime.combine(day + timedelta(days=1), time(), tzinfo=timezone.utc) - timedelta(milliseconds=1)
        truth = {f"{d.source_system}:{d.id}": (canonical_stage(d, d.stage), d.amount, d.close_date)
                 for d in box.org.deals(end) if f"{d.source_system}:{d.id}" in live and not d.is_closed}
        got = {deal_id: (stage, amount, close_date) for deal_id, stage, amount, close_date in warehouse.fetch(
            f"select deal_id, stage, amount, close_date from {SNAPSHOT_TABLE} where snapshot_date = ? "
            "and not is_closed", [day]) if deal_id in live}
        assert got == truth, day
        assert len(truth) > 20


@pytest.mark.parametrize("backend", ["duckdb", "postgres"])
def test_incremental_and_fresh_warehouses_hold_the_same_history(tmp_path, monkeypatch, backend):
    with running_sandbox(tmp_path, monkeypatch, crm="both") as box, dg.DagsterInstance.ephemeral() as inst, \
            warehouse_backend(backend, tmp_path / "incremental") as inc_block, \
            warehouse_backend(backend, tmp_path / "fresh") as fresh_block:
        inc_path = unthrottled_config(box, tmp_path / "incremental.yaml", tmp_path / "incremental.duckdb")
        _configure(inc_path, inc_block, box.now, BACKFILL_DAYS)
        incremental, first_day = _run(inc_path, inst), box.now.date()
        edits = {}
        for days in ADVANCES:
            box.advance(days)
            edits = edits or _edit_the_crms(box, incremental)
            _configure(inc_path, inc_block, box.now, BACKFILL_DAYS)
            _run(inc_path, inst)
        fresh_path = unthrottled_config(box, tmp_path / "fresh.yaml", tmp_path / "fresh.duckdb")
        _configure(fresh_path, fresh_block, box.now, BACKFILL_DAYS + (box.now.date() - first_day).days)
        fresh = _run(fresh_path, inst)

        days = incremental.fetch(f"select count(distinct snapshot_date), min(snapshot_date), max(snapshot_date) "
                                 f"from {SNAPSHOT_TABLE}")
        assert days == fresh.fetch(f"select count(distinct snapshot_date), min(snapshot_date), "
                                   f"max(snapshot_date) from {SNAPSHOT_TABLE}")
        for table in (SNAPSHOT_TABLE, "metrics.pipeline_trend"):
            count, sample = _differences(incremental, fresh, table)
            assert count == 0, (table, count, sample)
        _assert_the_edits_show(incremental, edits)
        start = days[0][1]
        _assert_history_is_the_crms(box, incremental, [start, start + timedelta(days=30), first_day,
                                                       box.now.date() - timedelta(days=1)], edits)
