-- One row per real-world company, however many CRM records it has (merged by web domain),
-- with the attributes of its primary record (see identity_map).
select
    m.canonical_id                                          as account_id,
    a.name                                                  as name,
    a.domain                                                as domain,
    a.industry                                              as industry,
    a.account_type                                          as account_type,
    o.canonical_id                                          as owner_id,
    m.entity_created_at                                     as created_at,
    m.source_system                                         as source_system,
    m.source_id                                             as source_id,
    m.entity_records                                        as source_records
from model.source_accounts a
join model.identity_map m on m.entity = 'account' and m.record_id = a.record_id and m.is_primary
left join model.identity_map o on o.entity = 'owner' and o.record_id = a.owner_record_id
