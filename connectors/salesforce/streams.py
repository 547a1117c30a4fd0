"""The Salesforce streams dealsync pulls: one line each, object and fields.

Every stream is incremental on SystemModstamp, keyed on Id, merged into its raw
table. Objects with IsDeleted are read with queryAll so deletions arrive as rows
with is_deleted = true (the raw layer keeps them; the model drops them).

Some fields exist only in some orgs: `CurrencyIsoCode` is there when the org has multiple
currencies enabled, and selecting it elsewhere fails with INVALID_FIELD. A stream lists such
fields as `optional`: they are read when the object's describe has them, and their raw column
exists either way (NULL in an org without the field), so the model can always name it.
"""

from __future__ import annotations

from dataclasses import dataclass

_AUDIT = "CreatedDate LastModifiedDate SystemModstamp"


@dataclass(frozen=True)
class Stream:
    name: str          # raw table name in raw_salesforce
    sobject: str       # Salesforce object
    fields: tuple[str, ...]
    cursor: str = "SystemModstamp"
    optional: tuple[str, ...] = ()      # text fields read only where the org has them

    @property
    def tracks_deletes(self) -> bool:
        return "IsDeleted" in self.fields


def _stream(name: str, sobject: str, fields: str, optional: str = "") -> Stream:
    return Stream(name, sobject, tuple(fields.split()), optional=tuple(optional.split()))


STREAMS: tuple[Stream, ...] = (
    _stream("users", "User", f"Id Name FirstName LastName Email Title IsActive ManagerId {_AUDIT}"),
    _stream("accounts", "Account", f"Id Name Website Industry Type OwnerId IsDeleted {_AUDIT}"),
    _stream("contacts", "Contact", f"Id AccountId FirstName LastName Name Email Title OwnerId IsDeleted {_AUDIT}"),
    _stream("opportunities", "Opportunity",
            "Id Name AccountId OwnerId StageName Amount Probability CloseDate IsClosed IsWon "
            f"ForecastCategoryName Type LeadSource IsDeleted {_AUDIT}",
            # The currency Amount is in (multi-currency orgs; elsewhere the org's one currency).
            optional="CurrencyIsoCode"),
    _stream("opportunity_history", "OpportunityHistory",
            "Id OpportunityId StageName Amount Probability CloseDate ForecastCategory "
            "ExpectedRevenue IsDeleted CreatedDate SystemModstamp"),
    _stream("opportunity_stages", "OpportunityStage",
            "Id ApiName MasterLabel IsActive IsClosed IsWon DefaultProbability "
            "ForecastCategoryName SortOrder CreatedDate SystemModstamp"),
    _stream("tasks", "Task",
            "Id Subject Status Priority ActivityDate WhatId WhoId OwnerId IsClosed TaskSubtype "
            f"IsDeleted {_AUDIT}"),
    _stream("events", "Event",
            "Id Subject StartDateTime EndDateTime ActivityDateTime DurationInMinutes IsAllDayEvent "
            f"WhatId WhoId OwnerId IsDeleted {_AUDIT}"),
)
