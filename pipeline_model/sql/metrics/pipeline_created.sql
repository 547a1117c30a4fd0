-- Pipeline created per calendar month of creation, owner, the owner's manager and CRM: how many
-- deals were opened and their amount, with how many of them have been won or lost since.
select
    cast(date_trunc('month', d.created_at) as date)         as created_month,
    d.owner_id                                              as owner_id,
    o.manager_id                                            as manager_id,
    d.source_system                                         as source_system,
    count(*)                                                as deals_created,
    coalesce(sum(d.amount), 0)                              as amount_created,
    count(case when d.is_won then 1 end)                    as won_since,
    count(case when d.is_closed and not d.is_won then 1 end) as lost_since
from model.deals d
left join model.owners o on o.owner_id = d.owner_id
group by cast(date_trunc('month', d.created_at) as date), d.owner_id, o.manager_id, d.source_system
