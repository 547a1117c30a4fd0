-- Win rate over closed deals: won / (won + lost), by count and by amount; average and median
-- won deal size. Deals without an amount count as zero value in the value-based rate.
with closed as (
    select is_won, coalesce(amount, 0) as amount, amount as raw_amount
    from model.deals where is_closed
)
select
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
