with events as (
    -- Every recorded value of the tracked properties ('' is a cleared value); close dates as
    -- close_date_changes reads them.
    select 'hubspot:' || h.record_id as deal_id, h.changed_at, h.property, nullif(h.value, '') as value
    from raw_hubspot.deal_property_history h
    where h.property in ('dealstage', 'amount', 'hubspot_owner_id')
    union all
    select c.deal_id, c.changed_at, 'closedate', cast(c.close_date as varchar)
    from model.close_date_changes c
    where c.source_system = 'hubspot'
),
instants as (
    -- One row per instant anything changed; *_set counts the properties recorded then.
    select deal_id, changed_at,
           max(case when property = 'dealstage' then value end)         as source_stage,
           max(case when property = 'amount' then value end)            as amount,
           max(case when property = 'closedate' then value end)         as close_date,
           max(case when property = 'hubspot_owner_id' then value end)  as hubspot_owner_id,
           count(case when property = 'dealstage' then 1 end)           as stage_set,
           count(case when property = 'amount' then 1 end)              as amount_set,
           count(case when property = 'closedate' then 1 end)           as close_date_set,
           count(case when property = 'hubspot_owner_id' then 1 end)    as owner_set
    from events
    group by deal_id, changed_at
),
numbered as (
    -- Carrying a value forward without IGNORE NULLS (PostgreSQL has none): each instant belongs
    -- to the latest recorded value of each property, numbered by a running count.
    select i.*,
           sum(stage_set) over w as stage_n, sum(amount_set) over w as amount_n,
           sum(close_date_set) over w as close_date_n, sum(owner_set) over w as owner_n,
           sum(amount_set) over (partition by deal_id) as amounts,
           sum(close_date_set) over (partition by deal_id) as close_dates,
           sum(owner_set) over (partition by deal_id) as owners
    from instants i
    window w as (partition by deal_id order by changed_at rows between unbounded preceding and current row)
),
carried as (
    select deal_id, changed_at, amounts, close_dates, owners, stage_n,
           max(source_stage) over (partition by deal_id, stage_n)           as source_stage,
           max(amount) over (partition by deal_id, amount_n)                as amount,
           max(close_date) over (partition by deal_id, close_date_n)        as close_date,
           max(hubspot_owner_id) over (partition by deal_id, owner_n)       as hubspot_owner_id
    from numbered
),
versions as (
    select c.*,
           lead(c.changed_at) over w                                       as valid_to,
           lag(c.source_stage) over w                                      as previous_stage
    from carried c
    where c.stage_n > 0     -- a deal's versions begin with its first stage
    window w as (partition by c.deal_id order by c.changed_at)
),
spells as (
    select v.*,
           coalesce(v.previous_stage is null or v.previous_stage <> v.source_stage, false) as opens_spell,
           max(case when v.previous_stage is null or v.previous_stage <> v.source_stage then v.changed_at end)
               over (partition by v.deal_id order by v.changed_at
                     rows between unbounded preceding and current row) as stage_entered_at
    from versions v
),
live as materialized (
    -- The live deals with their current values, as model.deals has them (it reads this table, so
    -- cannot be read here). Materialised: joined per deal, not per version.
    select 'hubspot:' || d.id as deal_id, d.id as source_id, d.pipeline, w.canonical_id as owner_id,
           cast(d.amount as double precision) * fx.to_reporting as amount, cast(d.closedate as date) as close_date,
           fx.to_reporting
    from raw_hubspot.deals d
    cross join model.metric_settings cfg
    left join model.identity_map w on w.entity = 'owner' and w.record_id = 'hubspot:' || d.hubspot_owner_id
    left join model.currency_rates fx on fx.currency = upper(coalesce(d.deal_currency_code, cfg.default_currency))
    where not coalesce(d.archived, false)
      and d.id not in (select id from raw_hubspot.archived_records where object_type = 'deals')
)
select
    s.deal_id                                               as deal_id,
    'hubspot'                                               as source_system,
    d.source_id || ':' || cast(cast(extract(epoch from s.changed_at) * 1000 as bigint) as varchar) as source_id,
    s.changed_at                                            as valid_from,
    s.valid_to                                              as valid_to,
    s.source_stage                                          as source_stage,
    m.stage                                                 as stage,
    s.stage_entered_at                                      as stage_entered_at,
    s.opens_spell                                           as opens_spell,
    coalesce(st.is_closed, false)                           as is_closed,
    coalesce(st.is_won, false)                              as is_won,
    case when s.owners = 0 then d.owner_id else w.canonical_id end as owner_id,
    case when s.amounts = 0 then d.amount
         else cast(s.amount as double precision) * d.to_reporting end as amount,
    cs.crm_probability                                      as probability,
    case when s.close_dates = 0 then d.close_date else cast(s.close_date as date) end as close_date
from spells s
join live d on d.deal_id = s.deal_id
left join model.identity_map w on w.entity = 'owner' and w.record_id = 'hubspot:' || s.hubspot_owner_id
left join model.stage_map m on m.source_system = 'hubspot' and m.source_stage = s.source_stage
left join model.stages st on st.stage = m.stage
left join model.crm_stages cs on cs.source_system = 'hubspot' and cs.source_stage = s.source_stage
     and coalesce(cs.pipeline, '') = coalesce(d.pipeline, '')
