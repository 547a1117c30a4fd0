select
    'hubspot:' || h.record_id                               as deal_id,
    'hubspot'                                               as source_system,
    h.record_id || ':' || cast(cast(extract(epoch from h.changed_at) * 1000 as bigint) as varchar) as source_id,
    h.value                                                 as source_stage,
    h.changed_at                                            as changed_at
from raw_hubspot.deal_property_history h
join raw_hubspot.deals d
  on d.id = h.record_id and not coalesce(d.archived, false)
where h.property = 'dealstage'
  and d.id not in (select id from raw_hubspot.archived_records where object_type = 'deals')
