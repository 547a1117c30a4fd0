-- Gmail passes headers on as the sender wrote them: a Date header that is no date.
select 'google' as vendor, 'gmail_messages' as object_type, m.mailbox || ':' || m.id as record_id,
       'Date' as field, m.rejected_date as value, 'not a date-time' as problem
from raw_google.gmail_messages m
where m.rejected_date is not null and not coalesce(m.deleted, false)
