-- Where lost deals were lost: each closed-lost deal counted at the stage it was in just before
-- it closed (its last open spell). Stages with no losses appear with zeros.
with last_open as (
    select h.deal_id, h.stage,
           row_number() over (partition by h.deal_id order by h.spell_number desc) as recency
    from model.deal_stage_history h
    join model.stages st on st.stage = h.stage and not st.is_closed
),
lost as (
    select d.deal_id, d.amount, l.stage
    from model.deals d
    join model.stages st on st.stage = d.stage and st.is_closed and not st.is_won
    left join last_open l on l.deal_id = d.deal_id and l.recency = 1
)
select
    st.stage                                                as stage,
    st.stage_order                                          as stage_order,
    count(l.deal_id)                                        as lost_deals,
    coalesce(sum(l.amount), 0)                              as lost_amount
from model.stages st
left join lost l on l.stage = st.stage
where not st.is_closed
group by st.stage, st.stage_order
