-- Historical stage-to-won rates: of the closed deals that were ever in a stage, the share that
-- was won. The org's rows (slice_by 'org') are what history-weighted pipeline and the forecast
-- weigh open deals by. Per slice: the org, and each owner, manager, CRM, pipeline and period the
-- deal was created in (its cohort) with such deals; every slice lists every open stage.
with reached as (
    select distinct h.deal_id, h.stage
    from model.deal_stage_history h
    join model.stages st on st.stage = h.stage and not st.is_closed
),
counts as (
    select s.slice_by, s.slice_value, r.stage,
           count(*)                                         as closed_deals,
           count(case when d.is_won then 1 end)             as won_deals
    from reached r
    join model.deals d on d.deal_id = r.deal_id and d.is_closed
    join model.deal_slices s on s.deal_id = d.deal_id and coalesce(s.period_of, 'created') = 'created'
    group by s.slice_by, s.slice_value, r.stage
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
    coalesce(c.closed_deals, 0)                             as closed_deals,
    coalesce(c.won_deals, 0)                                as won_deals,
    cast(c.won_deals as double precision) / nullif(c.closed_deals, 0) as win_rate
from slices sl
cross join model.stages st
left join counts c
       on c.slice_by = sl.slice_by and c.slice_value is not distinct from sl.slice_value and c.stage = st.stage
where not st.is_closed
