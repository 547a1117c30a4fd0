"""Metrics computed straight from the generator's ground truth, independently of the warehouse."""

from __future__ import annotations

from collections import defaultdict
from statistics import mean

from pipeline_model.stages import SALESFORCE_STANDARD, Stage


def _days(a, b) -> float:
    return (b - a).total_seconds() / 86400


def expected_metrics(deals) -> dict:
    live = [d for d in deals if not d.deleted]
    closed = [d for d in live if d.is_closed]
    won = [d for d in closed if d.is_won]
    open_by_stage = defaultdict(lambda: [0, 0.0])
    for d in live:
        if not d.is_closed:
            slot = open_by_stage[SALESFORCE_STANDARD[d.stage].value]
            slot[0] += 1
            slot[1] += d.amount or 0.0
    spell_days = defaultdict(list)
    for d in live:
        for s in d.spells:
            if s.exited_at is not None:
                spell_days[SALESFORCE_STANDARD[s.stage].value].append(_days(s.entered_at, s.exited_at))
    closed_amount = sum(d.amount or 0.0 for d in closed)
    return {
        "pipeline_by_stage": {s.value: tuple(open_by_stage[s.value]) for s in Stage if not s.is_closed},
        "won_deals": len(won),
        "lost_deals": len(closed) - len(won),
        "win_rate_by_count": len(won) / len(closed),
        "win_rate_by_value": sum(d.amount or 0.0 for d in won) / closed_amount,
        "avg_won_deal_size": mean(d.amount for d in won if d.amount is not None),
        "avg_days_in_stage": {stage: mean(v) for stage, v in spell_days.items()},
        "completed_spells": {stage: len(v) for stage, v in spell_days.items()},
        "closed_deals": len(closed),
        "avg_sales_cycle_days": mean(_days(d.created_at, d.closed_at) for d in closed),
        "avg_won_sales_cycle_days": mean(_days(d.created_at, d.closed_at) for d in won),
    }
