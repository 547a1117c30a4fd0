"""Building blocks of the synthetic sales org (`sandbox.org`): the business clock, the
vocabulary names and companies are drawn from, the sales-process constants, the public
truth types and the small entity classes. Shared by the Salesforce simulation
(`sandbox.org`) and its HubSpot, Gmail and Calendar views (`sandbox.org_hubspot`,
`sandbox.org_gmail`, `sandbox.org_calendar`)."""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from sandbox.salesforce.schema import OPEN_STAGES_USED, STANDARD_STAGES, make_id


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
    source_system: str = "salesforce"      # "hubspot": id, account_id, owner_id, stages are HubSpot's
    # The close-date history as the CRM records it, oldest first: (when recorded, close date), one
    # entry per change (Salesforce OpportunityHistory rows, HubSpot's closedate property history),
    # records that leave the close date unchanged left out.
    close_dates: tuple[tuple[datetime, date], ...] = ()
    # The currency `amount` is in as the CRM records it: Salesforce's CurrencyIsoCode in a
    # multi-currency org (SyntheticOrg(currencies=...)); None where the CRM records none (a
    # single-currency org, whose amounts are in its one currency; the org's HubSpot deals).
    currency: str | None = None


# --------------------------------------------------------------------------- internal entities

class _User:
    __slots__ = ("n", "id", "first", "last", "email", "title", "manager_id", "manager", "created",
                 "deactivated", "successor", "skill", "pace", "team")

    def __init__(self, n, first, last, email, title, manager_id, created, team):
        self.n = n
        self.id = make_id("005", n)
        self.first, self.last, self.email, self.title = first, last, email, title
        self.manager_id = manager_id
        self.manager = None             # the manager's _User
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
    __slots__ = ("n", "id", "first", "last", "email", "title", "created")     # n: 8 * account + k


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


# --------------------------------------------------------------------------- shared by the views

def _close_date_changes(states, t: int) -> tuple[tuple[datetime, date], ...]:
    """(recorded at, close date) for each change of the close date among a deal's saved states
    (tw, stage, amount, close_date, owner, deleted) up to wall ms t, oldest first."""
    out: list[tuple[datetime, date]] = []
    for tw, _, _, close_date, _, _ in states:
        if tw > t:
            break
        if not out or out[-1][1] != close_date:
            out.append((_dt(tw), close_date))
    return tuple(out)


def _iso(ms: int) -> str:
    """Wall ms -> ISO-8601 UTC with milliseconds, as HubSpot writes datetimes in properties."""
    return _dt(ms).isoformat(timespec="milliseconds")[:-6] + "Z"


def _date_iso(d: date) -> str:
    """A date as HubSpot sends date properties: midnight UTC."""
    return f"{d.isoformat()}T00:00:00.000Z"


def _digest(*parts) -> bytes:
    """16 stable pseudo-random bytes from the parts (process- and hash-seed-independent):
    per-item randomness where drawing from an ordered RNG stream would tie items together."""
    return hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=16).digest()


def _poisson(r: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth; lam is small here)."""
    limit, k, p = math.exp(-lam), 0, r.random()
    while p > limit:
        k += 1
        p *= r.random()
    return k


def _user_name(u: "_User") -> str:
    return f"{u.first} {u.last}"


# Free-mail domains: where contacts' and friends' personal addresses live.
_PERSONAL_DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "icloud.com", "hotmail.com"]


def _personal_email(seed: int, first: str, last: str, salt) -> str:
    """A private address for a person (a contact writing from home, a rep's friend)."""
    h = _digest(seed, "personal-email", salt)
    first, last = first.lower(), last.lower()
    n = int.from_bytes(h[4:6], "big") % 900 + 100
    local = [f"{first}.{last}{n % 100}", f"{first}{last}{n}", f"{first[0]}{last}{n}", f"{first}_{last}{n}"][h[0] % 4]
    return f"{local}@{_PERSONAL_DOMAINS[h[3] % len(_PERSONAL_DOMAINS)]}"
