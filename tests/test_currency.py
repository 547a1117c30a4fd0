"""Deals in another currency are converted to the reporting currency with the configured rate;
a currency without a rate leaves the amount empty and is reported, never added up as is."""

from __future__ import annotations

import yaml
from hubspot import HubSpot
from rich.console import Console

from jobs.config import load_config, open_warehouse
from jobs.runner import run_job
from jobs.summary import print_summary
from tests.conftest import running_sandbox, write_config


def test_amounts_are_converted_and_unknown_currencies_reported(tmp_path, monkeypatch, instance):
    with running_sandbox(tmp_path, monkeypatch, seed=5, crm="hubspot") as box:
        client = HubSpot(access_token=box.credentials["DEALSYNC_SANDBOX_HUBSPOT_TOKEN"], host=box.hubspot.url,
                         ssl_ca_cert=str(box.ca.ca_path))
        created = client.crm.deals.batch_api.create({"inputs": [
            {"properties": {"dealname": "Euro deal", "dealstage": "qualifiedtobuy", "amount": "1000",
                            "deal_currency_code": "EUR"}},
            {"properties": {"dealname": "Pound deal", "dealstage": "qualifiedtobuy", "amount": "500",
                            "deal_currency_code": "GBP"}}]})
        euro, pound = (f"hubspot:{d.id}" for d in created.results)
        config = write_config(box, tmp_path, only="hubspot", requests_per_second=200,
                              search_requests_per_second=200)
        settings = yaml.safe_load(config.read_text())
        settings["metrics"]["currency"] = {"reporting": "USD", "rates": {"EUR": 1.1}}
        config.write_text(yaml.safe_dump(settings))
        outcome = run_job(config, instance=instance)
        assert outcome.success, outcome.error

    warehouse = open_warehouse(load_config(config))
    deals = {r["deal_id"]: r for r in warehouse.fetch_dicts("select * from model.deals")}
    assert (deals[euro]["currency"], deals[euro]["amount_original"]) == ("EUR", 1000.0)
    assert abs(deals[euro]["amount"] - 1100.0) < 1e-9
    assert (deals[pound]["currency"], deals[pound]["amount"], deals[pound]["amount_original"]) == ("GBP", None, 500.0)
    usd = [d for d in deals.values() if d["currency"] == "USD"]
    assert len(usd) > 100 and all(d["amount"] == d["amount_original"] for d in usd)
    assert warehouse.fetch("select source_system, currency, deals, amount_original from model.unconverted_amounts") \
        == [("hubspot", "GBP", 1, 500.0)]
    open_amount = warehouse.fetch("select sum(open_amount) from metrics.pipeline_by_stage")[0][0]
    expected = sum(d["amount"] or 0 for d in deals.values() if not d["is_closed"] and d["stage"])
    assert abs(open_amount - expected) < 1e-6      # the GBP deal adds nothing, the EUR one 1,100

    console = Console(record=True, width=200)
    print_summary(outcome, warehouse, console)
    assert "1 hubspot deal(s) in GBP" in console.export_text()
