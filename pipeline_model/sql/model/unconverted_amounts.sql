-- Deals whose amount could not be converted to the reporting currency: their currency has no
-- rate in `metrics.currency.rates`. Their `amount` is NULL in every table (never added up in
-- the wrong currency) until the rate is configured.
select source_system, currency, count(*) as deals, sum(amount_original) as amount_original
from model.deals
where amount is null and amount_original is not null
group by source_system, currency
