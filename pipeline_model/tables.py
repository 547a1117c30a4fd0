"""The warehouse tables the model builds, and how each is built.

Unified tables live in schema `model`, metric tables in `metrics`. Each SQL table
is either one file `sql/<schema>/<name>.sql` holding a SELECT, or a folder
`sql/<schema>/<name>/` holding one SELECT per source (`salesforce.sql`,
`hubspot.sql`, `google.sql`) with the same columns: the table is the union of the
parts whose source is configured. What a table reads is read off its SQL, so
lineage cannot drift from the code. Two small tables come from configuration
instead of SQL: `model.stages` (the canonical ladder), `model.stage_map` (each
CRM stage onto that ladder) and `model.mail_domains` (internal and personal domains).
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterable, Iterator

from pipeline_model.privacy import PERSONAL, PSEUDONYMS, Mode, substituted
from pipeline_model.stages import Stage
from pipeline_model.warehouse import Warehouse

SQL_DIR = Path(__file__).parent / "sql"
SOURCES = ("salesforce", "hubspot", "google")
_TABLE_REF = re.compile(r"\b((?:raw_[a-z]+|model|metrics|history)\.[a-z_]+)\b")


@dataclass(frozen=True)
class Part:
    """One SELECT of a table: the whole table, or one source's rows of it."""

    path: Path
    source: str | None          # None: the table is not split by source

    @cached_property
    def select(self) -> str:
        return self.path.read_text()

    @cached_property
    def reads(self) -> tuple[str, ...]:
        refs = _TABLE_REF.findall(re.sub(r"--[^\n]*", "", self.select))
        return tuple(sorted(set(refs)))


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    # A view costs nothing to rebuild and is computed by whoever reads it: right for a plain
    # projection of raw tables, wrong for anything its readers would recompute at a price.
    view: bool = False

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @cached_property
    def parts(self) -> tuple[Part, ...]:
        single = SQL_DIR / self.schema / f"{self.name}.sql"
        if single.exists():
            return (Part(single, None),)
        folder = SQL_DIR / self.schema / self.name
        return tuple(Part(folder / f"{s}.sql", s) for s in SOURCES if (folder / f"{s}.sql").exists())

    def parts_for(self, sources: Iterable[str]) -> tuple[Part, ...]:
        wanted = set(sources)
        return tuple(p for p in self.parts if p.source is None or p.source in wanted)

    def reads_for(self, sources: Iterable[str] = SOURCES) -> tuple[str, ...]:
        """Qualified names of the tables this one reads when `sources` are configured."""
        return tuple(sorted({r for p in self.parts_for(sources) for r in p.reads if r != self.qualified}))

    @property
    def reads(self) -> tuple[str, ...]:
        return self.reads_for(SOURCES)

    @cached_property
    def description(self) -> str:
        """The leading comment of the table's (first) SQL file."""
        lines = [ln[2:].strip() for ln in self.parts[0].select.splitlines() if ln.startswith("--")]
        return " ".join(lines)


CONFIG_TABLES = (Table("model", "stages"), Table("model", "stage_map"), Table("model", "mail_domains"),
                 Table("model", "metric_settings"), Table("model", "currency_rates"))

# Views among the model tables: stage_changes, activity_records and activity_sources only rename
# and union rows; materialising their millions of rows cost more than their readers' projections.
MODEL_VIEWS = ("stage_changes", "activity_records", "activity_sources")

# In build order: each table reads only tables before it.
MODEL_TABLES = tuple(Table("model", n, view=n in MODEL_VIEWS) for n in (
    "source_owners", "source_accounts", "source_contacts", "known_domains", "identity_map",
    "owners", "accounts", "account_domains", "contacts",
    "crm_stages", "stage_changes", "close_date_changes", "deal_versions", "deal_stage_history", "deals",
    "deal_slices",
    "unmapped_stages",
    "unconverted_amounts",
    "rejected_values",
    "activity_records", "deal_contacts", "google_activity_sources", "activity_sources", "activities",
    "activity_participants", "deal_activities"))

METRIC_TABLES = tuple(Table("metrics", n) for n in (
    "stage_win_rates", "pipeline_by_stage", "open_pipeline", "funnel", "lost_at_stage", "time_in_stage",
    "win_rates", "bookings", "pipeline_created", "sales_cycle", "stalled_deals", "forecast", "pipeline_velocity",
    "deal_activity", "rep_activity", "pipeline_trend"))


class MissingInput(RuntimeError):
    """A table the SQL reads does not exist yet."""


def build(warehouse: Warehouse, table: Table, sources: Iterable[str] = SOURCES, privacy: Mode = "keep") -> int:
    """(Re)build one SQL table (or view) atomically from the parts of the configured `sources`;
    returns its row count. `privacy`: the personal_fields mode (pipeline_model.privacy); other
    than keep, the personal columns of a table in PERSONAL read their pseudonyms."""
    sources = tuple(sources)
    parts = table.parts_for(sources)
    if not parts:
        raise MissingInput(f"{table.qualified} cannot be built: none of its sources "
                           f"({', '.join(p.source for p in table.parts)}) is configured")
    with warehouse.session():
        _check_inputs(warehouse, table, parts, privacy)
        with _explained_missing_column(table, parts):
            warehouse.run_in_transaction(_rebuild(warehouse, table, parts, sources, privacy))
        return warehouse.fetch(f"select count(*) from {table.qualified}")[0][0]


def _rebuild(warehouse: Warehouse, table: Table, parts: tuple[Part, ...], sources: tuple[str, ...],
             privacy: Mode = "keep") -> list[str]:
    """The statements that replace `table`, for one transaction: the views that read it are
    dropped before it and recreated after it (see _dependent_views)."""
    dependents = _dependent_views(warehouse, table, sources)
    return [f"create schema if not exists {warehouse.schema(table.schema)}",
            *(f"drop view {v.qualified}" for v in reversed(dependents)),
            _drop(warehouse, table),
            *_create(warehouse, table, parts, privacy),
            *(s for v in dependents for s in _create(warehouse, v, v.parts_for(sources), privacy)),
            # PostgreSQL plans the next tables' queries from statistics a new table lacks: without
            # them it guesses, and picks slow plans (and JIT compiles queries over a few rows).
            *([f"analyze {table.qualified}"] if warehouse.is_postgres and not table.view else [])]


# How DuckDB and PostgreSQL say a query names a column its table lacks.
_MISSING_COLUMN = re.compile(r'does not have a column named|Referenced column .* not found|column \S+ does not exist')


@contextmanager
def _explained_missing_column(table: Table, parts: tuple[Part, ...]) -> Iterator[None]:
    """A raw table without a column this release reads is one the next sync has not reached yet
    (dlt adds a newly read field's column when it lands the stream): say so, not only the SQL error."""
    try:
        yield
    except Exception as exc:
        raw = sorted({r for p in parts for r in p.reads if r.startswith("raw_")})
        if not raw or not _MISSING_COLUMN.search(str(exc)):
            raise
        raise MissingInput(
            f"{table.qualified} cannot be built: {str(exc).strip().splitlines()[0]}. It reads {', '.join(raw)}; "
            "a column this release reads appears there with the next sync of that source: "
            "run the sync (or `dealsync run`) first") from None


def _create(warehouse: Warehouse, table: Table, parts: tuple[Part, ...], privacy: Mode = "keep") -> list[str]:
    selects = [_select(warehouse, table, p, privacy) for p in parts]
    if table.view:
        return [f"create view {table.qualified} as\n{_union(warehouse, selects)}"]
    first, *others = selects
    statements = [f"create table {table.qualified} as\n{first}"]
    if others:
        columns = ", ".join(_columns(warehouse, first))
        statements += [f"insert into {table.qualified} ({columns})\nselect {columns} from (\n{select}\n) part"
                       for select in others]
    return statements


def _select(warehouse: Warehouse, table: Table, part: Part, privacy: Mode) -> str:
    """A part's SELECT; for a table holding personal values and a mode other than keep, with
    each of them replaced by its pseudonym (or NULL), never the plaintext."""
    personal = PERSONAL.get(table.qualified)
    if privacy == "keep" or not personal:
        return part.select
    return substituted(part.select, _columns(warehouse, part.select), personal, privacy, PSEUDONYMS[table.qualified])


def plaintext_selects(table: Table, sources: Iterable[str]) -> list[str]:
    """The SELECTs of a table's parts as written (the values pipeline_model.privacy maps)."""
    return [p.select for p in table.parts_for(sources)]


def _dependent_views(warehouse: Warehouse, table: Table, sources: tuple[str, ...]) -> list[Table]:
    """The existing model views that read `table`, directly or through each other, readers last.
    PostgreSQL will not drop what a view reads, so a rebuild drops them first and recreates them
    in the same transaction (DuckDB does not track views; it runs the same statements)."""
    found: list[Table] = []
    for view in MODEL_TABLES:      # in build order: a view's readers come after it
        reads = view.reads_for(sources)
        if (view.view and (table.qualified in reads or any(v.qualified in reads for v in found))
                and _is_view(warehouse, view)):
            found.append(view)
    return found


def _drop(warehouse: Warehouse, table: Table) -> str:
    """Drop whatever holds the name now: a release may have turned a table into a view or back."""
    return f"drop {'view' if _is_view(warehouse, table) else 'table'} if exists {table.qualified}"


def _is_view(warehouse: Warehouse, table: Table) -> bool:
    """Whether the warehouse holds `table` as a view now (an earlier release may have stored it)."""
    return warehouse.table_type(table.schema, table.name) == "VIEW"


def _union(warehouse: Warehouse, selects: list[str]) -> str:
    """The parts' SELECTs as one, matched by column name."""
    if len(selects) == 1:
        return selects[0]
    columns = ", ".join(_columns(warehouse, selects[0]))
    return "\nunion all\n".join(f"select {columns} from (\n{s}\n) part" for s in selects)


def build_config_tables(warehouse: Warehouse, mappings: dict[str, dict[str, Stage]],
                        mail_domains: list[tuple[str, str]], metric_settings: tuple,
                        currency_rates: list[tuple[str, float]]) -> dict[str, int]:
    """Write the canonical ladder, every CRM's stage mapping, the mail domain lists, the
    metrics' reference time and periods (`MetricSettings.row()`) and the currency rates."""
    ladder = [(s.value, s.order, s.is_closed, s.is_won) for s in Stage]
    mapping = [(system, crm_stage, stage.value, stage.order)
               for system, stages in sorted(mappings.items()) for crm_stage, stage in stages.items()]
    warehouse.run_in_transaction([
        f"create schema if not exists {warehouse.schema('model')}",
        "drop table if exists model.stages",
        "create table model.stages (stage varchar primary key, stage_order integer not null,"
        " is_closed boolean not null, is_won boolean not null)",
        ("insert into model.stages values (?, ?, ?, ?)", ladder),
        "drop table if exists model.stage_map",
        "create table model.stage_map (source_system varchar not null, source_stage varchar not null,"
        " stage varchar not null, stage_order integer not null, primary key (source_system, source_stage))",
        ("insert into model.stage_map values (?, ?, ?, ?)", mapping),
        "drop table if exists model.mail_domains",
        "create table model.mail_domains (domain varchar primary key, kind varchar not null)",
        ("insert into model.mail_domains values (?, ?)", mail_domains),
        "drop table if exists model.metric_settings",
        "create table model.metric_settings (as_of timestamp with time zone not null, period varchar not null,"
        " current_period_start date not null, next_period_start date not null, next_period_end date not null,"
        " stalled_percentile double precision not null, reporting_currency varchar not null,"
        " default_currency varchar not null)",
        ("insert into model.metric_settings values (?, ?, ?, ?, ?, ?, ?, ?)", [metric_settings]),
        "drop table if exists model.currency_rates",
        "create table model.currency_rates (currency varchar primary key, to_reporting double precision not null)",
        ("insert into model.currency_rates values (?, ?)", currency_rates),
    ])
    return {"model.stages": len(ladder), "model.stage_map": len(mapping), "model.mail_domains": len(mail_domains),
            "model.metric_settings": 1, "model.currency_rates": len(currency_rates)}


def _columns(warehouse: Warehouse, select: str) -> list[str]:
    """The column names a SELECT yields, without running it over the data."""
    return warehouse.column_names(f"select * from (\n{select}\n) part where 1 = 0")


def _check_inputs(warehouse: Warehouse, table: Table, parts: tuple[Part, ...], privacy: Mode = "keep") -> None:
    reads = {r for p in parts for r in p.reads if r != table.qualified}
    if privacy != "keep" and table.qualified in PERSONAL:
        reads.add(PSEUDONYMS[table.qualified])
    missing = sorted(ref for ref in reads if not warehouse.table_exists(*ref.split(".")))
    if missing:
        raise MissingInput(f"{table.qualified} cannot be built: {', '.join(missing)} does not exist yet "
                           "(run a sync first; a stream that has never returned a row has no table)")
