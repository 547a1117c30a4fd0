-- Every source record of every activity: which activity it is a copy of, and why (folded_by:
-- see google_activity_sources). A CRM record is always its own activity ('own_record',
-- activity_id = record_id); only Gmail and Calendar copies fold. A view: at 10M CRM records,
-- storing their rows again cost more than projecting them when read.
select record_id as activity_id, record_id, source_system, source_id, 'own_record' as folded_by
from model.activity_records
where source_system in ('salesforce', 'hubspot')
union all
select activity_id, record_id, source_system, source_id, folded_by
from model.google_activity_sources
