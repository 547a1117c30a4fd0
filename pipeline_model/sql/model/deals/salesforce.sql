-- One row per deal (Salesforce opportunity, HubSpot deal); deleted and archived deals excluded.
-- stage is the canonical ladder stage (NULL when the CRM stage is not mapped: see unmapped_stages);
-- probability is a fraction 0..1 as the CRM set it; amount is in the reporting currency (NULL when
-- the deal's currency has no configured rate: see unconverted_amounts); currency is the deal's
-- (Salesforce CurrencyIsoCode, HubSpot deal_currency_code; metrics.currency.default when the CRM
-- gives none, as a single-currency Salesforce org); closed_at is when the deal entered its closed
-- stage (from stage history), else its close date. Account and owner are the unified ones.
select
    'salesforce:' || o.id                                   as deal_id,
    'salesforce'                                            as source_system,
    o.id                                                    as source_id,
    o.name                                                  as name,
    a.canonical_id                                          as account_id,
    w.canonical_id                                          as owner_id,
    cast(null as varchar)                                   as pipeline,
    o.stage_name                                            as source_stage,
    m.stage                                                 as stage,
    m.stage_order                                           as stage_order,
    cast(o.probability as double precision) / 100.0         as probability,
    cast(o.amount as double precision) * fx.to_reporting   as amount,
    cast(o.amount as double precision)                      as amount_original,
    upper(coalesce(o.currency_iso_code, cfg.default_currency))   as currency,
    cast(o.close_date as date)                              as close_date,
    coalesce(o.is_closed, false)                            as is_closed,
    coalesce(o.is_won, false)                               as is_won,
    o.forecast_category_name                                as forecast_category,
    o.type                                                  as deal_type,
    o.lead_source                                           as lead_source,
    o.created_date                                          as created_at,
    case when coalesce(o.is_closed, false)
         then coalesce(cur.stage_entered_at, cast(o.close_date as timestamp with time zone)) end as closed_at,
    o.last_modified_date                                    as updated_at
from raw_salesforce.opportunities o
left join model.identity_map a on a.entity = 'account' and a.record_id = 'salesforce:' || o.account_id
left join model.identity_map w on w.entity = 'owner' and w.record_id = 'salesforce:' || o.owner_id
cross join model.metric_settings cfg
left join model.currency_rates fx on fx.currency = upper(coalesce(o.currency_iso_code, cfg.default_currency))
left join model.stage_map m on m.source_system = 'salesforce' and m.source_stage = o.stage_name
left join model.deal_versions cur on cur.deal_id = 'salesforce:' || o.id and cur.valid_to is null
where not coalesce(o.is_deleted, false)
