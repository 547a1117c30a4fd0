-- One row per person who owns CRM records (a rep in Salesforce and HubSpot is one owner),
-- with the attributes of their primary record (see identity_map).
select
    m.canonical_id                                          as owner_id,
    o.name                                                  as name,
    o.email                                                 as email,
    o.title                                                 as title,
    mm.canonical_id                                         as manager_id,
    m.canonical_id in (select i.canonical_id from model.identity_map i
                       join model.source_owners a on a.record_id = i.record_id
                       where i.entity = 'owner' and a.is_active) as is_active,
    m.source_system                                         as source_system,
    m.source_id                                             as source_id,
    m.entity_records                                        as source_records
from model.source_owners o
join model.identity_map m on m.entity = 'owner' and m.record_id = o.record_id and m.is_primary
left join model.identity_map mm on mm.entity = 'owner' and mm.record_id = o.manager_record_id
