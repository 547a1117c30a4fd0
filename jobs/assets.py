"""Dagster assets: raw streams -> unified model tables -> metric tables.

Asset keys mirror warehouse names (`raw_salesforce/opportunities`,
`model/deals`, `metrics/win_rates`), so the lineage graph is the warehouse map.
"""


import logging
from dataclasses import dataclass
from typing import Any, Callable

import dagster as dg

from connectors.errors import StreamsFailed
from connectors.google.source import google_source
from connectors.hubspot.source import hubspot_source
from connectors.hubspot.streams import raw_tables as hubspot_tables
from connectors.landing import land
from connectors.progress import StreamProgress
from connectors.report import PullReport
from connectors.salesforce.source import salesforce_source
from connectors.salesforce.streams import STREAMS as SALESFORCE_STREAMS
from jobs.resources import DealsyncConfigResource
from pipeline_model.migrations import migrate
from pipeline_model.privacy import PERSONAL, PSEUDONYMS, drop_pseudonyms, pseudonym_rows, write_pseudonyms
from pipeline_model.snapshot import READS as SNAPSHOT_READS, TABLE as SNAPSHOT_TABLE, record_snapshot
from pipeline_model.tables import (CONFIG_TABLES, METRIC_TABLES, MODEL_TABLES, SOURCES, Table, build, build_config_tables,
                                   plaintext_selects)


log = logging.getLogger("dealsync.build")


def _key(qualified: str) -> dg.AssetKey:
    return dg.AssetKey(qualified.split("."))


@dataclass(frozen=True)
class Pull:
    """One vendor's pull: its config block, raw dataset, tables and dlt source."""

    vendor: str
    tables: tuple[str, ...]
    source: Callable[..., Any]       # (settings, report) -> dlt source

    @property
    def dataset(self) -> str:
        return f"raw_{self.vendor}"


PULLS = (
    Pull("salesforce", tuple(s.name for s in SALESFORCE_STREAMS),
         lambda settings, report: salesforce_source(settings, report=report)),
    Pull("hubspot", tuple(hubspot_tables()), lambda settings, report: hubspot_source(settings)),
    Pull("google", ("gmail_messages", "gmail_full_syncs", "calendar_events", "calendar_full_syncs"),
         lambda settings, report: google_source(settings)),
)


def _pull_asset(pull: Pull) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name=f"{pull.vendor}_pull",
        specs=[dg.AssetSpec(_key(f"{pull.dataset}.{t}"), group_name=pull.dataset, skippable=True,
                            description=f"{pull.vendor} {t}, landed by dlt", kinds={pull.vendor, "dlt"})
               for t in pull.tables],
    )
    def _pull(context: dg.AssetExecutionContext, dealsync: DealsyncConfigResource):
        settings = getattr(dealsync.load().sources, pull.vendor)
        if settings is None:
            context.log.info(f"sources.{pull.vendor} is not configured: nothing to pull")
            return
        report = PullReport()
        warehouse = dealsync.warehouse()
        # A factory, so that a stream the vendor refuses for good can be left out and the rest landed.
        result = land(lambda: pull.source(settings, report), warehouse.dlt_destination(), pull.dataset,
                      pipeline_name=f"dealsync_{pull.vendor}", loader_file_format=warehouse.loader_file_format,
                      workdir_root=dealsync.scratch_dir(), progress=StreamProgress(pull.vendor))
        log.info(f"{pull.vendor}: landed {sum(result.rows_by_table.values()):,} rows in "
                 f"{len(result.rows_by_table)} tables")
        for table in pull.tables:
            if table in result.refused:
                continue
            metadata = {"rows_landed": dg.MetadataValue.int(result.rows_by_table.get(table, 0))}
            if table in report.stopped_early:
                metadata["stopped_early"] = dg.MetadataValue.text(report.stopped_early[table])
                context.log.warning(f"{pull.dataset}.{table} stopped early: {report.stopped_early[table]}")
            yield dg.MaterializeResult(asset_key=_key(f"{pull.dataset}.{table}"), metadata=metadata)
        if result.refused:
            # The other streams landed; the step (and the run) still fails, naming each refusal.
            raise StreamsFailed(pull.vendor, list(result.refused.values()))

    return _pull


@dg.multi_asset(
    name="stage_tables",
    specs=[dg.AssetSpec(_key(t.qualified), group_name="model",
                        description="Canonical stage ladder, each CRM's mapping onto it and the mail domain "
                                    "lists, from config")
           for t in CONFIG_TABLES],
)
def stage_tables(context: dg.AssetExecutionContext, dealsync: DealsyncConfigResource):
    config = dealsync.load()
    warehouse = dealsync.warehouse()
    # The first model step: tables dealsync owns are upgraded before anything is built on them.
    applied = migrate(warehouse)
    if applied:
        context.log.info(f"schema migrations applied: {applied}; warehouse at schema {applied[-1]}")
    counts = build_config_tables(warehouse, config.stage_mappings(), config.identity.mail_domains(),
                                 config.metrics.row(), config.metrics.currency.rows())
    for qualified, rows in counts.items():
        yield dg.MaterializeResult(asset_key=_key(qualified), metadata={"rows": dg.MetadataValue.int(rows)})


@dg.asset(key=_key(SNAPSHOT_TABLE), group_name="history", kinds={"sql"},
          deps=[_key(t) for t in SNAPSHOT_READS],
          description="One row per deal per day: finished days as they ended (from the CRMs' history), "
                      "today as the run saw it")
def daily_pipeline_snapshot(dealsync: DealsyncConfigResource) -> dg.MaterializeResult:
    counts = record_snapshot(dealsync.warehouse(), dealsync.load().metrics.snapshot_backfill_days)
    return dg.MaterializeResult(metadata={name: dg.MetadataValue.int(n) for name, n in counts.items()})


_OWNERS = "model.source_owners"     # their addresses stay plaintext: the pseudonyms read them


def _pseudonyms_asset(table: Table, sources: tuple[str, ...]) -> dg.AssetsDefinition:
    target = PSEUDONYMS[table.qualified]

    @dg.asset(key=_key(target), deps=[_key(r) for r in sorted({*table.reads_for(sources), _OWNERS})],
              group_name="raw_privacy", kinds={"python"},
              description=f"The keyed pseudonym (HMAC-SHA256) of each contact name and email {table.qualified} "
                          "reads, for privacy.personal_fields: hash or drop (no table in keep mode)")
    def _pseudonyms(dealsync: DealsyncConfigResource) -> dg.MaterializeResult:
        config = dealsync.load()
        mode = config.privacy.personal_fields
        warehouse = dealsync.warehouse()
        rows = []
        with warehouse.session():
            if mode == "keep":
                drop_pseudonyms(warehouse, target)
            else:
                rows = pseudonym_rows(warehouse, table.qualified, plaintext_selects(table, config.configured_sources()),
                                      mode, dealsync.privacy_key())
                write_pseudonyms(warehouse, target, rows)
        log.info(f"{target}: {len(rows):,} pseudonyms (personal_fields: {mode})")
        # Not "rows": the run summary lists raw_* assets with rows as synced streams.
        return dg.MaterializeResult(metadata={"pseudonyms": dg.MetadataValue.int(len(rows))})

    return _pseudonyms


def _sql_asset(table: Table, sources: tuple[str, ...]) -> dg.AssetsDefinition:
    extra = [PSEUDONYMS[table.qualified]] if table.qualified in PERSONAL else []

    @dg.asset(key=_key(table.qualified), deps=[_key(r) for r in [*table.reads_for(sources), *extra]],
              group_name=table.schema, description=table.description, kinds={"sql"})
    def _build(dealsync: DealsyncConfigResource) -> dg.MaterializeResult:
        config = dealsync.load()
        rows = build(dealsync.warehouse(), table, config.configured_sources(), config.privacy.personal_fields)
        log.info(f"built {table.qualified}: {rows:,} rows")
        return dg.MaterializeResult(metadata={"rows": dg.MetadataValue.int(rows)})

    return _build


def raw_assets(sources: tuple[str, ...] = SOURCES) -> list[dg.AssetsDefinition]:
    """The pulls of the configured sources only: a pull that yields nothing would make Dagster
    skip every table downstream of it."""
    return [_pull_asset(p) for p in PULLS if p.vendor in sources]


def model_assets(sources: tuple[str, ...] = SOURCES) -> list[dg.AssetsDefinition]:
    return [stage_tables, *(_pseudonyms_asset(t, sources) for t in MODEL_TABLES if t.qualified in PERSONAL),
            *(_sql_asset(t, sources) for t in MODEL_TABLES), daily_pipeline_snapshot]


def metric_assets(sources: tuple[str, ...] = SOURCES) -> list[dg.AssetsDefinition]:
    return [_sql_asset(t, sources) for t in METRIC_TABLES]
