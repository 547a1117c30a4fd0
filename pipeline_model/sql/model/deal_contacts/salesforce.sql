-- One row per (deal, contact) pair a CRM ties together: a HubSpot deal-contact association, or a
-- CRM activity logged against both the deal and the contact. link says which (first seen wins).
select r.crm_deal_record_id as deal_id, m.canonical_id as contact_id, 'crm_activity' as link
from model.activity_records r
join model.deals d on d.deal_id = r.crm_deal_record_id
join model.identity_map m on m.entity = 'contact' and m.record_id = r.crm_contact_record_id
where r.source_system = 'salesforce'
group by r.crm_deal_record_id, m.canonical_id
