-- Win rate over closed deals: won / (won + lost), by count and by amount; average and median
-- won deal size. Deals without an amount count as zero value in the value-based rate.
-- One row per slice (model.deal_slices): the org (slice_by 'org'), and each owner, manager, CRM,
-- pipeline and period the deal closed in (metrics.period) that has closed deals.
with closed as (
    select s.slice_by, s.slice_value, d.is_won, coalesce(d.amount, 0) as amount, d.amount as raw_amount
    from model.deals d
    join model.deal_slices s on s.deal_id = d.deal_id and coalesce(s.period_of, 'closed') = 'closed'
    where d.is_closed
)
select
    slice_by                                                as slice_by,
    slice_value                                             as slice_value,
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
group by slice_by, slice_value
