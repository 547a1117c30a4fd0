-- Sales-cycle length: days from a deal's creation to its close, over closed deals (and won only).
with closed as (
    select is_won, cast(extract(epoch from (closed_at - created_at)) as double precision) / 86400.0 as cycle_days
    from model.deals where is_closed and closed_at is not null
)
select
    count(*)                                                as closed_deals,
    avg(cycle_days)                                         as avg_sales_cycle_days,
    percentile_cont(0.5) within group (order by cycle_days) as median_sales_cycle_days,
    count(case when is_won then 1 end)                      as won_deals,
    avg(case when is_won then cycle_days end)               as avg_won_sales_cycle_days
from closed
