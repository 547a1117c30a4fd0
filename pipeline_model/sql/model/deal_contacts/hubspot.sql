with pairs as (
    select 'hubspot:' || a.from_id as deal_id, 'hubspot:' || a.to_id as contact_record_id, 1 as rank_
    from raw_hubspot.associations a
    where a.from_type = 'deals' and a.to_type = 'contacts' and a.to_id is not null
    union all
    select crm_deal_record_id, crm_contact_record_id, 2
    from model.activity_records
    where source_system = 'hubspot' and crm_deal_record_id is not null and crm_contact_record_id is not null
)
select p.deal_id as deal_id, m.canonical_id as contact_id,
       case min(p.rank_) when 1 then 'crm_association' else 'crm_activity' end as link
from pairs p
join model.deals d on d.deal_id = p.deal_id
join model.identity_map m on m.entity = 'contact' and m.record_id = p.contact_record_id
group by p.deal_id, m.canonical_id
