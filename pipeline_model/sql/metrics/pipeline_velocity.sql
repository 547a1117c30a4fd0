-- Pipeline velocity: open deals x win rate x average won deal size / average won sales cycle in
-- days = expected bookings per day. One row per slice (model.deal_slices): the org (slice_by
-- 'org'), and each owner, manager, CRM and pipeline with deals. No period slice: velocity is the
-- pipeline as it is now.
with deals as (
    select deal_id, is_closed, is_won, amount,
           case when is_won then cast(extract(epoch from (closed_at - created_at)) as double precision)
                                 / 86400.0 end              as won_cycle_days
    from model.deals
),
sliced as (
    select s.slice_by, s.slice_value, d.is_closed, d.is_won, d.amount, d.won_cycle_days
    from deals d
    join model.deal_slices s on s.deal_id = d.deal_id and s.period_of is null
),
per_slice as (
    select
        slice_by,
        slice_value,
        count(case when not is_closed then 1 end)           as open_deals,
        count(case when is_won then 1 end)                  as won_deals,
        count(case when is_closed then 1 end)               as closed_deals,
        avg(case when is_won then amount end)               as avg_won_deal_size,
        avg(won_cycle_days)                                 as avg_won_cycle_days
    from sliced
    group by slice_by, slice_value
)
select
    slice_by                                                as slice_by,
    slice_value                                             as slice_value,
    open_deals                                              as open_deals,
    cast(won_deals as double precision) / nullif(closed_deals, 0) as win_rate,
    avg_won_deal_size                                       as avg_won_deal_size,
    avg_won_cycle_days                                      as avg_won_cycle_days,
    open_deals * (cast(won_deals as double precision) / nullif(closed_deals, 0)) * avg_won_deal_size
        / nullif(avg_won_cycle_days, 0)                     as velocity_per_day
from per_slice
