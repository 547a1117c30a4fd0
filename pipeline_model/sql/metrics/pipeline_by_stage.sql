-- Open pipeline per canonical stage: every open stage of the ladder appears, with zeros when empty.
select
    st.stage                                                as stage,
    st.stage_order                                          as stage_order,
    count(d.deal_id)                                        as open_deals,
    coalesce(sum(d.amount), 0)                              as open_amount
from model.stages st
left join model.deals d on d.stage = st.stage and not d.is_closed
where not st.is_closed
group by st.stage, st.stage_order
