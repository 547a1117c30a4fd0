-- One row per real-world person at a customer, however many CRM records they have (merged by
-- email), with the attributes of their primary record (see identity_map). The account is that
-- record's CRM account, else the account of the email's domain.
select
    m.canonical_id                                          as contact_id,
    coalesce(a.canonical_id, da.account_id)                 as account_id,
    c.name                                                  as name,
    c.email                                                 as email,
    nullif(split_part(c.email_key, '@', 2), '')             as email_domain,
    c.title                                                 as title,
    o.canonical_id                                          as owner_id,
    m.entity_created_at                                     as created_at,
    m.source_system                                         as source_system,
    m.source_id                                             as source_id,
    m.entity_records                                        as source_records
from model.source_contacts c
join model.identity_map m on m.entity = 'contact' and m.record_id = c.record_id and m.is_primary
left join model.identity_map a on a.entity = 'account' and a.record_id = c.account_record_id
left join model.identity_map o on o.entity = 'owner' and o.record_id = c.owner_record_id
left join model.account_domains da on da.domain = split_part(c.email_key, '@', 2)
