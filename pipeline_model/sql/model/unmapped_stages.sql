-- CRM stages seen on deals or in their history that the stage mapping does not cover.
-- Their deals are kept, with stage NULL; add the stage to `stages.<crm>` in dealsync.yaml.
select 'salesforce' as source_system, u.source_stage, count(distinct u.opportunity_id) as deals
from (
    select stage_name as source_stage, id as opportunity_id
    from raw_salesforce.opportunities where not coalesce(is_deleted, false)
    union all
    select stage_name, opportunity_id
    from raw_salesforce.opportunity_history where not coalesce(is_deleted, false)
) u
left join model.stage_map m on m.source_system = 'salesforce' and m.source_stage = u.source_stage
where m.stage is null and u.source_stage is not null
group by u.source_stage
