"""A deterministic synthetic sales org: the data behind the sandbox's vendor emulators.

`SyntheticOrg(seed, size)` simulates a B2B sales team from 2025-01-01 (`start`) to
2027-01-01 (`horizon`): users in a VP → managers → reps hierarchy, accounts with their
contacts, opportunities that move through the standard Salesforce stages, the
OpportunityHistory rows those moves leave, and the emails, calls and meetings logged
against them. `now` (2026-07-01) is the moment the sandbox starts at; time can then be
advanced up to `horizon`, after which the world stands still.

Everything streams. Each entity is derived from its own RNG
(``random.Random(f"{seed}:deal:{i}")``, ``…:account:{i}``, …) and from a few small
org-wide tables (users, a per-business-day intake curve), so any entity can be
regenerated on its own and memory stays bounded whatever the size:

* accounts are numbered in creation order (account i's creation time is a monotone
  function of i), so a deal created at t picks among accounts ``0 .. k(t)-1``;
* deals are numbered in creation order too, so ``records(as_of)`` stops at the first
  deal created after ``as_of``;
* a deal's whole life (stage path, close-date slips, amount edits, owner transfer,
  deletion) is simulated first as a skeleton; its activities come from a second RNG
  and only when asked for.

All timestamps are whole milliseconds. Work happens in business hours: the simulation
runs on a business clock whose days are the 10 hours 13:00–23:00 UTC, Monday–Friday
(09:00–19:00 US Eastern in summer), which `_wall` maps onto wall-clock time; nobody
emails or calls on public holidays, and wins bunch up at quarter end.

What drives a deal: a latent quality (rep skill, lead source, deal type, size, noise)
sets its odds of moving on at each stage, so outcomes are learnable from the fields;
its health — healthy (will be won), dying (will be lost), stalled (sits for months in
one stage) — sets the rhythm of its emails, calls and meetings.

Beyond the contract: `records()` and `changes()` take an optional `objects=` filter
(skipping the work for the others), and the org keeps a 16-bytes-a-deal index of
creation and last-modification times so repeated `changes()` calls skip finished deals.

Records are plain dicts with exactly the fields of `sandbox.salesforce.schema.OBJECTS`
and the Python types its docstring lists.

Where the org lives: `SyntheticOrg(seed, size, crm)` with crm "salesforce" (the above),
"hubspot" (the same simulation rendered as HubSpot objects; `records()` is empty) or
"both" (an org that moved at `migration_at`: deals created before it stay in Salesforce,
later ones are HubSpot deals). The Salesforce output of crm="salesforce" never depends on
the other views: they draw only from their own RNG streams. The views live in their own
modules and are reached through this class, per sandbox/README.md:

* `sandbox.org_hubspot`: `hubspot_records()`, `hubspot_changes()`, `identities()`;
* `sandbox.org_gmail`: `mailboxes()`, `gmail_messages()`, `gmail_changes()`;
* `sandbox.org_calendar`: `calendars()`, `calendar_events()`, `calendar_changes()`.

Currencies: by default the org is a single-currency Salesforce org (no CurrencyIsoCode field:
amounts are in its one corporate currency). `currencies=("USD", "EUR", "GBP")` makes it a
multi-currency org, the first code its corporate currency: every account gets a currency (the
corporate one for 60 % of them, the others share the rest), and its contacts, deals and their
OpportunityHistory rows carry it as CurrencyIsoCode (`org.salesforce_objects` is the schema then),
their amounts in it. Everything else, amounts included, is the same org as without currencies.

Shared building blocks (business clock, vocabulary, entities, truth types) are in
`sandbox.org_base`.
"""

from __future__ import annotations

import math
import random
from array import array
from bisect import bisect_right
from datetime import date, datetime, timedelta
from typing import Iterable, Iterator, Sequence

from sandbox.org_base import (
    _ACCOUNT_TYPES, _ADV_LOGIT, _BDAY, _CALL_TOPICS, _CLOSED, _CONTACT_COUNTS, _CONTACT_TITLES, _DAY,
    _DEAL_TYPES, _DESCRIPTORS, _EMAIL_TOPICS, _ENDINGS, _FIRST, _FORECAST, _HALF_HOUR, _HOLIDAYS, _HOUR,
    _ISWON, _LAST, _LEAD_SOURCES, _LOST, _MAX_ACTIVITIES, _MAX_HISTORY, _MEETING_TOPICS, _MIDDLES, _MIN,
    _NAME_SPACE, _NAME_STEP, _ONSETS, _P_STALL, _PROB, _PRODUCTS, _RATE_CALL, _RATE_EMAIL, _RATE_MEET,
    _SEC, _STAGE_MEDIAN, _STAGES, _STALL_MEDIAN, _TEAMS, _WON, SIZES, UTC, DealTruth, StageSpell, _Account,
    _bdate, _biz, _close_date_changes, _Contact, _date_b, _Deal, _digest, _dt, _eom, _lognorm_bdays, _ms, _pick,
    _User, _wall)
from sandbox.org_calendar import CalendarView
from sandbox.org_gmail import GmailView
from sandbox.org_hubspot import HubSpotView
from sandbox.salesforce.schema import OBJECTS, STANDARD_STAGES, SObject, make_id, objects_for

CRMS = ("salesforce", "hubspot", "both")

__all__ = ["SIZES", "StageSpell", "DealTruth", "SyntheticOrg"]

# --------------------------------------------------------------------------- the org

def _currencies(currencies: Sequence[str] | None, crm: str) -> tuple[str, ...]:
    """The org's currencies as given (corporate first), checked; () for a single-currency org."""
    codes = tuple(currencies or ())
    if not codes:
        return ()
    if isinstance(currencies, str) or len(set(codes)) != len(codes) or not all(
            isinstance(c, str) and len(c) == 3 and c.isascii() and c.isalpha() and c.isupper() for c in codes):
        raise ValueError(f"currencies must be distinct 3-letter upper-case ISO codes, the corporate currency "
                         f"first (e.g. ('USD', 'EUR', 'GBP')); got {currencies!r}")
    if crm == "hubspot":
        raise ValueError("currencies make a multi-currency Salesforce org; crm='hubspot' has no Salesforce side")
    return codes


class SyntheticOrg:
    """A deterministic synthetic sales org in Salesforce, HubSpot or both, with its reps'
    mailboxes and calendars; see the module docstring."""

    internal_domain = "northwind-sales.example"

    def __init__(self, seed: int = 42, size: str = "small", crm: str = "salesforce",
                 currencies: Sequence[str] | None = None):
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; allowed sizes: {', '.join(SIZES)}")
        if crm not in CRMS:
            raise ValueError(f"unknown crm {crm!r}; allowed: {', '.join(CRMS)}")
        self.seed = seed
        self.size = size
        self.crm = crm
        # () for a single-currency org; else the org's currencies, the corporate one first.
        self.currencies = _currencies(currencies, crm)
        self.start = datetime(2025, 1, 1, tzinfo=UTC)
        self.now = datetime(2026, 7, 1, tzinfo=UTC)
        self.horizon = datetime(2027, 1, 1, tzinfo=UTC)
        self._start, self._now, self._horizon = _ms(self.start), _ms(self.now), _ms(self.horizon)
        self._start_b, self._now_b, self._horizon_b = _biz(self._start), _biz(self._now), _biz(self._horizon)
        self._birth = _ms(datetime(2023, 6, 1, 13, tzinfo=UTC))     # the org's own creation
        self.migration_at = datetime(2026, 1, 1, tzinfo=UTC)         # start + 12 months
        self._migration = _ms(self.migration_at)
        self._build_users()
        self._build_intake()
        self._build_accounts()
        # Per-deal creation time and last-modification bound (-1: not simulated yet), filled in
        # as deals are first simulated (16 bytes a deal): lets changes() skip finished deals.
        self._index_created = array("q", [-1]) * self._n_deals
        self._index_modified = array("q", [-1]) * self._n_deals
        self._split_deals()
        self._hubspot = HubSpotView(self)
        self._gmail = GmailView(self)
        self._calendar = CalendarView(self)

    # ------------------------------------------------------------------ org-wide tables

    def _rng(self, *parts) -> random.Random:
        return random.Random(":".join([str(self.seed), *map(str, parts)]))

    def _build_users(self) -> None:
        r = self._rng("users")
        n_reps, n_mgrs = _TEAMS[self.size]
        taken: set[str] = set()

        def name():
            while True:
                first, last = r.choice(_FIRST), r.choice(_LAST)
                email = f"{first.lower()}.{last.lower()}@{self.internal_domain}"
                if email not in taken:
                    taken.add(email)
                    return first, last, email

        users: list[_User] = []
        vp = _User(1, *name(), "VP of Sales", None, self._birth + _HOUR, team=None)
        users.append(vp)
        managers = []
        for m in range(n_mgrs):
            created = self._birth + _DAY + int(r.uniform(0, 5) * _DAY)
            u = _User(len(users) + 1, *name(), "Regional Sales Manager", vp.id, created, team=m)
            users.append(u)
            managers.append(u)
        reps = []
        for k in range(n_reps):
            mgr = managers[k % n_mgrs]
            if r.random() < 0.7:    # onboarded at launch; the rest hired over the following 18 months
                created = self._birth + 2 * _DAY + int(r.uniform(0, 20) * _DAY)
            else:
                created = self._birth + int(r.uniform(25, 560) * _DAY)
            created = max(created, mgr.created + _HOUR)
            title = "Senior Account Executive" if r.random() < 0.35 else "Account Executive"
            u = _User(len(users) + 1, *name(), title, mgr.id, created, team=mgr.team)
            u.skill = r.gauss(0.0, 0.35)
            u.pace = math.exp(r.gauss(0.0, 0.2))
            users.append(u)
            reps.append(u)
        mean_skill = sum(u.skill for u in reps) / len(reps)
        for u in reps:      # skill is relative to the team: the org's overall win rate stays put
            u.skill -= mean_skill
        # A few reps leave: deactivated at a moment during the simulated period, their book
        # (accounts, contacts, open deals) transferred to a teammate who stays.
        n_leave = min(n_mgrs, max(1, round(n_reps * 0.07)))
        for team in sorted(r.sample(range(n_mgrs), n_leave)):
            members = [u for u in reps if u.team == team]
            if len(members) < 2:
                continue
            leaver, heir = r.sample(members, 2)
            leaver.deactivated = _wall(self._start_b + int(r.uniform(110, 480) * _BDAY))
            leaver.successor = heir
        for u in reps:      # heirs never leave
            if u.successor is not None and u.successor.deactivated is not None:
                u.successor.deactivated, u.successor.successor = None, None
        by_id = {u.id: u for u in users}
        for u in users:
            u.manager = by_id.get(u.manager_id)
        self._users, self._vp, self._managers, self._reps = users, vp, managers, reps

    def _build_intake(self) -> None:
        """Deal intake per business day over [start, horizon): growth, weekday and holiday
        effects, noise; scaled so exactly SIZES[size] deals are created before `now`."""
        r = self._rng("intake")
        n_days = (self._horizon_b - self._start_b) // _BDAY
        n_now = (self._now_b - self._start_b) // _BDAY
        weekday = [0.9, 1.1, 1.1, 1.0, 0.85]
        weights = []
        for k in range(n_days):
            b = self._start_b + k * _BDAY
            d = _bdate(b)
            w = (1.0 + 0.3 * k / n_now) * weekday[(b // _BDAY) % 5]
            if d in _HOLIDAYS:
                w *= 0.1
            elif (d.month == 12 and d.day >= 20) or (d.month == 1 and d.day <= 3):
                w *= 0.35
            elif d.month == 8:
                w *= 0.85
            weights.append(w * math.exp(r.gauss(0.0, 0.2)))
        scale = SIZES[self.size] / sum(weights[:n_now])
        weights = [w * scale for w in weights]
        cum, acc = [], 0.0
        for k, w in enumerate(weights):
            acc = float(SIZES[self.size]) if k == n_now - 1 else acc + w
            cum.append(acc)
        self._day_w, self._day_cum = weights, cum
        self._n_deals = int(cum[-1])

    def _build_accounts(self) -> None:
        """Accounts: ~deals/3 over the whole horizon, 35 % of them created before `start`."""
        total = max(3, round(self._n_deals / 3))
        self._n_pre = max(1, round(total * 0.35))
        self._n_accounts = total
        self._pre_b0 = _biz(self._birth + 30 * _DAY)
        self._pre_step = (self._start_b - self._pre_b0) / self._n_pre
        self._post_step = (self._horizon_b - self._start_b) / (total - self._n_pre)
        r = self._rng("names")
        self._name_offset = r.randrange(_NAME_SPACE)

    # ------------------------------------------------------------------ entities

    def _active_rep(self, r: random.Random, t: int) -> _User:
        for _ in range(64):
            u = r.choice(self._reps)
            if u.active_at(t):
                return u
        return next(u for u in self._reps if u.active_at(t))

    def _account_created_b(self, i: int, u: float) -> int:
        if i < self._n_pre:
            return self._pre_b0 + int((i + u) * self._pre_step)
        return self._start_b + int((i - self._n_pre + u) * self._post_step)

    def _accounts_before_b(self, b: int) -> int:
        """k such that accounts 0..k-1 were all created before business time b."""
        if b < self._start_b:
            return max(0, min(self._n_pre, int((b - self._pre_b0) / self._pre_step)))
        return min(self._n_accounts, self._n_pre + int((b - self._start_b) / self._post_step))

    def _account(self, i: int) -> _Account:
        r = self._rng("account", i)
        a = _Account()
        a.i, a.id = i, make_id("001", i + 1)
        j = (i * _NAME_STEP + self._name_offset) % _NAME_SPACE
        j, d = divmod(j, len(_DESCRIPTORS))
        j, e = divmod(j, len(_ENDINGS))
        o, m = divmod(j, len(_MIDDLES))
        brand = _ONSETS[o] + _MIDDLES[m] + _ENDINGS[e]
        descriptor, a.industry = _DESCRIPTORS[d]
        a.name = f"{brand} {descriptor}"
        a.domain = f"{brand.lower()}-{descriptor.lower()}.example"
        a.created_b = self._account_created_b(i, r.random())
        a.created = _wall(a.created_b)
        a.type = _pick(r, _ACCOUNT_TYPES)[0] if i < self._n_pre else (
            "Prospect" if r.random() < 0.7 else _pick(r, _ACCOUNT_TYPES)[0])
        owner = self._active_rep(r, a.created)
        a.owners = [(a.created, owner)]
        if owner.deactivated is not None:
            a.owners.append((owner.deactivated, owner.successor))
        return a

    def _contacts(self, a: _Account) -> list[_Contact]:
        r = self._rng("contacts", a.i)
        out, taken = [], set()
        for k in range(_pick(r, _CONTACT_COUNTS)[0]):
            c = _Contact()
            c.n = a.i * 8 + k
            c.id = make_id("003", c.n + 1)
            c.first, c.last = r.choice(_FIRST), r.choice(_LAST)
            local = f"{c.first.lower()}.{c.last.lower()}"
            n = 2
            while local in taken:
                local = f"{c.first.lower()}.{c.last.lower()}{n}"
                n += 1
            taken.add(local)
            c.email = f"{local}@{a.domain}"
            c.title = _pick(r, _CONTACT_TITLES)[0]
            c.created = a.created if k == 0 else _wall(a.created_b + _lognorm_bdays(r, 12.0, 1.0))
            out.append(c)
        return out

    def _deal_created_b(self, y: float) -> int:
        k = bisect_right(self._day_cum, y)
        prev = self._day_cum[k - 1] if k else 0.0
        frac = min(max((y - prev) / self._day_w[k], 0.0), 0.999999)
        return self._start_b + k * _BDAY + int(frac * _BDAY)

    def _deal_head(self, i: int) -> tuple[random.Random, int, int]:
        """The first draws of deal i's RNG: (rng, creation business time, account index).
        Cheap, so org-wide indexes (an account's first deal) need not simulate whole deals."""
        r = self._rng("deal", i)
        created_b = self._deal_created_b(i + r.random())
        # Account: a recently created one (new logos) or any existing one (repeat business).
        k = self._accounts_before_b(created_b)
        if r.random() < 0.4:
            acc_i = k - 1 - int(r.random() * max(1, k // 12))
        else:
            acc_i = int(r.random() * k)
        return r, created_b, acc_i

    def _deal(self, i: int) -> _Deal:   # noqa: C901 - one linear simulation, kept in one place
        r, created_b, acc_i = self._deal_head(i)
        D = _Deal()
        D.i, D.id = i, make_id("006", i + 1)
        created = _wall(created_b)
        D.created, D.created_b = created, created_b
        horizon_b = self._horizon_b
        acc = self._account(acc_i)
        D.account = acc
        owner = acc.owner_at(created) if r.random() < 0.75 else self._active_rep(r, created)
        D.owners = [(created, owner)]

        product, factor = r.choice(_PRODUCTS)
        D.name = f"{acc.name} – {product}"
        new_logo = acc.created_b > created_b - 40 * _BDAY
        D.type, _, type_effect = _DEAL_TYPES[0] if new_logo else _pick(r, _DEAL_TYPES)
        D.lead_source, _, lead_effect = _pick(r, _LEAD_SOURCES)
        raw = 20_000 * factor * math.exp(r.gauss(0.23, 0.9))
        if raw >= 5_000 and r.random() < 0.6:
            amount = float(max(1_000, round(raw, -3)))
        else:
            amount = float(max(100, round(raw)))
        quality = owner.skill + type_effect + lead_effect - 0.25 * math.log(amount / 20_000) + r.gauss(0.0, 0.5)
        speed = math.exp(r.gauss(0.0, 0.3)) * (amount / 20_000) ** 0.12
        D.engagement = math.exp(r.gauss(0.0, 0.25)) * (amount / 20_000) ** 0.1 * owner.pace

        # ---- stage path (business time). spells: [stage index, entered_b]; exit = next entry.
        idx = 0 if r.random() > 0.1 else 1
        t = created_b
        path = [[idx, t]]
        moves = 0
        while True:
            p = 1.0 / (1.0 + math.exp(-(_ADV_LOGIT[idx] + quality)))
            if r.random() < p:
                t += _lognorm_bdays(r, _STAGE_MEDIAN[idx] * speed, 0.8)
                u = r.random()
                if idx >= 2 and moves < 8 and u < 0.035:
                    idx -= 1                      # rarely back one stage
                elif idx <= 3 and u > 0.93:
                    idx += 2                      # now and then skip one
                else:
                    idx += 1
                path.append([idx, t])
                moves += 1
                if idx == _WON:
                    break
            else:
                t += _lognorm_bdays(r, _STAGE_MEDIAN[idx] * speed * 1.7, 0.9)
                path.append([_LOST, t])
                break
        if idx == _WON and len(path) > 1:
            # End-of-quarter push: a win that would land early next quarter is often pulled in.
            won_b = path[-1][1]
            d = _bdate(won_b)
            quarter_b = _date_b(date(d.year, 3 * ((d.month - 1) // 3) + 1, 1))
            if won_b - quarter_b < 8 * _BDAY and r.random() < 0.45:
                pulled = quarter_b - int(r.uniform(0.02, 2.5) * _BDAY)
                if pulled > path[-2][1] + _BDAY // 2:
                    path[-1][1] = pulled
        health = "healthy" if idx == _WON else "dying"
        silence_b = None
        if r.random() < _P_STALL:
            # Stalls in one of its open spells: sits there for months, goes silent early on,
            # then is either closed lost in a pipeline clean-up or left open.
            s = int(r.random() * (len(path) - 1))
            path = path[: s + 1]
            enter = path[s][1]
            silence_b = enter + min(_lognorm_bdays(r, 3.0, 0.7), 15 * _BDAY)
            if r.random() < 0.6:
                path.append([_LOST, enter + max(_lognorm_bdays(r, _STALL_MEDIAN, 0.55), 25 * _BDAY)])
            health = "stalled"
        D.health = health
        end_b = path[-1][1] if _CLOSED[path[-1][0]] else None      # None: never closes

        # ---- deletion: mistakes caught quickly, and clean-ups of dead deals.
        deleted_b = None
        u = r.random()
        if u < 0.004:
            deleted_b = created_b + int(r.uniform(0.005, 2.0) * _BDAY)
        elif health == "stalled" and u < 0.05:
            deleted_b = silence_b + _lognorm_bdays(r, 40.0, 0.6)
        elif health == "dying" and u < 0.014:
            deleted_b = end_b + _lognorm_bdays(r, 20.0, 0.8)
        if deleted_b is not None and deleted_b > horizon_b:
            deleted_b = None
        alive_until = deleted_b if deleted_b is not None else horizon_b + 1
        if end_b is not None:
            alive_until = min(alive_until, end_b)       # last moment the deal is open

        # ---- events: (time_b, order, kind, value)
        events = []
        amount0 = None if r.random() < 0.12 else amount
        planned_b = created_b + int(sum(_STAGE_MEDIAN) * speed * math.exp(r.gauss(-0.2, 0.45)) * _BDAY)
        planned = _bdate(planned_b)
        if r.random() < 0.45:
            planned = _eom(planned)
        events.append((created_b, 0, "create", (path[0][0], amount0, planned)))
        for n, (st, tb) in enumerate(path[1:], 1):
            events.append((tb, 1, "stage", st))
            if n == 1 and amount0 is None:
                events.append((tb, 2, "amount", amount))
        # Amount edits: re-scoped at proposal, discounted in negotiation.
        for n, (st, tb) in enumerate(path):
            nxt = path[n + 1][1] if n + 1 < len(path) else (silence_b or tb + 10 * _BDAY)
            if silence_b is not None:
                nxt = min(nxt, silence_b)
            if nxt <= tb + _MIN:
                continue
            if st == 3 and r.random() < 0.3:
                amount = float(max(100, round(amount * math.exp(r.gauss(0.05, 0.25)), -2)))
                events.append((tb + int(r.uniform(0.1, 0.9) * (nxt - tb)), 2, "amount", amount))
            elif st == 4 and r.random() < 0.35:
                amount = float(max(100, round(amount * (1 - r.uniform(0.05, 0.15)), -2)))
                events.append((tb + int(r.uniform(0.1, 0.9) * (nxt - tb)), 2, "amount", amount))
        # Close-date slips: when the planned date comes round and the deal is still open,
        # the owner usually pushes it out.
        push = {"healthy": 0.85, "dying": 0.6, "stalled": 0.45}[health]
        last_b = created_b
        for _ in range(6):
            m_b = max(_date_b(planned) + int(r.uniform(-3.0, 5.0) * _BDAY), last_b + _BDAY // 4)
            if m_b >= alive_until or m_b > horizon_b or r.random() >= push:
                break
            new = max(_bdate(m_b) + timedelta(days=r.randint(7, 21)),
                      planned + timedelta(days=int(20 * math.exp(r.gauss(0.0, 0.5)))))
            if r.random() < 0.5:
                new = _eom(new)
            if new <= planned:
                new = planned + timedelta(days=7)
            events.append((m_b, 3, "close_date", new))
            planned, last_b = new, m_b
        # Owner leaves while the deal is open: the book moves to the heir.
        if owner.deactivated is not None:
            tb = _biz(owner.deactivated)
            if tb < alive_until and tb > created_b:
                events.append((tb, 4, "owner", owner.successor))
                D.owners.append((owner.deactivated, owner.successor))
        if deleted_b is not None:
            events.append((deleted_b, 9, "delete", None))

        # ---- versions, in wall time; events at the same millisecond merge into one save.
        events.sort(key=lambda e: (e[0], e[1]))
        stage, amt, close_date, own, deleted = path[0][0], amount0, planned, owner, False
        versions, history, moves_out = [], [], []
        closed = None
        for tb, _, kind, val in events:
            if tb > horizon_b or deleted:
                break
            if deleted_b is not None and tb >= deleted_b and kind != "delete":
                continue
            tw = _wall(tb)
            tracked = False
            if kind == "create":
                stage, amt, close_date = val
                tracked = True
                moves_out.append((stage, tw))
            elif kind == "stage":
                stage, tracked = val, True
                moves_out.append((stage, tw))
                if _CLOSED[stage]:
                    close_date, closed = _bdate(tb), tw
            elif kind == "amount":
                if val == amt:
                    continue
                amt, tracked = val, True
            elif kind == "close_date":
                if closed is not None:
                    continue
                close_date, tracked = val, True
            elif kind == "owner":
                own = val
            elif kind == "delete":
                deleted = True
            state = (tw, stage, amt, close_date, own, deleted)
            if versions and versions[-1][0] == tw:
                versions[-1] = state
                if tracked and history and history[-1][0] == tw:
                    history[-1] = state
                elif tracked:
                    history.append(state)
            else:
                versions.append(state)
                if tracked:
                    history.append(state)
        D.versions, D.history, D.stage_moves = versions, history[:_MAX_HISTORY], moves_out
        D.deleted = _wall(deleted_b) if deleted else None
        D.closed = closed

        # ---- when activity happens: from creation until the deal closes, goes silent or is deleted.
        act_end = end_b if end_b is not None else horizon_b
        if silence_b is not None:
            act_end = min(act_end, silence_b)
        if deleted_b is not None:
            act_end = min(act_end, deleted_b - _SEC)
        D.act_end_b = max(created_b, min(act_end, horizon_b))
        D.fate_b = end_b if end_b is not None else horizon_b    # when it closes, even past horizon
        return D

    def _activities(self, D: _Deal) -> list[tuple]:
        """The deal's tasks and events, in creation order, as tuples:
        ('Task', created, completed|None, subtype, subject, priority, due_date, contact_id, owner)
        ('Event', created, start, minutes, subject, contact_id, owner)   (times in wall ms)."""
        r = self._rng("activity", D.i)
        contacts = self._contacts(D.account)
        primary = self._primary_contact(r, D, contacts)
        start_b, end_b = D.created_b, D.act_end_b
        if end_b <= start_b + _MIN:
            return []
        # Spells in business time, to know the stage at a moment.
        spells = [(st, _biz(tw)) for st, tw in D.stage_moves]
        life = max(D.fate_b - start_b, 1)
        base = D.engagement * (0.9 if D.health == "dying" else 0.85 if D.health == "stalled" else 1.0)
        lam_max = max(_RATE_EMAIL[s] + _RATE_CALL[s] + _RATE_MEET[s] for s in range(5)) * base
        out = []
        t = start_b
        sp = 0
        last_act = None
        while True:
            t += int(r.expovariate(lam_max) * _BDAY) + 1
            if t >= end_b:
                break
            while sp + 1 < len(spells) and spells[sp + 1][1] <= t:
                sp += 1
            st = spells[sp][0]
            if _CLOSED[st]:
                break
            if _bdate(t) in _HOLIDAYS:
                continue
            w_email, w_call, w_meet = _RATE_EMAIL[st], _RATE_CALL[st], _RATE_MEET[st]
            factor = base
            if D.health == "dying":
                factor *= max(0.0, 1.0 - (t - start_b) / life) ** 1.2
            x = r.random() * lam_max
            tw = _wall(t)
            if x >= factor * (w_email + w_call + w_meet):
                continue
            x /= factor
            if x < w_email or x < w_email + w_call:
                if x < w_email:
                    subject = "Email: " + r.choice(_EMAIL_TOPICS[st])
                    out.append(("Task", tw, tw, "Email", subject, "High" if r.random() < 0.05 else "Normal",
                                _bdate(t), self._who(r, primary, contacts, tw), D.owner_at(tw)))
                else:
                    subject = "Call: " + r.choice(_CALL_TOPICS[st])
                    created = tw
                    if r.random() < 0.35:       # scheduled ahead, completed when it happens
                        cb = max(start_b + _MIN, t - _lognorm_bdays(r, 2.0, 0.5))
                        if cb < t - _SEC:
                            created = _wall(cb)
                    out.append(("Task", created, tw, "Call", subject, "High" if r.random() < 0.1 else "Normal",
                                _bdate(t), self._who(r, primary, contacts, created), D.owner_at(created)))
            else:
                minutes = r.choice((30, 30, 45, 60, 60))
                s = t - t % _HALF_HOUR
                if s % _BDAY + minutes * _MIN > _BDAY:
                    s -= (s % _BDAY + minutes * _MIN - _BDAY)
                if s <= start_b:
                    continue
                cb = max(start_b + _MIN, s - int(r.uniform(1.0, 7.0) * _BDAY))
                created = min(_wall(cb), _wall(s))
                who = self._who(r, primary, contacts, created)
                subject = "Meeting: " + r.choice(_MEETING_TOPICS[st])
                out.append(("Event", created, _wall(s), minutes, subject, who, D.owner_at(created)))
            last_act = t
        # Dying and stalled deals often leave a follow-up nobody does.
        if D.health != "healthy" and last_act is not None and r.random() < 0.5:
            cb = last_act + int(r.uniform(0.02, 0.5) * _BDAY)
            if cb < end_b:
                tw = _wall(cb)
                due = _bdate(cb + int(r.uniform(2, 7) * _BDAY))
                out.append(("Task", tw, None, "Call", "Call: follow-up", "Normal", due,
                            self._who(r, primary, contacts, tw), D.owner_at(tw)))
        out.sort(key=lambda a: a[1])
        return out[:_MAX_ACTIVITIES]

    @staticmethod
    def _primary_contact(r: random.Random, D: _Deal, contacts: list[_Contact]) -> _Contact:
        """The deal's main contact: the first draw of its activity RNG."""
        eligible0 = [c for c in contacts if c.created <= D.created] or contacts[:1]
        return r.choice(eligible0)

    def primary_contact(self, D: _Deal, contacts: list[_Contact]) -> _Contact:
        return self._primary_contact(self._rng("activity", D.i), D, contacts)

    @staticmethod
    def _who(r: random.Random, primary: _Contact, contacts: list[_Contact], t: int) -> str:
        if r.random() < 0.6 and primary.created <= t:
            return primary.id
        eligible = [c for c in contacts if c.created <= t]
        return r.choice(eligible).id if eligible else primary.id

    # ------------------------------------------------------------------ iteration helpers

    def _clamp(self, as_of: datetime) -> int:
        return min(_ms(as_of), self._horizon)

    def _accounts_upto(self, t: int) -> Iterator[_Account]:
        for i in range(self._n_accounts):
            a = self._account(i)
            if a.created > t:
                return
            yield a

    def _sf_accounts_upto(self, t: int) -> Iterator[_Account]:
        """The accounts Salesforce holds: all of them, none in a HubSpot org, and in a
        migrated org those created before the migration (later companies live in HubSpot)."""
        if self.crm == "hubspot":
            return
        for a in self._accounts_upto(t):
            if self.crm == "both" and a.created >= self._migration:
                return
            yield a

    def _deals_upto(self, t: int, since: int | None = None, *, lo: int = 0, hi: int | None = None,
                    touched: array | None = None) -> Iterator[_Deal]:
        """Deals lo..hi-1 created at or before t, in creation order; with `since`, only those
        touched after it. `touched` is a per-deal last-touch index (-1: unknown; default: the
        Salesforce modification bound) that lets deals seen once be skipped without simulating them."""
        created = self._index_created
        touched = self._index_modified if touched is None else touched
        for i in range(lo, self._n_deals if hi is None else hi):
            c = created[i]
            if c >= 0:
                if c > t:
                    return
                if since is not None and 0 <= touched[i] <= since:
                    continue
            d = self._deal(i)
            if c < 0:
                created[i] = d.created
                self._index_modified[i] = d.last_modified()
            if d.created > t:
                return
            yield d

    def _split_deals(self) -> None:
        """Deals are numbered in creation order, so one index splits them between the CRMs:
        deals 0.._n_sf-1 live in Salesforce, the rest in HubSpot."""
        if self.crm != "both":
            self._n_sf = self._n_deals if self.crm == "salesforce" else 0
            return
        lo, hi = 0, self._n_deals
        while lo < hi:      # creation time is monotone in the deal number
            mid = (lo + hi) // 2
            if _wall(self._deal_created_b(mid + self._rng("deal", mid).random())) < self._migration:
                lo = mid + 1
            else:
                hi = mid
        self._n_sf = lo

    # ------------------------------------------------------------------ record builders (state at t)

    def _user_record(self, u: _User, t: int):
        if u.created > t:
            return None
        active = u.deactivated is None or u.deactivated > t
        mod = u.created if active else u.deactivated
        return {"Id": u.id, "Name": f"{u.first} {u.last}", "FirstName": u.first, "LastName": u.last,
                "Email": u.email, "Title": u.title, "IsActive": active, "ManagerId": u.manager_id,
                "CreatedDate": _dt(u.created), "CreatedById": self._vp.id,
                "LastModifiedDate": _dt(mod), "SystemModstamp": _dt(mod)}

    def _stage_records(self, t: int):
        if self._birth > t:
            return
        created = _dt(self._birth)
        for n, s in enumerate(STANDARD_STAGES, 1):
            yield {"Id": make_id("01J", n), "ApiName": s["ApiName"], "MasterLabel": s["ApiName"],
                   "IsActive": True, "IsClosed": s["IsClosed"], "IsWon": s["IsWon"],
                   "DefaultProbability": s["DefaultProbability"],
                   "ForecastCategoryName": s["ForecastCategoryName"], "SortOrder": n,
                   "CreatedDate": created, "SystemModstamp": created}

    @staticmethod
    def _owned(owners, created: int, t: int):
        """(owner, modstamp) at t for a record created at `created` following an owner timeline."""
        owner, mod = owners[0][1], created
        for since, u in owners[1:]:
            if since <= t and since > created:
                owner, mod = u, since
            elif since <= created:
                owner = u
        return owner, mod

    @property
    def salesforce_objects(self) -> dict[str, SObject]:
        """The SObjects (and their fields) this org's Salesforce records have: with CurrencyIsoCode
        on Account, Contact, Opportunity and OpportunityHistory when it has several currencies."""
        return objects_for(bool(self.currencies))

    def _currency(self, a: _Account) -> str | None:
        """An account's currency (its contacts' and deals' too) in a multi-currency org, else None:
        the corporate currency for 60 % of accounts, the other currencies share the rest evenly.
        Drawn from its own digest, so the rest of the org is the same with or without currencies."""
        codes = self.currencies
        if not codes:
            return None
        u = int.from_bytes(_digest(self.seed, "currency", a.i)[:4], "big") / 2 ** 32
        if u < 0.6 or len(codes) == 1:
            return codes[0]
        return codes[1 + min(len(codes) - 2, int((u - 0.6) / 0.4 * (len(codes) - 1)))]

    def _with_currency(self, rec: dict, a: _Account) -> dict:
        if self.currencies:
            rec["CurrencyIsoCode"] = self._currency(a)
        return rec

    def _account_record(self, a: _Account, t: int):
        owner, mod = self._owned(a.owners, a.created, t)
        rec = {"Id": a.id, "Name": a.name, "Website": f"https://www.{a.domain}", "Industry": a.industry,
               "Type": a.type, "OwnerId": owner.id, "IsDeleted": False,
               "CreatedDate": _dt(a.created), "CreatedById": a.owners[0][1].id,
               "LastModifiedDate": _dt(mod), "SystemModstamp": _dt(mod)}
        return self._with_currency(rec, a)

    def _contact_record(self, a: _Account, c: _Contact, t: int):
        owner, mod = self._owned(a.owners, c.created, t)
        creator = a.owner_at(c.created)
        rec = {"Id": c.id, "AccountId": a.id, "FirstName": c.first, "LastName": c.last,
               "Name": f"{c.first} {c.last}", "Email": c.email, "Title": c.title, "OwnerId": owner.id,
               "IsDeleted": False, "CreatedDate": _dt(c.created), "CreatedById": creator.id,
               "LastModifiedDate": _dt(mod), "SystemModstamp": _dt(mod)}
        return self._with_currency(rec, a)

    @staticmethod
    def _version_at(D: _Deal, t: int):
        v = None
        for ver in D.versions:
            if ver[0] > t:
                break
            v = ver
        return v

    def _opportunity_record(self, D: _Deal, t: int):
        tw, stage, amt, close_date, own, deleted = self._version_at(D, t)
        rec = {"Id": D.id, "Name": D.name, "AccountId": D.account.id, "OwnerId": own.id,
               "StageName": _STAGES[stage], "Amount": amt, "Probability": _PROB[stage],
               "CloseDate": close_date, "IsClosed": _CLOSED[stage], "IsWon": _ISWON[stage],
               "ForecastCategoryName": _FORECAST[stage], "Type": D.type, "LeadSource": D.lead_source,
               "IsDeleted": deleted, "CreatedDate": _dt(D.created), "CreatedById": D.owners[0][1].id,
               "LastModifiedDate": _dt(tw), "SystemModstamp": _dt(tw)}
        return self._with_currency(rec, D.account)

    def _history_records(self, D: _Deal, t: int, since: int | None = None):
        gone = D.deleted is not None and D.deleted <= t
        for j, (tw, stage, amt, close_date, own, _) in enumerate(D.history):
            if tw > t:
                return
            mod = D.deleted if gone else tw
            if since is not None and mod <= since:
                continue
            yield self._with_currency({
                "Id": make_id("008", D.i * 100 + j + 1), "OpportunityId": D.id,
                "StageName": _STAGES[stage], "Amount": amt, "Probability": _PROB[stage],
                "CloseDate": close_date, "ForecastCategory": _FORECAST[stage],
                "ExpectedRevenue": None if amt is None else round(amt * _PROB[stage] / 100.0, 2),
                "IsDeleted": gone, "CreatedDate": _dt(tw), "CreatedById": own.id,
                "SystemModstamp": _dt(mod)}, D.account)

    def _activity_records(self, D: _Deal, acts: list[tuple], t: int, since: int | None, want: set[str]):
        gone = D.deleted is not None and D.deleted <= t
        for j, a in enumerate(acts):
            created = a[1]
            if created > t:
                continue
            if a[0] == "Task":
                if "Task" not in want:
                    continue
                done = a[2] is not None and a[2] <= t
                mod = D.deleted if gone else (a[2] if done else created)
                if since is not None and mod <= since:
                    continue
                yield "Task", {
                    "Id": make_id("00T", D.i * 1000 + j + 1), "Subject": a[4],
                    "Status": "Completed" if done else "Not Started", "Priority": a[5],
                    "ActivityDate": a[6], "WhatId": D.id, "WhoId": a[7], "OwnerId": a[8].id,
                    "IsClosed": done, "TaskSubtype": a[3], "IsDeleted": gone,
                    "CreatedDate": _dt(created), "CreatedById": a[8].id,
                    "LastModifiedDate": _dt(mod), "SystemModstamp": _dt(mod)}
            else:
                if "Event" not in want:
                    continue
                mod = D.deleted if gone else created
                if since is not None and mod <= since:
                    continue
                start = _dt(a[2])
                yield "Event", {
                    "Id": make_id("00U", D.i * 1000 + j + 1), "Subject": a[4], "StartDateTime": start,
                    "EndDateTime": start + timedelta(minutes=a[3]), "ActivityDateTime": start,
                    "DurationInMinutes": a[3], "IsAllDayEvent": False, "WhatId": D.id, "WhoId": a[5],
                    "OwnerId": a[6].id, "IsDeleted": gone,
                    "CreatedDate": _dt(created), "CreatedById": a[6].id,
                    "LastModifiedDate": _dt(mod), "SystemModstamp": _dt(mod)}

    # ------------------------------------------------------------------ public API

    def records(self, as_of: datetime, *, objects: Iterable[str] | None = None) -> Iterator[tuple[str, dict]]:
        """Every record that exists at as_of (created at or before it), in its state at as_of,
        as (SObject name, record). Deleted records are included with IsDeleted=True (Salesforce's
        queryAll sees them). `objects` optionally restricts the output (and the work) to some SObjects.
        The world stops at `horizon`: a later as_of gives the state at horizon."""
        return self._stream(self._clamp(as_of), None, objects)

    def changes(self, since: datetime, until: datetime, *,
                objects: Iterable[str] | None = None) -> Iterator[tuple[str, dict]]:
        """Records whose state at `until` has SystemModstamp in (since, until], in that state.
        Applying these as upserts by Id to records(since) gives exactly records(until)."""
        s, u = self._clamp(since), self._clamp(until)
        if _ms(since) >= _ms(until):
            return iter(())
        return self._stream(u, s, objects)

    def _stream(self, t: int, since: int | None, objects) -> Iterator[tuple[str, dict]]:
        want = set(OBJECTS) if objects is None else set(objects)
        unknown = want - set(OBJECTS)
        if unknown:
            raise ValueError(f"unknown SObjects: {sorted(unknown)}")

        def fresh(rec):
            return since is None or _ms(rec["SystemModstamp"]) > since

        if self.crm == "hubspot":
            return
        if "User" in want:
            for u in self._users:
                rec = self._user_record(u, t)
                if rec is not None and fresh(rec):
                    yield "User", rec
        if "OpportunityStage" in want:
            for rec in self._stage_records(t):
                if fresh(rec):
                    yield "OpportunityStage", rec
        if "Account" in want:
            for a in self._sf_accounts_upto(t):
                rec = self._account_record(a, t)
                if fresh(rec):
                    yield "Account", rec
        if "Contact" in want:
            for a in self._sf_accounts_upto(t):
                for c in self._contacts(a):
                    if c.created <= t:
                        rec = self._contact_record(a, c, t)
                        if fresh(rec):
                            yield "Contact", rec
        deal_objs = want & {"Opportunity", "OpportunityHistory", "Task", "Event"}
        if not deal_objs:
            return
        for D in self._deals_upto(t, since, hi=self._n_sf):
            if since is not None and D.last_modified() <= since:
                continue
            if "Opportunity" in want:
                rec = self._opportunity_record(D, t)
                if fresh(rec):
                    yield "Opportunity", rec
            if "OpportunityHistory" in want:
                for rec in self._history_records(D, t, since):
                    yield "OpportunityHistory", rec
            if "Task" in want or "Event" in want:
                yield from self._activity_records(D, self._activities(D), t, since, want)

    def deals(self, as_of: datetime) -> Iterator[DealTruth]:
        """Ground truth for every deal created at or before as_of in every CRM the org lives in
        (Salesforce ones first; deleted/archived ones too, deleted=True), computed from the
        simulation itself, not from the emitted records."""
        t = self._clamp(as_of)
        for D in self._deals_upto(t, hi=self._n_sf):
            yield self._truth(D, t)
        if self._n_sf < self._n_deals:
            for D in self._deals_upto(t, lo=self._n_sf):
                yield self._hubspot.truth(D, t)

    def _truth(self, D: _Deal, t: int) -> DealTruth:
        tw, stage, amt, close_date, own, deleted = self._version_at(D, t)
        moves = [(st, tm) for st, tm in D.stage_moves if tm <= t]
        spells = []
        for n, (st, tm) in enumerate(moves):
            if n + 1 < len(moves):
                exited = _dt(moves[n + 1][1])
            elif deleted:
                exited = _dt(D.deleted)
            else:
                exited = None
            spells.append(StageSpell(_STAGES[st], _dt(tm), exited))
        closed = D.closed is not None and D.closed <= t
        return DealTruth(
            id=D.id, name=D.name, account_id=D.account.id, owner_id=own.id, created_at=_dt(D.created),
            amount=amt, stage=_STAGES[stage], close_date=close_date, is_closed=_CLOSED[stage],
            is_won=_ISWON[stage], closed_at=_dt(D.closed) if closed else None, deleted=deleted,
            spells=tuple(spells), health=D.health, close_dates=_close_date_changes(D.history, t),
            currency=self._currency(D.account))

    # ------------------------------------------------------------------ HubSpot, Gmail, Calendar

    def _window(self, since: datetime, until: datetime) -> tuple[int, int] | None:
        s, u = self._clamp(since), self._clamp(until)
        return None if _ms(since) >= _ms(until) else (s, u)

    def hubspot_records(self, as_of: datetime) -> Iterator[tuple[str, dict]]:
        """Every HubSpot record that exists at as_of, in its state then, as (kind, record); archived
        ones included (archived=True). Empty when the org does not live in HubSpot."""
        return self._hubspot.stream(self._clamp(as_of), None)

    def hubspot_changes(self, since: datetime, until: datetime) -> Iterator[tuple[str, dict]]:
        """HubSpot records whose state at `until` changed in (since, until] (objects: updatedAt;
        associations: created or archived), in that state. Applying them as upserts by (kind, id),
        associations by (fromObjectType, fromId, toObjectType, toId, associationTypeId), to
        hubspot_records(since) gives exactly hubspot_records(until)."""
        window = self._window(since, until)
        return iter(()) if window is None else self._hubspot.stream(window[1], window[0])

    def identities(self) -> Iterator[dict]:
        """Per real-world company and person (contacts and users), its id in each CRM."""
        return self._hubspot.identities()

    def mailboxes(self) -> list[str]:
        return self._gmail.mailboxes()

    def gmail_messages(self, as_of: datetime) -> Iterator[tuple[str, dict]]:
        """(mailbox, message) for every message in a mailbox at as_of; deleted ones with deletedAt."""
        return self._gmail.stream(self._clamp(as_of), None)

    def gmail_changes(self, since: datetime, until: datetime) -> Iterator[tuple[str, dict]]:
        """(mailbox, message) for messages added or deleted in (since, until], in their state at until."""
        window = self._window(since, until)
        return iter(()) if window is None else self._gmail.stream(window[1], window[0])

    def calendars(self) -> list[str]:
        return self._calendar.calendars()

    def calendar_events(self, as_of: datetime) -> Iterator[tuple[str, dict]]:
        """(calendar id, event) for every event created by as_of, in its state then (cancelled ones too)."""
        return self._calendar.stream(self._clamp(as_of), None)

    def calendar_changes(self, since: datetime, until: datetime) -> Iterator[tuple[str, dict]]:
        """(calendar id, event) for events whose `updated` is in (since, until], in their state at until."""
        window = self._window(since, until)
        return iter(()) if window is None else self._calendar.stream(window[1], window[0])
