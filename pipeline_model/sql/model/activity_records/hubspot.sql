with gone as (
    select object_type, id from raw_hubspot.archived_records
),
link as (
    -- An engagement's deal and contact: the lowest id when it has several.
    select from_type, from_id, min(case when to_type = 'deals' then to_id end) as deal_id,
           min(case when to_type = 'contacts' then to_id end) as contact_id
    from raw_hubspot.associations
    where from_type in ('emails', 'meetings', 'calls', 'tasks') and to_id is not null
    group by from_type, from_id
),
engagements as (
    select 'emails' as kind, id, 'email' as activity_type, hs_email_subject as subject,
           lower(trim(hs_email_subject)) as match_subject, hs_timestamp as occurred_at, hs_email_status as status,
           hubspot_owner_id, from_email, to_emails, cc_emails, archived
    from raw_hubspot.emails
    union all
    select 'meetings', id, 'meeting', hs_meeting_title, cast(null as varchar),
           coalesce(hs_meeting_start_time, hs_timestamp), hs_meeting_outcome, hubspot_owner_id,
           cast(null as varchar), cast(null as varchar), cast(null as varchar), archived
    from raw_hubspot.meetings
    union all
    select 'calls', id, 'call', hs_call_title, cast(null as varchar), hs_timestamp, hs_call_status,
           hubspot_owner_id, cast(null as varchar), cast(null as varchar), cast(null as varchar), archived
    from raw_hubspot.calls
    union all
    select 'tasks', id, case hs_task_type when 'CALL' then 'call' else 'task' end, hs_task_subject,
           cast(null as varchar), hs_timestamp, hs_task_status, hubspot_owner_id,
           cast(null as varchar), cast(null as varchar), cast(null as varchar), archived
    from raw_hubspot.tasks
)
select
    'hubspot:' || e.kind || ':' || e.id                     as record_id,
    'hubspot'                                               as source_system,
    e.id                                                    as source_id,
    'hubspot:' || e.kind || ':' || e.id                     as activity_key,
    e.activity_type                                         as activity_type,
    e.subject                                               as subject,
    e.match_subject                                         as match_subject,
    e.occurred_at                                           as occurred_at,
    e.status                                                as status,
    case when e.hubspot_owner_id is null then null else 'hubspot:' || e.hubspot_owner_id end as owner_record_id,
    cast(null as varchar)                                   as mailbox,
    cast(null as varchar)                                   as thread_key,
    case when l.deal_id is null then null else 'hubspot:' || l.deal_id end as crm_deal_record_id,
    case when l.contact_id is null then null else 'hubspot:' || l.contact_id end as crm_contact_record_id,
    e.from_email                                            as from_address,
    e.to_emails                                             as to_addresses,
    e.cc_emails                                             as cc_addresses
from engagements e
left join link l on l.from_type = e.kind and l.from_id = e.id
where not coalesce(e.archived, false)
  and not exists (select 1 from gone g where g.object_type = e.kind and g.id = e.id)
