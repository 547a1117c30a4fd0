-- One row per stage each CRM defines (Salesforce OpportunityStage, HubSpot deal pipeline
-- stages), with the CRM's own probability (fraction 0..1) and closed/won flags, and the
-- canonical stage the configured mapping puts it on (NULL when unmapped).
select
    'salesforce'                                            as source_system,
    cast(null as varchar)                                   as pipeline,
    s.api_name                                              as source_stage,
    s.master_label                                          as label,
    cast(s.sort_order as integer)                           as display_order,
    cast(s.default_probability as double precision) / 100.0 as crm_probability,
    coalesce(s.is_closed, false)                            as crm_is_closed,
    coalesce(s.is_won, false)                               as crm_is_won,
    coalesce(s.is_active, true)                             as is_active,
    m.stage                                                 as stage,
    m.stage_order                                           as stage_order
from raw_salesforce.opportunity_stages s
left join model.stage_map m on m.source_system = 'salesforce' and m.source_stage = s.api_name
