-- CRM stages seen on deals or in their history that the stage mapping does not cover.
-- Their deals are kept, with stage NULL; add the stage to `stages.<crm>` in dealsync.yaml.
select source_system, source_stage, count(distinct deal_id) as deals
from (
    select source_system, source_stage, deal_id from model.deals where stage is null
    union all
    select source_system, source_stage, deal_id from model.deal_stage_history where stage is null
) u
where source_stage is not null
group by source_system, source_stage
