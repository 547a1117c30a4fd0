-- One row per person who owns CRM records (a rep in Salesforce and HubSpot is one owner),
-- with the attributes of their primary record (see identity_map). The manager comes from the
-- primary record, else from any of the person's records that names one (HubSpot has no managers).
with managers as (
    select m.canonical_id                                   as owner_id,
           min(case when m.is_primary then mm.canonical_id end) as primary_manager,
           min(mm.canonical_id)                             as any_manager
    from model.identity_map m
    join model.source_owners o on o.record_id = m.record_id
    join model.identity_map mm on mm.entity = 'owner' and mm.record_id = o.manager_record_id
    where m.entity = 'owner'
    group by m.canonical_id
)
select
    m.canonical_id                                          as owner_id,
    o.name                                                  as name,
    o.email                                                 as email,
    o.title                                                 as title,
    coalesce(g.primary_manager, g.any_manager)              as manager_id,
    m.canonical_id in (select i.canonical_id from model.identity_map i
                       join model.source_owners a on a.record_id = i.record_id
                       where i.entity = 'owner' and a.is_active) as is_active,
    m.source_system                                         as source_system,
    m.source_id                                             as source_id,
    m.entity_records                                        as source_records
from model.source_owners o
join model.identity_map m on m.entity = 'owner' and m.record_id = o.record_id and m.is_primary
left join managers g on g.owner_id = m.canonical_id
