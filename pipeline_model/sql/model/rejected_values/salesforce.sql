-- Salesforce types every field itself and refuses a write that does not fit (an Amount of
-- "$1,200"), so its records bring no untyped values: no rows, the same columns.
select cast(null as varchar) as vendor, cast(null as varchar) as object_type, cast(null as varchar) as record_id,
       cast(null as varchar) as field, cast(null as varchar) as value, cast(null as varchar) as problem
where 1 = 0
