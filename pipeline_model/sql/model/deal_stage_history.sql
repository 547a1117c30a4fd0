-- One row per stage spell: a deal's continuous stay in one CRM stage, from either CRM: its
-- versions (deal_versions) that moved it to another stage. Records that leave the stage unchanged
-- open no spell; a move backwards or a skip is kept as it happened (a new spell in the stage the
-- deal went to). The current spell has exited_at and duration_days NULL.
with spells as (
    select v.deal_id, v.source_system, v.source_id, v.source_stage, v.valid_from as entered_at,
           lead(v.valid_from) over w as exited_at,
           row_number() over w as spell_number
    from model.deal_versions v
    where v.opens_spell
    window w as (partition by v.deal_id order by v.valid_from, v.source_id)
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
