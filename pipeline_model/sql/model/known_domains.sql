-- Mail domains that identify no customer: the org's own (configured, plus every owner's email
-- domain) and personal mailbox providers (configured). Such a domain never links mail to an account.
select domain, min(kind) as kind
from (
    select domain, kind from model.mail_domains
    union all
    select distinct split_part(email, '@', 2), 'internal' from model.source_owners where email like '%@%'
) d
group by domain
