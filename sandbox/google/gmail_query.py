"""Gmail search (`q`) compiled to SQL over the message table.

Supported: after:/before:/newer:/older: (YYYY/MM/DD, MM/DD/YYYY or epoch seconds),
newer_than:/older_than: (Nd, Nm, Ny), in:, is:, label:, category:, from:, to:, cc:, bcc:,
subject:, rfc822msgid:, has:, free words and "phrases", `-term`, `{a b}` and `a OR b`
(either), `( … )` groups. Unknown operators are searched as text, as Gmail does.

Dates are midnight **Pacific time**, as Gmail documents ("All dates used in the search query
are interpreted as midnight on that date in the PST timezone"); epoch seconds are exact.
Text matching is substring, case-insensitive (Gmail matches whole words: a superset here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Los_Angeles")
_UNITS = {"d": 1, "m": 30, "y": 365}
_IN = {"inbox": "INBOX", "sent": "SENT", "spam": "SPAM", "trash": "TRASH", "draft": "DRAFT", "drafts": "DRAFT",
       "starred": "STARRED", "important": "IMPORTANT", "chats": "CHAT", "chat": "CHAT", "unread": "UNREAD"}
_IS = {"unread": "UNREAD", "starred": "STARRED", "important": "IMPORTANT"}
_CATEGORY = {"primary": "CATEGORY_PERSONAL", "social": "CATEGORY_SOCIAL", "promotions": "CATEGORY_PROMOTIONS",
             "updates": "CATEGORY_UPDATES", "forums": "CATEGORY_FORUMS"}
_TEXT_COLUMNS = ("subject", "snippet", "body", "from_h", "to_h", "cc_h")
_TOKEN = re.compile(r"""\s*(?P<neg>-)?(?:
      \{(?P<any>[^}]*)\}
    | \((?P<all>[^)]*)\)
    | (?P<op>[A-Za-z_]+):(?:"(?P<qval>[^"]*)"|\((?P<pval>[^)]*)\)|(?P<val>[^\s{}()"]+))
    | "(?P<phrase>[^"]*)"
    | (?P<word>[^\s{}()"]+)
    )""", re.X)

Clause = tuple[str, list]


@dataclass
class Compiled:
    where: str
    params: list
    spam_trash: bool            # the query itself reaches into SPAM/TRASH (in:spam, in:anywhere…)


def compile_query(q: str, now_ms: int) -> Compiled:
    state = {"spam_trash": False}
    clause = _sequence(q or "", now_ms, state)
    return Compiled(clause[0] if clause else "", clause[1] if clause else [], state["spam_trash"])


def label_clause(label: str) -> Clause:
    return "labels LIKE ? ESCAPE '\\'", [f"% {_escape(label)} %"]


def _sequence(text: str, now_ms: int, state: dict, join: str = "AND") -> Clause | None:
    clauses: list[Clause] = []
    pending_or = False
    for m in _TOKEN.finditer(text):
        if m.group("word") in ("OR", "AND") and not m.group("neg"):
            pending_or = m.group("word") == "OR" and bool(clauses)
            continue
        clause = _term(m, now_ms, state)
        if clause is None:
            continue
        if pending_or:
            clause = _combine([clauses.pop(), clause], "OR")
            pending_or = False
        clauses.append(clause)
    return _combine(clauses, join)


def _term(m: re.Match, now_ms: int, state: dict) -> Clause | None:
    if m.group("any") is not None:
        clause = _sequence(m.group("any"), now_ms, state, "OR")
    elif m.group("all") is not None:
        clause = _sequence(m.group("all"), now_ms, state)
    elif m.group("op"):
        value = next(v for v in (m.group("qval"), m.group("pval"), m.group("val")) if v is not None)
        clause = _operator(m.group("op").lower(), value, now_ms, state, negated=bool(m.group("neg")))
    else:
        clause = _text(m.group("phrase") if m.group("phrase") is not None else m.group("word"))
    if clause is None or not m.group("neg"):
        return clause
    return f"NOT ({clause[0]})", clause[1]


def _operator(op: str, value: str, now_ms: int, state: dict, negated: bool) -> Clause | None:
    v = value.lower()
    if op in ("after", "newer", "before", "older"):
        moment = _moment(value)
        if moment is None:
            return _text(f"{op}:{value}")
        return ("internal_ms >= ?" if op in ("after", "newer") else "internal_ms < ?"), [moment]
    if op in ("newer_than", "older_than"):
        m = re.fullmatch(r"(\d+)([dmy])", v)
        if not m:
            return _text(f"{op}:{value}")
        cutoff = now_ms - int(m.group(1)) * _UNITS[m.group(2)] * 86_400_000
        return ("internal_ms > ?" if op == "newer_than" else "internal_ms < ?"), [cutoff]
    if op == "in":
        if v in ("spam", "trash", "anywhere") and not negated:
            state["spam_trash"] = True
        return ("1", []) if v == "anywhere" else label_clause(_IN.get(v, value))
    if op == "is":
        if v == "read":
            return "labels NOT LIKE '% UNREAD %'", []
        return label_clause(_IS.get(v, value))
    if op == "label":
        return label_clause(value)
    if op == "category":
        return label_clause(_CATEGORY.get(v, "CATEGORY_" + value.upper()))
    if op == "from":
        return _like(["from_h"], value)
    if op == "subject":
        return _like(["subject"], value)
    if op == "to":                      # Gmail's to: matches every recipient, Cc included
        return _like(["to_h", "cc_h"], value)
    if op == "cc":
        return _like(["cc_h"], value)
    if op in ("bcc", "rfc822msgid", "deliveredto", "list"):
        return _like(["headers"], value)
    if op == "has":
        return "0", []                  # the sandbox's messages carry no attachments, stars or user labels
    return _text(f"{op}:{value}")


def _moment(value: str) -> int | None:
    if value.isdigit():
        return int(value) * 1000
    for fmt in ("%Y/%m/%d", "%Y-%m-%d", "%m/%d/%Y"):
        try:
            day = datetime.strptime(value, fmt)
        except ValueError:
            continue
        return int(day.replace(tzinfo=PACIFIC).timestamp() * 1000)
    return None


def _text(value: str) -> Clause | None:
    return _like(_TEXT_COLUMNS, value) if value.strip() else None


def _like(columns, value: str) -> Clause:
    pattern = f"%{_escape(value)}%"
    return "(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in columns) + ")", [pattern] * len(columns)


def _combine(clauses: list[Clause], join: str) -> Clause | None:
    if not clauses:
        return None
    if len(clauses) == 1:
        return clauses[0]
    return "(" + f" {join} ".join(c[0] for c in clauses) + ")", [p for c in clauses for p in c[1]]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

