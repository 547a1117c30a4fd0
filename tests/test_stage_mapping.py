"""A CRM stage the mapping lacks is reported and its deals are kept, never dropped."""

from __future__ import annotations

import yaml
from rich.console import Console

from jobs.config import load_config
from jobs.runner import run_job
from jobs.summary import print_summary
from pipeline_model.warehouse import Warehouse


def test_unmapped_stage_is_reported_and_its_deals_kept(sandbox, sandbox_config, instance):
    config = yaml.safe_load(sandbox_config.read_text())
    del config["stages"]["salesforce"]["Negotiation/Review"]
    sandbox_config.write_text(yaml.safe_dump(config))

    outcome = run_job(sandbox_config, instance=instance)
    assert outcome.success, outcome.error
    warehouse = Warehouse(load_config(sandbox_config).warehouse)

    in_negotiation = {d.id for d in sandbox.org.deals(sandbox.salesforce.now)
                      if not d.deleted and any(s.stage == "Negotiation/Review" for s in d.spells)}
    assert warehouse.fetch("select source_stage, deals from model.unmapped_stages") == \
        [("Negotiation/Review", len(in_negotiation))]
    kept = warehouse.fetch("select count(*) from model.deals where source_stage = 'Negotiation/Review' "
                           "and stage is null")[0][0]
    assert kept == sum(1 for d in sandbox.org.deals(sandbox.salesforce.now)
                       if not d.deleted and d.stage == "Negotiation/Review") > 0
    console = Console(record=True, width=200)
    print_summary(outcome, warehouse, console)
    text = console.export_text()
    assert "stage 'Negotiation/Review'" in text and "not mapped" in text
