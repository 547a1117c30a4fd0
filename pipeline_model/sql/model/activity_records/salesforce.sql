-- One row per source record of a sales activity: CRM tasks, events and engagements, each
-- mailbox's copy of an email, each calendar's copy of an event (deleted ones excluded; a Gmail or
-- Calendar row not seen by the latest full re-read of its mailbox/calendar is deleted).
-- activity_key names the real-world activity the record is a copy of (one Message-ID, one event
-- instance); `activity_sources` folds copies, and CRM-logged mail, into one activity.
-- crm_deal_record_id / crm_contact_record_id are the CRM's own links. match_subject is the
-- subject as the mail carried it, for recognising the mail a CRM logged.
select
    'salesforce:' || t.id                                   as record_id,
    'salesforce'                                            as source_system,
    t.id                                                    as source_id,
    'salesforce:' || t.id                                   as activity_key,
    case t.task_subtype when 'Email' then 'email'
                        when 'Call'  then 'call'
                        else 'task' end                     as activity_type,
    t.subject                                               as subject,
    case when t.task_subtype = 'Email'
         then lower(trim(regexp_replace(t.subject, '^Email: ', ''))) end as match_subject,
    coalesce(case when t.task_subtype = 'Email' then t.created_date end,
             cast(t.activity_date as timestamp with time zone), t.created_date) as occurred_at,
    t.status                                                as status,
    'salesforce:' || t.owner_id                             as owner_record_id,
    cast(null as varchar)                                   as mailbox,
    cast(null as varchar)                                   as thread_key,
    case when t.what_id like '006%' then 'salesforce:' || t.what_id end as crm_deal_record_id,
    case when t.who_id  like '003%' then 'salesforce:' || t.who_id  end as crm_contact_record_id,
    cast(null as varchar)                                   as from_address,
    cast(null as varchar)                                   as to_addresses,
    cast(null as varchar)                                   as cc_addresses
from raw_salesforce.tasks t
where not coalesce(t.is_deleted, false)
union all
select
    'salesforce:' || e.id, 'salesforce', e.id, 'salesforce:' || e.id, 'meeting', e.subject, cast(null as varchar),
    coalesce(e.start_date_time, e.activity_date_time, e.created_date), cast(null as varchar),
    'salesforce:' || e.owner_id, cast(null as varchar), cast(null as varchar),
    case when e.what_id like '006%' then 'salesforce:' || e.what_id end,
    case when e.who_id  like '003%' then 'salesforce:' || e.who_id  end,
    cast(null as varchar), cast(null as varchar), cast(null as varchar)
from raw_salesforce.events e
where not coalesce(e.is_deleted, false)
