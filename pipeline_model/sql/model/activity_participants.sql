-- One row per person on an activity (by address): sender, recipients, organizer and attendees
-- from every copy of it, plus the CRM record's contact and owner. Each address resolves to a
-- contact by email, to an owner by email, and to an account through the contact or, failing
-- that, its domain (never an internal or personal domain).
-- Mail headers are normalised here; CRM contact and owner emails already are. A CRM record is
-- its own activity (activity_id = record_id); only Google's records are looked up (in
-- google_activity_sources). Only activities that can name a person twice (mail headers, or copies
-- folded together) are grouped by address, and CRM contacts and owners are resolved through
-- their source records: at 10M CRM records, grouping and joining by address cost most.
with mail_addresses as (
    select record_id, from_address as address, 1 as role_rank
    from model.activity_records where from_address is not null
    union all
    select record_id, unnest(string_to_array(to_addresses, ',')), 2
    from model.activity_records where to_addresses is not null
    union all
    select record_id, unnest(string_to_array(cc_addresses, ',')), 3
    from model.activity_records where cc_addresses is not null
),
header_addresses as (
    select record_id, lower(trim(address)) as address, role_rank
    from mail_addresses where trim(address) <> ''
),
-- Each address is resolved once, however many activities it is on.
resolved as (
    select a.address, c.contact_id, o.canonical_id as owner_id,
           coalesce(c.account_id, da.account_id) as account_id,
           o.canonical_id is not null or coalesce(k.kind = 'internal', false) as is_internal
    from (select address from header_addresses
          union select email_key from model.source_contacts where email_key is not null
          union select email from model.source_owners where email is not null) a
    left join (select match_key, min(canonical_id) as canonical_id from model.identity_map
               where entity = 'contact' and match_key is not null group by match_key) ci on ci.match_key = a.address
    left join model.contacts c on c.contact_id = ci.canonical_id
    left join (select match_key, min(canonical_id) as canonical_id from model.identity_map
               where entity = 'owner' and match_key is not null group by match_key) o on o.match_key = a.address
    left join model.known_domains k on k.domain = split_part(a.address, '@', 2)
    left join model.account_domains da on da.domain = split_part(a.address, '@', 2)
),
google_sources as (
    select record_id, activity_id from model.google_activity_sources
),
-- A CRM record's contact (4) and owner (5), resolved through their source records. A record
-- without mail headers whose activity has no Google copy is plain: these two are all its
-- people (one, if they share an address), no grouping needed.
crm_people as not materialized (
    select r.record_id as activity_id, roles.role_rank, p.*,
           r.from_address is null and r.to_addresses is null and r.cc_addresses is null
             and g.activity_id is null as plain,
           roles.role_rank = 5 and p.address = c.email_key as duplicate
    from model.activity_records r
    cross join (values (4), (5)) roles(role_rank)
    left join model.source_contacts c on c.record_id = r.crm_contact_record_id
    left join model.source_owners o on o.record_id = r.owner_record_id
    join resolved p on p.address = case roles.role_rank when 4 then c.email_key else o.email end
    left join (select distinct activity_id from google_sources) g on g.activity_id = r.record_id
    where r.source_system in ('salesforce', 'hubspot')
),
grouped as (
    select coalesce(s.activity_id, a.record_id) as activity_id, a.address, min(a.role_rank) as role_rank
    from (select record_id, address, role_rank from header_addresses
          union all
          select activity_id, address, role_rank from crm_people where not plain) a
    left join google_sources s on s.record_id = a.record_id
    group by 1, 2
),
people as (
    select g.activity_id, g.role_rank, r.*
    from grouped g join resolved r on r.address = g.address
    union all
    select activity_id, role_rank, address, contact_id, owner_id, account_id, is_internal
    from crm_people where plain and not coalesce(duplicate, false)
)
select
    activity_id                                             as activity_id,
    address                                                 as address,
    case role_rank when 1 then 'from' when 2 then 'to' when 3 then 'cc'
                   when 4 then 'crm_contact' else 'crm_owner' end as role,
    contact_id                                              as contact_id,
    owner_id                                                as owner_id,
    account_id                                              as account_id,
    is_internal                                             as is_internal
from people
