-- Activity per live deal, as of model.metric_settings.as_of: emails, meetings and calls matched
-- to it (model.deal_activities; cancelled meetings and future ones not counted as done), the
-- last touch, days since then, the next scheduled meeting, and the deal's age. Void activities
-- (model.activities.is_void: meetings that did not take place, call tasks still open) never count.
with settings as (
    select as_of from model.metric_settings
),
acts as (
    select da.deal_id, a.activity_type, a.occurred_at, a.status
    from model.deal_activities da
    join model.activities a on a.activity_id = da.activity_id
    where da.deal_id is not null and not a.is_void
),
per_deal as (
    select a.deal_id,
           count(case when a.activity_type = 'email' and a.occurred_at <= s.as_of then 1 end) as emails,
           count(case when a.activity_type = 'meeting' and a.occurred_at <= s.as_of then 1 end) as meetings,
           count(case when a.activity_type = 'call' and a.occurred_at <= s.as_of then 1 end) as calls,
           max(case when a.activity_type in ('email', 'meeting', 'call') and a.occurred_at <= s.as_of
                    then a.occurred_at end) as last_activity_at,
           min(case when a.activity_type = 'meeting' and a.occurred_at > s.as_of then a.occurred_at end)
               as next_meeting_at
    from acts a cross join settings s
    group by a.deal_id
)
select
    d.deal_id                                               as deal_id,
    d.owner_id                                              as owner_id,
    d.stage                                                 as stage,
    d.is_closed                                             as is_closed,
    coalesce(p.emails, 0)                                   as emails,
    coalesce(p.meetings, 0)                                 as meetings,
    coalesce(p.calls, 0)                                    as calls,
    p.last_activity_at                                      as last_activity_at,
    cast(extract(epoch from (s.as_of - p.last_activity_at)) as double precision) / 86400.0 as days_since_last_touch,
    p.next_meeting_at                                       as next_meeting_at,
    cast(extract(epoch from (coalesce(d.closed_at, s.as_of) - d.created_at)) as double precision) / 86400.0
                                                            as deal_age_days
from model.deals d
cross join settings s
left join per_deal p on p.deal_id = d.deal_id
