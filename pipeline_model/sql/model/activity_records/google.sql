with mailbox_read as (
    select mailbox, max(synced_at) as synced_at from raw_google.gmail_full_syncs group by mailbox
),
calendar_read as (
    select calendar_id, max(synced_at) as synced_at from raw_google.calendar_full_syncs group by calendar_id
)
select
    'gmail:' || m.mailbox || ':' || m.id                    as record_id,
    'gmail'                                                 as source_system,
    m.id                                                    as source_id,
    'gmail:' || substr(md5(coalesce(m.message_id, m.mailbox || ':' || m.id)), 1, 16) as activity_key,
    'email'                                                 as activity_type,
    m.subject                                               as subject,
    lower(trim(m.subject))                                  as match_subject,
    coalesce(m.sent_at, m.internal_date)                    as occurred_at,
    case when position('SENT' in coalesce(m.label_ids, '')) > 0 then 'sent' else 'received' end as status,
    cast(null as varchar)                                   as owner_record_id,
    m.mailbox                                               as mailbox,
    m.mailbox || '/' || m.thread_id                         as thread_key,
    cast(null as varchar)                                   as crm_deal_record_id,
    cast(null as varchar)                                   as crm_contact_record_id,
    m.from_address                                          as from_address,
    m.to_addresses                                          as to_addresses,
    m.cc_addresses                                          as cc_addresses
from raw_google.gmail_messages m
left join mailbox_read f on f.mailbox = m.mailbox
where not coalesce(m.deleted, false) and (f.synced_at is null or m.synced_at >= f.synced_at)
union all
select
    'gcal:' || e.calendar_id || ':' || e.id, 'google_calendar', e.id,
    -- Every attendee's calendar holds its own copy: one iCalUID (plus the instance, for a series).
    'gcal:' || substr(md5(coalesce(e.ical_uid, e.id) || ':'
        || case when e.recurring_event_id is null then '' else regexp_replace(e.id, '^.*_', '') end), 1, 16),
    'meeting', e.summary, cast(null as varchar), e.start_at, e.status, cast(null as varchar),
    e.calendar_id, cast(null as varchar), cast(null as varchar), cast(null as varchar),
    e.organizer_email, e.attendee_emails, cast(null as varchar)
from raw_google.calendar_events e
left join calendar_read f on f.calendar_id = e.calendar_id
where not coalesce(e.deleted, false) and not coalesce(e.all_day, false)
  and (f.synced_at is null or e.synced_at >= f.synced_at)
