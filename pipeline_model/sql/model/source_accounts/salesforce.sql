-- One row per company record in each CRM (deleted and archived records excluded); `accounts`
-- merges the records of one company by web domain.
select
    'salesforce'                                            as source_system,
    a.id                                                    as source_id,
    'salesforce:' || a.id                                   as record_id,
    a.name                                                  as name,
    nullif(split_part(regexp_replace(regexp_replace(lower(trim(a.website)),
        '^[a-z]+://', ''), '^www\.', ''), '/', 1), '')      as domain,
    a.industry                                              as industry,
    a.type                                                  as account_type,
    'salesforce:' || a.owner_id                             as owner_record_id,
    a.created_date                                          as created_at,
    a.last_modified_date                                    as updated_at
from raw_salesforce.accounts a
where not coalesce(a.is_deleted, false)
