-- Sales-cycle length: days from a deal's creation to its close, over closed deals (and won only).
-- One row per slice (model.deal_slices): the org (slice_by 'org'), and each owner, manager, CRM,
-- pipeline and period the deal closed in (metrics.period) that has closed deals.
with deals as (
    select deal_id, is_won,
           cast(extract(epoch from (closed_at - created_at)) as double precision) / 86400.0 as cycle_days
    from model.deals where is_closed and closed_at is not null
),
closed as (
    select s.slice_by, s.slice_value, d.is_won, d.cycle_days
    from deals d
    join model.deal_slices s on s.deal_id = d.deal_id and coalesce(s.period_of, 'closed') = 'closed'
)
select
    slice_by                                                as slice_by,
    slice_value                                             as slice_value,
    count(*)                                                as closed_deals,
    avg(cycle_days)                                         as avg_sales_cycle_days,
    percentile_cont(0.5) within group (order by cycle_days) as median_sales_cycle_days,
    count(case when is_won then 1 end)                      as won_deals,
    avg(case when is_won then cycle_days end)               as avg_won_sales_cycle_days
from closed
group by slice_by, slice_value
