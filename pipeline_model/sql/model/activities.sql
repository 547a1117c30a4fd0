-- One row per sales activity: emails and calls (CRM tasks), meetings (CRM events), other tasks.
-- deal_id / contact_id are the CRM's own links (WhatId / WhoId) when they point at a deal / contact.
select
    'salesforce:' || t.id                                   as activity_id,
    'salesforce'                                            as source_system,
    t.id                                                    as source_id,
    case t.task_subtype when 'Email' then 'email'
                        when 'Call'  then 'call'
                        else 'task' end                     as activity_type,
    t.subject                                               as subject,
    coalesce(cast(t.activity_date as timestamp with time zone), t.created_date) as occurred_at,
    'salesforce:' || t.owner_id                             as owner_id,
    case when t.what_id like '006%' then 'salesforce:' || t.what_id end as deal_id,
    case when t.who_id  like '003%' then 'salesforce:' || t.who_id  end as contact_id,
    t.created_date                                          as created_at
from raw_salesforce.tasks t
where not coalesce(t.is_deleted, false)
union all
select
    'salesforce:' || e.id, 'salesforce', e.id, 'meeting', e.subject,
    coalesce(e.start_date_time, e.activity_date_time, e.created_date),
    'salesforce:' || e.owner_id,
    case when e.what_id like '006%' then 'salesforce:' || e.what_id end,
    case when e.who_id  like '003%' then 'salesforce:' || e.who_id  end,
    e.created_date
from raw_salesforce.events e
where not coalesce(e.is_deleted, false)
