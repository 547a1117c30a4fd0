-- One row per CRM user who can own records.
select
    'salesforce:' || u.id                                   as owner_id,
    'salesforce'                                            as source_system,
    u.id                                                    as source_id,
    u.name                                                  as name,
    lower(u.email)                                          as email,
    u.title                                                 as title,
    case when u.manager_id is null then null
         else 'salesforce:' || u.manager_id end             as manager_id,
    coalesce(u.is_active, true)                             as is_active
from raw_salesforce.users u
