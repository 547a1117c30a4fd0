-- The funnel from the first stage to won, over every live deal. A deal reached a stage when it
-- was ever in that stage or a later one on the ladder (so a skipped stage counts as passed);
-- closed_lost is not "later". conversion_to_next = reached the next stage / reached this one
-- (open deals count as not yet advanced); conversion_to_won is over closed deals only
-- (stage_win_rates of the same slice). Per slice: the org, and each owner, manager, CRM,
-- pipeline and period the deal was created in (its cohort); every slice lists every stage.
with furthest as (
    select h.deal_id, max(st.stage_order) as furthest_order
    from model.deal_stage_history h
    join model.stages st on st.stage = h.stage and (not st.is_closed or st.is_won)
    group by h.deal_id
),
by_furthest as (
    -- deals per slice and furthest stage reached
    select s.slice_by, s.slice_value, f.furthest_order, count(*) as deals
    from furthest f
    join model.deal_slices s on s.deal_id = f.deal_id and coalesce(s.period_of, 'created') = 'created'
    group by s.slice_by, s.slice_value, f.furthest_order
),
slices as (
    select distinct slice_by, slice_value from by_furthest
    union
    select 'org', cast(null as varchar)
),
ladder as (
    select stage, stage_order, lead(stage_order) over (order by stage_order) as next_order
    from model.stages where not is_closed or is_won
),
counts as (
    select sl.slice_by, sl.slice_value, l.stage, l.stage_order,
           cast(coalesce(sum(case when f.furthest_order >= l.stage_order then f.deals end), 0) as bigint) as deals_reached,
           cast(coalesce(sum(case when f.furthest_order >= l.next_order then f.deals end), 0) as bigint) as deals_advanced
    from slices sl
    cross join ladder l
    left join by_furthest f on f.slice_by = sl.slice_by and f.slice_value is not distinct from sl.slice_value
    group by sl.slice_by, sl.slice_value, l.stage, l.stage_order
)
select
    c.slice_by                                              as slice_by,
    c.slice_value                                           as slice_value,
    c.stage                                                 as stage,
    c.stage_order                                           as stage_order,
    c.deals_reached                                         as deals_reached,
    c.deals_advanced                                        as deals_advanced,
    cast(c.deals_advanced as double precision) / nullif(c.deals_reached, 0) as conversion_to_next,
    case when c.stage = 'closed_won' then 1.0 else w.win_rate end as conversion_to_won
from counts c
left join metrics.stage_win_rates w
       on w.slice_by = c.slice_by and w.slice_value is not distinct from c.slice_value and w.stage = c.stage
