"""Dagster assets: raw streams -> unified model tables -> metric tables.

Asset keys mirror warehouse names (`raw_salesforce/opportunities`,
`model/deals`, `metrics/win_rates`), so the lineage graph is the warehouse map.
"""


import dagster as dg

from connectors.landing import land
from connectors.report import PullReport
from connectors.salesforce.source import salesforce_source
from connectors.salesforce.streams import STREAMS as SALESFORCE_STREAMS
from jobs.resources import DealsyncConfigResource
from pipeline_model.tables import CONFIG_TABLES, METRIC_TABLES, MODEL_TABLES, Table, build, build_stage_tables


def _key(qualified: str) -> dg.AssetKey:
    return dg.AssetKey(qualified.split("."))


SALESFORCE_DATASET = "raw_salesforce"


@dg.multi_asset(
    name="salesforce_pull",
    specs=[dg.AssetSpec(_key(f"{SALESFORCE_DATASET}.{s.name}"), group_name="raw_salesforce",
                        description=f"Salesforce {s.sobject}, incremental on {s.cursor}",
                        kinds={"salesforce", "duckdb"})
           for s in SALESFORCE_STREAMS],
    pool="salesforce_api",
)
def salesforce_pull(context: dg.AssetExecutionContext, dealsync: DealsyncConfigResource):
    """Pull every Salesforce stream into raw_salesforce with dlt."""
    config = dealsync.load()
    if config.sources.salesforce is None:
        raise dg.Failure("sources.salesforce is not configured in the dealsync config")
    report = PullReport()
    result = land(salesforce_source(config.sources.salesforce, report=report),
                  dealsync.warehouse().dlt_destination(), SALESFORCE_DATASET, pipeline_name="dealsync_salesforce")
    for stream in SALESFORCE_STREAMS:
        rows = result.rows_by_table.get(stream.name, 0)
        metadata = {"rows_landed": dg.MetadataValue.int(rows)}
        if stream.name in report.stopped_early:
            metadata["stopped_early"] = dg.MetadataValue.text(report.stopped_early[stream.name])
            context.log.warning(f"{SALESFORCE_DATASET}.{stream.name} stopped early: "
                                f"{report.stopped_early[stream.name]}")
        yield dg.MaterializeResult(asset_key=_key(f"{SALESFORCE_DATASET}.{stream.name}"), metadata=metadata)


@dg.multi_asset(
    name="stage_tables",
    specs=[dg.AssetSpec(_key(t.qualified), group_name="model",
                        description="Canonical stage ladder and each CRM's mapping onto it, from config")
           for t in CONFIG_TABLES],
)
def stage_tables(dealsync: DealsyncConfigResource):
    config = dealsync.load()
    counts = build_stage_tables(dealsync.warehouse(), config.stage_mappings())
    for qualified, rows in counts.items():
        yield dg.MaterializeResult(asset_key=_key(qualified), metadata={"rows": dg.MetadataValue.int(rows)})


def _sql_asset(table: Table) -> dg.AssetsDefinition:
    @dg.asset(key=_key(table.qualified), deps=[_key(r) for r in table.reads], group_name=table.schema,
              description=table.description, kinds={"sql", "duckdb"})
    def _build(dealsync: DealsyncConfigResource) -> dg.MaterializeResult:
        rows = build(dealsync.warehouse(), table)
        return dg.MaterializeResult(metadata={"rows": dg.MetadataValue.int(rows)})

    return _build


RAW_ASSETS = [salesforce_pull]
MODEL_ASSETS = [stage_tables, *(_sql_asset(t) for t in MODEL_TABLES)]
METRIC_ASSETS = [_sql_asset(t) for t in METRIC_TABLES]
