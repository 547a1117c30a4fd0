-- One row per company (CRM account), deleted accounts excluded.
select
    'salesforce:' || a.id                                   as account_id,
    'salesforce'                                            as source_system,
    a.id                                                    as source_id,
    a.name                                                  as name,
    nullif(split_part(regexp_replace(regexp_replace(lower(trim(a.website)),
        '^[a-z]+://', ''), '^www\.', ''), '/', 1), '')      as domain,
    a.industry                                              as industry,
    a.type                                                  as account_type,
    'salesforce:' || a.owner_id                             as owner_id,
    a.created_date                                          as created_at
from raw_salesforce.accounts a
where not coalesce(a.is_deleted, false)
