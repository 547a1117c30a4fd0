select
    'hubspot'                                               as source_system,
    c.id                                                    as source_id,
    'hubspot:' || c.id                                      as record_id,
    case when c.associatedcompanyid is null then null
         else 'hubspot:' || c.associatedcompanyid end       as account_record_id,
    nullif(trim(coalesce(c.firstname, '') || ' ' || coalesce(c.lastname, '')), '') as name,
    nullif(lower(trim(c.email)), '')                        as email,
    nullif(lower(trim(c.email)), '')                        as email_key,
    c.jobtitle                                              as title,
    case when c.hubspot_owner_id is null then null
         else 'hubspot:' || c.hubspot_owner_id end          as owner_record_id,
    c.created_at                                            as created_at,
    c.updated_at                                            as updated_at
from raw_hubspot.contacts c
where not coalesce(c.archived, false)
  and c.id not in (select id from raw_hubspot.archived_records where object_type = 'contacts')
