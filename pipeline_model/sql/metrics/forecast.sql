-- What will close in the current and the next period (metrics.period: quarter or month):
-- open deals whose close date falls in the period, weighted two ways side by side: by each
-- deal's CRM probability and by the org's own stage-to-won rate; plus what is already won.
with periods as (
    select 'current' as period, current_period_start as period_start, next_period_start as period_end
    from model.metric_settings
    union all
    select 'next', next_period_start, next_period_end from model.metric_settings
)
select
    p.period                                                as period,
    p.period_start                                          as period_start,
    p.period_end                                            as period_end,
    count(case when not d.is_closed then 1 end)             as open_deals,
    coalesce(sum(case when not d.is_closed then d.amount end), 0) as open_amount,
    coalesce(sum(case when not d.is_closed then d.amount * d.probability end), 0) as crm_weighted_amount,
    coalesce(sum(case when not d.is_closed then d.amount * w.win_rate end), 0) as history_weighted_amount,
    coalesce(sum(case when d.is_won then d.amount end), 0)  as won_amount
from periods p
left join model.deals d
       on (not d.is_closed and d.close_date >= p.period_start and d.close_date < p.period_end)
       or (d.is_won and d.closed_at >= cast(p.period_start as timestamp with time zone)
           and d.closed_at < cast(p.period_end as timestamp with time zone))
left join metrics.stage_win_rates w on w.stage = d.stage and w.slice_by = 'org'
group by p.period, p.period_start, p.period_end
