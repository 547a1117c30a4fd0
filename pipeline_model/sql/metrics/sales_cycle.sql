-- Sales-cycle length: days from a deal's creation to its close, over closed deals (and won only).
-- One row per slice: the org (slice_by 'org'), and each owner, manager, CRM, pipeline and
-- period the deal closed in (metrics.period) that has closed deals.
with closed as (
    select d.is_won, cast(extract(epoch from (d.closed_at - d.created_at)) as double precision) / 86400.0 as cycle_days,
           d.owner_id, o.manager_id, d.source_system, d.pipeline,
           cast(date_trunc((select period from model.metric_settings), d.closed_at) as date) as period_start
    from model.deals d
    left join model.owners o on o.owner_id = d.owner_id
    where d.is_closed and d.closed_at is not null
)
select
    case when grouping(owner_id) = 0 then 'owner'
         when grouping(manager_id) = 0 then 'manager'
         when grouping(source_system) = 0 then 'source_system'
         when grouping(pipeline) = 0 then 'pipeline'
         when grouping(period_start) = 0 then 'period'
         else 'org' end                                     as slice_by,
    -- the attribute grouped on: the others are NULL in its grouping set
    coalesce(owner_id, manager_id, source_system, pipeline, cast(period_start as varchar)) as slice_value,
    count(*)                                                as closed_deals,
    avg(cycle_days)                                         as avg_sales_cycle_days,
    percentile_cont(0.5) within group (order by cycle_days) as median_sales_cycle_days,
    count(case when is_won then 1 end)                      as won_deals,
    avg(case when is_won then cycle_days end)               as avg_won_sales_cycle_days
from closed
group by grouping sets ((), (owner_id), (manager_id), (source_system), (pipeline), (period_start))
