-- Every source record of an owner, account or contact, and the real-world entity it resolves to.
-- People resolve by email, companies by web domain; a record without a key, or whose domain is
-- internal or personal, stands alone. canonical_id is derived from the match key (or the record),
-- so it is stable across runs and whichever CRM the entity came from first. The entity's
-- attributes come from its primary record: the most recently updated one.
with keyed as (
    select 'owner' as entity, 'own_' as prefix, email as match_key, 'email' as key_kind,
           source_system, source_id, record_id, created_at, updated_at
    from model.source_owners
    union all
    select 'account', 'acc_', case when k.domain is null then a.domain end, 'domain',
           a.source_system, a.source_id, a.record_id, a.created_at, a.updated_at
    from model.source_accounts a
    left join model.known_domains k on k.domain = a.domain
    union all
    select 'contact', 'con_', email_key, 'email', source_system, source_id, record_id, created_at, updated_at
    from model.source_contacts
),
resolved as (
    select k.*, prefix || substr(md5(entity || ':' || coalesce(match_key, record_id)), 1, 16) as canonical_id
    from keyed k
)
select
    entity                                                  as entity,
    canonical_id                                            as canonical_id,
    source_system                                           as source_system,
    source_id                                               as source_id,
    record_id                                               as record_id,
    case when match_key is null then 'own_record' else key_kind end as matched_by,
    match_key                                               as match_key,
    row_number() over (partition by entity, canonical_id
                       order by updated_at desc nulls last, record_id) = 1 as is_primary,
    count(*) over (partition by entity, canonical_id)      as entity_records,
    min(created_at) over (partition by entity, canonical_id) as entity_created_at
from resolved
