-- Closed deals per calendar month of closing, owner, the owner's manager and CRM: won and lost
-- counts and amounts (bookings = won amount). Win rates for any slice: won / (won + lost).
select
    cast(date_trunc('month', d.closed_at) as date)          as close_month,
    d.owner_id                                              as owner_id,
    o.manager_id                                            as manager_id,
    d.source_system                                         as source_system,
    count(case when d.is_won then 1 end)                    as won_deals,
    count(case when not d.is_won then 1 end)                as lost_deals,
    coalesce(sum(case when d.is_won then d.amount end), 0)  as won_amount,
    coalesce(sum(case when not d.is_won then d.amount end), 0) as lost_amount
from model.deals d
left join model.owners o on o.owner_id = d.owner_id
where d.is_closed
group by cast(date_trunc('month', d.closed_at) as date), d.owner_id, o.manager_id, d.source_system
