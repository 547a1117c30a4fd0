-- The open pipeline per day and canonical stage, from the daily snapshot: what the pipeline
-- looked like at the end of any past day in its window. reconstructed is true for a day that is
-- over (rebuilt from the CRMs' history), false for the as-of day (the deals as at as_of).
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
