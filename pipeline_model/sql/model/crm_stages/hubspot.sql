-- HubSpot marks no stage "won": a closed stage at probability 1 is the won one.
select
    'hubspot'                                               as source_system,
    s.pipeline_id                                           as pipeline,
    s.id                                                    as source_stage,
    s.label                                                 as label,
    cast(s.display_order as integer)                        as display_order,
    cast(s.probability as double precision)                 as crm_probability,
    coalesce(s.is_closed, false)                            as crm_is_closed,
    coalesce(s.is_closed, false) and s.probability >= 1.0   as crm_is_won,
    not coalesce(s.archived, false)                         as is_active,
    m.stage                                                 as stage,
    m.stage_order                                           as stage_order
from raw_hubspot.deal_stages s
left join model.stage_map m on m.source_system = 'hubspot' and m.source_stage = s.id
