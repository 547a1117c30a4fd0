-- Where lost deals were lost: each closed-lost deal counted at the stage it was in just before
-- it closed (its last open spell). Per slice: the org, and each owner, manager, CRM, pipeline
-- and period the deal closed in with lost deals; every slice lists every open stage (zeros included).
with last_open as (
    select h.deal_id, h.stage,
           row_number() over (partition by h.deal_id order by h.spell_number desc) as recency
    from model.deal_stage_history h
    join model.stages st on st.stage = h.stage and not st.is_closed
),
counts as (
    select s.slice_by, s.slice_value, l.stage,
           count(*)                                         as lost_deals,
           sum(d.amount)                                    as lost_amount
    from model.deals d
    join model.stages st on st.stage = d.stage and st.is_closed and not st.is_won
    join last_open l on l.deal_id = d.deal_id and l.recency = 1
    join model.deal_slices s on s.deal_id = d.deal_id and coalesce(s.period_of, 'closed') = 'closed'
    group by s.slice_by, s.slice_value, l.stage
),
slices as (
    select distinct slice_by, slice_value from counts
    union
    select 'org', cast(null as varchar)
)
select
    sl.slice_by                                             as slice_by,
    sl.slice_value                                          as slice_value,
    st.stage                                                as stage,
    st.stage_order                                          as stage_order,
    coalesce(c.lost_deals, 0)                               as lost_deals,
    coalesce(c.lost_amount, 0)                              as lost_amount
from slices sl
cross join model.stages st
left join counts c
       on c.slice_by = sl.slice_by and c.slice_value is not distinct from sl.slice_value and c.stage = st.stage
where not st.is_closed
