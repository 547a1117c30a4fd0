"""The Salesforce objects the sandbox org holds and the emulator serves.

One place states, per object, its key prefix and its fields with their Salesforce
types. The generator (`sandbox.org`) produces records with exactly these fields;
the emulator (`sandbox.salesforce.emulator`) serves `describe` from it and types
the values it returns on the wire.

Python value types a record carries, by Salesforce type:
  id, reference, string, email, url, picklist, textarea -> str | None
  boolean -> bool;  currency, percent, double -> float | None;  int -> int | None
  date -> datetime.date | None;  datetime -> datetime.datetime (aware, UTC) | None
"""

from __future__ import annotations

from dataclasses import dataclass

STANDARD_STAGES: list[dict] = [
    # The standard Salesforce sales process, in its sort order. The synthetic org
    # moves deals through the ones marked used=True; all are served by OpportunityStage.
    dict(ApiName="Prospecting", DefaultProbability=10.0, ForecastCategoryName="Pipeline", IsClosed=False, IsWon=False, used=True),
    dict(ApiName="Qualification", DefaultProbability=10.0, ForecastCategoryName="Pipeline", IsClosed=False, IsWon=False, used=True),
    dict(ApiName="Needs Analysis", DefaultProbability=20.0, ForecastCategoryName="Pipeline", IsClosed=False, IsWon=False, used=True),
    dict(ApiName="Value Proposition", DefaultProbability=50.0, ForecastCategoryName="Pipeline", IsClosed=False, IsWon=False, used=False),
    dict(ApiName="Id. Decision Makers", DefaultProbability=60.0, ForecastCategoryName="Pipeline", IsClosed=False, IsWon=False, used=False),
    dict(ApiName="Perception Analysis", DefaultProbability=70.0, ForecastCategoryName="Pipeline", IsClosed=False, IsWon=False, used=False),
    dict(ApiName="Proposal/Price Quote", DefaultProbability=75.0, ForecastCategoryName="Pipeline", IsClosed=False, IsWon=False, used=True),
    dict(ApiName="Negotiation/Review", DefaultProbability=90.0, ForecastCategoryName="Pipeline", IsClosed=False, IsWon=False, used=True),
    dict(ApiName="Closed Won", DefaultProbability=100.0, ForecastCategoryName="Closed", IsClosed=True, IsWon=True, used=True),
    dict(ApiName="Closed Lost", DefaultProbability=0.0, ForecastCategoryName="Omitted", IsClosed=True, IsWon=False, used=True),
]

OPEN_STAGES_USED = [s["ApiName"] for s in STANDARD_STAGES if s["used"] and not s["IsClosed"]]


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    reference_to: str | None = None


@dataclass(frozen=True)
class SObject:
    name: str
    key_prefix: str
    fields: tuple[Field, ...]

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> Field | None:
        lowered = name.lower()
        return next((f for f in self.fields if f.name.lower() == lowered), None)

    @property
    def has_is_deleted(self) -> bool:
        return self.field("IsDeleted") is not None


def _f(spec: str) -> tuple[Field, ...]:
    """Parse 'Name:type[>Ref]' specs, one per line, into Fields."""
    out = []
    for line in spec.split():
        name, _, rest = line.partition(":")
        type_, _, ref = rest.partition(">")
        out.append(Field(name, type_, ref or None))
    return tuple(out)


_AUDIT = "CreatedDate:datetime CreatedById:reference>User LastModifiedDate:datetime SystemModstamp:datetime"

OBJECTS: dict[str, SObject] = {
    o.name: o
    for o in [
        SObject("User", "005", _f(f"""
            Id:id Name:string FirstName:string LastName:string Email:email Title:string
            IsActive:boolean ManagerId:reference>User {_AUDIT}""")),
        SObject("Account", "001", _f(f"""
            Id:id Name:string Website:url Industry:picklist Type:picklist
            OwnerId:reference>User IsDeleted:boolean {_AUDIT}""")),
        SObject("Contact", "003", _f(f"""
            Id:id AccountId:reference>Account FirstName:string LastName:string Name:string
            Email:email Title:string OwnerId:reference>User IsDeleted:boolean {_AUDIT}""")),
        SObject("Opportunity", "006", _f(f"""
            Id:id Name:string AccountId:reference>Account OwnerId:reference>User
            StageName:picklist Amount:currency Probability:percent CloseDate:date
            IsClosed:boolean IsWon:boolean ForecastCategoryName:picklist Type:picklist
            LeadSource:picklist IsDeleted:boolean {_AUDIT}""")),
        SObject("OpportunityHistory", "008", _f("""
            Id:id OpportunityId:reference>Opportunity StageName:picklist Amount:currency
            Probability:percent CloseDate:date ForecastCategory:picklist ExpectedRevenue:currency
            IsDeleted:boolean CreatedDate:datetime CreatedById:reference>User SystemModstamp:datetime""")),
        SObject("OpportunityStage", "01J", _f("""
            Id:id ApiName:string MasterLabel:string IsActive:boolean IsClosed:boolean IsWon:boolean
            DefaultProbability:percent ForecastCategoryName:picklist SortOrder:int
            CreatedDate:datetime SystemModstamp:datetime""")),
        SObject("Task", "00T", _f(f"""
            Id:id Subject:string Status:picklist Priority:picklist ActivityDate:date
            WhatId:reference>Opportunity WhoId:reference>Contact OwnerId:reference>User
            IsClosed:boolean TaskSubtype:picklist IsDeleted:boolean {_AUDIT}""")),
        SObject("Event", "00U", _f(f"""
            Id:id Subject:string StartDateTime:datetime EndDateTime:datetime
            ActivityDateTime:datetime DurationInMinutes:int IsAllDayEvent:boolean
            WhatId:reference>Opportunity WhoId:reference>Contact OwnerId:reference>User
            IsDeleted:boolean {_AUDIT}""")),
    ]
}


# Objects that carry CurrencyIsoCode in an org with multiple currencies enabled: a picklist of the
# org's currencies, the one the record's amounts are in. A single-currency org has no such field
# (selecting it fails with INVALID_FIELD); its amounts are all in its one corporate currency.
CURRENCY_OBJECTS = ("Account", "Contact", "Opportunity", "OpportunityHistory")


def objects_for(multi_currency: bool) -> dict[str, SObject]:
    """The objects of a single-currency org (OBJECTS), or of a multi-currency one: the same with
    CurrencyIsoCode on each of CURRENCY_OBJECTS."""
    if not multi_currency:
        return OBJECTS
    currency = Field("CurrencyIsoCode", "picklist")
    return {name: SObject(o.name, o.key_prefix, (*o.fields, currency)) if name in CURRENCY_OBJECTS else o
            for name, o in OBJECTS.items()}


def make_id(prefix: str, n: int) -> str:
    """An 18-character Salesforce-style id: 3-char key prefix, 12 digits, 3-char suffix."""
    return f"{prefix}{n:012d}AAA"
