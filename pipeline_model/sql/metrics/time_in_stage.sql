-- Days deals spent in each open stage, over completed spells (spells the deal has left): mean,
-- median and 75th percentile. The current spell of an open deal is not yet a duration. Per
-- slice: the org, and each owner, manager, CRM, pipeline and period the spell ended in with
-- completed spells; every slice lists every open stage (no spells: 0 and NULL durations).
with spells as (
    select h.deal_id, h.stage, h.duration_days, h.exited_at
    from model.deal_stage_history h
    join model.stages st on st.stage = h.stage and not st.is_closed
    join model.deals d on d.deal_id = h.deal_id
    where not h.is_current
),
sliced as (
    select s.slice_by, s.slice_value, p.stage, p.duration_days
    from spells p
    join model.deal_slices s on s.deal_id = p.deal_id and s.period_of is null
    union all
    -- a spell's period is the one it ended in: a duration is known once the spell ends
    select 'period', cast(cast(date_trunc((select period from model.metric_settings), p.exited_at) as date) as varchar),
           p.stage, p.duration_days
    from spells p
),
stats as (
    select slice_by, slice_value, stage,
           count(duration_days)                             as completed_spells,
           avg(duration_days)                               as avg_days_in_stage,
           percentile_cont(0.5) within group (order by duration_days)  as median_days_in_stage,
           percentile_cont(0.75) within group (order by duration_days) as p75_days_in_stage
    from sliced
    group by slice_by, slice_value, stage
),
slices as (
    select distinct slice_by, slice_value from stats
    union
    select 'org', cast(null as varchar)
)
select
    sl.slice_by                                             as slice_by,
    sl.slice_value                                          as slice_value,
    st.stage                                                as stage,
    st.stage_order                                          as stage_order,
    coalesce(c.completed_spells, 0)                         as completed_spells,
    c.avg_days_in_stage                                     as avg_days_in_stage,
    c.median_days_in_stage                                  as median_days_in_stage,
    c.p75_days_in_stage                                     as p75_days_in_stage
from slices sl
cross join model.stages st
left join stats c
       on c.slice_by = sl.slice_by and c.slice_value is not distinct from sl.slice_value and c.stage = st.stage
where not st.is_closed
