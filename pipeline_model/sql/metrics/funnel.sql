-- The funnel from the first stage to won, over every live deal. A deal reached a stage when it
-- was ever in that stage or a later one on the ladder (so a skipped stage counts as passed);
-- closed_lost is not "later". conversion_to_next = reached the next stage / reached this one
-- (open deals count as not yet advanced); conversion_to_won is over closed deals only
-- (the stage's historical win rate).
with furthest as (
    select h.deal_id, max(st.stage_order) as furthest_order
    from model.deal_stage_history h
    join model.stages st on st.stage = h.stage and (not st.is_closed or st.is_won)
    group by h.deal_id
),
ladder as (
    select stage, stage_order, lead(stage_order) over (order by stage_order) as next_order
    from model.stages where not is_closed or is_won
),
counts as (
    select l.stage, l.stage_order,
           count(case when f.furthest_order >= l.stage_order then 1 end) as deals_reached,
           count(case when f.furthest_order >= l.next_order then 1 end) as deals_advanced
    from ladder l cross join furthest f
    group by l.stage, l.stage_order
)
select
    c.stage                                                 as stage,
    c.stage_order                                           as stage_order,
    c.deals_reached                                         as deals_reached,
    c.deals_advanced                                        as deals_advanced,
    cast(c.deals_advanced as double precision) / nullif(c.deals_reached, 0) as conversion_to_next,
    case when c.stage = 'closed_won' then 1.0 else w.win_rate end as conversion_to_won
from counts c
left join metrics.stage_win_rates w on w.stage = c.stage
