-- Every Gmail and Calendar record (each mailbox's copy of a mail, each calendar's copy of an
-- event): which activity it is a copy of, and why. The Google rows of activity_sources, which
-- adds each CRM record as its own activity.
-- folded_by: 'own_record' (the first copy of a mail/meeting no CRM logged), 'same_message'
-- (another mailbox's copy: same Message-ID), 'same_event' (another calendar's copy: same iCalUID
-- and instance), 'crm_logged' (the mail or meeting a CRM record logged: an email with the same
-- subject sent within 2 minutes, or a meeting starting at the same minute, in the
-- mailbox/calendar of the CRM record's owner (or mail the owner sent, in any mailbox), attended by
-- the record's contact where that tells two such meetings apart; unique matches only).
with crm as (
    select r.*, o.email as owner_email, ct.email_key as contact_email
    from model.activity_records r
    join model.source_owners o on o.record_id = r.owner_record_id
    left join model.source_contacts ct on ct.record_id = r.crm_contact_record_id
    where r.source_system in ('salesforce', 'hubspot') and r.activity_type in ('email', 'meeting')
),
-- Each copy a CRM record may have logged; with_contact: the record's contact is on the copy.
logged_pairs as (
    select g.activity_key as copy_key, c.activity_key as crm_key, true as with_contact
    from model.activity_records g
    join crm c on c.owner_email = g.mailbox and c.match_subject = g.match_subject
    where g.source_system = 'gmail' and c.activity_type = 'email'
      and abs(cast(extract(epoch from (c.occurred_at - g.occurred_at)) as double precision)) <= 120
    union
    -- The owner's own mail in another mailbox (a colleague copied): found even when the owner
    -- has deleted their copy since, which would otherwise leave the mail counted twice.
    select g.activity_key, c.activity_key, true
    from model.activity_records g
    join crm c on c.owner_email = lower(g.from_address) and c.match_subject = g.match_subject
    where g.source_system = 'gmail' and c.activity_type = 'email'
      and abs(cast(extract(epoch from (c.occurred_at - g.occurred_at)) as double precision)) <= 120
    union
    select g.activity_key, c.activity_key,
           position(',' || c.contact_email || ',' in ',' || lower(replace(g.to_addresses, ' ', '')) || ',') > 0
    from model.activity_records g
    join crm c on c.owner_email = g.mailbox
              and date_trunc('minute', c.occurred_at) = date_trunc('minute', g.occurred_at)
    where g.source_system = 'google_calendar' and c.activity_type = 'meeting'
),
-- A meeting at the same minute as another in the owner's calendar (a stand-up, say): the one
-- the CRM record's contact attends is the one it logged.
likely_pairs as (
    select p.copy_key, p.crm_key
    from logged_pairs p
    where p.with_contact
       or not exists (select 1 from logged_pairs o where o.crm_key = p.crm_key and o.with_contact)
),
one_copy as (
    select crm_key from likely_pairs group by crm_key having count(distinct copy_key) = 1
),
logged as (
    -- Only a copy that one CRM record logged, and a CRM record that logged one copy, fold.
    select p.copy_key, min(p.crm_key) as crm_key
    from likely_pairs p
    join one_copy o on o.crm_key = p.crm_key
    group by p.copy_key
    having count(distinct p.crm_key) = 1
),
-- The first copy (by record_id) of a mail or meeting held in several mailboxes/calendars (a CRM
-- record is its own activity_key: only Google's copies can share one).
copies as (
    select activity_key, min(record_id) as first_record
    from model.activity_records
    where source_system in ('gmail', 'google_calendar')
    group by activity_key
    having count(*) > 1
),
keyed as (
    select r.record_id, r.source_system, r.source_id,
           coalesce(l.crm_key, r.activity_key) as activity_id, l.crm_key is not null as crm_logged,
           c.first_record is null or c.first_record = r.record_id as first_copy
    from model.activity_records r
    left join logged l on l.copy_key = r.activity_key
    left join copies c on c.activity_key = r.activity_key
    where r.source_system in ('gmail', 'google_calendar')
)
select
    activity_id                                             as activity_id,
    record_id                                               as record_id,
    source_system                                           as source_system,
    source_id                                               as source_id,
    case when crm_logged then 'crm_logged'
         when first_copy then 'own_record'
         when source_system = 'gmail' then 'same_message'
         else 'same_event' end                              as folded_by
from keyed
