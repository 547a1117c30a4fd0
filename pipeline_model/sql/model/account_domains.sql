-- Each customer web domain and its account (internal and personal domains never map to one;
-- two accounts on one domain are one company, so the domain has one account).
select domain, min(account_id) as account_id
from model.accounts
where domain is not null and domain not in (select domain from model.known_domains)
group by domain
