"""The SOQL subset the emulator understands, parsed to an AST and translated to SQLite.

Grammar (keywords case-insensitive)::

    SELECT COUNT() | field [, field ...]   FROM Object
    [WHERE cond] [ORDER BY field [ASC|DESC] [NULLS FIRST|LAST] [, ...]] [LIMIT n] [OFFSET n]

    cond    := term (AND term)* | term (OR term)*     -- mixing AND/OR needs parentheses, as in SOQL
    term    := NOT term | '(' cond ')' | field op value | field [NOT] IN (value, ...) | field LIKE 'pat'
    field   := Name | Relationship.Name                 -- one parent level, e.g. Account.Name
    value   := 'string' | number | true | false | null | 2024-05-01 | 2024-05-01T10:00:00Z
             | TODAY | YESTERDAY | TOMORROW | LAST_N_DAYS:n | NEXT_N_DAYS:n | N_DAYS_AGO:n

Errors are ``SoqlError`` carrying the Salesforce ``errorCode`` and a message laid out
the way Salesforce lays it out (the query line, a caret, ``ERROR at Row:r:Column:c``).
Values are compared in their storage form (see ``sandbox.salesforce.store``): datetimes
as ``2024-05-01T10:00:00.000+0000`` UTC strings, dates ``YYYY-MM-DD``, booleans 0/1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from sandbox.salesforce.schema import OBJECTS, Field, SObject

STRING_TYPES = frozenset({"id", "reference", "string", "email", "url", "picklist", "textarea"})
NUMBER_TYPES = frozenset({"currency", "percent", "double", "int"})

# What each field type accepts as a literal, and how Salesforce names the type in errors.
_ACCEPTS = {
    "boolean": ({"bool"}, "boolean", False),
    "date": ({"date", "dateliteral"}, "date", False),
    "datetime": ({"datetime", "dateliteral"}, "dateTime", False),
    "int": ({"number"}, "integer", False),
}
_ACCEPTS.update({t: ({"string"}, "string", True) for t in STRING_TYPES})
_ACCEPTS.update({t: ({"number"}, "double", False) for t in NUMBER_TYPES - {"int"}})

_KEYWORDS = frozenset("""SELECT FROM WHERE AND OR NOT IN LIKE ORDER BY ASC DESC NULLS FIRST LAST
    LIMIT OFFSET TRUE FALSE NULL GROUP HAVING INCLUDES EXCLUDES""".split())
_DATE_LITERALS = {"TODAY": 0, "YESTERDAY": 0, "TOMORROW": 0,
                  "LAST_N_DAYS": 1, "NEXT_N_DAYS": 1, "N_DAYS_AGO": 1}  # value: takes ":n"

_TOKEN_RE = re.compile(r"""
   (?P<ws>\s+)
  |(?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  |(?P<date>\d{4}-\d{2}-\d{2})(?![\w:])
  |(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))(?![\w.])
  |(?P<string>'(?:[^'\\]|\\.)*')
  |(?P<ident>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)
  |(?P<op>!=|<>|<=|>=|=|<|>)
  |(?P<punct>[(),:])
""", re.X)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


class SoqlError(Exception):
    """A query Salesforce would reject; ``error_code`` is the REST ``errorCode``."""

    def __init__(self, error_code: str, message: str):
        super().__init__(message)
        self.error_code = error_code
        self.message = message


# --------------------------------------------------------------------------- wire formats

def wire_datetime(value: datetime) -> str:
    """Salesforce's datetime wire format, which is also our (sortable) storage format."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: records must carry aware UTC datetimes")
    if value.tzinfo is not timezone.utc:
        value = value.astimezone(timezone.utc)
    text = value.isoformat()            # YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00, C-fast
    return text[:19] + (text[19:23] if value.microsecond else ".000") + "+0000"


def parse_datetime(text: str) -> datetime:
    """Any ISO-8601 datetime with a zone ('Z', '+00:00', '+0000') -> aware UTC datetime."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"datetime without a time zone: {text!r}")
    return value.astimezone(timezone.utc)


# --------------------------------------------------------------------------- AST

@dataclass(frozen=True)
class Relationship:
    name: str      # "Account" (what SOQL writes before the dot)
    via: str       # "AccountId" (the reference field on the queried object)
    target: str    # "Account" (the parent object)


@dataclass(frozen=True)
class FieldRef:
    field: Field
    relationship: Relationship | None = None

    @property
    def path(self) -> str:
        rel = self.relationship
        return f"{rel.name}.{self.field.name}" if rel else self.field.name


@dataclass(frozen=True)
class Literal:
    kind: str          # string | number | bool | null | date | datetime | dateliteral
    value: object      # decoded value; for dateliteral (NAME, n)
    raw: str
    pos: int


@dataclass(frozen=True)
class Compare:
    ref: FieldRef
    op: str            # = != < <= > >=
    value: Literal


@dataclass(frozen=True)
class InList:
    ref: FieldRef
    values: tuple[Literal, ...]
    negated: bool


@dataclass(frozen=True)
class Like:
    ref: FieldRef
    pattern: Literal


@dataclass(frozen=True)
class Not:
    expr: object


@dataclass(frozen=True)
class BoolOp:
    op: str            # AND | OR
    items: tuple


@dataclass(frozen=True)
class OrderItem:
    ref: FieldRef
    descending: bool = False
    nulls_first: bool | None = None     # None: Salesforce default (first for ASC, last for DESC)


@dataclass
class Query:
    text: str
    sobject: SObject
    fields: list[FieldRef]              # empty for COUNT()
    is_count: bool = False
    where: object | None = None
    order_by: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None

    @property
    def relationships(self) -> list[Relationship]:
        """Parents to join, from every clause, each once."""
        return _unique_rels(list(self.fields) + self._filter_refs())

    @property
    def filter_relationships(self) -> list[Relationship]:
        """Parents WHERE / ORDER BY need: all that selecting the matching rows must join."""
        return _unique_rels(self._filter_refs())

    def _filter_refs(self) -> list[FieldRef]:
        return [o.ref for o in self.order_by] + list(_refs_in(self.where))


def _unique_rels(refs: list[FieldRef]) -> list[Relationship]:
    seen: dict[str, Relationship] = {}
    for ref in refs:
        if ref.relationship and ref.relationship.name not in seen:
            seen[ref.relationship.name] = ref.relationship
    return list(seen.values())


def _refs_in(expr):
    if isinstance(expr, (Compare, InList, Like)):
        yield expr.ref
    elif isinstance(expr, Not):
        yield from _refs_in(expr.expr)
    elif isinstance(expr, BoolOp):
        for item in expr.items:
            yield from _refs_in(item)


# --------------------------------------------------------------------------- tokens

@dataclass(frozen=True)
class _Tok:
    kind: str          # datetime date number string ident op punct eof
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper()

    def is_kw(self, *words: str) -> bool:
        return self.kind == "ident" and self.upper in words


def _tokenize(text: str) -> list[_Tok]:
    toks, pos = [], 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m:
            if text[pos] == "'":
                raise _malformed(text, pos, "unterminated string literal")
            raise _malformed(text, pos, f"no viable alternative at character '{text[pos]}'")
        if m.lastgroup != "ws":
            toks.append(_Tok(m.lastgroup, m.group(), pos))
        pos = m.end()
    toks.append(_Tok("eof", "", len(text)))
    return toks


def _located(text: str, pos: int, message: str) -> str:
    """Salesforce's error layout: the offending line, a caret, Row/Column, the message."""
    if pos >= len(text.rstrip()):           # at <EOF> Salesforce points at the last character
        pos = max(len(text.rstrip()) - 1, 0)
    row = text.count("\n", 0, pos) + 1
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    line = text[line_start:None if line_end < 0 else line_end]
    col = pos - line_start + 1
    return f"\n{line}\n{' ' * (col - 1)}^\nERROR at Row:{row}:Column:{col}\n{message}"


def _malformed(text: str, pos: int, message: str) -> SoqlError:
    return SoqlError("MALFORMED_QUERY", _located(text, pos, message))


# --------------------------------------------------------------------------- parser

def parse(text: str, objects: dict[str, SObject] = OBJECTS) -> Query:
    """Parse and resolve a SOQL query against the schema, or raise ``SoqlError``."""
    return _Parser(text, objects).parse()


class _Parser:
    def __init__(self, text: str, objects: dict[str, SObject]):
        self.text = text
        self.objects = {name.lower(): obj for name, obj in objects.items()}
        self.toks = _tokenize(text)
        self.i = 0

    # -- token helpers
    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def advance(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def unexpected(self, tok: _Tok | None = None) -> SoqlError:
        tok = tok or self.tok
        shown = "<EOF>" if tok.kind == "eof" else f"'{tok.text}'"
        return _malformed(self.text, tok.pos, f"unexpected token: {shown}")

    def expect_kw(self, *words: str) -> _Tok:
        if not self.tok.is_kw(*words):
            raise self.unexpected()
        return self.advance()

    def expect_punct(self, char: str) -> _Tok:
        if not (self.tok.kind == "punct" and self.tok.text == char):
            raise self.unexpected()
        return self.advance()

    def at_punct(self, char: str) -> bool:
        return self.tok.kind == "punct" and self.tok.text == char

    # -- clauses
    def parse(self) -> Query:
        self.expect_kw("SELECT")
        is_count, field_toks = self.select_list()
        self.expect_kw("FROM")
        sobject = self.sobject(self.tok)
        self.advance()
        query = Query(self.text, sobject, [], is_count=is_count)
        query.fields = self.resolve_select(sobject, field_toks)
        if self.tok.is_kw("WHERE"):
            self.advance()
            query.where = self.condition(sobject)
        if self.tok.is_kw("ORDER"):
            self.advance()
            self.expect_kw("BY")
            query.order_by = self.order_list(sobject)
        if self.tok.is_kw("LIMIT"):
            self.advance()
            query.limit = self.integer()
        if self.tok.is_kw("OFFSET"):
            self.advance()
            query.offset = self.integer()
        if self.tok.kind != "eof":
            raise self.unexpected()
        return query

    def select_list(self) -> tuple[bool, list[_Tok]]:
        if self.tok.is_kw("COUNT") and self.toks[self.i + 1].text == "(":
            self.i += 2                      # COUNT (
            if not self.at_punct(")"):
                raise _malformed(self.text, self.tok.pos,
                                 "the sandbox supports COUNT() only, not COUNT(field) or other aggregates")
            self.advance()
            return True, []
        toks = [self.field_token()]
        while self.at_punct(","):
            self.advance()
            toks.append(self.field_token())
        return False, toks

    def field_token(self) -> _Tok:
        tok = self.tok
        if tok.kind != "ident" or tok.upper in _KEYWORDS:
            raise self.unexpected()
        if self.toks[self.i + 1].text == "(":
            raise _malformed(self.text, tok.pos,
                             f"the sandbox does not support the function {tok.text}()")
        return self.advance()

    def sobject(self, tok: _Tok) -> SObject:
        if tok.kind != "ident" or tok.upper in _KEYWORDS:
            raise self.unexpected(tok)
        obj = self.objects.get(tok.text.lower())
        if obj is None:
            raise SoqlError("INVALID_TYPE", _located(
                self.text, tok.pos,
                f"sObject type '{tok.text}' is not supported. If you are attempting to use a custom "
                "object, be sure to append the '__c' after the entity name. Please reference your "
                "WSDL or the describe call for the appropriate names."))
        return obj

    def resolve_select(self, sobject: SObject, toks: list[_Tok]) -> list[FieldRef]:
        refs, seen = [], set()
        for tok in toks:
            ref = self.resolve(sobject, tok)
            if ref.path.lower() in seen:
                raise _malformed(self.text, tok.pos, f"duplicate field selected: {ref.path}")
            seen.add(ref.path.lower())
            refs.append(ref)
        return refs

    def resolve(self, sobject: SObject, tok: _Tok) -> FieldRef:
        parts = tok.text.split(".")
        if len(parts) > 2:
            raise self.invalid_field(tok, "the sandbox supports one parent relationship level only")
        rel = None
        if len(parts) == 2:
            rel = _relationship(sobject, parts[0])
            if rel is None:
                raise self.invalid_field(tok, (
                    f"Didn't understand relationship '{parts[0]}' in field path. If you are attempting "
                    "to use a custom relationship, be sure to append the '__r' after the custom "
                    "relationship name. Please reference your WSDL or the describe call for the "
                    "appropriate names."))
            sobject = self.objects[rel.target.lower()]
        fld = sobject.field(parts[-1])
        if fld is None:
            raise self.invalid_field(tok, (
                f"No such column '{parts[-1]}' on entity '{sobject.name}'. If you are attempting to "
                "use a custom field, be sure to append the '__c' after the custom field name. Please "
                "reference your WSDL or the describe call for the appropriate names."))
        return FieldRef(fld, rel)

    def invalid_field(self, tok: _Tok, message: str) -> SoqlError:
        return SoqlError("INVALID_FIELD", _located(self.text, tok.pos, message))

    def integer(self) -> int:
        tok = self.tok
        if tok.kind != "number" or not tok.text.isdigit():
            raise self.unexpected()
        self.advance()
        return int(tok.text)

    def order_list(self, sobject: SObject) -> list[OrderItem]:
        items = [self.order_item(sobject)]
        while self.at_punct(","):
            self.advance()
            items.append(self.order_item(sobject))
        return items

    def order_item(self, sobject: SObject) -> OrderItem:
        ref = self.resolve(sobject, self.field_token())
        descending, nulls_first = False, None
        if self.tok.is_kw("ASC", "DESC"):
            descending = self.advance().upper == "DESC"
        if self.tok.is_kw("NULLS"):
            self.advance()
            nulls_first = self.expect_kw("FIRST", "LAST").upper == "FIRST"
        return OrderItem(ref, descending, nulls_first)

    # -- conditions
    def condition(self, sobject: SObject):
        items = [self.term(sobject)]
        joiner = None
        while self.tok.is_kw("AND", "OR"):
            if joiner and self.tok.upper != joiner:
                # SOQL has no precedence between AND and OR: it demands parentheses.
                raise self.unexpected()
            joiner = self.advance().upper
            items.append(self.term(sobject))
        return items[0] if len(items) == 1 else BoolOp(joiner, tuple(items))

    def term(self, sobject: SObject):
        if self.tok.is_kw("NOT"):
            self.advance()
            return Not(self.term(sobject))
        if self.at_punct("("):
            self.advance()
            inner = self.condition(sobject)
            self.expect_punct(")")
            return inner
        field_tok = self.field_token()
        ref = self.resolve(sobject, field_tok)
        return self.predicate(ref, field_tok)

    def predicate(self, ref: FieldRef, field_tok: _Tok):
        tok = self.tok
        if tok.kind == "op":
            self.advance()
            op = "!=" if tok.text == "<>" else tok.text
            value = self.value()
            self.check_value(ref, value, op)
            return Compare(ref, op, value)
        negated = False
        if tok.is_kw("NOT"):
            self.advance()
            negated = True
            if not self.tok.is_kw("IN"):
                raise self.unexpected()
        if self.tok.is_kw("IN"):
            self.advance()
            return InList(ref, self.value_list(ref), negated)
        if self.tok.is_kw("LIKE"):
            self.advance()
            pattern = self.value()
            if ref.field.type not in STRING_TYPES or pattern.kind != "string":
                raise self.invalid_field(field_tok, f"invalid operator on field: {ref.path}"
                                         if ref.field.type not in STRING_TYPES else
                                         f"LIKE needs a quoted string pattern for field '{ref.path}'")
            return Like(ref, pattern)
        raise self.unexpected()

    def value_list(self, ref: FieldRef) -> tuple[Literal, ...]:
        self.expect_punct("(")
        values = [self.value()]
        while self.at_punct(","):
            self.advance()
            values.append(self.value())
        self.expect_punct(")")
        for value in values:
            self.check_value(ref, value, "IN")
        return tuple(values)

    def value(self) -> Literal:
        tok = self.advance()
        if tok.kind == "string":
            return Literal("string", tok.text[1:-1], tok.text, tok.pos)
        if tok.kind == "number":
            return Literal("number", float(tok.text), tok.text, tok.pos)
        if tok.kind == "date":
            return Literal("date", self.checked(tok, lambda: date.fromisoformat(tok.text)), tok.text, tok.pos)
        if tok.kind == "datetime":
            return Literal("datetime", self.checked(tok, lambda: parse_datetime(tok.text)), tok.text, tok.pos)
        if tok.is_kw("TRUE", "FALSE"):
            return Literal("bool", tok.upper == "TRUE", tok.text, tok.pos)
        if tok.is_kw("NULL"):
            return Literal("null", None, tok.text, tok.pos)
        if tok.kind == "ident" and tok.upper in _DATE_LITERALS:
            return self.date_literal(tok)
        raise self.unexpected(tok)

    def checked(self, tok: _Tok, convert):
        try:
            return convert()
        except ValueError:
            raise _malformed(self.text, tok.pos, f"invalid date/time literal: {tok.text}") from None

    def date_literal(self, tok: _Tok) -> Literal:
        n = 0
        if _DATE_LITERALS[tok.upper]:
            self.expect_punct(":")
            n = self.integer()
        return Literal("dateliteral", (tok.upper, n), tok.text, tok.pos)

    def check_value(self, ref: FieldRef, value: Literal, op: str) -> None:
        if value.kind == "null":
            if op not in ("=", "!=", "IN"):
                raise _malformed(self.text, value.pos, f"invalid operator {op} for a null value")
            return
        accepted, type_name, quoted = _ACCEPTS[ref.field.type]
        if value.kind not in accepted:
            how = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
            raise SoqlError("INVALID_FIELD", _located(
                self.text, value.pos,
                f"value of filter criterion for field '{ref.path}' must be of type {type_name} and {how}"))
        if value.kind == "string" and _bad_escape(value.value):
            raise _malformed(self.text, value.pos, (
                f"Invalid string literal '{value.value}'. Illegal character sequence "
                f"'{_bad_escape(value.value)}' in string literal."))


def _relationship(sobject: SObject, name: str) -> Relationship | None:
    for fld in sobject.fields:
        rel_name = relationship_name(fld)
        if rel_name and fld.reference_to and rel_name.lower() == name.lower():
            return Relationship(rel_name, fld.name, fld.reference_to)
    return None


def relationship_name(fld: Field) -> str | None:
    """The relationship a reference field exposes (AccountId -> Account), as describe shows it."""
    if fld.type == "reference" and fld.name.endswith("Id"):
        return fld.name[:-2]
    return None


def _bad_escape(raw: str) -> str | None:
    for m in re.finditer(r"\\(.)", raw, re.S):
        if m.group(1).lower() not in _ESCAPES and m.group(1) not in "_%":
            return m.group()
    return None


def _unescape(raw: str) -> str:
    """Decode SOQL string escapes; \\_ and \\% stay as they are outside LIKE."""
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1).lower(), m.group()), raw, flags=re.S)


def _like_pattern(raw: str) -> str:
    """SOQL LIKE -> SQLite LIKE with ESCAPE '\\': \\_ and \\% stay escaped, others decode."""
    out, i = [], 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            out.append("\\" + nxt if nxt in "_%" else _ESCAPES.get(nxt.lower(), nxt).replace("\\", "\\\\"))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


# --------------------------------------------------------------------------- SQL

MAIN_ALIAS = "t"


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def column_sql(ref: FieldRef) -> str:
    alias = f"r_{ref.relationship.name}" if ref.relationship else MAIN_ALIAS
    return f"{alias}.{quote(ref.field.name)}"


def from_sql(query: Query, relationships: list[Relationship] | None = None) -> str:
    """FROM clause with one LEFT JOIN per parent relationship (default: all the query uses)."""
    parts = [f"{quote(query.sobject.name)} AS {MAIN_ALIAS}"]
    for rel in query.relationships if relationships is None else relationships:
        alias = f"r_{rel.name}"
        parts.append(f"LEFT JOIN {quote(rel.target)} AS {alias} "
                     f"ON {alias}.\"Id\" = {MAIN_ALIAS}.{quote(rel.via)}")
    return " ".join(parts)


def where_sql(query: Query, *, include_deleted: bool, now: datetime) -> tuple[str, list]:
    """WHERE clause (possibly empty) and its parameters. ``now`` resolves TODAY and friends."""
    params: list = []
    clauses = []
    if query.where is not None:
        clauses.append(_expr_sql(query.where, params, now))
    if not include_deleted and query.sobject.has_is_deleted:
        # Plain query never shows the recycle bin, even when asked with IsDeleted = true.
        clauses.append(f"{MAIN_ALIAS}.\"IsDeleted\" = 0")
    return (" WHERE " + " AND ".join(f"({c})" for c in clauses)) if clauses else "", params


def order_sql(query: Query) -> str:
    """ORDER BY with Salesforce's null placement; rowid last so paging order is stable."""
    items = []
    for item in query.order_by:
        nulls_first = (not item.descending) if item.nulls_first is None else item.nulls_first
        direction = "DESC" if item.descending else "ASC"
        # SQLite's default already puts NULLs first on ASC / last on DESC; naming it only when
        # it differs keeps an index on the column usable for the sort.
        default_nulls_first = not item.descending
        nulls = "" if nulls_first == default_nulls_first else (" NULLS FIRST" if nulls_first else " NULLS LAST")
        items.append(f"{column_sql(item.ref)} {direction}{nulls}")
    items.append(f"{MAIN_ALIAS}.rowid")
    return " ORDER BY " + ", ".join(items)


def limit_sql(query: Query) -> str:
    if query.limit is None and query.offset is None:
        return ""
    limit = -1 if query.limit is None else query.limit
    return f" LIMIT {limit} OFFSET {query.offset or 0}"


def _expr_sql(expr, params: list, now: datetime) -> str:
    if isinstance(expr, BoolOp):
        return f" {expr.op} ".join(f"({_expr_sql(e, params, now)})" for e in expr.items)
    if isinstance(expr, Not):
        # SOQL's NOT keeps rows whose field is null (unlike SQL's three-valued logic).
        return f"NOT coalesce(({_expr_sql(expr.expr, params, now)}), 0)"
    if isinstance(expr, Like):
        params.append(_like_pattern(expr.pattern.value))
        return f"{column_sql(expr.ref)} LIKE ? ESCAPE '\\'"
    if isinstance(expr, InList):
        return _in_sql(expr, params, now)
    return _compare_sql(expr, params, now)


def _compare_sql(expr: Compare, params: list, now: datetime) -> str:
    col, op, value = column_sql(expr.ref), expr.op, expr.value
    if value.kind == "null":
        return f"{col} IS {'NOT ' if op == '!=' else ''}NULL"
    if value.kind == "dateliteral":
        return _date_range_sql(col, op, expr.ref.field.type, value, params, now)
    params.append(storage_literal(expr.ref.field.type, value))
    if op == "!=":
        return f"{col} IS NOT ?"        # SOQL's != matches nulls too
    return f"{col} {op} ?"


def _in_sql(expr: InList, params: list, now: datetime) -> str:
    col = column_sql(expr.ref)
    values = [v for v in expr.values if v.kind != "null"]
    has_null = len(values) != len(expr.values)
    parts = []
    if values:
        if any(v.kind == "dateliteral" for v in values):
            parts.append(" OR ".join(_date_range_sql(col, "=", expr.ref.field.type, v, params, now)
                                     for v in values))
        else:
            params.extend(storage_literal(expr.ref.field.type, v) for v in values)
            parts.append(f"{col} IN ({', '.join('?' * len(values))})")
    if has_null:
        parts.append(f"{col} IS NULL")
    positive = " OR ".join(f"({p})" for p in parts) or "0"
    return f"NOT coalesce(({positive}), 0)" if expr.negated else positive


def storage_literal(field_type: str, value: Literal):
    if value.kind == "string":
        return _unescape(value.value)
    if value.kind == "bool":
        return int(value.value)
    if value.kind == "number":
        return int(value.value) if field_type == "int" and value.value.is_integer() else value.value
    if value.kind == "date":
        return value.value.isoformat()
    if value.kind == "datetime":
        return wire_datetime(value.value)
    raise AssertionError(value)


def date_literal_range(name: str, n: int, now: datetime) -> tuple[date, date]:
    """[start, end) in days (UTC) for TODAY, LAST_N_DAYS:n, ..."""
    today = now.astimezone(timezone.utc).date()
    day = timedelta(days=1)
    return {
        "TODAY": (today, today + day),
        "YESTERDAY": (today - day, today),
        "TOMORROW": (today + day, today + 2 * day),
        # Salesforce: "starts with the current day and continues for the past n days"
        "LAST_N_DAYS": (today - n * day, today + day),
        "NEXT_N_DAYS": (today + day, today + (n + 1) * day),
        "N_DAYS_AGO": (today - n * day, today - (n - 1) * day),
    }[name]


def _date_range_sql(col: str, op: str, field_type: str, value: Literal, params: list, now: datetime) -> str:
    start, end = date_literal_range(*value.value, now)
    if field_type == "datetime":
        start_v = wire_datetime(datetime.combine(start, time(), timezone.utc))
        end_v = wire_datetime(datetime.combine(end, time(), timezone.utc))
    else:
        start_v, end_v = start.isoformat(), end.isoformat()
    # A date literal is a range: "= TODAY" means within the day, "> TODAY" after it, ...
    sql, args = {
        "=": (f"({col} >= ? AND {col} < ?)", [start_v, end_v]),
        "!=": (f"NOT coalesce(({col} >= ? AND {col} < ?), 0)", [start_v, end_v]),
        "<": (f"{col} < ?", [start_v]),
        "<=": (f"{col} < ?", [end_v]),
        ">": (f"{col} >= ?", [end_v]),
        ">=": (f"{col} >= ?", [start_v]),
    }[op]
    params.extend(args)
    return sql
