-- Win rate over closed deals: won / (won + lost), by count and by amount; average and median
-- won deal size. Deals without an amount count as zero value in the value-based rate.
-- One row per slice: the org (slice_by 'org'), and each owner, manager, CRM, pipeline and
-- period the deal closed in (metrics.period) that has closed deals.
with closed as (
    select d.is_won, coalesce(d.amount, 0) as amount, d.amount as raw_amount,
           d.owner_id, o.manager_id, d.source_system, d.pipeline,
           cast(date_trunc((select period from model.metric_settings), d.closed_at) as date) as period_start
    from model.deals d
    left join model.owners o on o.owner_id = d.owner_id
    where d.is_closed
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
    count(case when is_won then 1 end)                      as won_deals,
    count(case when not is_won then 1 end)                  as lost_deals,
    coalesce(sum(case when is_won then amount end), 0)      as won_amount,
    coalesce(sum(case when is_won then 0 else amount end), 0) as lost_amount,
    cast(count(case when is_won then 1 end) as double precision)
        / nullif(count(*), 0)                               as win_rate_by_count,
    cast(sum(case when is_won then amount else 0 end) as double precision)
        / nullif(sum(amount), 0)                            as win_rate_by_value,
    avg(case when is_won then raw_amount end)               as avg_won_deal_size,
    percentile_cont(0.5) within group (order by case when is_won then raw_amount end) as median_won_deal_size
from closed
group by grouping sets ((), (owner_id), (manager_id), (source_system), (pipeline), (period_start))
