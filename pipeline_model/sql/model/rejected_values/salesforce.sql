-- Salesforce types every field itself and refuses a write that does not fit (an Amount of
-- "$1,200"), so its records bring no untyped values: no rows, the same columns. It reads the
-- opportunities all the same, so that it is built after the Salesforce pull, like every table.
select cast(null as varchar) as vendor, cast(null as varchar) as object_type, o.id as record_id,
       cast(null as varchar) as field, cast(null as varchar) as value, cast(null as varchar) as problem
from raw_salesforce.opportunities o
where 1 = 0
