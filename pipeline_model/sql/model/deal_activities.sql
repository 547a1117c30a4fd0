-- One row per activity: the deal it belongs to, and the rule that decided. Rules, in precedence:
--   crm_link           the CRM record links it to a live deal (a logged mail or meeting carries it)
--   thread             another message of its mail thread has a crm_link
--   contact_open_deal  a deal a customer participant is a contact of (see deal_contacts), open
--                      when the activity happened (or closed at most 7 days before), owned by an
--                      internal participant
--   rep_open_deal      a deal of a customer participant's account, open then, owned by an
--                      internal participant
--   account_open_deal  a deal of a customer participant's account, open then
--   recent_deal        the customer accounts' deal whose stage last changed before the activity
-- The first rule that finds any deal decides: one deal is a match; several are recorded as
-- 'ambiguous' (deal_id NULL, candidates listed), never guessed. Activities with no customer
-- participant are 'internal_only'; the rest 'no_match'.
with acts as (
    select activity_id, occurred_at, crm_deal_id from model.activities
),
linked as (
    select a.activity_id, a.crm_deal_id as deal_id
    from acts a join model.deals d on d.deal_id = a.crm_deal_id
),
threads as (
    select distinct s.activity_id, r.thread_key
    from model.activity_sources s join model.activity_records r on r.record_id = s.record_id
    where r.thread_key is not null
),
thread_links as (
    select distinct t.activity_id, l.deal_id
    from threads t
    join threads mate on mate.thread_key = t.thread_key and mate.activity_id <> t.activity_id
    join linked l on l.activity_id = mate.activity_id
),
customers as (
    select distinct activity_id, account_id from model.activity_participants
    where not is_internal and account_id is not null
),
customer_contacts as (
    select distinct activity_id, contact_id from model.activity_participants
    where not is_internal and contact_id is not null
),
reps as (
    select distinct activity_id, owner_id from model.activity_participants where owner_id is not null
),
account_deals as (
    select c.activity_id, d.deal_id, d.owner_id, d.created_at, d.closed_at, a.occurred_at
    from customers c
    join acts a on a.activity_id = c.activity_id
    join model.deals d on d.account_id = c.account_id and d.created_at <= a.occurred_at
),
open_deals as (
    select * from account_deals
    where closed_at is null or occurred_at <= closed_at + interval '7 days'
),
rep_open as (
    select o.activity_id, o.deal_id
    from open_deals o join reps r on r.activity_id = o.activity_id and r.owner_id = o.owner_id
),
contact_open as (
    select o.activity_id, o.deal_id
    from rep_open o
    join model.deal_contacts dc on dc.deal_id = o.deal_id
    join customer_contacts cc on cc.activity_id = o.activity_id and cc.contact_id = dc.contact_id
),
last_moves as (
    select ad.activity_id, ad.deal_id, max(h.entered_at) as moved_at
    from account_deals ad
    join model.deal_stage_history h on h.deal_id = ad.deal_id and h.entered_at <= ad.occurred_at
    group by ad.activity_id, ad.deal_id
),
recent as (
    select activity_id, deal_id
    from (select activity_id, deal_id,
                 rank() over (partition by activity_id order by moved_at desc) as recency
          from last_moves) m
    where recency = 1
),
candidates as (
    select activity_id, 1 as precedence, 'crm_link' as rule, deal_id from linked
    union all select activity_id, 2, 'thread', deal_id from thread_links
    union all select activity_id, 3, 'contact_open_deal', deal_id from contact_open
    union all select activity_id, 4, 'rep_open_deal', deal_id from rep_open
    union all select activity_id, 5, 'account_open_deal', deal_id from open_deals
    union all select activity_id, 6, 'recent_deal', deal_id from recent
),
by_rule as (
    select activity_id, precedence, rule, count(distinct deal_id) as candidate_count,
           min(deal_id) as deal_id, string_agg(distinct deal_id, ',' order by deal_id) as candidate_ids,
           row_number() over (partition by activity_id order by precedence) as decides
    from candidates
    group by activity_id, precedence, rule
)
select
    a.activity_id                                           as activity_id,
    case when b.candidate_count = 1 then b.deal_id end      as deal_id,
    case when b.candidate_count = 1 then b.rule
         when b.candidate_count > 1 then 'ambiguous'
         when not exists (select 1 from model.activity_participants p
                          where p.activity_id = a.activity_id and not p.is_internal) then 'internal_only'
         else 'no_match' end                                as match_rule,
    case when b.candidate_count > 1 then b.rule end         as ambiguous_rule,
    coalesce(b.candidate_count, 0)                          as candidate_count,
    case when b.candidate_count > 1 then b.candidate_ids end as candidate_deal_ids
from acts a
left join by_rule b on b.activity_id = a.activity_id and b.decides = 1
