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
-- Each rule only looks at the activities the rules before it left undecided: most CRM activities
-- carry their deal, so the account-wide rules (the expensive ones) see few.
with acts as materialized (
    select a.activity_id, a.occurred_at, d.deal_id as linked_deal_id
    from model.activities a left join model.deals d on d.deal_id = a.crm_deal_id
),
threads as materialized (
    select s.activity_id, r.thread_key
    from model.google_activity_sources s join model.activity_records r on r.record_id = s.record_id
    where r.thread_key is not null
    group by s.activity_id, r.thread_key
),
thread_links as materialized (
    select t.activity_id, mate_act.linked_deal_id as deal_id
    from threads t
    join acts own on own.activity_id = t.activity_id and own.linked_deal_id is null
    join threads mate on mate.thread_key = t.thread_key and mate.activity_id <> t.activity_id
    join acts mate_act on mate_act.activity_id = mate.activity_id and mate_act.linked_deal_id is not null
    group by t.activity_id, mate_act.linked_deal_id
),
-- The activities rules 1 and 2 did not decide, and the people on them.
pending as materialized (
    select a.activity_id, a.occurred_at
    from acts a
    where a.linked_deal_id is null
      and not exists (select 1 from thread_links x where x.activity_id = a.activity_id)
),
pending_people as materialized (
    select p.activity_id, p.contact_id, p.owner_id, p.account_id, p.is_internal
    from model.activity_participants p
    join pending x on x.activity_id = p.activity_id
),
customers as (
    select distinct activity_id, account_id from pending_people
    where not is_internal and account_id is not null
),
customer_contacts as (
    select distinct activity_id, contact_id from pending_people
    where not is_internal and contact_id is not null
),
reps as (
    select distinct activity_id, owner_id from pending_people where owner_id is not null
),
account_deals as materialized (
    select c.activity_id, d.deal_id, d.owner_id, d.closed_at, a.occurred_at
    from customers c
    join pending a on a.activity_id = c.activity_id
    join model.deals d on d.account_id = c.account_id and d.created_at <= a.occurred_at
),
open_deals as materialized (
    select activity_id, deal_id, owner_id from account_deals
    where closed_at is null or occurred_at <= closed_at + interval '7 days'
),
rep_open as materialized (
    select o.activity_id, o.deal_id
    from open_deals o join reps r on r.activity_id = o.activity_id and r.owner_id = o.owner_id
),
contact_open as (
    select distinct o.activity_id, o.deal_id
    from rep_open o
    join model.deal_contacts dc on dc.deal_id = o.deal_id
    join customer_contacts cc on cc.activity_id = o.activity_id and cc.contact_id = dc.contact_id
),
-- recent_deal only matters where no account deal was open.
last_moves as (
    select ad.activity_id, ad.deal_id, max(h.entered_at) as moved_at
    from account_deals ad
    join model.deal_stage_history h on h.deal_id = ad.deal_id and h.entered_at <= ad.occurred_at
    where not exists (select 1 from open_deals o where o.activity_id = ad.activity_id)
    group by ad.activity_id, ad.deal_id
),
recent as (
    select m.activity_id, m.deal_id
    from last_moves m
    join (select activity_id, max(moved_at) as moved_at from last_moves group by activity_id) latest
      on latest.activity_id = m.activity_id and latest.moved_at = m.moved_at
),
-- Candidates are distinct per (activity, rule, deal); rule 1 decides on its own.
candidates as materialized (
    select activity_id, 2 as precedence, deal_id from thread_links
    union all select activity_id, 3, deal_id from contact_open
    union all select activity_id, 4, deal_id from rep_open
    union all select activity_id, 5, deal_id from open_deals
    union all select activity_id, 6, deal_id from recent
),
deciding as materialized (
    select c.activity_id, c.precedence, c.deal_id
    from candidates c
    join (select activity_id, min(precedence) as precedence from candidates group by activity_id) first_rule
      on first_rule.activity_id = c.activity_id and first_rule.precedence = c.precedence
),
by_rule as (
    select d.activity_id, min(d.precedence) as precedence, count(*) as candidate_count,
           min(d.deal_id) as deal_id
    from deciding d group by d.activity_id
),
ambiguous as (
    select activity_id, string_agg(deal_id, ',' order by deal_id) as candidate_ids
    from deciding d
    where exists (select 1 from deciding o where o.activity_id = d.activity_id and o.deal_id <> d.deal_id)
    group by activity_id
),
has_customer as (
    select distinct activity_id from pending_people where not is_internal
),
rules(precedence, rule) as (
    values (2, 'thread'), (3, 'contact_open_deal'), (4, 'rep_open_deal'), (5, 'account_open_deal'),
           (6, 'recent_deal')
)
select
    a.activity_id                                           as activity_id,
    case when a.linked_deal_id is not null then a.linked_deal_id
         when b.candidate_count = 1 then b.deal_id end      as deal_id,
    case when a.linked_deal_id is not null then 'crm_link'
         when b.candidate_count = 1 then r.rule
         when b.candidate_count > 1 then 'ambiguous'
         when h.activity_id is null then 'internal_only'
         else 'no_match' end                                as match_rule,
    case when a.linked_deal_id is null and b.candidate_count > 1 then r.rule end as ambiguous_rule,
    case when a.linked_deal_id is not null then 1 else coalesce(b.candidate_count, 0) end as candidate_count,
    case when a.linked_deal_id is null and b.candidate_count > 1 then m.candidate_ids end as candidate_deal_ids
from acts a
left join by_rule b on b.activity_id = a.activity_id
left join rules r on r.precedence = b.precedence
left join ambiguous m on m.activity_id = a.activity_id
left join has_customer h on h.activity_id = a.activity_id
