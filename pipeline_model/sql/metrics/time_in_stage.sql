-- Days deals spent in each open stage, over completed spells (spells the deal has left): mean,
-- median and 75th percentile. The current spell of an open deal is not yet a duration.
select
    st.stage                                                as stage,
    st.stage_order                                          as stage_order,
    count(s.duration_days)                                  as completed_spells,
    avg(s.duration_days)                                    as avg_days_in_stage,
    percentile_cont(0.5) within group (order by s.duration_days)  as median_days_in_stage,
    percentile_cont(0.75) within group (order by s.duration_days) as p75_days_in_stage
from model.stages st
left join model.deal_stage_history s on s.stage = st.stage and not s.is_current
where not st.is_closed
group by st.stage, st.stage_order
