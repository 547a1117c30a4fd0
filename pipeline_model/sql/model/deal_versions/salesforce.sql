-- One row per version of a live deal, from either CRM's history: the deal's stage, amount, close
-- date, probability and owner from one recorded change (valid_from) until the next (valid_to;
-- NULL for the current version). Salesforce: each OpportunityHistory row is a version (one is
-- written for every change of stage, amount, close date or probability, carrying all four); it
-- keeps no owner, so owner_id is the deal's current owner. HubSpot: the dealstage, amount,
-- closedate and hubspot_owner_id property histories merged on their change instants, each
-- property carried forward to its next change (NULL before its first recorded value, the current
-- value when the deal has no history of it at all); probability is the pipeline stage's.
-- Amounts are in the reporting currency at the deal's current currency's rate. A version that
-- moves the deal to another stage opens a spell (deal_stage_history is built from those);
-- stage_entered_at is when the spell of the version's stage began (model.deals takes closed_at
-- from the current version's).
with records as (
    select h.opportunity_id                                  as opportunity_id,
           h.id                                              as source_id,
           h.created_date                                    as valid_from,
           lead(h.created_date) over w                       as valid_to,
           h.stage_name                                      as source_stage,
           lag(h.stage_name) over w                          as previous_stage,
           h.amount                                          as amount,
           h.probability                                     as probability,
           cast(h.close_date as date)                        as close_date
    from raw_salesforce.opportunity_history h
    where not coalesce(h.is_deleted, false)
    window w as (partition by h.opportunity_id order by h.created_date, h.id)
),
spells as (
    -- A stage's spell starts at the first record of a run of that stage.
    select r.*,
           coalesce(r.previous_stage is null or r.previous_stage <> r.source_stage, false) as opens_spell,
           max(case when r.previous_stage is null or r.previous_stage <> r.source_stage then r.valid_from end)
               over (partition by r.opportunity_id order by r.valid_from, r.source_id
                     rows between unbounded preceding and current row) as stage_entered_at
    from records r
),
opportunities as materialized (
    -- The live deals, with what their history lacks: owner and currency, as model.deals has them
    -- (which reads this table for closed_at). Materialised: joined per deal, not per version.
    select o.id, w.canonical_id as owner_id, fx.to_reporting
    from raw_salesforce.opportunities o
    cross join model.metric_settings cfg
    left join model.identity_map w on w.entity = 'owner' and w.record_id = 'salesforce:' || o.owner_id
    left join model.currency_rates fx on fx.currency = upper(coalesce(o.currency_iso_code, cfg.default_currency))
    where not coalesce(o.is_deleted, false)
)
select
    'salesforce:' || s.opportunity_id                       as deal_id,
    'salesforce'                                            as source_system,
    s.source_id                                             as source_id,
    s.valid_from                                            as valid_from,
    s.valid_to                                              as valid_to,
    s.source_stage                                          as source_stage,
    m.stage                                                 as stage,
    s.stage_entered_at                                      as stage_entered_at,
    s.opens_spell                                           as opens_spell,
    coalesce(st.is_closed, false)                           as is_closed,
    coalesce(st.is_won, false)                              as is_won,
    o.owner_id                                              as owner_id,
    cast(s.amount as double precision) * o.to_reporting    as amount,
    cast(s.probability as double precision) / 100.0         as probability,
    s.close_date                                            as close_date
from spells s
join opportunities o on o.id = s.opportunity_id
left join model.stage_map m on m.source_system = 'salesforce' and m.source_stage = s.source_stage
left join model.stages st on st.stage = m.stage
