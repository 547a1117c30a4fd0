-- One row per real-world sales activity: an email (however many mailboxes hold a copy, and
-- whether or not a CRM logged it), a meeting, a call or a task. A CRM-logged mail or meeting
-- takes the CRM record's subject, owner and links. owner_id is the CRM owner, else the
-- internal sender / organizer. crm_deal_id is the deal the CRM itself linked the activity to.
-- Each activity has exactly one 'own_record' source (activity_sources): the CRM record, or the
-- first copy of a mail or meeting no CRM logged; the other sources are counted. A CRM record is
-- always its own activity (activity_id = record_id): only Google's records need the lookup.
with primary_record as (
    select r.record_id as activity_id, r.*
    from model.activity_records r
    where r.source_system in ('salesforce', 'hubspot')
    union all
    select s.activity_id, r.*
    from model.google_activity_sources s
    join model.activity_records r on r.record_id = s.record_id
    where s.folded_by = 'own_record'
),
copies as (
    select activity_id, count(*) as copies from model.google_activity_sources
    where folded_by <> 'own_record' group by activity_id
)
select
    p.activity_id                                           as activity_id,
    p.source_system                                         as source_system,
    p.source_id                                             as source_id,
    p.activity_type                                         as activity_type,
    p.subject                                               as subject,
    p.occurred_at                                           as occurred_at,
    p.status                                                as status,
    -- Not an activity the metrics count: a meeting that did not take place (a Google Calendar event
    -- 'cancelled'; a HubSpot meeting whose hs_meeting_outcome is CANCELED or NO_SHOW; RESCHEDULED
    -- still counts: the record holds the meeting at its new time), or a call task still open
    -- (scheduled, or a follow-up nobody made: Salesforce 'Not Started', HubSpot NOT_STARTED...)
    -- whatever its date.
    coalesce(p.status, '') = 'cancelled'
      or (p.source_system = 'hubspot' and p.activity_type = 'meeting'
          and upper(coalesce(p.status, '')) in ('CANCELED', 'NO_SHOW'))
      or (p.activity_type = 'call'
          and upper(replace(coalesce(p.status, ''), ' ', '_'))
              in ('NOT_STARTED', 'IN_PROGRESS', 'WAITING', 'WAITING_ON_SOMEONE_ELSE', 'DEFERRED'))
                                                            as is_void,
    coalesce(o.canonical_id, sender.canonical_id)           as owner_id,
    p.crm_deal_record_id                                    as crm_deal_id,
    1 + coalesce(c.copies, 0)                               as source_records
from primary_record p
left join copies c on c.activity_id = p.activity_id
left join model.identity_map o on o.entity = 'owner' and o.record_id = p.owner_record_id
left join (select match_key, min(canonical_id) as canonical_id from model.identity_map
           where entity = 'owner' and match_key is not null group by match_key) sender
       on sender.match_key = p.from_address
