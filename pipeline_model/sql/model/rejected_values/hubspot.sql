-- Every value a CRM sent that dealsync could not type (an amount "$1,200.50", a close date
-- "31/12/2026"): one row per record and field, with the vendor's text (its first 200 characters).
-- The typed column holds NULL for it, in raw and in the model; a row lasts as long as the record
-- holds the value. A field "<property> (history)" is a past value of a deal.
select 'hubspot' as vendor, r.object_type, r.record_id, r.field, r.value, r.problem
from (
select 'companies' as object_type, id as record_id, 'createdate' as field, rejected_createdate as value,
       'not a date-time' as problem
from raw_hubspot.companies where rejected_createdate is not null
union all
select 'contacts' as object_type, id as record_id, 'createdate' as field, rejected_createdate as value,
       'not a date-time' as problem
from raw_hubspot.contacts where rejected_createdate is not null
union all
select 'deals' as object_type, id as record_id, 'amount' as field, rejected_amount as value,
       'not a number' as problem
from raw_hubspot.deals where rejected_amount is not null
union all
select 'deals' as object_type, id as record_id, 'closedate' as field, rejected_closedate as value,
       'not a date-time' as problem
from raw_hubspot.deals where rejected_closedate is not null
union all
select 'deals' as object_type, id as record_id, 'hs_is_closed' as field, rejected_hs_is_closed as value,
       'not true or false' as problem
from raw_hubspot.deals where rejected_hs_is_closed is not null
union all
select 'deals' as object_type, id as record_id, 'hs_is_closed_won' as field, rejected_hs_is_closed_won as value,
       'not true or false' as problem
from raw_hubspot.deals where rejected_hs_is_closed_won is not null
union all
select 'deals' as object_type, id as record_id, 'hs_deal_stage_probability' as field, rejected_hs_deal_stage_probability as value,
       'not a number' as problem
from raw_hubspot.deals where rejected_hs_deal_stage_probability is not null
union all
select 'deals' as object_type, id as record_id, 'createdate' as field, rejected_createdate as value,
       'not a date-time' as problem
from raw_hubspot.deals where rejected_createdate is not null
union all
select 'deals' as object_type, record_id, property || ' (history)' as field, rejected_value as value,
       case when property in ('amount') then 'not a number' else 'not a date-time' end as problem
from raw_hubspot.deal_property_history where rejected_value is not null
union all
select 'emails' as object_type, id as record_id, 'hs_timestamp' as field, rejected_hs_timestamp as value,
       'not a date-time' as problem
from raw_hubspot.emails where rejected_hs_timestamp is not null
union all
select 'emails' as object_type, id as record_id, 'createdate' as field, rejected_createdate as value,
       'not a date-time' as problem
from raw_hubspot.emails where rejected_createdate is not null
union all
select 'meetings' as object_type, id as record_id, 'hs_timestamp' as field, rejected_hs_timestamp as value,
       'not a date-time' as problem
from raw_hubspot.meetings where rejected_hs_timestamp is not null
union all
select 'meetings' as object_type, id as record_id, 'hs_meeting_start_time' as field, rejected_hs_meeting_start_time as value,
       'not a date-time' as problem
from raw_hubspot.meetings where rejected_hs_meeting_start_time is not null
union all
select 'meetings' as object_type, id as record_id, 'hs_meeting_end_time' as field, rejected_hs_meeting_end_time as value,
       'not a date-time' as problem
from raw_hubspot.meetings where rejected_hs_meeting_end_time is not null
union all
select 'meetings' as object_type, id as record_id, 'createdate' as field, rejected_createdate as value,
       'not a date-time' as problem
from raw_hubspot.meetings where rejected_createdate is not null
union all
select 'calls' as object_type, id as record_id, 'hs_timestamp' as field, rejected_hs_timestamp as value,
       'not a date-time' as problem
from raw_hubspot.calls where rejected_hs_timestamp is not null
union all
select 'calls' as object_type, id as record_id, 'hs_call_duration' as field, rejected_hs_call_duration as value,
       'not a number' as problem
from raw_hubspot.calls where rejected_hs_call_duration is not null
union all
select 'calls' as object_type, id as record_id, 'createdate' as field, rejected_createdate as value,
       'not a date-time' as problem
from raw_hubspot.calls where rejected_createdate is not null
union all
select 'tasks' as object_type, id as record_id, 'hs_timestamp' as field, rejected_hs_timestamp as value,
       'not a date-time' as problem
from raw_hubspot.tasks where rejected_hs_timestamp is not null
union all
select 'tasks' as object_type, id as record_id, 'createdate' as field, rejected_createdate as value,
       'not a date-time' as problem
from raw_hubspot.tasks where rejected_createdate is not null
) r
