-- Days deals spent in each open stage, over completed spells (spells the deal has left): mean,
-- median and 75th percentile. The current spell of an open deal is not yet a duration. Per
-- slice: the org, and each owner, manager, CRM, pipeline and period the spell ended in with
-- completed spells; every slice lists every open stage (no spells: 0 and NULL durations).
with spells as (
    select h.stage, h.duration_days, d.owner_id, o.manager_id, d.source_system, d.pipeline,
           cast(date_trunc((select period from model.metric_settings), h.exited_at) as date) as period_start
    from model.deal_stage_history h
    join model.stages st on st.stage = h.stage and not st.is_closed
    join model.deals d on d.deal_id = h.deal_id
    left join model.owners o on o.owner_id = d.owner_id
    where not h.is_current
),
stats as (
    select
        case when grouping(owner_id) = 0 then 'owner'
             when grouping(manager_id) = 0 then 'manager'
             when grouping(source_system) = 0 then 'source_system'
             when grouping(pipeline) = 0 then 'pipeline'
             when grouping(period_start) = 0 then 'period'
             else 'org' end                                 as slice_by,
        -- the attribute grouped on: the others are NULL in its grouping set
        coalesce(owner_id, manager_id, source_system, pipeline, cast(period_start as varchar)) as slice_value,
        stage,
        count(duration_days)                                as completed_spells,
        avg(duration_days)                                  as avg_days_in_stage,
        percentile_cont(0.5) within group (order by duration_days)  as median_days_in_stage,
        percentile_cont(0.75) within group (order by duration_days) as p75_days_in_stage
    from spells
    group by stage, grouping sets ((), (owner_id), (manager_id), (source_system), (pipeline), (period_start))
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
