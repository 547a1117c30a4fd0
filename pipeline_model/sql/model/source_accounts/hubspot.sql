-- Archived companies, merged-away duplicates among them, are left out.
select
    'hubspot'                                               as source_system,
    c.id                                                    as source_id,
    'hubspot:' || c.id                                      as record_id,
    c.name                                                  as name,
    nullif(split_part(regexp_replace(regexp_replace(lower(trim(c.domain)),
        '^[a-z]+://', ''), '^www\.', ''), '/', 1), '')      as domain,
    c.industry                                              as industry,
    c.lifecyclestage                                        as account_type,
    case when c.hubspot_owner_id is null then null
         else 'hubspot:' || c.hubspot_owner_id end          as owner_record_id,
    c.created_at                                            as created_at,
    c.updated_at                                            as updated_at
from raw_hubspot.companies c
where not coalesce(c.archived, false)
  and c.id not in (select id from raw_hubspot.archived_records where object_type = 'companies')
