-- Historical stage-to-won rates: of the closed deals that were ever in a stage, the share that
-- was won. The org's rows (slice_by 'org') are what history-weighted pipeline and the forecast
-- weigh open deals by. Per slice: the org, and each owner, manager, CRM, pipeline and period the
-- deal was created in (its cohort) with such deals; every slice lists every open stage.
with reached as (
    select distinct h.deal_id, h.stage
    from model.deal_stage_history h
    join model.stages st on st.stage = h.stage and not st.is_closed
),
closed as (
    select r.stage, d.is_won, d.owner_id, o.manager_id, d.source_system, d.pipeline,
           cast(date_trunc((select period from model.metric_settings), d.created_at) as date) as period_start
    from reached r
    join model.deals d on d.deal_id = r.deal_id and d.is_closed
    left join model.owners o on o.owner_id = d.owner_id
),
counts as (
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
        count(*)                                            as closed_deals,
        count(case when is_won then 1 end)                  as won_deals
    from closed
    group by stage, grouping sets ((), (owner_id), (manager_id), (source_system), (pipeline), (period_start))
),
slices as (
    select distinct slice_by, slice_value from counts
    union
    select 'org', cast(null as varchar)
)
select
    sl.slice_by                                             as slice_by,
    sl.slice_value                                          as slice_value,
    st.stage                                                as stage,
    st.stage_order                                          as stage_order,
    coalesce(c.closed_deals, 0)                             as closed_deals,
    coalesce(c.won_deals, 0)                                as won_deals,
    cast(c.won_deals as double precision) / nullif(c.closed_deals, 0) as win_rate
from slices sl
cross join model.stages st
left join counts c
       on c.slice_by = sl.slice_by and c.slice_value is not distinct from sl.slice_value and c.stage = st.stage
where not st.is_closed
