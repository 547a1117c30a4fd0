"""The privacy switch: contacts' personal fields kept, hashed or dropped in the model.

`privacy.personal_fields` in dealsync.yaml:

- `keep` (the default): the model holds names and emails as the sources do.
- `hash`: every contact name and email the model holds is replaced by a keyed pseudonym.
- `drop`: contact names and emails are NULL; the keys matching needs (identity_map.match_key,
  activity_participants.address, the addresses of activity_records) hold the keyed pseudonym.

Pseudonyms are HMAC-SHA256 under a secret key read from the environment variable
`privacy.key_env` names. They are computed here, in Python, never in SQL: the key never
appears in a statement (PostgreSQL logs the text of a failing one), and DuckDB and PostgreSQL
get the same pseudonyms. `pseudonym_rows` and `write_pseudonyms` fill `raw_privacy.*_pseudonyms`
(kind, value, pseudonym) with every personal value the model reads; the model's SQL then reads
the pseudonym in place of the value (pipeline_model.tables wraps the SELECTs of the tables in
`PERSONAL`). A value without a pseudonym becomes NULL, never the plaintext. These tables map
plaintext to pseudonyms, so they live in a `raw_*` schema, under the raw data's access control.

An email pseudonym is `h:<hmac>@<domain>`: the domain stays, so company matching by domain,
internal and personal domains and contacts.email_domain work as before. An owner's (a rep's)
address stays plaintext everywhere, contacts' and mail headers' alike: reps are employees the
report names, and their mailbox is part of record ids. Each value maps to one pseudonym and
distinct values to distinct ones, and a pseudonym never equals an owner's address, so every
comparison the matching makes comes out as it does on plaintext (see docs/privacy.md for the
one exception: an address with spaces inside it).

Changing the mode or the key (recorded as a key fingerprint in `dealsync_meta.privacy`) drops
the model and metric schemas before the run builds anything (`prepare`), so a warehouse never
mixes plaintext and pseudonyms, or pseudonyms of two keys.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Callable, Iterable, Literal

from pydantic import BaseModel, ConfigDict, SecretStr

from connectors.secrets import EnvVarName
from pipeline_model.warehouse import Warehouse

Mode = Literal["keep", "hash", "drop"]
# Where the pseudonyms of each personal table's values are, one table each: a pull that fails
# (Google, say) must not hold back the model tables that read only the other sources.
PSEUDONYMS = {"model.source_contacts": "raw_privacy.contact_pseudonyms",
              "model.activity_records": "raw_privacy.address_pseudonyms"}
STATE_TABLE = "dealsync_meta.privacy"
# Dropped when the mode or the key changes: everything the model builds from personal values.
REBUILT_SCHEMAS = ("model", "metrics")
_HEX_CHARS = 32          # 128 bits of the HMAC: collisions are out of reach at any org's size


class PrivacySettings(BaseModel):
    """`privacy:` in dealsync.yaml."""

    model_config = ConfigDict(extra="forbid")
    personal_fields: Mode = "keep"
    key_env: EnvVarName = "DEALSYNC_PRIVACY_KEY"

    def secrets(self) -> dict[str, str]:
        """The environment variables a run needs, with what each holds (none when keeping)."""
        if self.personal_fields == "keep":
            return {}
        return {self.key_env: f"privacy key, for personal_fields: {self.personal_fields}"}


@dataclass(frozen=True)
class Column:
    """A column of a model SELECT that holds a personal value.

    kind: what the value is, and so how it is pseudonymised: 'name', 'email' (a normalised
    address), 'address' (a mail header's address as sent), 'address_list' (comma-separated).
    display: shown to people only; NULL in drop mode. The other columns are keys the matching
    joins on: pseudonymised in drop mode too."""

    kind: str
    display: bool = False


# The model SELECTs that read personal values from raw, and their columns that hold one. Every
# other model table reads them from these, so pseudonyms flow on from here.
PERSONAL: dict[str, dict[str, Column]] = {
    "model.source_contacts": {"name": Column("name", display=True), "email": Column("email", display=True),
                              "email_key": Column("email")},
    "model.activity_records": {"from_address": Column("address"), "to_addresses": Column("address_list"),
                               "cc_addresses": Column("address_list")},
}


def substituted(select: str, columns: list[str], personal: dict[str, Column], mode: Mode, pseudonyms: str) -> str:
    """`select` with each personal column replaced by its pseudonym (hash, drop) or NULL (drop,
    display columns). A value with no pseudonym comes out NULL: fail closed."""
    if mode == "keep":
        return select
    exprs, joins = [], []
    for i, name in enumerate(columns):
        column = personal.get(name)
        if column is None:
            exprs.append(f"t.{name}")
        elif mode == "drop" and column.display:
            exprs.append(f"cast(null as varchar) as {name}")
        else:
            alias = f"p{i}"
            joins.append(f"left join {pseudonyms} {alias} on {alias}.kind = '{column.kind}' "
                         f"and {alias}.value = t.{name}")
            exprs.append(f"{alias}.pseudonym as {name}")
    return f"select {', '.join(exprs)}\nfrom (\n{select}\n) t\n" + "\n".join(joins)


# --------------------------------------------------------------------------- pseudonyms


class Pseudonymiser:
    """The pseudonym of each kind of value under one key. Owners' addresses map to themselves."""

    def __init__(self, key: SecretStr, owner_emails: Iterable[str]):
        self._key = key.get_secret_value().encode()
        self.owners = frozenset(owner_emails)

    def _mac(self, kind: str, value: str) -> str:
        return hmac.new(self._key, f"{kind}\0{value}".encode(), hashlib.sha256).hexdigest()[:_HEX_CHARS]

    def email(self, normalised: str) -> str:
        """An address as the model normalises it (lower(trim())): `h:<hmac>@<everything after
        the first @>`, so split_part(.., '@', 2) gives the same domain; an owner's: itself."""
        if normalised in self.owners:
            return normalised
        at = normalised.find("@")
        return f"h:{self._mac('email', normalised)}{normalised[at:] if at >= 0 else ''}"

    def address(self, raw: str, normalised: str) -> str:
        """A header address as sent, with its SQL-normalised form: a blank one or an owner's stays
        as sent (so the SQL that reads it sees what it saw before), any other is the email's."""
        if normalised == "" or normalised in self.owners:
            return raw
        return self.email(normalised)

    def name(self, name: str) -> str:
        if not name.strip():
            return name
        return f"h:{self._mac('name', name.strip().lower())}"

    def fingerprint(self) -> str:
        """Tells keys apart without revealing them (recorded in dealsync_meta.privacy)."""
        return self._mac("fingerprint", "dealsync privacy key")[:16]


def key_fingerprint(key: SecretStr) -> str:
    return Pseudonymiser(key, ()).fingerprint()


def pseudonym_rows(warehouse: Warehouse, table: str, selects: list[str], mode: Mode,
                   key: SecretStr) -> list[tuple[str, str, str]]:
    """(kind, value, pseudonym) for every personal value the plaintext `selects` (the parts of
    the model table `table`) yield. The SQL normalises, as the model does, so Python never has
    to agree with either backend's lower() and trim(). Owners: model.source_owners."""
    owners = [e for (e,) in warehouse.fetch("select email from model.source_owners where email is not null")]
    p = Pseudonymiser(key, owners)
    rows: dict[tuple[str, str], str] = {}
    for name, column in PERSONAL[table].items():
        if mode == "drop" and column.display:
            continue
        for select in selects:
            for value, pseudonym in _values(warehouse, select, name, column.kind, p):
                rows[(column.kind, value)] = pseudonym
    return [(kind, value, pseudonym) for (kind, value), pseudonym in rows.items()]


def _values(warehouse: Warehouse, select: str, column: str, kind: str, p: Pseudonymiser):
    source = f"(\n{select}\n) t where t.{column} is not null"
    if kind == "email":
        return [(v, p.email(v)) for (v,) in warehouse.fetch(f"select distinct t.{column} from {source}")]
    if kind == "name":
        return [(v, p.name(v)) for (v,) in warehouse.fetch(f"select distinct t.{column} from {source}")]
    if kind == "address":
        return [(v, p.address(v, n)) for v, n in
                warehouse.fetch(f"select distinct t.{column}, lower(trim(t.{column})) from {source}")]
    if kind == "address_list":
        lists = [v for (v,) in warehouse.fetch(f"select distinct t.{column} from {source}")]
        elements = dict(warehouse.fetch(
            f"select distinct e, lower(trim(e)) from (select unnest(string_to_array(t.{column}, ',')) as e "
            f"from {source}) x"))
        return [(v, ",".join(_element(p, e, elements) for e in v.split(","))) for v in lists]
    raise ValueError(f"unknown kind of personal value: {kind}")


def _element(p: Pseudonymiser, element: str, normalised: dict[str, str]) -> str:
    if element in normalised:
        return p.address(element, normalised[element])
    if element.strip(" ") == "":
        return element               # the empty element of an empty list
    raise RuntimeError("an address list split differently in SQL and Python: no pseudonym written")


def write_pseudonyms(warehouse: Warehouse, pseudonyms: str, rows: list[tuple[str, str, str]]) -> None:
    """Replace the table's rows in one transaction (delete and insert, not drop: PostgreSQL views
    read it)."""
    statements: list = [
        "create schema if not exists raw_privacy",
        f"create table if not exists {pseudonyms} (kind varchar not null, value varchar not null,"
        " pseudonym varchar not null)",
        f"delete from {pseudonyms}",
    ]
    for start in range(0, len(rows), 1000):
        chunk = rows[start:start + 1000]
        statements.append((f"insert into {pseudonyms} values " + ", ".join(["(?, ?, ?)"] * len(chunk)),
                           [[v for row in chunk for v in row]]))
    warehouse.run_in_transaction(statements)


def drop_pseudonyms(warehouse: Warehouse, pseudonyms: str) -> None:
    """Keep mode: the model reads no pseudonyms, and the warehouse keeps no map of them."""
    if warehouse.table_exists(*pseudonyms.split(".")):
        warehouse.run_in_transaction([f"drop table {pseudonyms}"])


# --------------------------------------------------------------------------- mode changes


def prepare(warehouse: Warehouse, settings: PrivacySettings, key: SecretStr | None,
            on_publish: Callable[[list], None] | None = None) -> bool:
    """At the start of a run: when the mode or the key differs from the warehouse's last run,
    drop the model and metric schemas (rebuilt from raw by this run) and record the new state.
    Returns whether the model is rebuilt from scratch. A warehouse without a record was built in
    keep mode. `on_publish`: the run builds a new version of the model beside the published one
    (PostgreSQL, pipeline_model.writer), which holds nothing old; the state is then recorded
    with the publish, so a run that fails leaves the record saying what is published."""
    mode = settings.personal_fields
    fingerprint = key_fingerprint(key) if mode != "keep" and key is not None else None
    if mode != "keep" and fingerprint is None:
        raise ValueError("a privacy key is needed for personal_fields: hash or drop")
    recorded = (warehouse.fetch(f"select mode, key_fingerprint from {STATE_TABLE}")
                if warehouse.table_exists(*STATE_TABLE.split(".")) else [])
    before = tuple(recorded[0]) if recorded else ("keep", None)
    if before == (mode, fingerprint) and recorded:
        return False
    rebuild = before != (mode, fingerprint)
    record = [
        "create schema if not exists dealsync_meta",
        f"create table if not exists {STATE_TABLE} (mode varchar not null, key_fingerprint varchar,"
        " changed_at timestamp with time zone not null)",
        f"delete from {STATE_TABLE}",
        (f"insert into {STATE_TABLE} values (?, ?, current_timestamp)", [[mode, fingerprint]]),
    ]
    if on_publish is not None:
        on_publish(record)
        return rebuild
    warehouse.run_in_transaction([*([f"drop schema if exists {s} cascade" for s in REBUILT_SCHEMAS]
                                    if rebuild else []), *record])
    return rebuild
