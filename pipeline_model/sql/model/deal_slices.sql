-- Every slice a live deal belongs to, for the sliced metric tables: the org, its owner, the
-- owner's manager (the team), its CRM and its pipeline (period_of NULL), and the periods
-- (metrics.period, as the ISO date of their first day) it was created in (period_of 'created')
-- and closed in ('closed'; NULL while open). A metric joins it on deal_id, keeps the slices
-- without a period_of and the period it counts by, and groups by (slice_by, slice_value). A
-- NULL slice_value is a real slice: no owner, no manager, no pipeline.
with deals as (
    select d.deal_id, d.owner_id, o.manager_id, d.source_system, d.pipeline, d.created_at, d.closed_at
    from model.deals d
    left join model.owners o on o.owner_id = d.owner_id
)
select deal_id, 'org' as slice_by, cast(null as varchar) as slice_value, cast(null as varchar) as period_of
from deals
union all
select deal_id, 'owner', owner_id, cast(null as varchar) from deals
union all
select deal_id, 'manager', manager_id, cast(null as varchar) from deals
union all
select deal_id, 'source_system', source_system, cast(null as varchar) from deals
union all
select deal_id, 'pipeline', pipeline, cast(null as varchar) from deals
union all
select deal_id, 'period', cast(cast(date_trunc((select period from model.metric_settings), created_at) as date) as varchar),
       'created'
from deals
union all
select deal_id, 'period', cast(cast(date_trunc((select period from model.metric_settings), closed_at) as date) as varchar),
       'closed'
from deals
