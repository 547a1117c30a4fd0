-- One row per recorded stage value of a live deal, as each CRM logs it: Salesforce
-- OpportunityHistory rows (also written for amount or close-date edits), HubSpot's dealstage
-- property history, for analysts: the model's spells (`deal_stage_history`) come from the same
-- records through `deal_versions`.
select
    'salesforce:' || h.opportunity_id                       as deal_id,
    'salesforce'                                            as source_system,
    h.id                                                    as source_id,
    h.stage_name                                            as source_stage,
    h.created_date                                          as changed_at
from raw_salesforce.opportunity_history h
join raw_salesforce.opportunities o
  on o.id = h.opportunity_id and not coalesce(o.is_deleted, false)
where not coalesce(h.is_deleted, false)
