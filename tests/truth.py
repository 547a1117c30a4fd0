"""Metrics computed straight from the generator's ground truth, independently of the warehouse."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from statistics import mean

from pipeline_model.stages import DEFAULT_MAPPINGS, Stage


def _days(a, b) -> float:
    return (b - a).total_seconds() / 86400


def canonical_stage(deal, stage: str) -> str:
    """The ladder stage of a CRM stage name, by the default mapping of the deal's CRM."""
    return DEFAULT_MAPPINGS[deal.source_system][stage].value


def expected_metrics(deals) -> dict:
    live = [d for d in deals if not d.deleted]
    closed = [d for d in live if d.is_closed]
    won = [d for d in closed if d.is_won]
    open_by_stage = defaultdict(lambda: [0, 0.0])
    for d in live:
        if not d.is_closed:
            slot = open_by_stage[canonical_stage(d, d.stage)]
            slot[0] += 1
            slot[1] += d.amount or 0.0
    spell_days = defaultdict(list)
    for d in live:
        for s in d.spells:
            if s.exited_at is not None:
                spell_days[canonical_stage(d, s.stage)].append(_days(s.entered_at, s.exited_at))
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


# ---------------------------------------------------------------- activity -> deal matching

def _deal_key(ref) -> str | None:
    return None if ref is None else f"{ref[0]}:{ref[1]}"


def activity_truth(org, as_of) -> dict[str, str | None]:
    """record_id (as model.activity_records names it) -> the deal its mail or meeting is about
    (None for internal, personal and newsletter mail, and mail about a deleted deal), for every Gmail copy and calendar event
    copy that exists at as_of (cancelled meetings and all-day events are not activities)."""
    live = {f"{d.source_system}:{d.id}" for d in org.deals(as_of) if not d.deleted}

    def deal(item) -> str | None:
        key = _deal_key(item["truth"]["deal"])
        return key if key in live else None     # mail about a deleted deal belongs to no deal now

    truth = {}
    for mailbox, m in org.gmail_messages(as_of):
        if m["deletedAt"] is None or m["deletedAt"] > as_of:
            truth[f"gmail:{mailbox}:{m['id']}"] = deal(m)
    for calendar, e in org.calendar_events(as_of):
        if e["status"] != "cancelled" and "dateTime" in e["start"] and "recurrence" not in e:
            truth[f"gcal:{calendar}:{e['id']}"] = deal(e)
    return truth


@dataclass
class MatchScore:
    items: int                # mail and meeting copies scored
    deal_items: int           # of which are about a deal
    predicted: int            # copies the model matched to a deal
    correct: int
    by_rule: dict[str, tuple[int, int]]    # rule -> (matched copies, correct)

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.correct / self.deal_items if self.deal_items else 0.0


def score_matching(truth: dict[str, str | None], predicted: dict[str, tuple[str | None, str]]) -> MatchScore:
    """predicted: record_id -> (deal_id or None, match_rule). A copy missing from the warehouse
    counts as unmatched."""
    by_rule: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    predicted_n = correct = 0
    for record, deal in truth.items():
        guess, rule = predicted.get(record, (None, "missing"))
        by_rule[rule][0] += 1
        if guess is not None:
            predicted_n += 1
            if guess == deal:
                correct += 1
                by_rule[rule][1] += 1
    return MatchScore(len(truth), sum(1 for d in truth.values() if d is not None), predicted_n, correct,
                      {rule: tuple(v) for rule, v in sorted(by_rule.items())})


PREDICTED_SQL = """
select s.record_id, da.deal_id, da.match_rule
from model.activity_sources s
join model.deal_activities da on da.activity_id = s.activity_id
where s.source_system in ('gmail', 'google_calendar')
"""
