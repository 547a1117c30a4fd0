"""The canonical stage ladder, and each CRM's mapping onto it.

Every CRM names its stages its own way; metrics need one ladder. The mapping is
configuration (`stages.<crm>` in dealsync.yaml), with the standard Salesforce
sales process as the default. A stage the CRM uses but the mapping lacks is
reported, never dropped: its deals keep their CRM stage name and a NULL `stage`.
"""

from __future__ import annotations

from enum import Enum


class Stage(str, Enum):
    prospecting = "prospecting"
    qualification = "qualification"
    needs_analysis = "needs_analysis"
    proposal = "proposal"
    negotiation = "negotiation"
    closed_won = "closed_won"
    closed_lost = "closed_lost"

    @property
    def order(self) -> int:
        return list(Stage).index(self) + 1

    @property
    def is_closed(self) -> bool:
        return self in (Stage.closed_won, Stage.closed_lost)

    @property
    def is_won(self) -> bool:
        return self is Stage.closed_won


SALESFORCE_STANDARD: dict[str, Stage] = {
    "Prospecting": Stage.prospecting,
    "Qualification": Stage.qualification,
    "Needs Analysis": Stage.needs_analysis,
    "Value Proposition": Stage.needs_analysis,
    "Id. Decision Makers": Stage.needs_analysis,
    "Perception Analysis": Stage.proposal,
    "Proposal/Price Quote": Stage.proposal,
    "Negotiation/Review": Stage.negotiation,
    "Closed Won": Stage.closed_won,
    "Closed Lost": Stage.closed_lost,
}


# HubSpot's default deal pipeline, by stage id (the value `dealstage` holds).
HUBSPOT_DEFAULT: dict[str, Stage] = {
    "appointmentscheduled": Stage.prospecting,
    "qualifiedtobuy": Stage.qualification,
    "presentationscheduled": Stage.needs_analysis,
    "decisionmakerboughtin": Stage.proposal,
    "contractsent": Stage.negotiation,
    "closedwon": Stage.closed_won,
    "closedlost": Stage.closed_lost,
}

DEFAULT_MAPPINGS: dict[str, dict[str, Stage]] = {"salesforce": SALESFORCE_STANDARD, "hubspot": HUBSPOT_DEFAULT}
