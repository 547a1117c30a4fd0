-- One row per person record at a customer in each CRM (deleted and archived excluded);
-- `contacts` merges the records of one person by email. email_key is the email the matching
-- joins on: the same as email, but with privacy.personal_fields: drop, email is NULL and
-- email_key the keyed pseudonym (pipeline_model/privacy.py).
select
    'salesforce'                                            as source_system,
    c.id                                                    as source_id,
    'salesforce:' || c.id                                   as record_id,
    case when c.account_id is null then null
         else 'salesforce:' || c.account_id end             as account_record_id,
    c.name                                                  as name,
    nullif(lower(trim(c.email)), '')                        as email,
    nullif(lower(trim(c.email)), '')                        as email_key,
    c.title                                                 as title,
    'salesforce:' || c.owner_id                             as owner_record_id,
    c.created_date                                          as created_at,
    c.last_modified_date                                    as updated_at
from raw_salesforce.contacts c
where not coalesce(c.is_deleted, false)
