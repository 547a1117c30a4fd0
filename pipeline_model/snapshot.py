"""The daily pipeline snapshot: one row per deal per day in `history.daily_pipeline_snapshot`.

A day's rows are the deals open at the end of that day, plus the deals that closed during it,
with their stage, owner, amount, probability and close date as they stood at the end of the day.
The table follows from the CRMs' data alone, so any order of runs over the same source data gives
the same rows: a warehouse synced every day and one synced once today agree. (Earlier releases
kept the rows each run observed and filled the days no run saw with today's amount and close
date: two warehouses of the same CRMs disagreed on every day their runs did not share.)

- Every day before the as-of day (`metrics.as_of`'s date) is rebuilt from the CRMs' history,
  `model.deal_versions`: each deal's version in force at the end of the day (`reconstructed`
  true). Stage, amount and close date come from both CRMs' history; probability from
  Salesforce's, and from the stage's in HubSpot; the owner from HubSpot's. Salesforce's
  OpportunityHistory records no owner, so a Salesforce deal carries its current owner on every
  day (OpportunityFieldHistory could tell; it is not pulled), and a new owner rewrites them all.
- The as-of day is not over: its rows are the deals as they stand at as_of, from `model.deals`
  (`reconstructed` false). A later run rewrites that day from history as it ended: a mid-day
  observation never outlives its day, since a fresh sync could not reproduce it.
- The days covered start where the first run put them (`metrics.snapshot_backfill_days` before
  its as-of day) and run to the latest as-of day.

Rebuilding every past day on every run would cost the first run's backfill each time. Past days
can only change where history did, so a run rewrites the days from the previous as-of day on for
all deals, and all days of the deals whose versions changed since the last run (a new version, a
deletion, a restore, a currency rate or stage mapping that changes their rows). It finds those by
a fingerprint of each deal's versions, kept in `history.daily_pipeline_snapshot_deals`.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from pipeline_model.warehouse import Warehouse

TABLE = "history.daily_pipeline_snapshot"
FINGERPRINTS = "history.daily_pipeline_snapshot_deals"
# What record_snapshot reads: the asset that runs it must come after all of these.
READS = ("model.deals", "model.deal_versions", "model.metric_settings")
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

# Each version covers the days it was in force at the end of the day (a closed stage only the day
# the deal entered it), clipped to the gap; expanding versions to their days is linear in the rows
# written, where joining days to versions on a date range is not.
_RECONSTRUCTED = f"""
insert into {TABLE} ({_COLUMNS})
select v.first_day + cast(g.i as integer), v.deal_id, v.source_system, v.owner_id, v.stage, v.source_stage,
       v.amount, v.probability, v.close_date, v.is_closed, v.is_won, true
from (
    select v.*, greatest(cast(v.valid_from as date), gap.gap_start) as first_day,
           least(gap.gap_end,
                 coalesce(cast(v.valid_to as date) - 1, gap.gap_end),
                 case when v.is_closed then cast(v.stage_entered_at as date) else gap.gap_end end) as last_day
    from model.deal_versions v
    cross join (select cast(? as date) as gap_start, cast(? as date) as gap_end) gap
    -- The versions in force at the end of some day of the gap, as timestamp bounds: casting every
    -- version's timestamps to dates costs more than the rest; and a closed version only if the
    -- deal closed during the gap (else the million current versions of long-closed deals pass).
    where v.valid_from < cast(? as timestamp with time zone)
      and (v.valid_to is null or v.valid_to >= cast(? as timestamp with time zone))
      and (not v.is_closed or v.stage_entered_at >= cast(? as timestamp with time zone))
      {{deals}}
) v
cross join lateral generate_series(0, v.last_day - v.first_day) as g(i)
"""

# Everything a deal's rows are made of is in its versions: equal fingerprints, equal rows. A
# deal without versions has no rows before the days every run rewrites, so needs none.
_VERSION = ("v.source_id, v.valid_from, v.valid_to, v.source_stage, v.stage, v.stage_entered_at, v.is_closed, "
            "v.is_won, v.owner_id, v.amount, v.probability, v.close_date")
_FINGERPRINT = """
create temporary table snapshot_fingerprints as
select v.deal_id, {fingerprint} as fingerprint
from model.deal_versions v
group by v.deal_id
"""
# At a million deals, md5 over each deal's versions as text costs DuckDB about 25 s a run, the sum
# of its own row hashes 0.3 s (no order needed; a miss takes a 64-bit collision; a DuckDB release
# that hashes differently costs one full rebuild).
_DUCKDB_FINGERPRINT = f"cast(sum(hash({_VERSION})) as varchar)"
_POSTGRES_FINGERPRINT = f"md5(string_agg(cast(row({_VERSION}) as text), ';' order by v.valid_from, v.source_id))"


# New, changed and vanished (deleted, archived, merged away) deals.
_CHANGED = f"""
create temporary table snapshot_changed as
select coalesce(f.deal_id, s.deal_id) as deal_id
from snapshot_fingerprints f
full join {FINGERPRINTS} s on s.deal_id = f.deal_id
where f.fingerprint is distinct from s.fingerprint
"""

_CHANGED_ONLY = "and v.deal_id in (select deal_id from snapshot_changed)"


def record_snapshot(warehouse: Warehouse, backfill_days: int) -> dict[str, int]:
    """Record the as-of day, rebuild the past days that can have changed; returns row counts."""
    today = warehouse.fetch("select cast(as_of as date) from model.metric_settings")[0][0]
    first, previous = warehouse.fetch(f"select min(snapshot_date), max(snapshot_date) from {TABLE} "
                                      "where snapshot_date < ?", [today])[0]
    start = first or today - timedelta(days=backfill_days)
    settled = previous or start         # days before this one stay unless their deal changed
    before = _count(warehouse)
    warehouse.run_in_transaction(_statements(warehouse, start, settled, today))
    today_rows = warehouse.fetch(f"select count(*) from {TABLE} where snapshot_date = ?", [today])[0][0]
    return {"rows": _count(warehouse), "added": _count(warehouse) - before, "today": today_rows,
            "reconstructed_days": (today - start).days, "rebuilt_days": (today - settled).days}


_DROP_TEMPORARY = ["drop table if exists snapshot_changed", "drop table if exists snapshot_fingerprints"]


def _statements(warehouse: Warehouse, start: date, settled: date, today: date) -> list:
    """One transaction: readers see the snapshot before the run or after it, never between (and
    the temporary tables live on its one connection: a DuckDB cursor is a connection of its own)."""
    fingerprint = _POSTGRES_FINGERPRINT if warehouse.is_postgres else _DUCKDB_FINGERPRINT
    statements = [*_DROP_TEMPORARY, _FINGERPRINT.format(fingerprint=fingerprint), _CHANGED,
                  # Later days too: a run with an earlier as_of leaves nothing it could not know.
                  (f"delete from {TABLE} where snapshot_date >= ?", [[settled]]),
                  (f"delete from {TABLE} where snapshot_date < ? "
                   "and deal_id in (select deal_id from snapshot_changed)", [[settled]])]
    if settled > start:
        statements.append(_reconstruct(start, settled - timedelta(days=1), _CHANGED_ONLY))
    if today > settled:
        statements.append(_reconstruct(settled, today - timedelta(days=1), ""))
    return [*statements, (_OBSERVED, [[today, today]]),
            f"delete from {FINGERPRINTS} where deal_id in (select deal_id from snapshot_changed)",
            f"insert into {FINGERPRINTS} (deal_id, fingerprint) select f.deal_id, f.fingerprint "
            "from snapshot_fingerprints f where f.deal_id in (select deal_id from snapshot_changed)",
            *_DROP_TEMPORARY]


def _reconstruct(first: date, last: date, deals: str) -> tuple[str, list]:
    """The days first..last from the versions (of the `deals` filter's deals only)."""
    return (_RECONSTRUCTED.format(deals=deals),
            [[first, last, _midnight(last + timedelta(days=1)), _midnight(first + timedelta(days=1)),
              _midnight(first)]])


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=timezone.utc)


def _count(warehouse: Warehouse) -> int:
    return warehouse.fetch(f"select count(*) from {TABLE}")[0][0]
