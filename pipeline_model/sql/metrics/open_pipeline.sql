-- Open pipeline sliced by stage, owner, the owner's manager, CRM and pipeline: sum any columns
-- over the slices you do not need. Only slices with open deals appear.
select
    d.stage                                                 as stage,
    d.stage_order                                           as stage_order,
    d.owner_id                                              as owner_id,
    o.manager_id                                            as manager_id,
    d.source_system                                         as source_system,
    d.pipeline                                              as pipeline,
    count(*)                                                as open_deals,
    coalesce(sum(d.amount), 0)                              as open_amount,
    coalesce(sum(d.amount * d.probability), 0)              as weighted_amount,
    coalesce(sum(d.amount * w.win_rate), 0)                 as history_weighted_amount
from model.deals d
left join model.owners o on o.owner_id = d.owner_id
left join metrics.stage_win_rates w on w.stage = d.stage and w.slice_by = 'org'
where not d.is_closed
group by d.stage, d.stage_order, d.owner_id, o.manager_id, d.source_system, d.pipeline
