-- The org's own historical stage-to-won rates: of the closed deals that were ever in a stage,
-- the share that was won. What history-weighted pipeline and the forecast weigh open deals by.
with reached as (
    select distinct h.deal_id, h.stage
    from model.deal_stage_history h
    join model.stages st on st.stage = h.stage and not st.is_closed
)
select
    st.stage                                                as stage,
    st.stage_order                                          as stage_order,
    count(d.deal_id)                                        as closed_deals,
    count(case when d.is_won then 1 end)                    as won_deals,
    cast(count(case when d.is_won then 1 end) as double precision) / nullif(count(d.deal_id), 0) as win_rate
from model.stages st
left join reached r on r.stage = st.stage
left join model.deals d on d.deal_id = r.deal_id and d.is_closed
where not st.is_closed
group by st.stage, st.stage_order
