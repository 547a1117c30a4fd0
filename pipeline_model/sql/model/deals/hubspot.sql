with company as (
    -- A deal's company: the primary association (type 5) when there is one.
    select from_id as deal_id, to_id as company_id,
           row_number() over (partition by from_id order by case when type_id = 5 then 0 else 1 end, to_id) as pick
    from raw_hubspot.associations
    where from_type = 'deals' and to_type = 'companies' and to_id is not null
)
select
    'hubspot:' || d.id                                      as deal_id,
    'hubspot'                                               as source_system,
    d.id                                                    as source_id,
    d.dealname                                              as name,
    a.canonical_id                                          as account_id,
    w.canonical_id                                          as owner_id,
    d.pipeline                                              as pipeline,
    d.dealstage                                             as source_stage,
    m.stage                                                 as stage,
    m.stage_order                                           as stage_order,
    cast(d.hs_deal_stage_probability as double precision)   as probability,
    cast(d.amount as double precision) * fx.to_reporting   as amount,
    cast(d.amount as double precision)                      as amount_original,
    upper(coalesce(d.deal_currency_code, cfg.default_currency))   as currency,
    cast(d.closedate as date)                               as close_date,
    coalesce(d.hs_is_closed, false)                         as is_closed,
    coalesce(d.hs_is_closed_won, false)                     as is_won,
    cast(null as varchar)                                   as forecast_category,
    d.dealtype                                              as deal_type,
    cast(null as varchar)                                   as lead_source,
    d.created_at                                            as created_at,
    case when coalesce(d.hs_is_closed, false)
         then coalesce(cur.stage_entered_at, cast(d.closedate as timestamp with time zone)) end as closed_at,
    d.updated_at                                            as updated_at
from raw_hubspot.deals d
left join company c on c.deal_id = d.id and c.pick = 1
left join model.identity_map a on a.entity = 'account' and a.record_id = 'hubspot:' || c.company_id
left join model.identity_map w on w.entity = 'owner' and w.record_id = 'hubspot:' || d.hubspot_owner_id
cross join model.metric_settings cfg
left join model.currency_rates fx on fx.currency = upper(coalesce(d.deal_currency_code, cfg.default_currency))
left join model.stage_map m on m.source_system = 'hubspot' and m.source_stage = d.dealstage
left join model.deal_versions cur on cur.deal_id = 'hubspot:' || d.id and cur.valid_to is null
where not coalesce(d.archived, false)
  and d.id not in (select id from raw_hubspot.archived_records where object_type = 'deals')
