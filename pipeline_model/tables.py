"""The warehouse tables the model builds, and how each is built.

Unified tables live in schema `model`, metric tables in `metrics`. Each SQL table
is one file under `sql/<schema>/<name>.sql` holding a SELECT; what it reads is
read off the SQL itself, so lineage cannot drift from the code. Two small tables
come from configuration instead of SQL: `model.stages` (the canonical ladder) and
`model.stage_map` (each CRM stage onto that ladder).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from pipeline_model.stages import Stage
from pipeline_model.warehouse import Warehouse

SQL_DIR = Path(__file__).parent / "sql"
_TABLE_REF = re.compile(r"\b((?:raw_[a-z]+|model|metrics)\.[a-z_]+)\b")


@dataclass(frozen=True)
class Table:
    schema: str
    name: str

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def sql_path(self) -> Path:
        return SQL_DIR / self.schema / f"{self.name}.sql"

    @cached_property
    def select(self) -> str:
        return self.sql_path.read_text()

    @cached_property
    def reads(self) -> tuple[str, ...]:
        """Qualified names of the tables this one's SQL reads."""
        refs = _TABLE_REF.findall(re.sub(r"--[^\n]*", "", self.select))
        return tuple(sorted({r for r in refs if r != self.qualified}))

    @cached_property
    def description(self) -> str:
        """The SQL file's leading comment."""
        lines = [ln[2:].strip() for ln in self.select.splitlines() if ln.startswith("--")]
        return " ".join(lines)


CONFIG_TABLES = (Table("model", "stages"), Table("model", "stage_map"))

MODEL_TABLES = tuple(Table("model", n) for n in (
    "owners", "accounts", "contacts", "deal_stage_history", "deals", "activities", "unmapped_stages"))

METRIC_TABLES = tuple(Table("metrics", n) for n in (
    "pipeline_by_stage", "win_rates", "time_in_stage", "sales_cycle"))


class MissingInput(RuntimeError):
    """A table the SQL reads does not exist yet."""


def build(warehouse: Warehouse, table: Table) -> int:
    """(Re)build one SQL table atomically; returns its row count."""
    _check_inputs(warehouse, table)
    warehouse.run_in_transaction([
        f"create schema if not exists {table.schema}",
        f"drop table if exists {table.qualified}",
        f"create table {table.qualified} as\n{table.select}",
    ])
    return warehouse.fetch(f"select count(*) from {table.qualified}")[0][0]


def build_stage_tables(warehouse: Warehouse, mappings: dict[str, dict[str, Stage]]) -> dict[str, int]:
    """Write the canonical ladder and every CRM's stage mapping from configuration."""
    ladder = [(s.value, s.order, s.is_closed, s.is_won) for s in Stage]
    mapping = [(system, crm_stage, stage.value, stage.order)
               for system, stages in sorted(mappings.items()) for crm_stage, stage in stages.items()]
    warehouse.run_in_transaction([
        "create schema if not exists model",
        "drop table if exists model.stages",
        "create table model.stages (stage varchar primary key, stage_order integer not null,"
        " is_closed boolean not null, is_won boolean not null)",
        ("insert into model.stages values (?, ?, ?, ?)", ladder),
        "drop table if exists model.stage_map",
        "create table model.stage_map (source_system varchar not null, source_stage varchar not null,"
        " stage varchar not null, stage_order integer not null, primary key (source_system, source_stage))",
        ("insert into model.stage_map values (?, ?, ?, ?)", mapping),
    ])
    return {"model.stages": len(ladder), "model.stage_map": len(mapping)}


def _check_inputs(warehouse: Warehouse, table: Table) -> None:
    missing = [ref for ref in table.reads if not warehouse.table_exists(*ref.split("."))]
    if missing:
        raise MissingInput(f"{table.qualified} cannot be built: {', '.join(missing)} does not exist yet "
                           "(run a sync first; a stream that has never returned a row has no table)")
