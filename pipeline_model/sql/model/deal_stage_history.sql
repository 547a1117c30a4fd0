-- One row per stage spell: a deal's continuous stay in one CRM stage.
-- Built from OpportunityHistory: consecutive rows with the same stage (amount or close-date
-- edits) collapse into one spell; a move backwards opens a new spell. The current spell
-- has exited_at NULL and duration_days NULL.
with rows_ as (
    select h.opportunity_id, h.stage_name, h.created_date, h.id,
           lag(h.stage_name) over (partition by h.opportunity_id
                                   order by h.created_date, h.id) as previous_stage
    from raw_salesforce.opportunity_history h
    join raw_salesforce.opportunities o
      on o.id = h.opportunity_id and not coalesce(o.is_deleted, false)
    where not coalesce(h.is_deleted, false)
),
starts as (
    select opportunity_id, stage_name, created_date as entered_at, id as first_history_id
    from rows_
    where previous_stage is null or previous_stage <> stage_name
),
spells as (
    select s.*,
           lead(entered_at) over (partition by opportunity_id order by entered_at, first_history_id) as exited_at,
           row_number() over (partition by opportunity_id order by entered_at, first_history_id) as spell_number
    from starts s
)
select
    'salesforce:' || s.opportunity_id                       as deal_id,
    'salesforce'                                            as source_system,
    s.first_history_id                                      as source_id,
    s.spell_number                                          as spell_number,
    s.stage_name                                            as source_stage,
    m.stage                                                 as stage,
    m.stage_order                                           as stage_order,
    s.entered_at                                            as entered_at,
    s.exited_at                                             as exited_at,
    cast(extract(epoch from (s.exited_at - s.entered_at)) as double precision) / 86400.0 as duration_days,
    s.exited_at is null                                     as is_current
from spells s
left join model.stage_map m
       on m.source_system = 'salesforce' and m.source_stage = s.stage_name
