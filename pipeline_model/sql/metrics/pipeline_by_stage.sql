-- Open pipeline per canonical stage: every open stage of the ladder appears, with zeros when empty.
-- weighted_amount uses each deal's CRM probability; history_weighted_amount the org's own
-- stage-to-won rate (stage_win_rates). Deals without an amount count as zero.
select
    st.stage                                                as stage,
    st.stage_order                                          as stage_order,
    count(d.deal_id)                                        as open_deals,
    coalesce(sum(d.amount), 0)                              as open_amount,
    coalesce(sum(d.amount * d.probability), 0)              as weighted_amount,
    coalesce(sum(d.amount * w.win_rate), 0)                 as history_weighted_amount
from model.stages st
left join model.deals d on d.stage = st.stage and not d.is_closed
left join metrics.stage_win_rates w on w.stage = st.stage and w.slice_by = 'org'
where not st.is_closed
group by st.stage, st.stage_order
