-- One row per recorded close-date value of a live deal, from either CRM: Salesforce
-- OpportunityHistory rows (written for stage and amount edits too, each carrying the close date
-- of the moment) and HubSpot's closedate property history (an ISO date or datetime, or epoch
-- milliseconds; the UTC date is kept). Consecutive records with the same close date collapse
-- into the first of them, so each row after a deal's first is a change; records without a close
-- date are skipped. Deleted and archived deals are excluded, as in stage_changes.
with records as (
    select h.opportunity_id, h.id as source_id, cast(h.close_date as date) as close_date,
           h.created_date as changed_at,
           lag(cast(h.close_date as date)) over (partition by h.opportunity_id
                                                 order by h.created_date, h.id) as previous_close_date
    from raw_salesforce.opportunity_history h
    join raw_salesforce.opportunities o
      on o.id = h.opportunity_id and not coalesce(o.is_deleted, false)
    where not coalesce(h.is_deleted, false)
      and h.close_date is not null
)
select
    'salesforce:' || r.opportunity_id                       as deal_id,
    'salesforce'                                            as source_system,
    r.source_id                                             as source_id,
    r.close_date                                            as close_date,
    r.changed_at                                            as changed_at
from records r
where r.previous_close_date is null or r.previous_close_date <> r.close_date
