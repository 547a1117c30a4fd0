"""A warehouse holding the metric tables `dealsync report` reads, filled with plausible rows
(or none): the report's tests need every section drawn, or every section empty, without
waiting on a sync."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from pipeline_model.warehouse import Warehouse, WarehouseSettings

OPEN = ["prospecting", "qualification", "needs_analysis", "proposal", "negotiation"]

# The metric tables' contract: name -> its columns' definitions (float8 is a double on both backends).
# Sliced tables lead with slice_by, slice_value: the report reads their org rows only, so their
# rows here put a sales rep's slice (other figures) before the org's.
SLICE = "slice_by text, slice_value text, "
CONTRACT: dict[str, str] = {
    "pipeline_by_stage": "stage text, stage_order int, open_deals int, open_amount float8, weighted_amount float8, "
                         "history_weighted_amount float8",
    "funnel": SLICE + "stage text, stage_order int, deals_reached int, deals_advanced int, conversion_to_next float8, "
              "conversion_to_won float8",
    "lost_at_stage": SLICE + "stage text, stage_order int, lost_deals int, lost_amount float8",
    "time_in_stage": SLICE + "stage text, stage_order int, completed_spells int, avg_days_in_stage float8, "
                     "median_days_in_stage float8, p75_days_in_stage float8",
    "stalled_deals": "deal_id text, name text, owner_id text, owner_name text, source_system text, stage text, "
                     "amount float8, days_in_stage int, stage_p75_days float8, close_date date, reason text, "
                     "detail text",
    "forecast": "period text, period_start date, period_end date, open_deals int, open_amount float8, "
                "crm_weighted_amount float8, history_weighted_amount float8, won_amount float8",
    "pipeline_trend": "snapshot_date date, stage text, stage_order int, open_deals int, open_amount float8, "
                      "weighted_amount float8",
    "win_rates": SLICE + "won_deals int, lost_deals int, won_amount float8, lost_amount float8, win_rate_by_count float8, "
                 "win_rate_by_value float8, avg_won_deal_size float8, median_won_deal_size float8",
    "sales_cycle": SLICE + "closed_deals int, avg_sales_cycle_days float8, won_deals int, avg_won_sales_cycle_days float8",
    "pipeline_velocity": SLICE + "open_deals int, win_rate float8, avg_won_deal_size float8, avg_won_cycle_days float8, "
                         "velocity_per_day float8",
    "open_pipeline": "stage text, stage_order int, owner_id text, manager_id text, source_system text, pipeline text, "
                     "open_deals int, open_amount float8, weighted_amount float8, history_weighted_amount float8",
}
# Reps' names: the report labels owners with model.owners.
OWNERS = "owner_id text, name text, manager_id text"


def contract_warehouse(path: Path, empty: bool = False) -> Warehouse:
    """A DuckDB warehouse at `path` with every contract table (no rows when `empty`)."""
    return fill_contract(Warehouse(WarehouseSettings(path=path)), empty)


def fill_contract(warehouse: Warehouse, empty: bool = False) -> Warehouse:
    """(Re)create every contract table in `warehouse`, DuckDB or PostgreSQL."""
    statements: list = ["create schema if not exists metrics", "create schema if not exists model",
                        "drop table if exists model.owners", f"create table model.owners ({OWNERS})"]
    if not empty:
        statements.append(("insert into model.owners values (?, ?, ?)", [list(r) for r in _owners()]))
    for table, columns in CONTRACT.items():
        statements += [f"drop table if exists metrics.{table}", f"create table metrics.{table} ({columns})"]
        rows = [] if empty else ROWS[table]()
        if rows:
            marks = ", ".join("?" for _ in columns.split(","))
            statements.append((f"insert into metrics.{table} values ({marks})", [list(r) for r in rows]))
    warehouse.run_in_transaction(statements)
    return warehouse


def _pipeline() -> list[tuple]:
    counts = [25, 25, 17, 6, 6]
    amounts = [1312117.0, 896581.0, 686235.0, 181615.0, 197036.0]
    probs = [0.1, 0.2, 0.4, 0.6, 0.8]
    history = [0.08, 0.15, 0.3, 0.5, 0.7]
    return [(s, i + 1, counts[i], amounts[i], amounts[i] * probs[i], amounts[i] * history[i])
            for i, s in enumerate(OPEN)]


def _sliced(rows: list[tuple], rep_rows: list[tuple]) -> list[tuple]:
    """One rep's rows (slice 'owner'), then the org's."""
    return [*(("owner", "own_1", *r) for r in rep_rows), *(("org", None, *r) for r in rows)]


def _funnel_rows(reached: list[int]) -> list[tuple]:
    stages = [*OPEN, "closed_won"]
    rows = []
    for i, s in enumerate(stages):
        advanced = reached[i + 1] if i + 1 < len(reached) else None
        rows.append((s, i + 1, reached[i], advanced, advanced / reached[i] if advanced else None,
                     reached[-1] / reached[i]))
    return rows


def _funnel() -> list[tuple]:
    return _sliced(_funnel_rows([409, 300, 210, 150, 120, 108]), _funnel_rows([40, 30, 21, 15, 12, 10]))


def _lost() -> list[tuple]:
    lost = [90, 80, 55, 40, 36]
    return _sliced([(s, i + 1, lost[i], lost[i] * 41000.0) for i, s in enumerate(OPEN)],
                   [(s, i + 1, 1, 9000.0) for i, s in enumerate(OPEN)])


def _time() -> list[tuple]:
    avg = [12.5, 18.2, 24.0, 15.3, 9.8]
    return _sliced([(s, i + 1, 100 + i, avg[i], avg[i] * 0.8, avg[i] * 1.4) for i, s in enumerate(OPEN)],
                   [(s, i + 1, 3, 40.0, 30.0, 50.0) for i, s in enumerate(OPEN)])


def _stalled_flags() -> list[tuple]:
    reasons = ["stuck_in_stage", "close_date_passed", "close_date_slipped"]
    return [(f"salesforce:006{i:06d}", f"Acme {i} <renewal> & co", f"own_{i % 7}", f"Rep {i % 7}",
             "salesforce" if i % 2 else "hubspot", OPEN[i % 5], 1000.0 * ((i * 37) % 97 + 1) if i % 11 else None,
             10 + i, 14.0, date(2025, 1, 1) + timedelta(days=i), reasons[i % 3], f"detail {i}") for i in range(60)]


def _stalled() -> list[tuple]:
    """60 deals, the largest (Acme 34, $95,000) flagged for two reasons."""
    rows = _stalled_flags()
    return [*rows, (*rows[34][:10], "stuck_in_stage", "in negotiation for 44 days; p75 is 14 days")]


def _forecast() -> list[tuple]:
    return [("current", date(2025, 11, 1), date(2025, 11, 30), 30, 900000.0, 420000.0, 350000.0, 210000.0),
            ("next", date(2025, 12, 1), date(2025, 12, 31), 22, 700000.0, 280000.0, 240000.0, 0.0)]


def _trend() -> list[tuple]:
    rows = []
    for day in range(10):
        for i, (s, _, deals, amount, weighted, _) in enumerate(_pipeline()):
            rows.append((date(2025, 11, 1) + timedelta(days=day), s, i + 1, deals + day % 3,
                         amount * (1 + day / 50), weighted))
    return rows


def _owners() -> list[tuple]:
    """Seven reps, own_0 (Grace Hopper) managing the others; one of them has an awkward name."""
    return [("own_0", "Grace Hopper", None), ("own_1", "Ada Lovelace", "own_0"), ("own_2", "Rep <2> & co", "own_0"),
            *((f"own_{i}", f"Rep {i}", "own_0") for i in range(3, 7))]


def _velocity() -> list[tuple]:
    """The org, the seven reps, and the deals without an owner."""
    reps = [(f"own_{i}", 3 + i, 0.2 + i / 50, 20000.0 + 1000 * i, 60.0 + i, 100.0 * (i + 1)) for i in range(7)]
    return [("org", None, 79, 0.264, 29505.0, 71.9, 8600.0), *(("owner", *r) for r in reps),
            ("owner", None, 2, None, None, None, None)]


def _open_pipeline() -> list[tuple]:
    """Each rep's open deals in two stages; own_4 has the most open pipeline."""
    return [(s, OPEN.index(s) + 1, f"own_{i}", None if i == 0 else "own_0", "salesforce", None, 2,
             50000.0 * (i + 1) * (3 if i == 4 else 1), 10000.0 * (i + 1), 9000.0 * (i + 1))
            for i in range(7) for s in ("prospecting", "proposal")]


ROWS = {
    "pipeline_by_stage": _pipeline, "funnel": _funnel, "lost_at_stage": _lost, "time_in_stage": _time,
    "stalled_deals": _stalled, "forecast": _forecast, "pipeline_trend": _trend,
    "win_rates": lambda: _sliced([(108, 301, 3186539.0, 12604044.0, 0.264, 0.2018, 29504.99, 24000.0)],
                                 [(10, 30, 90000.0, 1200000.0, 0.25, 0.07, 9000.0, 8000.0)]),
    "sales_cycle": lambda: _sliced([(409, 62.4, 108, 71.9)], [(40, 120.0, 10, 130.0)]),
    "pipeline_velocity": _velocity, "open_pipeline": _open_pipeline,
}
