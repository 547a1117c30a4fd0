-- One row per stage spell: a deal's continuous stay in one CRM stage, from either CRM.
-- Consecutive records with the same stage collapse into one spell; a move backwards or a skip
-- is kept as it happened (a new spell in the stage the deal went to). The current spell has
-- exited_at and duration_days NULL.
with rows_ as (
    select c.*,
           lag(c.source_stage) over (partition by c.deal_id order by c.changed_at, c.source_id) as previous_stage
    from model.stage_changes c
),
starts as (
    select deal_id, source_system, source_id, source_stage, changed_at as entered_at
    from rows_
    where previous_stage is null or previous_stage <> source_stage
),
spells as (
    select s.*,
           lead(entered_at) over (partition by deal_id order by entered_at, source_id) as exited_at,
           row_number() over (partition by deal_id order by entered_at, source_id) as spell_number
    from starts s
)
select
    s.deal_id                                               as deal_id,
    s.source_system                                         as source_system,
    s.source_id                                             as source_id,
    s.spell_number                                          as spell_number,
    s.source_stage                                          as source_stage,
    m.stage                                                 as stage,
    m.stage_order                                           as stage_order,
    s.entered_at                                            as entered_at,
    s.exited_at                                             as exited_at,
    cast(extract(epoch from (s.exited_at - s.entered_at)) as double precision) / 86400.0 as duration_days,
    s.exited_at is null                                     as is_current
from spells s
left join model.stage_map m
       on m.source_system = s.source_system and m.source_stage = s.source_stage
