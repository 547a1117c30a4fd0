-- Pipeline velocity: open deals x win rate x average won deal size / average won sales cycle in
-- days = expected bookings per day. One row per slice: the org (slice_by 'org'), and each owner,
-- manager, CRM and pipeline with deals. No period slice: velocity is the pipeline as it is now.
with deals as (
    select d.owner_id, o.manager_id, d.source_system, d.pipeline, d.is_closed, d.is_won, d.amount,
           case when d.is_won then cast(extract(epoch from (d.closed_at - d.created_at)) as double precision)
                                   / 86400.0 end            as won_cycle_days
    from model.deals d
    left join model.owners o on o.owner_id = d.owner_id
),
per_slice as (
    select
        case when grouping(owner_id) = 0 then 'owner'
             when grouping(manager_id) = 0 then 'manager'
             when grouping(source_system) = 0 then 'source_system'
             when grouping(pipeline) = 0 then 'pipeline'
             else 'org' end                                 as slice_by,
        -- the attribute grouped on: the others are NULL in its grouping set
        coalesce(owner_id, manager_id, source_system, pipeline) as slice_value,
        count(case when not is_closed then 1 end)           as open_deals,
        count(case when is_won then 1 end)                  as won_deals,
        count(case when is_closed then 1 end)               as closed_deals,
        avg(case when is_won then amount end)               as avg_won_deal_size,
        avg(won_cycle_days)                                 as avg_won_cycle_days
    from deals
    group by grouping sets ((), (owner_id), (manager_id), (source_system), (pipeline))
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
