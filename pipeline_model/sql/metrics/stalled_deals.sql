-- Open deals that need attention, one row per deal and reason, as of model.metric_settings.as_of:
--   stuck_in_stage     in its current stage longer than that stage's historical percentile
--                      (metrics.stalled_percentile, default p75) of completed spells
--   close_date_passed  its close date is before the as-of date and it is still open
--   close_date_slipped its close date was moved later at least once (model.close_date_changes:
--                      a recorded close date later than the one recorded before it)
with settings as (
    select as_of, stalled_percentile from model.metric_settings
),
sorted_durations as (
    select h.stage, array_agg(h.duration_days order by h.duration_days) as durations, count(*) as n
    from model.deal_stage_history h
    where not h.is_current and h.stage is not null
    group by h.stage
),
thresholds as (
    -- percentile_cont by hand: the percentile is configuration, and DuckDB takes only a constant.
    -- x is the 0-based position of the percentile in the sorted durations.
    select stage,
           durations[cast(floor(x) as integer) + 1]
             + (x - floor(x)) * (durations[cast(ceil(x) as integer) + 1] - durations[cast(floor(x) as integer) + 1])
               as limit_days
    from (select d.stage, d.durations, s.stalled_percentile * (d.n - 1) as x
          from sorted_durations d cross join settings s) p
),
open_deals as (
    select d.*, cur.entered_at,
           cast(extract(epoch from ((select as_of from settings) - cur.entered_at)) as double precision) / 86400.0
               as days_in_stage
    from model.deals d
    join model.deal_stage_history cur on cur.deal_id = d.deal_id and cur.is_current
    where not d.is_closed
),
close_moves as (
    select c.deal_id, c.close_date,
           lag(c.close_date) over (partition by c.deal_id order by c.changed_at, c.source_id) as previous_close_date,
           row_number() over (partition by c.deal_id order by c.changed_at, c.source_id) as n
    from model.close_date_changes c
    join open_deals o on o.deal_id = c.deal_id
),
slips as (
    select deal_id,
           sum(case when close_date > previous_close_date then 1 else 0 end) as moved_out,
           sum(case when close_date < previous_close_date then 1 else 0 end) as moved_in,
           min(case when n = 1 then close_date end) as first_close_date
    from close_moves
    group by deal_id
),
reasons as (
    select o.deal_id, 'stuck_in_stage' as reason, t.limit_days,
           'in ' || o.stage || ' for ' || cast(cast(floor(o.days_in_stage) as integer) as varchar)
               || ' days; p' || cast(cast(round((select stalled_percentile from settings) * 100) as integer) as varchar)
               || ' is ' || cast(cast(round(t.limit_days) as integer) as varchar) || ' days' as detail
    from open_deals o join thresholds t on t.stage = o.stage
    where o.days_in_stage > t.limit_days
    union all
    select o.deal_id, 'close_date_passed', t.limit_days,
           'close date ' || cast(o.close_date as varchar) || ' has passed'
    from open_deals o left join thresholds t on t.stage = o.stage
    where o.close_date < cast((select as_of from settings) as date)
    union all
    select o.deal_id, 'close_date_slipped', t.limit_days,
           'close date moved out ' || cast(s.moved_out as varchar)
               || case when s.moved_out = 1 then ' time' else ' times' end
               || case when s.moved_in = 0 then ''
                       else ' and in ' || cast(s.moved_in as varchar)
                            || case when s.moved_in = 1 then ' time' else ' times' end end
               || ', from ' || cast(s.first_close_date as varchar)
               || ' to ' || coalesce(cast(o.close_date as varchar), 'none')
    from open_deals o
    join slips s on s.deal_id = o.deal_id
    left join thresholds t on t.stage = o.stage
    where s.moved_out > 0
)
select
    o.deal_id                                               as deal_id,
    o.name                                                  as name,
    o.owner_id                                              as owner_id,
    w.name                                                  as owner_name,
    o.source_system                                         as source_system,
    o.stage                                                 as stage,
    o.amount                                                as amount,
    o.days_in_stage                                         as days_in_stage,
    r.limit_days                                            as stage_limit_days,
    o.close_date                                            as close_date,
    r.reason                                                as reason,
    r.detail                                                as detail
from reasons r
join open_deals o on o.deal_id = r.deal_id
left join model.owners w on w.owner_id = o.owner_id
