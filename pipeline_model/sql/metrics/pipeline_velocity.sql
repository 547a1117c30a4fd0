-- Pipeline velocity for the whole org (scope 'org') and per owner (scope 'owner'): open deals
-- x win rate x average won deal size / average won sales cycle in days = expected bookings per day.
with scoped as (
    select 'org' as scope, cast(null as varchar) as owner_id, is_closed, is_won, amount, created_at, closed_at
    from model.deals
    union all
    select 'owner', owner_id, is_closed, is_won, amount, created_at, closed_at from model.deals
),
per_owner as (
    select d.scope, d.owner_id,
           count(case when not d.is_closed then 1 end)      as open_deals,
           count(case when d.is_won then 1 end)             as won_deals,
           count(case when d.is_closed then 1 end)          as closed_deals,
           avg(case when d.is_won then d.amount end)        as avg_won_deal_size,
           avg(case when d.is_won then cast(extract(epoch from (d.closed_at - d.created_at)) as double precision)
                                       / 86400.0 end)       as avg_won_cycle_days
    from scoped d
    group by d.scope, d.owner_id
)
select
    scope                                                   as scope,
    owner_id                                                as owner_id,
    open_deals                                              as open_deals,
    cast(won_deals as double precision) / nullif(closed_deals, 0) as win_rate,
    avg_won_deal_size                                       as avg_won_deal_size,
    avg_won_cycle_days                                      as avg_won_cycle_days,
    open_deals * (cast(won_deals as double precision) / nullif(closed_deals, 0)) * avg_won_deal_size
        / nullif(avg_won_cycle_days, 0)                     as velocity_per_day
from per_owner
