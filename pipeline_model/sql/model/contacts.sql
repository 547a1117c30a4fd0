-- One row per person at a customer (CRM contact), deleted contacts excluded.
select
    'salesforce:' || c.id                                   as contact_id,
    'salesforce'                                            as source_system,
    c.id                                                    as source_id,
    case when c.account_id is null then null
         else 'salesforce:' || c.account_id end             as account_id,
    c.name                                                  as name,
    lower(c.email)                                          as email,
    nullif(split_part(lower(c.email), '@', 2), '')          as email_domain,
    c.title                                                 as title,
    'salesforce:' || c.owner_id                             as owner_id,
    c.created_date                                          as created_at
from raw_salesforce.contacts c
where not coalesce(c.is_deleted, false)
