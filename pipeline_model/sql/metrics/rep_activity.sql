-- Activity per owner and calendar month: emails, meetings and calls they own (CRM owner, or the
-- internal sender/organizer of mail and meetings), and how many of them are tied to a deal. Void
-- activities (model.activities.is_void: meetings that did not take place, call tasks still open)
-- never count.
select
    a.owner_id                                              as owner_id,
    cast(date_trunc('month', a.occurred_at) as date)        as activity_month,
    count(case when a.activity_type = 'email' then 1 end)   as emails,
    count(case when a.activity_type = 'meeting' then 1 end) as meetings,
    count(case when a.activity_type = 'call' then 1 end)    as calls,
    count(da.deal_id)                                       as deal_activities
from model.activities a
left join model.deal_activities da on da.activity_id = a.activity_id
where a.owner_id is not null and a.activity_type in ('email', 'meeting', 'call')
  and not a.is_void
  and a.occurred_at <= (select as_of from model.metric_settings)
group by a.owner_id, cast(date_trunc('month', a.occurred_at) as date)
