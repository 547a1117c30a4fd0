select
    'hubspot'                                               as source_system,
    o.id                                                    as source_id,
    'hubspot:' || o.id                                      as record_id,
    trim(coalesce(o.first_name, '') || ' ' || coalesce(o.last_name, '')) as name,
    nullif(lower(trim(o.email)), '')                        as email,
    cast(null as varchar)                                   as title,
    cast(null as varchar)                                   as manager_record_id,
    not coalesce(o.archived, false)                         as is_active,
    o.created_at                                            as created_at,
    o.updated_at                                            as updated_at
from raw_hubspot.owners o
