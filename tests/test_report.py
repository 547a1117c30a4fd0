"""`dealsync report`: the page a sales leader opens, checked in a real browser.

Headless Chromium loads the written file (no network), runs plotly.js under a virtual-time
budget (timers and animation frames run without waiting on a clock), and dumps the DOM it
drew; every chart must have drawn marks into its SVG, and the page must log nothing to the
console (this Chromium logs every console message at one level, so any message fails).
"""

from __future__ import annotations

import pytest

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import dagster as dg

from jobs.cli import main
from jobs.config import load_config, open_warehouse
from jobs.report import STALLED_SHOWN, build_report, write_report
from jobs.runner import run_job
from pipeline_model.warehouse import Warehouse, WarehouseSettings
from tests.conftest import running_sandbox, unthrottled_config, warehouse_backend
from tests.report_fixtures import contract_warehouse, fill_contract

# Each chart's div id, and the metric table it draws.
CHARTS = {"chart-funnel": "funnel", "chart-pipeline": "pipeline_by_stage", "chart-conversion": "funnel",
          "chart-lost": "lost_at_stage", "chart-time": "time_in_stage", "chart-forecast": "forecast",
          "chart-trend": "pipeline_trend"}
SECTIONS = ("headline", "funnel", "pipeline", "conversion", "time", "forecast", "stalled", "team", "trend")
NO_DATA_HTML = "no data yet: run <code>dealsync run</code> first"


@pytest.mark.slow
def test_report_of_a_synced_sandbox_renders_every_chart_in_chromium(tmp_path, monkeypatch, capsys):
    warehouse_path = tmp_path / "warehouse.duckdb"
    with running_sandbox(tmp_path, monkeypatch, crm="both", google=True) as box, \
            dg.DagsterInstance.ephemeral() as instance:
        config = unthrottled_config(box, tmp_path / "dealsync.yaml", warehouse_path)
        outcome = run_job(config, instance=instance)
    assert outcome.success, outcome.error

    out = tmp_path / "out" / "report.html"
    assert main(["report", "--config", str(config), "--warehouse", str(warehouse_path), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out.resolve())
    page = out.read_text()
    _assert_self_contained(page)

    warehouse = open_warehouse(load_config(config, warehouse_path))
    drawable = {chart for chart, table in CHARTS.items() if _has_rows(warehouse, table)}
    assert drawable, "the chain built none of the metric tables the report draws"
    census = _render(out, tmp_path)
    assert set(census.charts) == drawable       # a chart for every table with rows, and only those
    _assert_every_chart_drew(census)
    if _has_rows(warehouse, "stalled_deals"):
        assert census.stalled_rows > 0
    owners = warehouse.fetch("select count(*) from metrics.pipeline_velocity where slice_by = 'owner'")[0][0]
    assert census.team_rows == owners > 5                      # a row per owner with deals
    for section in SECTIONS:                    # each section is on the page, drawn or with its note
        assert f'id="section-{section}"' in page


def test_report_with_every_metric_table_draws_every_section(tmp_path):
    warehouse = contract_warehouse(tmp_path / "warehouse.duckdb")
    out = write_report(warehouse, tmp_path / "report.html")
    page = out.read_text()
    _assert_self_contained(page)
    assert NO_DATA_HTML not in page

    census = _render(out, tmp_path)
    assert set(census.charts) == set(CHARTS)
    _assert_every_chart_drew(census)
    assert census.stalled_rows == STALLED_SHOWN                 # the largest 50 of 60 deals
    cards = dict(re.findall(r'<div class="label">([^<]+)</div><div class="value">([^<]+)</div>', page))
    assert cards == {"Open pipeline": "$3.27M", "Weighted pipeline": "$852K", "Win rate": "26%",
                     "Average won deal": "$29.5K", "Average sales cycle": "62 days", "Stalled deals": "60"}
    assert "Acme 34 &lt;renewal&gt; &amp; co" in page          # names are escaped, largest amount first
    assert page.index("$95,000") < page.index("$94,000")
    first_row = page.split('<tbody><tr>', 1)[1].split("</tr>", 1)[0]     # one row per deal, all its reasons
    assert "Close date passed" in first_row and "Stuck in stage" in first_row and page.count("$95,000") == 1

    assert census.team_rows == 8                                # seven reps and the deals without an owner
    team = page.split('id="team-table"', 1)[1].split("</table>", 1)[0]
    first_rep = team.split("<tbody><tr>", 1)[1].split("</tr>", 1)[0]   # the largest open pipeline first
    assert "Rep 4" in first_rep and "team of Grace Hopper" in first_rep and "$1,500,000" in first_rep
    assert "Rep &lt;2&gt; &amp; co" in team and "No owner" in team and "28%" in team    # own_4: 0.28 win rate


def test_report_reads_the_same_from_postgresql(tmp_path):
    duckdb_page = build_report(contract_warehouse(tmp_path / "warehouse.duckdb"))
    with warehouse_backend("postgres", tmp_path) as block:
        postgres_page = build_report(fill_contract(Warehouse(WarehouseSettings.model_validate(block))))
    header = re.compile(r"<header>.*?</header>", re.S)        # when and from where it was generated
    assert header.sub("", postgres_page) == header.sub("", duckdb_page)


def test_report_without_metric_tables_says_no_data_yet_in_every_section(tmp_path):
    page = build_report(Warehouse(WarehouseSettings(path=tmp_path / "warehouse.duckdb")))
    _assert_no_data_everywhere(page)
    assert "does not exist" in page


def test_report_with_empty_metric_tables_says_no_data_yet_in_every_section(tmp_path):
    page = build_report(contract_warehouse(tmp_path / "warehouse.duckdb", empty=True))
    _assert_no_data_everywhere(page)
    assert "is empty" in page


def test_report_names_a_missing_column_instead_of_failing(tmp_path):
    warehouse = Warehouse(WarehouseSettings(path=tmp_path / "warehouse.duckdb"))
    warehouse.run_in_transaction([
        "create schema metrics",
        "create table metrics.pipeline_by_stage as select 'prospecting' as stage, 1 as stage_order, "
        "3 as open_deals, 900.0 as open_amount"])   # a release before weighted_amount
    page = build_report(warehouse)
    assert "$900" in page and "metrics.pipeline_by_stage has no column weighted_amount" in page


def test_report_reads_the_org_rows_of_sliced_tables_and_whole_tables_of_earlier_releases(tmp_path):
    """The contract's sliced tables list a rep's slice first: the cards show the org's figures.
    A release before slicing had one org-wide row and no slice_by: read as it is."""
    warehouse = contract_warehouse(tmp_path / "warehouse.duckdb")
    warehouse.run_in_transaction([
        "drop table metrics.sales_cycle",
        "create table metrics.sales_cycle as select 409 as closed_deals, 55.2 as avg_sales_cycle_days"])
    cards = dict(re.findall(r'<div class="label">([^<]+)</div><div class="value">([^<]+)</div>',
                            build_report(warehouse)))
    assert (cards["Win rate"], cards["Average won deal"], cards["Average sales cycle"]) == ("26%", "$29.5K", "55 days")


def test_report_command_refuses_a_missing_warehouse(tmp_path, capsys):
    config = tmp_path / "dealsync.yaml"
    config.write_text("sources:\n  hubspot:\n    access_token_env: HUBSPOT_ACCESS_TOKEN\n")
    assert main(["report", "--config", str(config), "--warehouse", str(tmp_path / "none.duckdb"),
                 "--out", str(tmp_path / "report.html")]) == 1
    assert "run `dealsync run` first" in capsys.readouterr().err
    assert not (tmp_path / "none.duckdb").exists() and not (tmp_path / "report.html").exists()


# ---------------------------------------------------------------- helpers


def _assert_self_contained(page: str) -> None:
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)   # nothing loaded from elsewhere
    assert page.count("* plotly.js v") == 1                              # the library, inlined once


def _assert_no_data_everywhere(page: str) -> None:
    assert "plotly-graph-div" not in page and "plotly.js" not in page   # no chart, so no library either
    for section in SECTIONS:
        body = page.split(f'id="section-{section}"', 1)[1].split("</section>", 1)[0]
        assert NO_DATA_HTML in body, section


def _assert_every_chart_drew(census: "Census") -> None:
    assert not census.console, census.console
    for chart, (svgs, marks) in census.charts.items():
        assert svgs >= 1 and marks > 0, (chart, svgs, marks)


def _has_rows(warehouse: Warehouse, table: str) -> bool:
    if not warehouse.table_exists("metrics", table):
        return False
    return warehouse.fetch(f"select count(*) from metrics.{table}")[0][0] > 0


@dataclass
class Census:
    charts: dict[str, tuple[int, int]]          # chart div id -> (main SVGs, drawn marks)
    stalled_rows: int
    team_rows: int
    console: list[str] = field(default_factory=list)


def _render(page: Path, tmp_path: Path) -> Census:
    """Load the page in headless Chromium and count what it drew."""
    dom, console = dump_dom(page, tmp_path)
    parser = _ChartParser()
    parser.feed(dom)
    return Census(parser.charts, parser.stalled_rows, parser.team_rows, console)


def dump_dom(page: Path, tmp_path: Path) -> tuple[str, list[str]]:
    """(the DOM Chromium built, the console lines it logged). --dump-dom returns once the
    virtual-time budget is used up, i.e. after the page's scripts and timers have all run."""
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    proc = subprocess.run(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1366,768",
         "--virtual-time-budget=15000", "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Sales pipeline report" in proc.stdout, proc.stdout[:500]
    return proc.stdout, [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]


_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}


class _ChartParser(HTMLParser):
    """Per plotly chart: its svg.main-svg count and the marks drawn inside its traces (paths with
    a shape under a `g.trace`: bars, funnel segments, lines, areas, points)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, set[str], str | None]] = []     # (tag, classes, chart id)
        self.charts: dict[str, tuple[int, int]] = {}
        self.stalled_rows = 0
        self.team_rows = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = set((a.get("class") or "").split())
        chart = a.get("id") if "plotly-graph-div" in classes else (self.stack[-1][2] if self.stack else None)
        if chart:
            self._count(chart, tag, classes, a)
        if tag == "tr" and any(t == "tbody" for t, _, _ in self.stack):
            self.stalled_rows += self._inside_id("stalled-table")
            self.team_rows += self._inside_id("team-table")
        if tag not in _VOID:
            self.stack.append((tag, classes | ({f"#{a['id']}"} if a.get("id") else set()), chart))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        chart = self.stack[-1][2] if self.stack else None
        if chart:
            self._count(chart, tag, set((dict(attrs).get("class") or "").split()), dict(attrs))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:                       # close up to the matching tag (HTML may omit end tags)
            if self.stack.pop()[0] == tag:
                break

    def _count(self, chart: str, tag: str, classes: set[str], attrs: dict) -> None:
        svgs, marks = self.charts.get(chart, (0, 0))
        if tag == "svg" and "main-svg" in classes:
            svgs += 1
        drawn = (attrs.get("d") or "").strip() not in ("", "M0,0Z")
        if tag == "path" and drawn and any("trace" in c for _, c, _ in self.stack):
            marks += 1
        self.charts[chart] = (svgs, marks)

    def _inside_id(self, element_id: str) -> bool:
        return any(f"#{element_id}" in c for _, c, _ in self.stack)
