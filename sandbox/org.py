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
"""

from __future__ import annotations

import math
import random
import threading
from array import array
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Iterable, Iterator

from sandbox.salesforce.schema import OBJECTS, OPEN_STAGES_USED, STANDARD_STAGES, make_id

__all__ = ["SIZES", "StageSpell", "DealTruth", "SyntheticOrg"]

SIZES = {"small": 500, "medium": 10_000, "large": 100_000}   # ≈ deals created by `now`

# Team shape per size: (reps, managers).
_TEAMS = {"small": (12, 3), "medium": (60, 10), "large": (400, 50)}

# --------------------------------------------------------------------------- time

UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_SEC, _MIN, _HOUR, _DAY = 1_000, 60_000, 3_600_000, 86_400_000
_WEEK = 7 * _DAY


def _ms(dt: datetime) -> int:
    """Aware datetime -> integer milliseconds since the epoch (floored)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got {dt!r}")
    return (dt - _EPOCH) // _MS


def _dt(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


# The business clock: business time b counts milliseconds of working time since
# _ORIGIN (a Monday); a business day ("bday") is the window 13:00–23:00 UTC.
_ORIGIN_DATE = date(2022, 1, 3)
_ORIGIN = _ms(datetime(2022, 1, 3, tzinfo=UTC))
_WIN_START = 13 * _HOUR
_BDAY = 10 * _HOUR
_BWEEK = 5 * _BDAY
_HALF_HOUR = 30 * _MIN


def _wall(b: int) -> int:
    """Business time -> wall-clock ms (strictly increasing)."""
    w, r = divmod(b, _BWEEK)
    d, s = divmod(r, _BDAY)
    return _ORIGIN + w * _WEEK + d * _DAY + _WIN_START + s


def _biz(t: int) -> int:
    """Wall-clock ms -> business time: the first business moment at or after t."""
    w, r = divmod(t - _ORIGIN, _WEEK)
    d, s = divmod(r, _DAY)
    if d >= 5:
        return (w + 1) * _BWEEK
    s -= _WIN_START
    if s < 0:
        s = 0
    elif s >= _BDAY:
        return w * _BWEEK + (d + 1) * _BDAY
    return w * _BWEEK + d * _BDAY + s


def _bdate(b: int) -> date:
    """Calendar date of a business moment."""
    d = b // _BDAY
    return _ORIGIN_DATE + timedelta(days=7 * (d // 5) + d % 5)


def _date_b(d: date) -> int:
    """Business time of the start of a calendar day's window (next Monday for weekends)."""
    w, dd = divmod((d - _ORIGIN_DATE).days, 7)
    return (w * 5 + min(dd, 5)) * _BDAY


def _eom(d: date) -> date:
    return (d.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def _holidays(years) -> frozenset[date]:
    """Days nobody works: the usual US ones plus the end-of-year break."""
    out = set()
    for y in years:
        may31 = date(y, 5, 31)
        sep1 = date(y, 9, 1)
        nov1 = date(y, 11, 1)
        thanksgiving = nov1 + timedelta(days=(3 - nov1.weekday()) % 7 + 21)
        out |= {date(y, 1, 1), may31 - timedelta(days=may31.weekday()), date(y, 7, 4),
                sep1 + timedelta(days=(7 - sep1.weekday()) % 7), thanksgiving,
                thanksgiving + timedelta(days=1), date(y, 12, 24), date(y, 12, 25), date(y, 12, 26),
                date(y, 12, 31)}
    return frozenset(out)


_HOLIDAYS = _holidays(range(2022, 2029))


# --------------------------------------------------------------------------- vocabulary

_FIRST = """James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara
Richard Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Lisa Matthew Nancy Anthony Betty
Mark Sandra Steven Ashley Paul Emily Andrew Donna Joshua Michelle Kevin Carol Brian Amanda George
Melissa Timothy Deborah Ryan Stephanie Jacob Rebecca Nicholas Laura Eric Sharon Jonathan Cynthia
Aisha Wei Priya Mateo Sofia Hiroshi Yuki Olga Ivan Fatima Omar Lucia Diego Chen Anil Ingrid Lars
Noah Emma Liam Olivia Ethan Ava Lucas Mia Amara Kwame Nadia Tomas Elena Rafael Chloe Samir Leila""".split()
_LAST = """Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez
Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez
Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green
Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Patel Kim Chen Singh Kowalski
Novak Schmidt Muller Rossi Bianchi Silva Santos Okafor Mensah Tanaka Sato Ivanova Petrov Larsen
Berg Dubois Laurent Fischer Weber Costa Moreau Haddad Khan Ali Park Choi Yamamoto Nakamura""".split()

# Company brands: 2-char onset + 2-char middle + ending. Fixed widths make the
# concatenation injective, so distinct combinations give distinct names and domains.
_ONSETS = [c + v for c in "BCDFGKLMNPRSTVZ" for v in "aeiou"]            # 75
_MIDDLES = [c + v for c in "dlmnrstv" for v in "aeio"]                   # 32
_ENDINGS = ["x", "n", "ra", "ro", "lix", "tix", "via", "dex", "lon", "sys",
            "tek", "gen", "nova", "ly", "ta", "rin", "con", "vo", "mar", "quest"]  # 20
_DESCRIPTORS = [  # (descriptor, Industry picklist value)
    ("Robotics", "Machinery"), ("Health", "Healthcare"), ("Logistics", "Transportation"),
    ("Foods", "Food & Beverage"), ("Analytics", "Technology"), ("Software", "Technology"),
    ("Capital", "Finance"), ("Insurance", "Insurance"), ("Energy", "Energy"),
    ("Telecom", "Telecommunications"), ("Media", "Media"), ("Retail", "Retail"),
    ("Biotech", "Biotechnology"), ("Labs", "Biotechnology"), ("Construction", "Construction"),
    ("Consulting", "Consulting"), ("Systems", "Electronics"), ("Networks", "Communications"),
    ("Manufacturing", "Manufacturing"), ("Shipping", "Shipping"), ("Hotels", "Hospitality"),
    ("Learning", "Education"), ("Motors", "Machinery"), ("Apparel", "Apparel"),
    ("Chemicals", "Chemicals"), ("Engineering", "Engineering"), ("Studios", "Entertainment"),
    ("Farms", "Agriculture"), ("Utilities", "Utilities"), ("Bank", "Banking"),
]
_NAME_SPACE = len(_ONSETS) * len(_MIDDLES) * len(_ENDINGS) * len(_DESCRIPTORS)   # 1,440,000
_NAME_STEP = 1_000_003            # prime, coprime to _NAME_SPACE: i -> (a*i+b) mod M is a bijection

_ACCOUNT_TYPES = [("Prospect", 40), ("Customer - Direct", 35), ("Customer - Channel", 10),
                  ("Channel Partner / Reseller", 5), ("Other", 10)]
_CONTACT_TITLES = [("CEO", 3), ("CFO", 4), ("CTO", 4), ("COO", 3), ("VP of Operations", 8),
                   ("VP of Engineering", 6), ("VP of Finance", 5), ("Director of IT", 10),
                   ("Head of Procurement", 8), ("Operations Manager", 10), ("IT Manager", 9),
                   ("Finance Manager", 7), ("Senior Software Engineer", 6), ("Business Analyst", 7),
                   ("Procurement Specialist", 5), ("Office Manager", 5)]
_CONTACT_COUNTS = [(1, 15), (2, 25), (3, 25), (4, 15), (5, 12), (6, 8)]

# (product, amount factor)
_PRODUCTS = [("Platform License", 1.0), ("Analytics Add-on", 0.6), ("Enterprise Plan", 2.5),
             ("Team Plan", 0.5), ("Implementation Services", 0.8), ("Premium Support", 0.55),
             ("Data Connectors", 0.7), ("Pilot", 0.35), ("Seat Expansion", 0.9),
             ("Security Add-on", 0.75), ("Training Package", 0.4), ("Multi-year Agreement", 3.0)]
# (LeadSource, weight, effect on the deal's win logit)
_LEAD_SOURCES = [("Web", 28, 0.0), ("Phone Inquiry", 8, 0.15), ("Partner Referral", 12, 0.45),
                 ("Employee Referral", 6, 0.35), ("External Referral", 6, 0.3), ("Trade Show", 10, -0.1),
                 ("Advertisement", 8, -0.2), ("Purchased List", 7, -0.55), ("Other", 8, 0.0),
                 (None, 7, -0.1)]
# (Type, weight, effect on the deal's win logit)
# (a deal on an account younger than ~2 months is always "New Customer")
_DEAL_TYPES = [("New Customer", 45, -0.05), ("Existing Customer - Upgrade", 35, 0.35),
               ("Existing Customer - Replacement", 13, 0.2), ("Existing Customer - Downgrade", 7, 0.2)]

_EMAIL_TOPICS = [["intro", "following up", "quick question", "intro deck"],
                 ["discovery recap", "next steps", "qualification questions"],
                 ["requirements follow-up", "use case summary", "technical questions"],
                 ["pricing follow-up", "proposal sent", "quote revision"],
                 ["contract redlines", "order form", "legal review", "final terms"]]
_CALL_TOPICS = [["intro", "discovery"], ["discovery", "qualification"],
                ["needs analysis", "technical deep dive"], ["pricing discussion", "proposal walkthrough"],
                ["negotiation", "contract review"]]
_MEETING_TOPICS = [["intro meeting"], ["discovery session"], ["product demo", "technical workshop"],
                   ["proposal review", "executive alignment"], ["contract review", "executive sign-off"]]

# --------------------------------------------------------------------------- the sales process

_STAGES = OPEN_STAGES_USED + ["Closed Won", "Closed Lost"]     # indices 0..4 open, 5 won, 6 lost
_WON, _LOST = 5, 6
_BY_NAME = {s["ApiName"]: s for s in STANDARD_STAGES}
_PROB = [_BY_NAME[s]["DefaultProbability"] for s in _STAGES]
_FORECAST = [_BY_NAME[s]["ForecastCategoryName"] for s in _STAGES]
_CLOSED = [_BY_NAME[s]["IsClosed"] for s in _STAGES]
_ISWON = [_BY_NAME[s]["IsWon"] for s in _STAGES]
assert len(OPEN_STAGES_USED) == 5 and _ISWON[_WON] and _CLOSED[_LOST] and not _ISWON[_LOST]

_ADVANCE = [0.635, 0.675, 0.755, 0.785, 0.805]       # P(move on | stage) for an average deal
_ADV_LOGIT = [math.log(p / (1 - p)) for p in _ADVANCE]
_STAGE_MEDIAN = [5.0, 7.0, 10.0, 9.0, 7.0]      # business days in stage, median, for a moving deal
_P_STALL = 0.105
_STALL_MEDIAN = 75.0                            # business days a stalled deal sits
# Activity rates per business day, by open stage, for a healthy deal.
_RATE_EMAIL = [0.32, 0.32, 0.31, 0.33, 0.35]
_RATE_CALL = [0.13, 0.15, 0.14, 0.14, 0.15]
_RATE_MEET = [0.04, 0.085, 0.12, 0.16, 0.19]
_MAX_ACTIVITIES = 999
_MAX_HISTORY = 99


def _pick(r: random.Random, table):
    """Weighted choice from [(value, weight, ...), ...]; returns the whole row."""
    total = sum(row[1] for row in table)
    x = r.random() * total
    for row in table:
        x -= row[1]
        if x < 0:
            return row
    return table[-1]


def _lognorm_bdays(r: random.Random, median: float, sigma: float) -> int:
    return max(_MIN, int(median * math.exp(r.gauss(0.0, sigma)) * _BDAY))


# --------------------------------------------------------------------------- public types

@dataclass(frozen=True)
class StageSpell:
    stage: str
    entered_at: datetime
    exited_at: datetime | None


@dataclass(frozen=True)
class DealTruth:
    id: str
    name: str
    account_id: str
    owner_id: str
    created_at: datetime
    amount: float | None
    stage: str
    close_date: date
    is_closed: bool
    is_won: bool
    closed_at: datetime | None
    deleted: bool
    spells: tuple[StageSpell, ...]
    health: str


# --------------------------------------------------------------------------- internal entities

class _User:
    __slots__ = ("n", "id", "first", "last", "email", "title", "manager_id", "created", "deactivated",
                 "successor", "skill", "pace", "team")

    def __init__(self, n, first, last, email, title, manager_id, created, team):
        self.n = n
        self.id = make_id("005", n)
        self.first, self.last, self.email, self.title = first, last, email, title
        self.manager_id = manager_id
        self.created = created          # wall ms
        self.deactivated = None         # wall ms or None
        self.successor = None           # _User taking over the book on deactivation
        self.skill = 0.0                # win-logit shift
        self.pace = 1.0                 # activity-rate multiplier
        self.team = team

    def active_at(self, t: int) -> bool:
        return self.created <= t and (self.deactivated is None or t < self.deactivated)


def _owner_at(owners: list, t: int) -> "_User":
    """The owner at time t from a (since, user) list in time order."""
    owner = owners[0][1]
    for since, u in owners:
        if since <= t:
            owner = u
    return owner


class _Account:
    __slots__ = ("i", "id", "name", "domain", "industry", "type", "created", "created_b", "owners")

    def owner_at(self, t: int) -> _User:
        return _owner_at(self.owners, t)


class _Contact:
    __slots__ = ("id", "first", "last", "email", "title", "created")


class _Deal:
    """One opportunity's simulated life. Times in wall ms unless named *_b (business time)."""
    __slots__ = ("i", "id", "name", "account", "created", "created_b", "health", "owners",
                 "versions", "history", "stage_moves", "deleted", "closed", "act_end_b",
                 "type", "lead_source", "engagement", "fate_b")

    def owner_at(self, t: int) -> _User:
        return _owner_at(self.owners, t)

    def last_modified(self) -> int:
        """An upper bound on every SystemModstamp of the deal and its children."""
        return max(self.versions[-1][0], _wall(self.act_end_b))


# --------------------------------------------------------------------------- the org

class SyntheticOrg:
    """A deterministic synthetic Salesforce org; see the module docstring."""

    internal_domain = "northwind-sales.example"

    def __init__(self, seed: int = 42, size: str = "small"):
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; allowed sizes: {', '.join(SIZES)}")
        self.seed = seed
        self.size = size
        self.start = datetime(2025, 1, 1, tzinfo=UTC)
        self.now = datetime(2026, 7, 1, tzinfo=UTC)
        self.horizon = datetime(2027, 1, 1, tzinfo=UTC)
        self._start, self._now, self._horizon = _ms(self.start), _ms(self.now), _ms(self.horizon)
        self._start_b, self._now_b, self._horizon_b = _biz(self._start), _biz(self._now), _biz(self._horizon)
        self._birth = _ms(datetime(2023, 6, 1, 13, tzinfo=UTC))     # the org's own creation
        self._build_users()
        self._build_intake()
        self._build_accounts()
        # Per-deal creation time and last-modification bound, filled in as deals are first
        # simulated (16 bytes a deal): lets changes() skip deals that are long finished.
        self._index_created = array("q")
        self._index_modified = array("q")
        self._index_lock = threading.Lock()

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
            c.id = make_id("003", a.i * 8 + k + 1)
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

    def _deal(self, i: int) -> _Deal:   # noqa: C901 - one linear simulation, kept in one place
        r = self._rng("deal", i)
        D = _Deal()
        D.i, D.id = i, make_id("006", i + 1)
        created_b = self._deal_created_b(i + r.random())
        created = _wall(created_b)
        D.created, D.created_b = created, created_b
        horizon_b = self._horizon_b

        # Account: a recently created one (new logos) or any existing one (repeat business).
        k = self._accounts_before_b(created_b)
        if r.random() < 0.4:
            acc_i = k - 1 - int(r.random() * max(1, k // 12))
        else:
            acc_i = int(r.random() * k)
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
        eligible0 = [c for c in contacts if c.created <= D.created] or contacts[:1]
        primary = r.choice(eligible0)
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

    def _deals_upto(self, t: int, since: int | None = None) -> Iterator[_Deal]:
        """Deals created at or before t; with `since`, only those with something modified after it.
        Deals already simulated once are skipped via the index without re-simulating them."""
        created, modified = self._index_created, self._index_modified
        for i in range(self._n_deals):
            if i < len(created):
                if created[i] > t:
                    return
                if since is not None and modified[i] <= since:
                    continue
            d = self._deal(i)
            if i == len(created):
                with self._index_lock:
                    if i == len(created):
                        created.append(d.created)
                        modified.append(d.last_modified())
            if d.created > t:
                return
            yield d

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

    def _account_record(self, a: _Account, t: int):
        owner, mod = self._owned(a.owners, a.created, t)
        return {"Id": a.id, "Name": a.name, "Website": f"https://www.{a.domain}", "Industry": a.industry,
                "Type": a.type, "OwnerId": owner.id, "IsDeleted": False,
                "CreatedDate": _dt(a.created), "CreatedById": a.owners[0][1].id,
                "LastModifiedDate": _dt(mod), "SystemModstamp": _dt(mod)}

    def _contact_record(self, a: _Account, c: _Contact, t: int):
        owner, mod = self._owned(a.owners, c.created, t)
        creator = a.owner_at(c.created)
        return {"Id": c.id, "AccountId": a.id, "FirstName": c.first, "LastName": c.last,
                "Name": f"{c.first} {c.last}", "Email": c.email, "Title": c.title, "OwnerId": owner.id,
                "IsDeleted": False, "CreatedDate": _dt(c.created), "CreatedById": creator.id,
                "LastModifiedDate": _dt(mod), "SystemModstamp": _dt(mod)}

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
        return {"Id": D.id, "Name": D.name, "AccountId": D.account.id, "OwnerId": own.id,
                "StageName": _STAGES[stage], "Amount": amt, "Probability": _PROB[stage],
                "CloseDate": close_date, "IsClosed": _CLOSED[stage], "IsWon": _ISWON[stage],
                "ForecastCategoryName": _FORECAST[stage], "Type": D.type, "LeadSource": D.lead_source,
                "IsDeleted": deleted, "CreatedDate": _dt(D.created), "CreatedById": D.owners[0][1].id,
                "LastModifiedDate": _dt(tw), "SystemModstamp": _dt(tw)}

    def _history_records(self, D: _Deal, t: int, since: int | None = None):
        gone = D.deleted is not None and D.deleted <= t
        for j, (tw, stage, amt, close_date, own, _) in enumerate(D.history):
            if tw > t:
                return
            mod = D.deleted if gone else tw
            if since is not None and mod <= since:
                continue
            yield {"Id": make_id("008", D.i * 100 + j + 1), "OpportunityId": D.id,
                   "StageName": _STAGES[stage], "Amount": amt, "Probability": _PROB[stage],
                   "CloseDate": close_date, "ForecastCategory": _FORECAST[stage],
                   "ExpectedRevenue": None if amt is None else round(amt * _PROB[stage] / 100.0, 2),
                   "IsDeleted": gone, "CreatedDate": _dt(tw), "CreatedById": own.id,
                   "SystemModstamp": _dt(mod)}

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
            for a in self._accounts_upto(t):
                rec = self._account_record(a, t)
                if fresh(rec):
                    yield "Account", rec
        if "Contact" in want:
            for a in self._accounts_upto(t):
                for c in self._contacts(a):
                    if c.created <= t:
                        rec = self._contact_record(a, c, t)
                        if fresh(rec):
                            yield "Contact", rec
        deal_objs = want & {"Opportunity", "OpportunityHistory", "Task", "Event"}
        if not deal_objs:
            return
        for D in self._deals_upto(t, since):
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
        """Ground truth for every Opportunity created at or before as_of (deleted ones too,
        deleted=True), computed from the simulation itself, not from the emitted records."""
        t = self._clamp(as_of)
        for D in self._deals_upto(t):
            yield self._truth(D, t)

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
            spells=tuple(spells), health=D.health)
