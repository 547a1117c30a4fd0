"""Metrics computed straight from the generator's ground truth, independently of the warehouse."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time, timezone
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


# ---------------------------------------------------------------- pipeline metrics (issue 5)

def crm_probability(deal) -> float:
    """The probability the CRM gives a deal in its stage: the stage's default, as a fraction."""
    from sandbox.org_hubspot import HS_STAGES
    from sandbox.salesforce.schema import STANDARD_STAGES

    if deal.source_system == "hubspot":
        return {sid: float(p) for sid, _, p in HS_STAGES}[deal.stage]
    return {s["ApiName"]: s["DefaultProbability"] / 100 for s in STANDARD_STAGES}[deal.stage]


def percentile_cont(values: list[float], fraction: float) -> float | None:
    """SQL's percentile_cont: linear interpolation between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    x = fraction * (len(ordered) - 1)
    low = int(x)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (x - low) * (ordered[high] - ordered[low])


_OPEN = [s.value for s in Stage if not s.is_closed]
_ORDER = {s.value: s.order for s in Stage}


def stage_win_rates(live) -> dict[str, float | None]:
    rates = {}
    for stage in _OPEN:
        closed = [d for d in live if d.is_closed and any(canonical_stage(d, s.stage) == stage for s in d.spells)]
        rates[stage] = sum(d.is_won for d in closed) / len(closed) if closed else None
    return rates


def close_date_slip(deal) -> str | None:
    """How an open deal's close date slipped, in metrics.stalled_deals' words, from the close-date
    history its CRM recorded (DealTruth.close_dates); None if it was never moved later."""
    dates = [day for _, day in deal.close_dates]
    out = sum(b > a for a, b in zip(dates, dates[1:]))
    back = sum(b < a for a, b in zip(dates, dates[1:]))
    if out == 0:
        return None

    def times(n: int) -> str:
        return f"{n} time" if n == 1 else f"{n} times"

    pulled = f" and in {times(back)}" if back else ""
    return (f"close date moved out {times(out)}{pulled}, "
            f"from {dates[0].isoformat()} to {deal.close_date.isoformat()}")


def expected_pipeline_metrics(deals, as_of, period_bounds) -> dict:
    """Every issue-5 metric over the org's live deals, as of `as_of`; period_bounds =
    (current start, next start, next end) dates."""
    live = [d for d in deals if not d.deleted]
    rates = stage_win_rates(live)
    open_deals = [d for d in live if not d.is_closed]
    by_stage = {st: [d for d in open_deals if canonical_stage(d, d.stage) == st] for st in _OPEN}
    pipeline = {st: (len(ds), sum(d.amount or 0 for d in ds),
                     sum((d.amount or 0) * crm_probability(d) for d in ds),
                     sum((d.amount or 0) * (rates[st] or 0) for d in ds)) for st, ds in by_stage.items()}

    def furthest(d) -> int:
        return max(_ORDER[canonical_stage(d, s.stage)] for s in d.spells
                   if canonical_stage(d, s.stage) != "closed_lost") if any(
            canonical_stage(d, s.stage) != "closed_lost" for s in d.spells) else 0

    ladder = _OPEN + ["closed_won"]
    reached = {st: sum(furthest(d) >= _ORDER[st] for d in live) for st in ladder}
    funnel = {st: (reached[st], reached[ladder[i + 1]] if i + 1 < len(ladder) else 0)
              for i, st in enumerate(ladder)}

    lost_at = defaultdict(lambda: [0, 0.0])
    for d in live:
        if d.is_closed and not d.is_won:
            last_open = [canonical_stage(d, s.stage) for s in d.spells if canonical_stage(d, s.stage) in _OPEN]
            if last_open:
                lost_at[last_open[-1]][0] += 1
                lost_at[last_open[-1]][1] += d.amount or 0

    durations = defaultdict(list)
    for d in live:
        for s in d.spells:
            if s.exited_at is not None:
                durations[canonical_stage(d, s.stage)].append(_days(s.entered_at, s.exited_at))

    stalled, slipped = set(), {}
    for d in open_deals:
        current = d.spells[-1]
        stage = canonical_stage(d, d.stage)
        limit = percentile_cont(durations[stage], 0.75)
        if limit is not None and _days(current.entered_at, as_of) > limit:
            stalled.add((f"{d.source_system}:{d.id}", "stuck_in_stage"))
        if d.close_date < as_of.date():
            stalled.add((f"{d.source_system}:{d.id}", "close_date_passed"))
        slip = close_date_slip(d)
        if slip is not None:
            stalled.add((f"{d.source_system}:{d.id}", "close_date_slipped"))
            slipped[f"{d.source_system}:{d.id}"] = slip

    current_start, next_start, next_end = period_bounds
    forecast = {}
    for name, start, end in (("current", current_start, next_start), ("next", next_start, next_end)):
        due = [d for d in open_deals if start <= d.close_date < end]
        won = [d for d in live if d.is_won and start <= d.closed_at.date() < end]
        forecast[name] = (len(due), sum(d.amount or 0 for d in due),
                          sum((d.amount or 0) * crm_probability(d) for d in due),
                          sum((d.amount or 0) * (rates[canonical_stage(d, d.stage)] or 0) for d in due),
                          sum(d.amount or 0 for d in won))

    closed = [d for d in live if d.is_closed]
    won = [d for d in closed if d.is_won]
    won_amounts = [d.amount for d in won if d.amount is not None]
    cycle = mean(_days(d.created_at, d.closed_at) for d in won)
    velocity = len(open_deals) * (len(won) / len(closed)) * mean(won_amounts) / cycle
    return {
        "stage_win_rates": rates, "pipeline_by_stage": pipeline, "funnel": funnel,
        "lost_at_stage": {st: tuple(lost_at[st]) for st in _OPEN},
        "time_in_stage": {st: (percentile_cont(durations[st], 0.5), percentile_cont(durations[st], 0.75))
                          for st in _OPEN},
        "median_won_deal_size": percentile_cont(won_amounts, 0.5),
        "median_sales_cycle_days": percentile_cont([_days(d.created_at, d.closed_at) for d in closed], 0.5),
        "stalled": stalled, "slipped": slipped, "forecast": forecast, "velocity": velocity,
    }


def open_by_stage_on(deals, day) -> dict[str, int]:
    """Open deals per canonical stage at the end of `day`, from the stage spells."""
    from datetime import datetime, time, timedelta, timezone

    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=timezone.utc)
    counts: dict[str, int] = defaultdict(int)
    for d in deals:
        if d.deleted:
            continue
        for s in d.spells:
            if s.entered_at < end and (s.exited_at is None or s.exited_at >= end):
                stage = canonical_stage(d, s.stage)
                if stage in _OPEN:
                    counts[stage] += 1
    return dict(counts)


def open_amount_by_stage_on(org, live: set[str], day, now) -> dict[str, float]:
    """The open amount per canonical stage at the end of `day` (at `now` for today's), of the
    deals `live` now: the org's deals as they stood then, their amounts then."""
    from datetime import datetime, time, timedelta, timezone

    end = min(now, datetime.combine(day + timedelta(days=1), time(), tzinfo=timezone.utc) - timedelta(milliseconds=1))
    amounts: dict[str, float] = defaultdict(float)
    for d in org.deals(end):
        if f"{d.source_system}:{d.id}" in live and not d.is_closed:
            amounts[canonical_stage(d, d.stage)] += d.amount or 0.0
    return dict(amounts)


def by_month_and_crm(deals) -> tuple[dict, dict]:
    """(bookings, pipeline created) per (first day of month, CRM), from the live deals:
    bookings -> (won, lost, won amount, lost amount); created -> (deals, amount, won since, lost since)."""
    from datetime import date

    def month(ts) -> date:
        return date(ts.year, ts.month, 1)

    bookings: dict = defaultdict(lambda: [0, 0, 0.0, 0.0])
    created: dict = defaultdict(lambda: [0, 0.0, 0, 0])
    for d in deals:
        if d.deleted:
            continue
        row = created[(month(d.created_at), d.source_system)]
        row[0] += 1
        row[1] += d.amount or 0
        row[2] += d.is_won
        row[3] += d.is_closed and not d.is_won
        if d.is_closed:
            b = bookings[(month(d.closed_at), d.source_system)]
            b[0 if d.is_won else 1] += 1
            b[2 if d.is_won else 3] += d.amount or 0
    return {k: tuple(v) for k, v in bookings.items()}, {k: tuple(v) for k, v in created.items()}


# ---------------------------------------------------------------- activity per deal and per rep

@dataclass(frozen=True)
class TrueActivity:
    """One real-world email, meeting or call, however many records and copies the systems hold."""
    kind: str                   # email | meeting | call
    at: datetime                # when, as its system of record states it (UTC)
    owner: str | None           # the owning user's work email: the CRM owner, else the internal sender/organizer
    deal: str | None            # "<crm>:<id>" of the live deal it is about; None for none or a deleted one
    crm: bool                   # a CRM record (Salesforce task/event, HubSpot engagement) linked to `deal`
    held: bool = True           # False: a meeting that did not take place (a HubSpot meeting whose
                                # outcome is CANCELED or NO_SHOW); no metric counts it


def true_activities(org, as_of) -> list[TrueActivity]:
    """Every email, meeting and call the org's systems hold at as_of, each once, from the generator:
    CRM records (their deal is the one the simulation logged them against: WhatId, or the HubSpot
    association, archived ones included), the mail (one per Message-ID, if a copy is left
    undeleted) and the calendars (one per iCalUID and instance, cancelled and all-day ones left
    out) with the deal their `truth` names. A mail or meeting a CRM logged is the CRM record: the
    generator logs the first message of the thread (same deal, same millisecond) and the meeting
    (same deal, same start). Times are the system of record's: a Salesforce call task only has a
    date (ActivityDate, the day of the call), so it is that day at 00:00 UTC; a mail no CRM logged
    is its Date header (whole seconds). A call task still open (scheduled, or a follow-up never
    made) is not a call. A HubSpot meeting whose outcome at as_of is CANCELED or NO_SHOW did not
    take place: it is listed with held=False (and still stands for the calendar event it logged).
    Recurring series (internal ones only) are expanded up to as_of."""
    from email.utils import parseaddr, parsedate_to_datetime

    from dateutil.rrule import rrulestr

    users = set(org.mailboxes())
    user_of = {}
    for identity in org.identities():
        if identity["key"] in users:
            for system in ("salesforce", "hubspot"):
                if identity[system]:
                    user_of[(system, identity[system])] = identity["key"]
    live = {f"{d.source_system}:{d.id}" for d in org.deals(as_of) if not d.deleted}
    out: list[TrueActivity] = []
    logged_mail, logged_meetings = set(), set()      # (deal it was logged against, time)

    def add(kind, at, owner, deal, crm=False, held=True):
        out.append(TrueActivity(kind, at, owner, deal if deal in live else None, crm and deal in live, held))

    for obj, r in org.records(as_of, objects=["Task", "Event"]):
        if r["IsDeleted"]:
            continue
        deal, owner = f"salesforce:{r['WhatId']}", user_of[("salesforce", r["OwnerId"])]
        if obj == "Event":
            add("meeting", r["StartDateTime"], owner, deal, crm=True)
            logged_meetings.add((deal, r["StartDateTime"]))
        elif r["TaskSubtype"] == "Email":
            add("email", r["CreatedDate"], owner, deal, crm=True)
            logged_mail.add((deal, r["CreatedDate"]))
        elif r["TaskSubtype"] == "Call" and r["Status"] == "Completed":
            add("call", datetime.combine(r["ActivityDate"], time(), timezone.utc), owner, deal, crm=True)

    engagements, deal_of = [], {}
    for kind, r in org.hubspot_records(as_of):
        if kind in ("emails", "meetings", "calls", "tasks") and not r["archived"]:
            engagements.append((kind, r["id"], r["properties"]))
        elif kind == "associations" and r["toObjectType"] == "deals" and r["fromObjectType"] in (
                "emails", "meetings", "calls", "tasks"):
            deal_of[(r["fromObjectType"], r["fromId"])] = f"hubspot:{r['toId']}"

    def hs_time(value: str) -> datetime:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    for kind, oid, p in engagements:
        deal, owner = deal_of.get((kind, oid)), user_of[("hubspot", p["hubspot_owner_id"])]
        if kind == "emails":
            add("email", hs_time(p["hs_timestamp"]), owner, deal, crm=True)
            logged_mail.add((deal, hs_time(p["hs_timestamp"])))
        elif kind == "meetings":
            add("meeting", hs_time(p["hs_meeting_start_time"]), owner, deal, crm=True,
                held=p["hs_meeting_outcome"] not in ("CANCELED", "NO_SHOW"))
            logged_meetings.add((deal, hs_time(p["hs_meeting_start_time"])))
        elif kind == "calls" or (p["hs_task_type"] == "CALL" and p["hs_task_status"] == "COMPLETED"):
            add("call", hs_time(p["hs_timestamp"]), owner, deal, crm=True)

    mails = {}
    for _, m in org.gmail_messages(as_of):
        if m["deletedAt"] is None or m["deletedAt"] > as_of:
            headers = {h["name"]: h["value"] for h in m["headers"]}
            mails.setdefault(headers["Message-ID"], (m, headers))
    for m, headers in mails.values():
        deal = _deal_key(m["truth"]["deal"])
        if (deal, m["internalDate"]) not in logged_mail:
            sender = parseaddr(headers["From"])[1].lower()
            add("email", parsedate_to_datetime(headers["Date"]).astimezone(timezone.utc),
                sender if sender in users else None, deal)

    events = {}
    for _, e in org.calendar_events(as_of):
        if e["status"] != "cancelled" and "dateTime" in e["start"]:
            events.setdefault(e["iCalUID"], e)
    for e in events.values():
        deal, start = _deal_key(e["truth"]["deal"]), e["start"]["dateTime"]
        organizer = e["organizer"]["email"]
        starts = [start] if "recurrence" not in e else \
            rrulestr("\n".join(e["recurrence"]), dtstart=start).between(start, as_of, inc=True)
        for s in starts:
            if (deal, s) not in logged_meetings:
                add("meeting", s, organizer if organizer in users else None, deal)
    return out


def owner_ids(org, canonical: dict[tuple[str, str], str]) -> dict:
    """Each user's warehouse owner id, keyed by work email and by (CRM, user or owner id), through
    `canonical` ((source_system, source_id) -> canonical id, the warehouse's id dictionary): one
    id per real-world user, none shared."""
    users = set(org.mailboxes())
    out = {}
    for identity in org.identities():
        if identity["key"] not in users:
            continue
        ids = {canonical[(s, identity[s])] for s in ("salesforce", "hubspot") if identity[s]}
        assert len(ids) == 1, (identity, ids)
        out[identity["key"]] = owner = ids.pop()
        out.update({(s, identity[s]): owner for s in ("salesforce", "hubspot") if identity[s]})
    assert len({v for k, v in out.items() if isinstance(k, str)}) == len(users)
    return out


def deal_activity(deals, activities: list[TrueActivity], as_of) -> dict[str, dict]:
    """metrics.deal_activity per live deal from the true activities (meetings held only); crm_*
    count the deal's own CRM records only (the part no matching rule can miss)."""
    out = {}
    for d in deals:
        if not d.deleted:
            out[f"{d.source_system}:{d.id}"] = {
                "emails": 0, "meetings": 0, "calls": 0, "crm_emails": 0, "crm_meetings": 0, "crm_calls": 0,
                "last_activity_at": None, "next_meeting_at": None,
                "deal_age_days": _days(d.created_at, d.closed_at or as_of)}
    for a in activities:
        if a.deal is None or not a.held:
            continue
        row = out[a.deal]
        if a.at <= as_of:
            row[a.kind + "s"] += 1
            row["crm_" + a.kind + "s"] += a.crm
            row["last_activity_at"] = max(filter(None, (row["last_activity_at"], a.at)))
        elif a.kind == "meeting":
            row["next_meeting_at"] = min(filter(None, (row["next_meeting_at"], a.at)))
    for row in out.values():
        last = row["last_activity_at"]
        row["days_since_last_touch"] = None if last is None else _days(last, as_of)
    return out


def rep_activity(activities: list[TrueActivity], as_of, owner_of: dict) -> dict[tuple, tuple]:
    """(owner id, first day of the month) -> (emails, meetings, calls, of them about a deal), for
    the owned activities up to as_of (meetings held only)."""
    from datetime import date

    out: dict = defaultdict(lambda: [0, 0, 0, 0])
    for a in activities:
        if a.owner is not None and a.held and a.at <= as_of:
            row = out[(owner_of[a.owner], date(a.at.year, a.at.month, 1))]
            row[("email", "meeting", "call").index(a.kind)] += 1
            row[3] += a.deal is not None
    return {k: tuple(v) for k, v in out.items()}


def by_owner(deals, owner_of: dict) -> tuple[dict, dict, dict]:
    """From the live deals, per owner (warehouse id):
    open pipeline per (stage, stage order, owner, CRM, pipeline) -> (deals, amount, CRM-weighted,
    history-weighted); bookings per (close month, owner, CRM) -> (won, lost, won amount, lost
    amount); pipeline created per (created month, owner, CRM) -> (deals, amount, won since, lost since)."""
    from datetime import date

    live = [d for d in deals if not d.deleted]
    rates = stage_win_rates(live)
    pipeline: dict = defaultdict(lambda: [0, 0.0, 0.0, 0.0])
    bookings: dict = defaultdict(lambda: [0, 0, 0.0, 0.0])
    created: dict = defaultdict(lambda: [0, 0.0, 0, 0])
    for d in live:
        owner, amount = owner_of[(d.source_system, d.owner_id)], d.amount or 0
        if not d.is_closed:
            stage = canonical_stage(d, d.stage)
            # HubSpot deals sit in its one deal pipeline, `default`; Salesforce has no pipelines.
            row = pipeline[(stage, _ORDER[stage], owner, d.source_system,
                            "default" if d.source_system == "hubspot" else None)]
            row[0] += 1
            row[1] += amount
            row[2] += amount * crm_probability(d)
            row[3] += amount * (rates[stage] or 0)
        else:
            row = bookings[(date(d.closed_at.year, d.closed_at.month, 1), owner, d.source_system)]
            row[0 if d.is_won else 1] += 1
            row[2 if d.is_won else 3] += amount
        row = created[(date(d.created_at.year, d.created_at.month, 1), owner, d.source_system)]
        row[0] += 1
        row[1] += amount
        row[2] += d.is_won
        row[3] += d.is_closed and not d.is_won
    return tuple({k: tuple(v) for k, v in table.items()} for table in (pipeline, bookings, created))


# ---------------------------------------------------------------- metrics sliced by owner, manager, CRM, pipeline, period

SLICES = ("owner", "manager", "source_system", "pipeline", "period")


def period_start(ts, period: str):
    """First day of the month or quarter (metrics.period) holding `ts`, in UTC."""
    from datetime import date

    ts = ts.astimezone(timezone.utc)
    months = {"month": 1, "quarter": 3}[period]
    return date(ts.year, (ts.month - 1) // months * months + 1, 1)


def sliced_metrics(deals, owner_of: dict, manager_of: dict, period: str) -> dict[str, dict]:
    """The sliced metric tables from the live deals: table -> {(slice_by, slice_value[, stage]): figures}.
    owner_of maps (CRM, CRM user id) to the warehouse owner id, manager_of an owner id to its
    manager's (absent: none). A slice appears when it has something to count, the org always;
    per-stage tables list every stage of a slice that appears. Periods (first day, ISO text):
    win_rates, sales_cycle and lost_at_stage by the close, time_in_stage by the end of the
    spell, funnel and stage_win_rates by the deal's creation."""
    live = [d for d in deals if not d.deleted]

    def slices(d, at) -> list[tuple[str, str | None]]:
        owner = owner_of[(d.source_system, d.owner_id)]
        return [("org", None), ("owner", owner), ("manager", manager_of.get(owner)),
                ("source_system", d.source_system),
                # HubSpot deals sit in its one deal pipeline, `default`; Salesforce has no pipelines.
                ("pipeline", "default" if d.source_system == "hubspot" else None),
                ("period", period_start(at, period).isoformat())]

    def group(items) -> dict:
        """(deal, time for its period, item) -> {slice: [items]}, the org always there."""
        out: dict = defaultdict(list, {("org", None): []})
        for d, at, item in items:
            for key in slices(d, at):
                out[key].append(item)
        return out

    def share(a, b):
        return a / b if b else None

    closed = [d for d in live if d.is_closed]
    win_rates = {}
    for key, ds in group((d, d.closed_at, d) for d in closed).items():
        won = [d for d in ds if d.is_won]
        won_amounts = [d.amount for d in won if d.amount is not None]
        won_amount, lost_amount = sum(d.amount or 0 for d in won), sum(d.amount or 0 for d in ds if not d.is_won)
        win_rates[key] = (len(won), len(ds) - len(won), won_amount, lost_amount, share(len(won), len(ds)),
                          share(won_amount, won_amount + lost_amount), mean(won_amounts) if won_amounts else None,
                          percentile_cont(won_amounts, 0.5))
    sales_cycle = {}
    for key, ds in group((d, d.closed_at, d) for d in closed if d.closed_at is not None).items():
        cycles = [_days(d.created_at, d.closed_at) for d in ds]
        won = [_days(d.created_at, d.closed_at) for d in ds if d.is_won]
        sales_cycle[key] = (len(ds), mean(cycles) if cycles else None, percentile_cont(cycles, 0.5), len(won),
                            mean(won) if won else None)

    spells = group((d, s.exited_at, (canonical_stage(d, s.stage), _days(s.entered_at, s.exited_at)))
                   for d in live for s in d.spells
                   if s.exited_at is not None and canonical_stage(d, s.stage) in _OPEN)
    time_in_stage = {}
    for key, items in spells.items():
        for st in _OPEN:
            days = [v for stage, v in items if stage == st]
            time_in_stage[(*key, st)] = (len(days), mean(days) if days else None, percentile_cont(days, 0.5),
                                         percentile_cont(days, 0.75))

    stage_win_rates = {}
    for key, items in group((d, d.created_at, (canonical_stage(d, s.stage), d))
                            for d in closed for s in d.spells if canonical_stage(d, s.stage) in _OPEN).items():
        for st in _OPEN:
            ds = {id(d): d for stage, d in items if stage == st}.values()      # a deal once per stage
            won = sum(d.is_won for d in ds)
            stage_win_rates[(*key, st)] = (len(ds), won, share(won, len(ds)))

    ladder = _OPEN + ["closed_won"]
    funnel = {}
    for key, reached in group((d, d.created_at, max(_ORDER[canonical_stage(d, s.stage)] for s in d.spells
                                                    if canonical_stage(d, s.stage) in ladder))
                              for d in live if any(canonical_stage(d, s.stage) in ladder for s in d.spells)).items():
        for i, st in enumerate(ladder):
            nxt = _ORDER[ladder[i + 1]] if i + 1 < len(ladder) else None
            funnel[(*key, st)] = (sum(f >= _ORDER[st] for f in reached),
                                  sum(f >= nxt for f in reached) if nxt else 0)

    lost_at_stage = {}
    lost = []
    for d in closed:
        open_spells = [canonical_stage(d, s.stage) for s in d.spells if canonical_stage(d, s.stage) in _OPEN]
        if not d.is_won and open_spells:
            lost.append((d, d.closed_at, (open_spells[-1], d.amount or 0)))
    for key, items in group(lost).items():
        for st in _OPEN:
            amounts = [a for stage, a in items if stage == st]
            lost_at_stage[(*key, st)] = (len(amounts), sum(amounts))

    pipeline_velocity = {}
    for key, ds in group((d, d.created_at, d) for d in live).items():
        if key[0] == "period":
            continue        # velocity is the pipeline as it is now: no period slice
        won, closed = [d for d in ds if d.is_won], [d for d in ds if d.is_closed]
        open_deals, win_rate = len(ds) - len(closed), share(len(won), len(closed))
        won_amounts = [d.amount for d in won if d.amount is not None]
        size = mean(won_amounts) if won_amounts else None
        cycle = mean(_days(d.created_at, d.closed_at) for d in won) if won else None
        velocity = (open_deals * win_rate * size / cycle
                    if None not in (win_rate, size, cycle) and cycle else None)
        pipeline_velocity[key] = (open_deals, win_rate, size, cycle, velocity)
    return {"win_rates": win_rates, "sales_cycle": sales_cycle, "time_in_stage": time_in_stage,
            "stage_win_rates": stage_win_rates, "funnel": funnel, "lost_at_stage": lost_at_stage,
            "pipeline_velocity": pipeline_velocity}
