with records as (
    select h.record_id, h.changed_at,
           h.record_id || ':' || cast(cast(extract(epoch from h.changed_at) * 1000 as bigint) as varchar) as source_id,
           case when substr(h.value, 5, 1) = '-' then cast(substr(h.value, 1, 10) as date)
                -- epoch milliseconds: the UTC day, whatever the session's time zone
                else cast('1970-01-01' as date) + cast(floor(cast(h.value as bigint) / 86400000.0) as integer)
           end as close_date
    from raw_hubspot.deal_property_history h
    join raw_hubspot.deals d
      on d.id = h.record_id and not coalesce(d.archived, false)
    where h.property = 'closedate'
      and h.value is not null and h.value <> ''
      and d.id not in (select id from raw_hubspot.archived_records where object_type = 'deals')
),
ordered as (
    select r.*,
           lag(r.close_date) over (partition by r.record_id
                                 order by r.changed_at, r.source_id, r.close_date) as previous_close_date
    from records r
)
select
    'hubspot:' || o.record_id                               as deal_id,
    'hubspot'                                               as source_system,
    o.source_id                                             as source_id,
    o.close_date                                            as close_date,
    o.changed_at                                            as changed_at
from ordered o
where o.previous_close_date is null or o.previous_close_date <> o.close_date
