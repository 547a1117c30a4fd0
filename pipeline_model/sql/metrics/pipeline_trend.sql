-- The open pipeline per day and canonical stage, from the daily snapshot: what the pipeline
-- looked like on any past day since the first sync. reconstructed is true for a day no run
-- recorded (filled from stage history).
select
    s.snapshot_date                                         as snapshot_date,
    s.stage                                                 as stage,
    st.stage_order                                          as stage_order,
    count(*)                                                as open_deals,
    coalesce(sum(s.amount), 0)                              as open_amount,
    coalesce(sum(s.amount * s.probability), 0)              as weighted_amount,
    max(case when s.reconstructed then 1 else 0 end) = 1    as reconstructed
from history.daily_pipeline_snapshot s
join model.stages st on st.stage = s.stage
where not s.is_closed
group by s.snapshot_date, s.stage, st.stage_order
