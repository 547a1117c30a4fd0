-- One row per CRM user who can own records, as each CRM holds it; `owners` merges them by email.
select
    'salesforce'                                            as source_system,
    u.id                                                    as source_id,
    'salesforce:' || u.id                                   as record_id,
    u.name                                                  as name,
    nullif(lower(trim(u.email)), '')                        as email,
    u.title                                                 as title,
    case when u.manager_id is null then null
         else 'salesforce:' || u.manager_id end             as manager_record_id,
    coalesce(u.is_active, true)                             as is_active,
    u.created_date                                          as created_at,
    u.last_modified_date                                    as updated_at
from raw_salesforce.users u
