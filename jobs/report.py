"""`dealsync report`: one self-contained HTML page of the pipeline metrics, for a sales leader.

Built from the `metrics.*` tables (and `model.owners`, for reps' names), so it shows exactly
what the metric tables say. Every chart is plotly; plotly.js is inlined once in the page's
<head> and the figures only call it, so the page opens with no network and stays one file.
A section whose table is missing, lacks a column or is empty says "no data yet" instead of
failing: a fresh warehouse, or one from a release before that metric existed, still gets a page.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from pipeline_model.stages import Stage
from pipeline_model.warehouse import Warehouse

STAGES: tuple[str, ...] = tuple(s.value for s in Stage)
OPEN_STAGES: tuple[str, ...] = tuple(s.value for s in Stage if not s.is_closed)

# One colour per canonical stage, used by every chart: the open stages darken up the ladder,
# won is green and lost is red, so a stage is recognisable at a glance across sections.
STAGE_COLOURS: dict[str, str] = {
    "prospecting": "#9cc3e4",
    "qualification": "#5fa0d6",
    "needs_analysis": "#2f7bbf",
    "proposal": "#1f5696",
    "negotiation": "#5b3f99",
    "closed_won": "#2e9e5b",
    "closed_lost": "#c8553d",
}
OTHER_COLOUR = "#9aa3ad"        # a stage outside the ladder (an unmapped CRM stage)
STAGE_LABELS: dict[str, str] = {
    "prospecting": "Prospecting", "qualification": "Qualification", "needs_analysis": "Needs analysis",
    "proposal": "Proposal", "negotiation": "Negotiation", "closed_won": "Won", "closed_lost": "Lost",
}
REASON_LABELS: dict[str, str] = {
    "stuck_in_stage": "Stuck in stage",
    "close_date_passed": "Close date passed",
    "close_date_slipped": "Close date slipped",
}
NO_DATA = "no data yet: run `dealsync run` first"
STALLED_SHOWN = 50
FONT = "-apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True,
                 "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"]}


@dataclass
class Loaded:
    """A metric table's rows, or why there are none (`problem`, shown in the section)."""

    rows: list[dict] = field(default_factory=list)
    problem: str | None = None
    empty: bool = False         # the table is there with the right columns, and has no rows

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass
class Section:
    key: str
    title: str
    intro: str
    blocks: list[str]           # HTML fragments: a chart, a table, cards or a note
    wide: bool = False          # spans both columns of the page grid


# ---------------------------------------------------------------- the page


_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}


def currency_symbol(code: str) -> str:
    """How amounts in the reporting currency are written: its symbol, else its code."""
    return _SYMBOLS.get(code.upper(), code.upper() + " ")


def write_report(warehouse: Warehouse, out: Path | str, currency: str = "$") -> Path:
    """Write the report to `out` and return its path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(build_report(warehouse, currency), encoding="utf-8")
    return out


def build_report(warehouse: Warehouse, currency: str = "$") -> str:
    # Amounts are in the reporting currency (metrics.currency.reporting): the caller passes its symbol.
    fmt = Money(currency)
    sections = [builder(warehouse, fmt) for builder in SECTIONS]
    return _page(sections, _warehouse_label(warehouse))


def _page(sections: list[Section], source: str) -> str:
    body = "\n".join(_section_html(s) for s in sections)
    # plotly.js once, in <head>, and only when a chart needs it: the figures' own scripts run
    # as the body is parsed, after the library has loaded.
    library = f'<script type="text/javascript">{get_plotlyjs()}</script>' if "plotly-graph-div" in body else ""
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return _TEMPLATE.format(css=_CSS, library=library, body=body, sort_js=_SORT_JS,
                            subtitle=html.escape(f"Generated {generated} from {source}"))


def _section_html(section: Section) -> str:
    cls = "panel wide" if section.wide else "panel"
    blocks = "".join(f'<div class="block">{b}</div>' for b in section.blocks)
    return (f'<section class="{cls}" id="section-{section.key}"><h2>{html.escape(section.title)}</h2>'
            f'<p class="intro">{section.intro}</p><div class="blocks n{len(section.blocks)}">{blocks}</div></section>')


def _warehouse_label(warehouse: Warehouse) -> str:
    # Never the DSN: it may hold the password.
    if warehouse.is_postgres:
        pg = warehouse.settings.postgres
        return f"PostgreSQL {pg.host}:{pg.port}/{pg.database}"
    return str(warehouse.path)


# ---------------------------------------------------------------- reading metric tables


def load(warehouse: Warehouse, table: str, columns: list[str], order_by: str = "",
         optional: tuple[str, ...] = (), slice_by: str = "org") -> Loaded:
    """`columns` of metrics.<table>, or the reason there are none. Checks before querying, so a
    missing table or column is a note on the page, not an exception. `optional` columns come
    back as None where the table lacks them. Of a table sliced by owner, manager, CRM, pipeline
    and period (`slice_by`), only the rows of `slice_by` are read: the org's unless told."""
    if not warehouse.table_exists("metrics", table):
        return Loaded(problem=f"metrics.{table} does not exist")
    present = set(warehouse.column_names(f"select * from metrics.{table} where 1 = 0"))
    missing = [c for c in columns if c not in present]
    if missing:
        return Loaded(problem=f"metrics.{table} has no column {', '.join(missing)}")
    if slice_by != "org" and "slice_by" not in present:
        return Loaded(problem=f"metrics.{table} has no column slice_by")
    # The slice is a value, so a parameter; table and column names are the report's own constants.
    where, params = (" where slice_by = ?", [slice_by]) if "slice_by" in present else ("", [])   # earlier releases: org-wide only
    order = f" order by {order_by}" if order_by else ""
    selected = [*columns, *(c if c in present else f"null as {c}" for c in optional)]
    rows = warehouse.fetch_dicts(f"select {', '.join(selected)} from metrics.{table}{where}{order}", params)
    if not rows:
        return Loaded(problem=f"metrics.{table} is empty", empty=True)
    return Loaded(rows=rows)


def note(problem: str | None, message: str = NO_DATA) -> str:
    detail = f' <span class="cause">({html.escape(problem)})</span>' if problem else ""
    return f'<p class="nodata">{_code(message)}{detail}</p>'


def _code(text: str) -> str:
    """Backticks in a message become <code>, the rest is escaped."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def num(value: Any) -> float:
    return float(value) if value is not None else 0.0


# ---------------------------------------------------------------- formatting


@dataclass(frozen=True)
class Money:
    symbol: str = "$"

    def short(self, value: Any) -> str:
        """$1.24M, $312K, $950: for cards and bar labels."""
        v = num(value)
        for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
            if abs(v) >= div:
                scaled = v / div
                decimals = 2 if abs(scaled) < 10 else 1 if abs(scaled) < 100 else 0
                return f"{self.symbol}{scaled:,.{decimals}f}{suffix}"
        return f"{self.symbol}{v:,.0f}"

    def full(self, value: Any) -> str:
        return "–" if value is None else f"{self.symbol}{num(value):,.0f}"

    def axis(self) -> dict:
        """Axis ticks as $1.2M, $300k."""
        return {"tickprefix": self.symbol, "tickformat": "~s"}

    def hover(self, field_ref: str) -> str:
        return f"{self.symbol}%{{{field_ref}:,.0f}}"


def stage_label(stage: str | None) -> str:
    return STAGE_LABELS.get(stage or "", stage or "unmapped")


def chart_label(stage: str | None) -> str:
    """A stage's label for plotly.js, which reads labels as HTML-like markup (<b>, <a href>, <br>) and
    hover templates as %{...} fields: escaped, so a label shows as the literal text it is."""
    return html.escape(stage_label(stage)).replace("%", "&#37;")


def stage_colour(stage: str | None) -> str:
    return STAGE_COLOURS.get(stage or "", OTHER_COLOUR)


def _date(value: Any) -> str:
    if isinstance(value, datetime):
        value = value.date()
    return value.strftime("%-d %b %Y") if isinstance(value, date) else ("–" if value is None else str(value))


def figure_html(fig: go.Figure, div_id: str) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=PLOTLY_CONFIG,
                       default_height=f"{fig.layout.height or 400}px")


def style(fig: go.Figure, title: str, x_title: str | None, y_title: str | None, height: int = 400) -> go.Figure:
    """The look every chart shares: title top left, legend top right, light grid."""
    fig.update_layout(
        template="plotly_white", height=height, font={"family": FONT, "size": 13, "color": "#1f2a37"},
        title={"text": title, "x": 0.01, "xanchor": "left", "y": 0.97, "font": {"size": 16}},
        margin={"l": 70, "r": 20, "t": 80, "b": 60},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1},
        hoverlabel={"font": {"family": FONT}}, bargap=0.25)
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title)
    return fig


def _headroom(values: Iterable[Any]) -> list[float]:
    """A y range with room above the tallest bar for its label."""
    top = max((num(v) for v in values), default=0.0)
    return [0, top * 1.15 if top > 0 else 1]


def stage_bars(fig: go.Figure, rows: list[dict], series: str, values: list, hover: str, pattern: str = "",
               opacity: float = 1.0, text: list[str] | None = None, customdata: list | None = None) -> None:
    """One series of bars, one per stage in its stage colour, plus a neutral legend entry for the
    series (the legend says what the series is, the colours keep saying which stage). A trace
    per bar: plotly.js draws a fill pattern over a per-bar colour array wrongly (and logs
    "Invalid color specifier"); `offsetgroup` keeps the series side by side under barmode=group."""
    for i, row in enumerate(rows):
        fig.add_trace(go.Bar(
            x=[chart_label(row["stage"])], y=[values[i]], name=series, legendgroup=series, offsetgroup=series,
            showlegend=False, marker={"color": stage_colour(row["stage"]), "opacity": opacity,
                                      "pattern": _pattern(pattern)},
            text=[text[i]] if text else None, textposition="outside", cliponaxis=False, constraintext="none",
            customdata=[customdata[i]] if customdata else None, hovertemplate=hover))
    swatch = {"color": "#7b8794", "opacity": opacity, "pattern": _pattern(pattern)}
    fig.add_trace(go.Bar(x=[None], y=[None], name=series, legendgroup=series, offsetgroup=series, showlegend=True,
                         hoverinfo="skip", marker=swatch))
    fig.update_xaxes(categoryorder="array", categoryarray=[chart_label(r["stage"]) for r in rows])


def _pattern(shape: str) -> dict:
    # Light stripes or dots over the stage colour: the series shows, the stage colour stays.
    return {"shape": shape, "fgcolor": "#ffffff", "fgopacity": 0.9}


# ---------------------------------------------------------------- 1. headline numbers


def headline_section(warehouse: Warehouse, money: Money) -> Section:
    pipeline = load(warehouse, "pipeline_by_stage", ["open_deals", "open_amount"])
    weighted = load(warehouse, "pipeline_by_stage", ["weighted_amount"])
    wins = load(warehouse, "win_rates", ["won_deals", "lost_deals", "win_rate_by_count", "avg_won_deal_size"])
    cycle = load(warehouse, "sales_cycle", ["closed_deals", "avg_sales_cycle_days"])
    stalled = load(warehouse, "stalled_deals", ["deal_id"])
    win = wins.rows[0] if wins.ok else {}
    cards = [
        _card("Open pipeline", pipeline, lambda: money.short(sum(num(r["open_amount"]) for r in pipeline.rows)),
              lambda: f"{sum(int(num(r['open_deals'])) for r in pipeline.rows):,} open deals"),
        _card("Weighted pipeline", weighted, lambda: money.short(sum(num(r["weighted_amount"]) for r in weighted.rows)),
              lambda: "open amount × CRM probability"),
        _card("Win rate", wins, lambda: _pct(win["win_rate_by_count"]),
              lambda: f"{int(num(win['won_deals'])):,} won of {_closed(win):,} closed"),
        _card("Average won deal", wins, lambda: _or_dash(win["avg_won_deal_size"], money.short),
              lambda: "mean amount of won deals"),
        _card("Average sales cycle", cycle, lambda: _or_dash(cycle.rows[0]["avg_sales_cycle_days"], _days),
              lambda: f"created to closed, {int(num(cycle.rows[0]['closed_deals'])):,} closed deals"),
        _stalled_card(warehouse, stalled),
    ]
    return Section("headline", "Headline numbers", "Where the pipeline stands today.",
                   [f'<div class="cards">{"".join(cards)}</div>'], wide=True)


def _card(label: str, data: Loaded, value: Callable[[], str], detail: Callable[[], str]) -> str:
    if not data.ok:
        return (f'<div class="card empty"><div class="label">{html.escape(label)}</div><div class="value">–</div>'
                f'{note(data.problem)}</div>')
    return (f'<div class="card"><div class="label">{html.escape(label)}</div>'
            f'<div class="value">{html.escape(value())}</div><div class="detail">{html.escape(detail())}</div></div>')


def _stalled_card(warehouse: Warehouse, stalled: Loaded) -> str:
    if stalled.empty and _has_open_deals(warehouse):
        # The table is there and says nothing is stalled: a real zero, not missing data.
        return _card("Stalled deals", Loaded(), lambda: "0", lambda: "no open deal is stuck")
    deals = {r["deal_id"] for r in stalled.rows}
    return _card("Stalled deals", stalled, lambda: f"{len(deals):,}", lambda: "open deals needing attention")


def _has_open_deals(warehouse: Warehouse) -> bool:
    pipeline = load(warehouse, "pipeline_by_stage", ["open_deals"])
    return pipeline.ok and sum(num(r["open_deals"]) for r in pipeline.rows) > 0


def _closed(win: dict) -> int:
    return int(num(win["won_deals"]) + num(win["lost_deals"]))


def _pct(value: Any) -> str:
    return "–" if value is None else f"{num(value):.0%}"


def _days(value: Any) -> str:
    return f"{num(value):,.0f} days"


def _or_dash(value: Any, fmt: Callable[[Any], str]) -> str:
    return "–" if value is None else fmt(value)


# ---------------------------------------------------------------- 2. funnel


def funnel_section(warehouse: Warehouse, money: Money) -> Section:
    data = load(warehouse, "funnel", ["stage", "stage_order", "deals_reached", "conversion_to_next",
                                      "conversion_to_won"], "stage_order")
    intro = "How many deals ever reached each stage, from the first stage to won."
    rows = [r for r in data.rows if r["stage"] != "closed_lost"]
    if not data.ok or not rows:
        return Section("funnel", "Funnel", intro, [note(data.problem)])
    fig = go.Figure(go.Funnel(
        y=[chart_label(r["stage"]) for r in rows], x=[int(num(r["deals_reached"])) for r in rows],
        marker={"color": [stage_colour(r["stage"]) for r in rows]},
        textinfo="value+percent initial", textfont={"size": 13},
        customdata=[[_pct(r["conversion_to_next"]), _pct(r["conversion_to_won"])] for r in rows],
        hovertemplate="%{y}: %{x:,} deals reached<br>moved on: %{customdata[0]}"
                      "<br>went on to win: %{customdata[1]}<extra></extra>",
        connector={"fillcolor": "#eef2f6"}))
    style(fig, "Deals reaching each stage", "Deals", None)
    return Section("funnel", "Funnel", intro, [figure_html(fig, "chart-funnel")])


# ---------------------------------------------------------------- 3. pipeline by stage


def pipeline_section(warehouse: Warehouse, money: Money) -> Section:
    data = load(warehouse, "pipeline_by_stage", ["stage", "stage_order", "open_deals", "open_amount",
                                                 "weighted_amount"], "stage_order")
    intro = "Open amount and probability-weighted amount in each open stage; labels give the deal count."
    if not data.ok:
        return Section("pipeline", "Pipeline by stage", intro, [note(data.problem)])
    rows, fig = data.rows, go.Figure()
    stage_bars(fig, rows, "Open amount", [num(r["open_amount"]) for r in rows],
               f"%{{x}}<br>open: {money.hover('y')}<br>%{{customdata:,}} deals<extra></extra>",
               text=[f"{int(num(r['open_deals'])):,} deals" for r in rows],
               customdata=[int(num(r["open_deals"])) for r in rows])
    stage_bars(fig, rows, "Weighted amount", [num(r["weighted_amount"]) for r in rows],
               f"%{{x}}<br>weighted: {money.hover('y')}<extra></extra>", pattern="/", opacity=0.55)
    style(fig, "Open and weighted pipeline by stage", "Stage", "Amount")
    fig.update_yaxes(**money.axis(), range=_headroom(r["open_amount"] for r in rows))
    fig.update_layout(barmode="group")
    return Section("pipeline", "Pipeline by stage", intro, [figure_html(fig, "chart-pipeline")])


# ---------------------------------------------------------------- 4. stage conversion


def conversion_section(warehouse: Warehouse, money: Money) -> Section:
    intro = ("Of the deals that reached a stage, the share that moved on (and that went on to win); "
             "and the stage lost deals were lost from.")
    return Section("conversion", "Stage conversion", intro,
                   [_conversion_chart(warehouse), _lost_chart(warehouse, money)], wide=True)


def _conversion_chart(warehouse: Warehouse) -> str:
    data = load(warehouse, "funnel", ["stage", "stage_order", "conversion_to_next", "conversion_to_won"],
                "stage_order")
    rows = [r for r in data.rows if r["stage"] in OPEN_STAGES]
    if not data.ok or not rows:
        return note(data.problem)
    x = [chart_label(r["stage"]) for r in rows]
    fig = go.Figure()
    fig.add_trace(go.Bar(
        x=x, y=[num(r["conversion_to_next"]) for r in rows], name="Moved to the next stage",
        marker={"color": [stage_colour(r["stage"]) for r in rows]}, texttemplate="%{y:.0%}",
        textposition="inside", insidetextanchor="end", textfont={"color": "#ffffff"}, constraintext="none",
        hovertemplate="%{x}: %{y:.1%} moved on<extra></extra>"))
    fig.add_trace(go.Scatter(
        x=x, y=[r["conversion_to_won"] for r in rows], name="Went on to win", mode="lines+markers",
        line={"color": STAGE_COLOURS["closed_won"], "dash": "dot"}, marker={"size": 9},
        hovertemplate="%{x}: %{y:.1%} went on to win<extra></extra>"))
    style(fig, "Conversion from each stage", "Stage", "Share of deals that reached the stage", 420)
    fig.update_yaxes(tickformat=".0%", range=[0, 1.1])
    return figure_html(fig, "chart-conversion")


def _lost_chart(warehouse: Warehouse, money: Money) -> str:
    data = load(warehouse, "lost_at_stage", ["stage", "stage_order", "lost_deals", "lost_amount"], "stage_order")
    if not data.ok:
        return note(data.problem)
    rows = data.rows
    fig = go.Figure(go.Bar(
        x=[chart_label(r["stage"]) for r in rows], y=[int(num(r["lost_deals"])) for r in rows],
        name="Lost deals", marker={"color": [stage_colour(r["stage"]) for r in rows]},
        text=[money.short(r["lost_amount"]) for r in rows], textposition="outside", cliponaxis=False,
        constraintext="none",
        customdata=[num(r["lost_amount"]) for r in rows],
        hovertemplate=f"%{{x}}: %{{y:,}} deals lost, {money.hover('customdata')}<extra></extra>"))
    style(fig, "Where lost deals were lost (labels: amount lost)", "Stage the deal was lost from", "Lost deals", 420)
    fig.update_yaxes(range=_headroom(r["lost_deals"] for r in rows))
    return figure_html(fig, "chart-lost")


# ---------------------------------------------------------------- 5. time in stage

_TIME_SERIES = (("avg_days_in_stage", "Mean", "", 1.0), ("median_days_in_stage", "Median", ".", 0.75),
                ("p75_days_in_stage", "75th percentile", "x", 0.5))


def time_section(warehouse: Warehouse, money: Money) -> Section:
    data = load(warehouse, "time_in_stage", ["stage", "stage_order", "completed_spells",
                                             *(c for c, *_ in _TIME_SERIES)], "stage_order")
    intro = "Days deals spent in each stage before leaving it (completed stays only)."
    if not data.ok or all(r["avg_days_in_stage"] is None for r in data.rows):
        return Section("time", "Time in stage", intro, [note(data.problem or "no deal has left a stage yet")])
    rows, fig = data.rows, go.Figure()
    for column, name, pattern, opacity in _TIME_SERIES:
        stage_bars(fig, rows, name, [r[column] for r in rows],
                   f"%{{x}} {name.lower()}: %{{y:,.1f}} days<br>over %{{customdata:,}} stays<extra></extra>",
                   pattern=pattern, opacity=opacity, customdata=[int(num(r["completed_spells"])) for r in rows])
    style(fig, "Days in stage", "Stage", "Days")
    fig.update_layout(barmode="group")
    return Section("time", "Time in stage", intro, [figure_html(fig, "chart-time")])


# ---------------------------------------------------------------- 6. forecast

_FORECAST_SERIES = (("crm_weighted_amount", "CRM-weighted", "#4a6fa5"),
                    ("history_weighted_amount", "History-weighted", "#e0a03a"),
                    ("won_amount", "Won so far", STAGE_COLOURS["closed_won"]))


def forecast_section(warehouse: Warehouse, money: Money) -> Section:
    data = load(warehouse, "forecast", ["period", "period_start", "period_end", "open_deals", "open_amount",
                                        *(c for c, *_ in _FORECAST_SERIES)], "period_start")
    intro = ("Open deals expected to close this period and next, weighted by the CRM's probability and by "
             "this team's own history of winning from each stage; next to what is already won.")
    if not data.ok:
        return Section("forecast", "Forecast", intro, [note(data.problem)])
    rows, fig = data.rows, go.Figure()
    x = [_period_label(r, money) for r in rows]
    for column, name, colour in _FORECAST_SERIES:
        fig.add_trace(go.Bar(
            x=x, y=[num(r[column]) for r in rows], name=name, marker={"color": colour},
            text=[money.short(r[column]) for r in rows], textposition="outside", cliponaxis=False, constraintext="none",
            hovertemplate=f"{name}: {money.hover('y')}<extra></extra>"))
    style(fig, "Forecast: current and next period", "Period (open pipeline closing in it)", "Amount")
    fig.update_yaxes(**money.axis(), range=_headroom(r[c] for r in rows for c, *_ in _FORECAST_SERIES))
    fig.update_layout(barmode="group", margin={"b": 90})
    return Section("forecast", "Forecast", intro, [figure_html(fig, "chart-forecast")])


def _period_label(row: dict, money: Money) -> str:
    name = {"current": "Current period", "next": "Next period"}.get(row["period"], str(row["period"]))
    return (f"<b>{name}</b><br>{_date(row['period_start'])} – {_date(_last_day(row['period_end']))}"
            f"<br>{int(num(row['open_deals'])):,} open deals, {money.short(row['open_amount'])}")


def _last_day(period_end: Any) -> Any:
    """The period's last day. Periods are months or quarters, so an end on the 1st is the first
    day after the period (how metrics.forecast states it): show the day before."""
    if isinstance(period_end, date) and period_end.day == 1:
        return period_end - timedelta(days=1)
    return period_end


# ---------------------------------------------------------------- 7. stalled deals

_STALLED_COLUMNS = ["deal_id", "name", "owner_name", "source_system", "stage", "amount", "days_in_stage",
                    "close_date", "reason", "detail"]
# The stage's time limit a stuck deal passed: `stage_limit_days` (the configured percentile, p75
# by default), named `stage_p75_days` where the percentile was fixed; either may be there.
_STALLED_LIMITS = ("stage_limit_days", "stage_p75_days")


def stalled_section(warehouse: Warehouse, money: Money) -> Section:
    data = load(warehouse, "stalled_deals", _STALLED_COLUMNS, "amount desc nulls last, deal_id, reason",
                optional=_STALLED_LIMITS)
    intro = (f"Open deals that look stuck: in their stage longer than most deals were (the stage's limit, "
             f"p75 of past stays by default), or with a close date that passed or keeps slipping. "
             f"The {STALLED_SHOWN} largest by amount; click a heading to sort.")
    if not data.ok:
        if data.empty and _has_open_deals(warehouse):
            nothing = note(None, "No stalled deals: every open deal is moving.")
            return Section("stalled", "Stalled deals", intro, [nothing], wide=True)
        return Section("stalled", "Stalled deals", intro, [note(data.problem)], wide=True)
    deals = _by_deal(data.rows)
    shown = deals[:STALLED_SHOWN]
    more = f"; showing the {len(shown)} largest" if len(shown) < len(deals) else ""
    summary = f'<p class="count">{len(deals):,} stalled deal{"s" if len(deals) != 1 else ""}{more}.</p>'
    return Section("stalled", "Stalled deals", intro, [summary + _stalled_table(shown, money)], wide=True)


def _by_deal(rows: list[dict]) -> list[dict]:
    """One entry per deal with all its reasons: the table has a row per deal and reason, and a
    deal stuck in its stage past its close date is one deal to chase, not two. Keeps row order."""
    deals: dict[str, dict] = {}
    for row in rows:
        deal = deals.setdefault(row["deal_id"], {**row, "reasons": [], "limit": None})
        deal["reasons"].append((row["reason"], row["detail"]))
        deal["limit"] = deal["limit"] if deal["limit"] is not None else _stage_limit(row)
    return list(deals.values())


def _stalled_table(deals: list[dict], money: Money) -> str:
    heads = [("Deal", "text"), ("Owner", "text"), ("Stage", "text"), ("Amount", "num"), ("Days in stage", "num"),
             ("Stage limit (days)", "num"), ("Close date", "text"), ("Why", "text")]
    thead = "".join(f'<th data-type="{t}" class="{t}">{h}</th>' for h, t in heads)
    body = "".join(_stalled_row(d, money) for d in deals)
    return (f'<div class="table-wrap"><table class="sortable" id="stalled-table"><thead><tr>{thead}</tr></thead>'
            f'<tbody>{body}</tbody></table></div>')


def _stalled_row(deal: dict, money: Money) -> str:
    stage = deal["stage"]
    name = html.escape(str(deal["name"] or deal["deal_id"]))
    cells = [
        _td(f'{name}<span class="src">{html.escape(str(deal["source_system"] or ""))}</span>', str(deal["name"] or "")),
        _td(html.escape(str(deal["owner_name"] or "–")), str(deal["owner_name"] or "")),
        _td(f'<span class="chip" style="background:{stage_colour(stage)}"></span>{html.escape(stage_label(stage))}',
            f"{STAGES.index(stage) if stage in STAGES else 99}", "stage"),
        _td(money.full(deal["amount"]), num(deal["amount"]), "num"),
        _td(_int_or_dash(deal["days_in_stage"]), num(deal["days_in_stage"]), "num"),
        _td(_int_or_dash(deal["limit"]), num(deal["limit"]), "num"),
        _td(_date(deal["close_date"]), str(deal["close_date"] or "")),
        _td("".join(_reason(reason, detail) for reason, detail in deal["reasons"]),
            " ".join(REASON_LABELS.get(r, str(r)) for r, _ in deal["reasons"]), "why"),
    ]
    return f"<tr>{''.join(cells)}</tr>"


def _reason(reason: str, detail: str | None) -> str:
    label = html.escape(REASON_LABELS.get(reason, str(reason)))
    return (f'<div class="why-line"><span class="reason {html.escape(str(reason))}">{label}</span> '
            f'<span class="detail">{html.escape(str(detail or ""))}</span></div>')


def _stage_limit(row: dict) -> Any:
    return next((row[c] for c in _STALLED_LIMITS if row[c] is not None), None)


def _td(content: str, sort_key: Any, cls: str = "") -> str:
    return f'<td class="{cls}" data-sort="{html.escape(str(sort_key))}">{content}</td>'


def _int_or_dash(value: Any) -> str:
    return "–" if value is None else f"{num(value):,.0f}"


# ---------------------------------------------------------------- 8. team

_TEAM_VELOCITY = ["slice_value", "open_deals", "win_rate", "avg_won_deal_size", "avg_won_cycle_days",
                  "velocity_per_day"]


def team_section(warehouse: Warehouse, money: Money) -> Section:
    velocity = load(warehouse, "pipeline_velocity", _TEAM_VELOCITY, slice_by="owner")
    intro = ("Each rep's open pipeline and how they convert: deals won and win rate (won / closed), the "
             "average won deal, days from creation to a win, and pipeline velocity (expected bookings per "
             "day). Largest open pipeline first; click a heading to sort.")
    if not velocity.ok:
        return Section("team", "Team", intro, [note(velocity.problem)], wide=True)
    open_amounts = _open_amounts_by_owner(warehouse)
    wins = {r["slice_value"]: r for r in load(warehouse, "win_rates", ["slice_value", "won_deals", "won_amount"],
                                              slice_by="owner").rows}
    names, managers = _owner_names(warehouse)
    reps = [{**r, "open": open_amounts.get(r["slice_value"], (None, None)), "won": wins.get(r["slice_value"], {}),
             "name": names.get(r["slice_value"]) or r["slice_value"] or "No owner",
             "manager": names.get(managers.get(r["slice_value"])) or ""} for r in velocity.rows]
    reps.sort(key=lambda r: (-num(r["open"][0]), r["name"]))
    return Section("team", "Team", intro, [_team_table(reps, money)], wide=True)


def _open_amounts_by_owner(warehouse: Warehouse) -> dict[Any, tuple[float, float]]:
    """owner id -> (open amount, CRM-weighted amount), summed over metrics.open_pipeline's slices."""
    data = load(warehouse, "open_pipeline", ["owner_id", "open_amount", "weighted_amount"])
    out: dict[Any, tuple[float, float]] = {}
    for r in data.rows:
        amount, weighted = out.get(r["owner_id"], (0.0, 0.0))
        out[r["owner_id"]] = (amount + num(r["open_amount"]), weighted + num(r["weighted_amount"]))
    return out


def _owner_names(warehouse: Warehouse) -> tuple[dict[str, str], dict[str, str]]:
    """(owner id -> name, owner id -> manager's owner id) from model.owners; empty without it."""
    if not warehouse.table_exists("model", "owners"):
        return {}, {}
    rows = warehouse.fetch("select owner_id, name, manager_id from model.owners")
    return {o: n for o, n, _ in rows if n}, {o: m for o, _, m in rows if m}


def _team_table(reps: list[dict], money: Money) -> str:
    heads = [("Rep", "text"), ("Open deals", "num"), ("Open pipeline", "num"), ("Weighted", "num"),
             ("Won", "num"), ("Win rate", "num"), ("Average won deal", "num"), ("Days to win", "num"),
             ("Velocity / day", "num")]
    thead = "".join(f'<th data-type="{t}" class="{t}">{h}</th>' for h, t in heads)
    body = "".join(_team_row(r, money) for r in reps)
    return (f'<div class="table-wrap"><table class="sortable" id="team-table"><thead><tr>{thead}</tr></thead>'
            f'<tbody>{body}</tbody></table></div>')


def _team_row(rep: dict, money: Money) -> str:
    (amount, weighted), won = rep["open"], rep["won"]
    manager = f'<span class="src">team of {html.escape(rep["manager"])}</span>' if rep["manager"] else ""
    cells = [
        _td(f'{html.escape(str(rep["name"]))}{manager}', str(rep["name"])),
        _td(_int_or_dash(rep["open_deals"]), num(rep["open_deals"]), "num"),
        _td(money.full(amount), num(amount), "num"),
        _td(money.full(weighted), num(weighted), "num"),
        _td(_int_or_dash(won.get("won_deals")), num(won.get("won_deals")), "num"),
        _td(_pct(rep["win_rate"]), num(rep["win_rate"]), "num"),
        _td(money.full(rep["avg_won_deal_size"]), num(rep["avg_won_deal_size"]), "num"),
        _td(_int_or_dash(rep["avg_won_cycle_days"]), num(rep["avg_won_cycle_days"]), "num"),
        _td(money.full(rep["velocity_per_day"]), num(rep["velocity_per_day"]), "num"),
    ]
    return f"<tr>{''.join(cells)}</tr>"


# ---------------------------------------------------------------- 9. trend


def trend_section(warehouse: Warehouse, money: Money) -> Section:
    data = load(warehouse, "pipeline_trend", ["snapshot_date", "stage", "stage_order", "open_deals", "open_amount"],
                "snapshot_date, stage_order")
    intro = ("Open amount per stage on each day of the daily pipeline snapshot: each finished day as it ended, "
             "from the CRMs' history; the last day as the latest run saw it.")
    rows = [r for r in data.rows if r["stage"] not in ("closed_won", "closed_lost")]
    if not data.ok or not rows:
        return Section("trend", "Pipeline trend", intro, [note(data.problem)], wide=True)
    dates = sorted({r["snapshot_date"] for r in rows})
    # With a day or two of history an area is a sliver: markers keep each snapshot visible.
    mode = "lines+markers" if len(dates) < 3 else "lines"
    fig = go.Figure()
    for stage in _stages_in(rows):
        mine = [r for r in rows if r["stage"] == stage]
        fig.add_trace(go.Scatter(
            x=[r["snapshot_date"] for r in mine], y=[num(r["open_amount"]) for r in mine], name=chart_label(stage),
            mode=mode, stackgroup="pipeline", line={"color": stage_colour(stage), "width": 1.5},
            fillcolor=stage_colour(stage), customdata=[int(num(r["open_deals"])) for r in mine],
            hovertemplate=f"{chart_label(stage)}: {money.hover('y')} (%{{customdata:,}} deals)<extra></extra>"))
    style(fig, "Open pipeline by stage over time", "Snapshot date", "Open amount", 420)
    fig.update_yaxes(**money.axis())
    fig.update_layout(hovermode="x unified")
    return Section("trend", "Pipeline trend", intro, [figure_html(fig, "chart-trend")], wide=True)


def _stages_in(rows: list[dict]) -> list[str]:
    """Ladder order, then any stage outside the ladder: the stack reads bottom-up like the ladder."""
    present = {r["stage"] for r in rows}
    return [s for s in OPEN_STAGES if s in present] + sorted(str(s) for s in present if s not in STAGES)


SECTIONS: tuple[Callable[[Warehouse, Money], Section], ...] = (
    headline_section, funnel_section, pipeline_section, conversion_section, time_section, forecast_section,
    stalled_section, team_section, trend_section)


# ---------------------------------------------------------------- page template

_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f3f5f8;color:#1f2a37;font-family:-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;font-size:14px}
header{background:#1f2a37;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px;font-weight:600}
header p{margin:4px 0 0;color:#c5cdd8;font-size:13px}
main{max-width:1400px;margin:0 auto;padding:18px;display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:18px}
.panel{background:#fff;border-radius:10px;box-shadow:0 1px 3px rgba(16,24,40,.1);padding:16px 18px;min-width:0}
.panel.wide{grid-column:1/-1}
.panel h2{margin:0 0 2px;font-size:17px}
.intro{margin:0 0 10px;color:#5b6675;font-size:13px}
.blocks{display:grid;gap:18px}
.panel.wide .blocks.n2{grid-template-columns:minmax(0,1fr) minmax(0,1fr)}
@media (max-width:1100px){main,.panel.wide .blocks.n2{grid-template-columns:minmax(0,1fr)}}
.block{min-width:0}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(190px,1fr));gap:12px}
.card{border:1px solid #e4e8ee;border-radius:8px;padding:12px 14px;background:#fbfcfd}
.card .label{color:#5b6675;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .value{font-size:28px;font-weight:650;margin:4px 0 2px;font-variant-numeric:tabular-nums}
.card .detail{color:#5b6675;font-size:12px}
.card.empty .value{color:#9aa3ad}
.nodata{margin:8px 0;padding:14px 16px;background:#fff8e6;border:1px dashed #e0b34a;border-radius:8px;color:#6b4e00;overflow-wrap:anywhere}
.card .nodata{padding:6px 8px;font-size:12px;margin:4px 0 0}
.nodata .cause{color:#8a7440;font-size:12px}
code{background:#f0f2f5;border-radius:4px;padding:1px 4px;font-size:.95em}
.count{margin:0 0 8px;color:#5b6675}
.table-wrap{max-height:640px;overflow:auto;border:1px solid #e4e8ee;border-radius:8px}
table{border-collapse:collapse;width:100%;font-size:13px}
th{position:sticky;top:0;background:#f6f8fa;text-align:left;padding:8px 10px;border-bottom:1px solid #d9dee5;cursor:pointer;white-space:nowrap;user-select:none}
th::after{content:' \\2195';color:#a0a8b3;font-size:11px}
th.asc::after{content:' \\2191';color:#1f2a37}th.desc::after{content:' \\2193';color:#1f2a37}
td{padding:7px 10px;border-bottom:1px solid #eef1f4;vertical-align:top}
tr:hover td{background:#f8fafc}
th.num,td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.stage{white-space:nowrap}
td.why{min-width:340px}
td.why .detail{color:#5b6675}
.why-line+.why-line{margin-top:4px}
.src{display:block;color:#8792a2;font-size:11px}
.chip{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
.reason{display:inline-block;padding:2px 8px;border-radius:10px;font-size:12px;white-space:nowrap;background:#eef1f4}
.reason.stuck_in_stage{background:#e8e1f5;color:#4a2f86}
.reason.close_date_passed{background:#fbe3de;color:#9a2f1c}
.reason.close_date_slipped{background:#fff0d4;color:#7a5200}
footer{max-width:1400px;margin:0 auto;padding:0 18px 24px;color:#8792a2;font-size:12px}
"""

# Sorts a table (stalled deals, team) by a clicked heading (numbers numerically), in place.
_SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0], numeric = th.dataset.type === 'num';
    var asc = !th.classList.contains('asc');
    table.querySelectorAll('th').forEach(function (h) { h.classList.remove('asc', 'desc'); });
    th.classList.add(asc ? 'asc' : 'desc');
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.sort, y = b.cells[col].dataset.sort;
      var c = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
// Each chart took its width as the page was parsed; fit them to the finished layout.
window.addEventListener('load', function () {
  if (window.Plotly) document.querySelectorAll('.js-plotly-plot').forEach(function (d) { Plotly.Plots.resize(d); });
});
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dealsync: sales pipeline report</title>
<style>{css}</style>
{library}
</head>
<body>
<header><h1>Sales pipeline report</h1><p>{subtitle}</p></header>
<main>
{body}
</main>
<footer>dealsync report: built from the warehouse's <code>metrics.*</code> tables. Amounts are in the reporting currency.</footer>
<script>{sort_js}</script>
</body>
</html>
"""
