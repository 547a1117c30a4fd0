"""The daily pipeline snapshot: one row per deal per day in `history.daily_pipeline_snapshot`.

CRMs keep a deal's stage history but not what the whole pipeline looked like on a given day,
so each run records today (the metrics' as-of date): every open deal, plus the deals that
closed that day, with their stage, amount and probability. Rows for past days are never
rewritten. Days no run recorded (the first run, or a scheduler that was down) are filled from
stage history and marked `reconstructed`: stage as of the end of that day, today's amount,
and the CRM's probability for that stage.
"""

from __future__ import annotations

from datetime import date, timedelta

from pipeline_model.warehouse import Warehouse

TABLE = "history.daily_pipeline_snapshot"
_COLUMNS = ("snapshot_date, deal_id, source_system, owner_id, stage, source_stage, amount, probability, "
            "close_date, is_closed, is_won, reconstructed")

# A deal is in a day's snapshot when it was open at the end of the day or closed during it.
_OBSERVED = f"""
insert into {TABLE} ({_COLUMNS})
select cast(? as date), d.deal_id, d.source_system, d.owner_id, d.stage, d.source_stage, d.amount,
       d.probability, d.close_date, d.is_closed, d.is_won, false
from model.deals d
where not d.is_closed or cast(d.closed_at as date) = cast(? as date)
"""

# Each stage spell covers the days it was the stage at the end of the day (a closed stage only its
# first day), clipped to the gap; expanding spells to their days is linear in the rows written,
# where joining days to spells on a date range is not.
_RECONSTRUCTED = f"""
insert into {TABLE} ({_COLUMNS})
select s.first_day + cast(g.i as integer), d.deal_id, d.source_system, d.owner_id, s.stage, s.source_stage,
       d.amount, cs.crm_probability, d.close_date, s.is_closed, s.is_won, true
from (
    select h.deal_id, h.source_system, h.stage, h.source_stage,
           coalesce(st.is_closed, false) as is_closed, coalesce(st.is_won, false) as is_won,
           greatest(cast(h.entered_at as date), gap.gap_start) as first_day,
           least(gap.gap_end,
                 coalesce(cast(h.exited_at as date) - 1, gap.gap_end),
                 case when coalesce(st.is_closed, false) then cast(h.entered_at as date) else gap.gap_end end) as last_day
    from model.deal_stage_history h
    cross join (select cast(? as date) as gap_start, cast(? as date) as gap_end) gap
    left join model.stages st on st.stage = h.stage
    where cast(h.entered_at as date) <= gap.gap_end
      and (h.exited_at is null or cast(h.exited_at as date) > gap.gap_start)
) s
cross join lateral generate_series(0, s.last_day - s.first_day) as g(i)
join model.deals d on d.deal_id = s.deal_id
left join model.crm_stages cs on cs.source_system = s.source_system and cs.source_stage = s.source_stage
     and coalesce(cs.pipeline, '') = coalesce(d.pipeline, '')
"""


def record_snapshot(warehouse: Warehouse, backfill_days: int) -> dict[str, int]:
    """Record today's snapshot and reconstruct the days since the last one; returns row counts."""
    today = warehouse.fetch("select cast(as_of as date) from model.metric_settings")[0][0]
    last = warehouse.fetch(f"select max(snapshot_date) from {TABLE} where snapshot_date < ?", [today])[0][0]
    first_gap = (last + timedelta(days=1)) if last else today - timedelta(days=backfill_days)
    gap_days = (today - first_gap).days
    statements = [(f"delete from {TABLE} where snapshot_date = ?", [[today]]),
                  (_OBSERVED, [[today, today]])]
    if gap_days > 0:
        statements.insert(0, (_RECONSTRUCTED, [[first_gap, today - timedelta(days=1)]]))
    before = _count(warehouse)
    warehouse.run_in_transaction(statements)
    today_rows = warehouse.fetch(f"select count(*) from {TABLE} where snapshot_date = ?", [today])[0][0]
    return {"rows": _count(warehouse), "added": _count(warehouse) - before, "today": today_rows,
            "reconstructed_days": max(gap_days, 0)}


def _count(warehouse: Warehouse) -> int:
    return warehouse.fetch(f"select count(*) from {TABLE}")[0][0]
