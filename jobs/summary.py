"""The short summary a run prints: what landed, then the headline metrics."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from jobs.runner import RunOutcome
from pipeline_model.warehouse import Warehouse


def print_summary(outcome: RunOutcome, warehouse: Warehouse, console: Console | None = None) -> None:
    console = console or Console()
    landed = RichTable(title="Records synced", show_edge=False)
    for name in ("stream", "this run", "in warehouse"):
        landed.add_column(name, justify="left" if name == "stream" else "right")
    for asset, rows in sorted(outcome.rows_by_asset.items()):
        if asset.startswith("raw_"):
            total = warehouse.fetch(f"select count(*) from {asset.replace('/', '.')}")[0][0]
            landed.add_row(asset.replace("/", "."), f"{rows:,}", f"{total:,}")
    console.print(landed)
    _print_query(console, warehouse, "Unified model: rows, and the source records they merge",
                 "select 'owners' as entity, count(*) as rows, sum(source_records) as source_records from model.owners "
                 "union all select 'accounts', count(*), sum(source_records) from model.accounts "
                 "union all select 'contacts', count(*), sum(source_records) from model.contacts "
                 "union all select 'deals', count(*), count(*) from model.deals "
                 "union all select 'activities', count(*), sum(source_records) from model.activities")
    _print_query(console, warehouse, "Activities matched to deals, by rule",
                 "select match_rule, count(*) as activities from model.deal_activities "
                 "group by match_rule order by count(*) desc")
    for asset, reason in sorted(outcome.warnings.items()):
        console.print(f"[yellow]warning:[/] {asset.replace('/', '.')} stopped early: {reason}")
    _print_query(console, warehouse, "Open pipeline by stage",
                 "select stage, open_deals, open_amount from metrics.pipeline_by_stage order by stage_order")
    _print_row(console, warehouse, "Win rate and deal size",
               "select won_deals, lost_deals, win_rate_by_count, win_rate_by_value, avg_won_deal_size "
               "from metrics.win_rates where slice_by = 'org'")
    _print_query(console, warehouse, "Average days in stage (completed spells)",
                 "select stage, completed_spells, avg_days_in_stage from metrics.time_in_stage "
                 "where slice_by = 'org' order by stage_order")
    _print_row(console, warehouse, "Sales cycle",
               "select closed_deals, avg_sales_cycle_days, avg_won_sales_cycle_days from metrics.sales_cycle "
               "where slice_by = 'org'")
    # Values from the CRMs are escaped: rich would read "[/]" in a stage name as markup, and fail.
    for system, currency, deals in warehouse.fetch(
            "select source_system, currency, deals from model.unconverted_amounts order by 1, 2"):
        currency = escape(str(currency))
        console.print(f"[yellow]warning:[/] {deals} {system} deal(s) in {currency} have no amount in the metrics: "
                      f"add a rate for {currency} under metrics.currency.rates in dealsync.yaml")
    unmapped = warehouse.fetch("select source_system, source_stage, deals from model.unmapped_stages")
    for system, stage, deals in unmapped:
        console.print(f"[yellow]warning:[/] {system} stage {escape(repr(stage))} ({deals} deals) is not mapped to "
                      f"the canonical ladder: add it under stages.{system} in dealsync.yaml")
    _print_rejected(console, warehouse)


REJECTED_SHOWN = 5


def rejected_lines(warehouse: Warehouse) -> list[str]:
    """One line per value that did not type (the first few), naming vendor, object, record and field."""
    if not warehouse.table_exists("model", "rejected_values"):
        return []
    rows = warehouse.fetch("select vendor, object_type, record_id, field, value, problem from model.rejected_values "
                           "order by vendor, object_type, record_id, field")
    if not rows:
        return []
    lines = [f"{len(rows):,} value(s) could not be typed and are NULL in the model (model.rejected_values):"]
    lines += [f"  {vendor} {obj} {record} {field}: {value[:60]!r} is {problem}"
              for vendor, obj, record, field, value, problem in rows[:REJECTED_SHOWN]]
    if len(rows) > REJECTED_SHOWN:
        lines.append(f"  and {len(rows) - REJECTED_SHOWN:,} more")
    return lines


def _print_rejected(console: Console, warehouse: Warehouse) -> None:
    for i, line in enumerate(rejected_lines(warehouse)):
        console.print(("[yellow]warning:[/] " if i == 0 else "") + escape(line))


def _print_query(console: Console, warehouse: Warehouse, title: str, sql: str) -> None:
    rows = warehouse.fetch_dicts(sql)
    table = RichTable(title=title, show_edge=False)
    for name in (rows[0].keys() if rows else []):
        table.add_column(name, justify="left" if name in ("stage", "entity", "match_rule") else "right")
    for row in rows:
        table.add_row(*(_fmt(name, value) for name, value in row.items()))
    console.print(table)


def _print_row(console: Console, warehouse: Warehouse, title: str, sql: str) -> None:
    """A one-row metric table, shown as metric | value."""
    table = RichTable(title=title, show_edge=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for row in warehouse.fetch_dicts(sql):
        for name, value in row.items():
            table.add_row(name, _fmt(name, value))
    console.print(table)


def _fmt(name: str, value) -> str:
    if value is None:
        return "–"
    if name.startswith("win_rate"):
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return escape(str(value))
