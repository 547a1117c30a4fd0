-- One row per person on an activity (by address): sender, recipients, organizer and attendees
-- from every copy of it, plus the CRM record's contact and owner. Each address resolves to a
-- contact by email, to an owner by email, and to an account through the contact or, failing
-- that, its domain (never an internal or personal domain).
-- Addresses per source record first; then each record's activity: a CRM record is its own
-- activity (activity_id = record_id), only Google's records are looked up in activity_sources.
-- Mail headers are normalised here; CRM contact and owner emails already are.
with mail_addresses as (
    select record_id, source_system, from_address as address, 1 as role_rank
    from model.activity_records where from_address is not null
    union all
    select record_id, source_system, unnest(string_to_array(to_addresses, ',')), 2
    from model.activity_records where to_addresses is not null
    union all
    select record_id, source_system, unnest(string_to_array(cc_addresses, ',')), 3
    from model.activity_records where cc_addresses is not null
),
record_addresses as (
    select record_id, source_system, lower(trim(address)) as address, role_rank
    from mail_addresses where trim(address) <> ''
    union all
    select r.record_id, r.source_system, c.email, 4
    from model.activity_records r join model.source_contacts c on c.record_id = r.crm_contact_record_id
    where c.email is not null
    union all
    select r.record_id, r.source_system, o.email, 5
    from model.activity_records r join model.source_owners o on o.record_id = r.owner_record_id
    where o.email is not null
),
activity_addresses as (
    select coalesce(s.activity_id, a.record_id) as activity_id, a.address, a.role_rank
    from record_addresses a
    left join (select record_id, activity_id from model.activity_sources
               where source_system not in ('salesforce', 'hubspot')) s on s.record_id = a.record_id
),
people as (
    select activity_id, address, min(role_rank) as role_rank
    from activity_addresses
    group by activity_id, address
),
-- Each address is resolved once, however many activities it is on.
resolved as (
    select a.address, c.contact_id, o.canonical_id as owner_id,
           coalesce(c.account_id, da.account_id) as account_id,
           o.canonical_id is not null or coalesce(k.kind = 'internal', false) as is_internal
    from (select distinct address from people) a
    left join model.contacts c on c.email = a.address
    left join (select match_key, min(canonical_id) as canonical_id from model.identity_map
               where entity = 'owner' and match_key is not null group by match_key) o on o.match_key = a.address
    left join model.known_domains k on k.domain = split_part(a.address, '@', 2)
    left join model.account_domains da on da.domain = split_part(a.address, '@', 2)
)
select
    p.activity_id                                           as activity_id,
    p.address                                               as address,
    case p.role_rank when 1 then 'from' when 2 then 'to' when 3 then 'cc'
                     when 4 then 'crm_contact' else 'crm_owner' end as role,
    r.contact_id                                            as contact_id,
    r.owner_id                                              as owner_id,
    r.account_id                                            as account_id,
    r.is_internal                                           as is_internal
from people p
join resolved r on r.address = p.address
