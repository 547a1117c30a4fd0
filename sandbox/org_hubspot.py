"""The synthetic org as HubSpot holds it: `SyntheticOrg.hubspot_records/hubspot_changes`
and the cross-CRM ground truth `identities()`.

The sales simulation is the one in `sandbox.org`; this module renders it HubSpot's way.
With crm="hubspot" everything lives here; with crm="both" the deals created from
`migration_at` on (deal numbers `_n_sf` and up) plus the companies and contacts they need
and a 30 % sample of the rest, copied in at `migration_at` or when first needed.

Every HubSpot object is built from its change events, `[(ms, {property: value})]` in time
order, and rendered at a moment t by folding the events up to t: each event time is a
version (updatedAt = hs_lastmodifieddate), each change of a tracked property a history
entry. Associations are links with a creation and an optional archive time, rendered as
one record per direction.

HubSpot-only behaviour: archiving a deal (where Salesforce deletes an opportunity) archives
its associations but leaves its engagements on the contacts' timelines, as HubSpot does;
a few companies and contacts get a duplicate that is later merged into them; a few meetings
end CANCELED or NO_SHOW instead of COMPLETED (their calendar events are left as they are).
"""

from __future__ import annotations

import json
import threading
from array import array
from dataclasses import replace
from typing import Iterator

from sandbox.org_base import (
    _DAY, _MIN, _STAGES, StageSpell, _Account, _close_date_changes, _Contact, _Deal, _User, _biz, _date_b,
    _date_iso, _digest, _dt, _iso, _lognorm_bdays, _personal_email, _wall)

# The default deal pipeline, in the simulation's stage order (5 open stages, won, lost).
HS_STAGES = [("appointmentscheduled", "Appointment Scheduled", "0.2"),
             ("qualifiedtobuy", "Qualified To Buy", "0.4"),
             ("presentationscheduled", "Presentation Scheduled", "0.6"),
             ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8"),
             ("contractsent", "Contract Sent", "0.9"),
             ("closedwon", "Closed Won", "1.0"),
             ("closedlost", "Closed Lost", "0.0")]
HS_STAGE_OF = {sf: hs[0] for sf, hs in zip(_STAGES, HS_STAGES)}

ASSOCIATION_TYPES = {
    ("contacts", "companies"): 1, ("companies", "contacts"): 2, ("deals", "contacts"): 3,
    ("contacts", "deals"): 4, ("deals", "companies"): 5, ("companies", "deals"): 6,
    ("calls", "deals"): 206, ("deals", "calls"): 205, ("emails", "deals"): 210, ("deals", "emails"): 209,
    ("meetings", "deals"): 212, ("deals", "meetings"): 211, ("tasks", "deals"): 216, ("deals", "tasks"): 215,
    ("calls", "contacts"): 194, ("contacts", "calls"): 193, ("emails", "contacts"): 198,
    ("contacts", "emails"): 197, ("meetings", "contacts"): 200, ("contacts", "meetings"): 199,
    ("tasks", "contacts"): 204, ("contacts", "tasks"): 203,
    ("calls", "companies"): 182, ("companies", "calls"): 181, ("emails", "companies"): 186,
    ("companies", "emails"): 185, ("meetings", "companies"): 188, ("companies", "meetings"): 187,
    ("tasks", "companies"): 192, ("companies", "tasks"): 191,
}

_DEAL_PROPS = ["dealname", "amount", "dealstage", "pipeline", "closedate", "hubspot_owner_id", "hs_is_closed",
               "hs_is_closed_won", "hs_deal_stage_probability", "dealtype"] + [
    f"hs_date_{edge}_{s[0]}" for s in HS_STAGES for edge in ("entered", "exited")]
_PROPS = {
    "companies": ["name", "domain", "industry", "hubspot_owner_id", "lifecyclestage"],
    "contacts": ["email", "firstname", "lastname", "jobtitle", "company", "associatedcompanyid",
                 "hubspot_owner_id", "lifecyclestage"],
    "deals": _DEAL_PROPS,
    "emails": ["hs_timestamp", "hs_email_subject", "hs_email_direction", "hs_email_status", "hubspot_owner_id",
               "hs_email_headers"],
    "meetings": ["hs_timestamp", "hs_meeting_title", "hs_meeting_start_time", "hs_meeting_end_time",
                 "hs_meeting_outcome", "hubspot_owner_id"],
    "calls": ["hs_timestamp", "hs_call_title", "hs_call_duration", "hs_call_direction", "hs_call_status",
              "hubspot_owner_id"],
    "tasks": ["hs_timestamp", "hs_task_subject", "hs_task_status", "hs_task_type", "hubspot_owner_id"],
}
_TRACKED = {
    "companies": ("hubspot_owner_id", "lifecyclestage"),
    "contacts": ("hubspot_owner_id", "lifecyclestage"),
    "deals": ("dealstage", "amount", "closedate", "hubspot_owner_id"),
    "emails": (), "calls": (), "meetings": ("hs_meeting_outcome",), "tasks": ("hs_task_status",),
}

# HubSpot's own industry enumeration, for the Salesforce picklist values the org uses.
_INDUSTRY = {
    "Machinery": "MACHINERY", "Healthcare": "HOSPITAL_HEALTH_CARE",
    "Transportation": "TRANSPORTATION_TRUCKING_RAILROAD",
    "Food & Beverage": "FOOD_BEVERAGES", "Technology": "INFORMATION_TECHNOLOGY_AND_SERVICES",
    "Finance": "FINANCIAL_SERVICES", "Insurance": "INSURANCE", "Energy": "OIL_ENERGY",
    "Telecommunications": "TELECOMMUNICATIONS", "Media": "MEDIA_PRODUCTION", "Retail": "RETAIL",
    "Biotechnology": "BIOTECHNOLOGY", "Construction": "CONSTRUCTION", "Consulting": "MANAGEMENT_CONSULTING",
    "Electronics": "CONSUMER_ELECTRONICS", "Communications": "COMPUTER_NETWORKING",
    "Manufacturing": "INDUSTRIAL_AUTOMATION", "Shipping": "PACKAGE_FREIGHT_DELIVERY", "Hospitality": "HOSPITALITY",
    "Education": "E_LEARNING", "Apparel": "APPAREL_FASHION", "Chemicals": "CHEMICALS",
    "Engineering": "MECHANICAL_OR_INDUSTRIAL_ENGINEERING", "Entertainment": "ENTERTAINMENT",
    "Agriculture": "FARMING", "Utilities": "UTILITIES", "Banking": "BANKING",
}
_TEAM_NAMES = ["East", "West", "Central", "North", "South", "Mid-Atlantic", "Pacific", "Mountain", "Great Lakes",
               "Gulf"]

_P_COPIED = 0.30            # both: share of pre-migration companies copied whether needed or not
_P_DUP_COMPANY = 0.025      # companies that get a duplicate, later merged into them
_P_DUP_CONTACT = 0.012
# Meetings that did not take place: hs_meeting_outcome ends CANCELED (set between booking and
# the start) or NO_SHOW (set at the end) instead of COMPLETED.
_P_MEETING_CANCELED = 0.03
_P_MEETING_NO_SHOW = 0.02

# Id ranges, one per object type: HubSpot ids are numeric strings, unique per type.
_OWNER_BASE, _USER_BASE = 48_100_000, 9_200_000
_COMPANY_BASE, _COMPANY_DUP_BASE = 20_000_000_000, 20_500_000_000
_CONTACT_BASE, _CONTACT_DUP_BASE = 30_000_000_000, 30_500_000_000
_DEAL_BASE, _ENGAGEMENT_BASE = 40_000_000_000, 50_000_000_000


def owner_id(u: _User) -> str:
    return str(_OWNER_BASE + u.n)


def company_id(account_i: int) -> str:
    return str(_COMPANY_BASE + account_i + 1)


def contact_id(c: _Contact) -> str:
    return str(_CONTACT_BASE + c.n + 1)


def deal_id(deal_i: int) -> str:
    return str(_DEAL_BASE + deal_i + 1)


def engagement_id(deal_i: int, j: int) -> str:
    return str(_ENGAGEMENT_BASE + deal_i * 1000 + j + 1)


def _num(x: float | None) -> str | None:
    if x is None:
        return None
    return str(int(x)) if x == int(x) else repr(x)


def _bool(b: bool) -> str:
    return "true" if b else "false"


# --------------------------------------------------------------------------- rendering

def _render(kind: str, oid: str, events: list, t: int) -> tuple[dict, int] | None:
    """State at t of an object built from its change events [(ms, {property: value})] in time
    order, with its last-modified ms; None before it exists. Special keys: "_archived" archives
    the object, "_merged" adds a merged-in id."""
    created = events[0][0]
    if created > t:
        return None
    tracked = _TRACKED[kind]
    props: dict = {}
    hist: dict = {name: [] for name in tracked}
    updated, archived_at, merged = created, None, []
    for tm, changes in events:
        if tm > t:
            break
        updated = tm
        for name, value in changes.items():
            if name == "_archived":
                archived_at = tm
            elif name == "_merged":
                merged.append(value)
            elif name not in props or props[name] != value:
                props[name] = value
                if name in hist and value is not None:
                    hist[name].append({"value": value, "timestamp": _dt(tm), "sourceType": "CRM_UI"})
    out = {name: props.get(name) for name in _PROPS[kind]}
    out["hs_object_id"] = oid
    out["createdate"] = _iso(created)
    out["hs_lastmodifieddate"] = _iso(updated)
    if kind == "contacts":
        out["lastmodifieddate"] = out["hs_lastmodifieddate"]
    rec = {"id": oid, "properties": out, "history": {name: rows[::-1] for name, rows in hist.items()},
           "createdAt": _dt(created), "updatedAt": _dt(updated), "archived": archived_at is not None,
           "archivedAt": None if archived_at is None else _dt(archived_at), "mergedObjectIds": merged}
    return rec, updated


def _links(link: tuple, t: int) -> Iterator[tuple[dict, int]]:
    """A link (type_a, id_a, type_b, id_b, created, archived_at|None) at t: one association
    record per direction, with the moment it last changed."""
    type_a, id_a, type_b, id_b, created, gone = link
    if created > t:
        return
    archived = gone is not None and gone <= t
    mod = gone if archived else created
    when = _dt(created)
    for ft, fid, tt, tid in ((type_a, id_a, type_b, id_b), (type_b, id_b, type_a, id_a)):
        yield {"fromObjectType": ft, "fromId": fid, "toObjectType": tt, "toId": tid,
               "associationTypeId": ASSOCIATION_TYPES[(ft, tt)], "category": "HUBSPOT_DEFINED", "label": None,
               "createdAt": when, "archived": archived}, mod


def _value_at(timeline: list[tuple[int, str]], t: int) -> str:
    value = timeline[0][1]
    for tm, v in timeline:
        if tm <= t:
            value = v
    return value


class HubSpotView:
    """Renders the org's HubSpot side; `org` is the SyntheticOrg."""

    def __init__(self, org):
        self.org = org
        self.live = org.crm != "salesforce"
        # The HubSpot portal exists from the org's birth, or is set up two weeks before migrating.
        self.portal_birth = org._birth if org.crm == "hubspot" else _wall(_biz(org._migration - 14 * _DAY))
        n = org._n_deals if self.live else 0
        self._touched = array("q", [-1]) * n      # per deal: last moment anything of it changed
        self._first_any = self._first_hs = None    # per account: first deal's creation (any CRM / HubSpot)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ who lives here, and since when

    def _first_deals(self) -> tuple[array, array]:
        """Per account, the creation time of its first deal and of its first HubSpot deal (-1: none),
        from the deals' cheap heads (built once, 16 bytes an account)."""
        if self._first_any is None:
            with self._lock:
                if self._first_any is None:
                    org = self.org
                    first_any = array("q", [-1]) * org._n_accounts
                    first_hs = array("q", [-1]) * org._n_accounts
                    for i in range(org._n_deals):      # creation order: the first seen is the earliest
                        _, created_b, acc_i = org._deal_head(i)
                        if first_any[acc_i] < 0:
                            first_any[acc_i] = _wall(created_b)
                        if i >= org._n_sf and first_hs[acc_i] < 0:
                            first_hs[acc_i] = _wall(created_b)
                    self._first_hs, self._first_any = first_hs, first_any
        return self._first_any, self._first_hs

    def company_since(self, a: _Account) -> int | None:
        """When the account appears in HubSpot as a company (wall ms), or None if never."""
        org = self.org
        if not self.live:
            return None
        if org.crm == "hubspot" or a.created >= org._migration:
            return a.created
        if org._rng("hs-copy", a.i).random() < _P_COPIED:
            return org._migration
        first = self._first_deals()[1][a.i]
        return None if first < 0 else max(org._migration, first - _MIN)

    def owner_since(self, u: _User) -> int | None:
        if not self.live:
            return None
        if self.org.crm == "hubspot":
            return u.created
        return self.portal_birth if u.active_at(self.portal_birth) else None

    def _lifecycle(self, a: _Account) -> list[tuple[int, str]]:
        """The company's lifecycle stage over time (its contacts follow it): customers stay
        customers; others are leads until their first deal makes them an opportunity."""
        if a.type.startswith("Customer"):
            return [(a.created, "customer")]
        first = self._first_deals()[0][a.i]
        return [(a.created, "lead")] + ([(first, "opportunity")] if first >= 0 else [])

    # ------------------------------------------------------------------ owners, pipeline

    def _owner_record(self, u: _User, t: int):
        created = self.owner_since(u)
        if created is None or created > t:
            return None
        archived = u.deactivated is not None and u.deactivated <= t
        updated = u.deactivated if archived else created
        team = u.team
        teams = [] if team is None else [{"id": str(team + 1), "primary": True,
                                          "name": _TEAM_NAMES[team % 10] + ("" if team < 10 else f" {team // 10 + 1}")}]
        return {"id": owner_id(u), "email": u.email, "firstName": u.first, "lastName": u.last,
                "userId": _USER_BASE + u.n, "teams": teams, "createdAt": _dt(created), "updatedAt": _dt(updated),
                "archived": archived}, updated

    def _pipeline_record(self, t: int):
        born = self.portal_birth
        if born > t:
            return None
        when = _dt(born)
        stages = [{"id": sid, "label": label, "displayOrder": n,
                   "metadata": {"probability": prob, "isClosed": _bool(n >= 5)},
                   "createdAt": when, "updatedAt": when, "archived": False}
                  for n, (sid, label, prob) in enumerate(HS_STAGES)]
        return {"id": "default", "label": "Sales Pipeline", "displayOrder": 0, "createdAt": when, "updatedAt": when,
                "archived": False, "stages": stages}, born

    # ------------------------------------------------------------------ companies and contacts

    def _duplicates(self, a: _Account, since: int, contacts: list[_Contact]):
        """The account's duplicates: (created, merged) for the company or None, and per contact n."""
        org = self.org
        r = org._rng("hs-dup", a.i)

        def dup(base: int):
            created = _wall(_biz(base) + _lognorm_bdays(r, 25.0, 0.8))
            merged = _wall(_biz(created) + _lognorm_bdays(r, 5.0, 0.8))
            return (created, merged) if created <= org._horizon else None

        company = dup(since) if r.random() < _P_DUP_COMPANY else None
        people = {}
        for c in contacts:
            if r.random() < _P_DUP_CONTACT:
                d = dup(max(c.created, since))
                if d is not None:
                    people[c.n] = d
        return company, people

    def _owner_events(self, owners: list, since: int) -> tuple[str, list]:
        """(owner id at `since`, later owner changes as events) from a (since, user) timeline."""
        first = owners[0][1]
        for when, u in owners:
            if when <= since:
                first = u
        return owner_id(first), [(when, {"hubspot_owner_id": owner_id(u)}) for when, u in owners if when > since]

    def _account_objects(self, a: _Account, since: int):
        """(kind, id, events) of the account's company, its contacts and their duplicates, and
        the company-contact links."""
        org = self.org
        cid = company_id(a.i)
        life = self._lifecycle(a)
        contacts = org._contacts(a)
        dup_company, dup_people = self._duplicates(a, since, contacts)
        owner, owner_changes = self._owner_events(a.owners, since)
        events = [(since, {"name": a.name, "domain": a.domain, "industry": _INDUSTRY[a.industry],
                           "hubspot_owner_id": owner, "lifecyclestage": _value_at(life, since)})]
        events += owner_changes + [(tm, {"lifecyclestage": v}) for tm, v in life if tm > since]
        objects, links = [("companies", cid, events)], []
        if dup_company is not None:
            dup_id = str(_COMPANY_DUP_BASE + a.i + 1)
            created, merged = dup_company
            events.append((merged, {"_merged": dup_id}))
            name = [f"{a.name} Inc.", a.name.upper(), f"{a.name.split()[0]} {a.name.split()[1][:3]}."][a.i % 3]
            objects.append(("companies", dup_id, [
                (created, {"name": name, "domain": a.domain, "industry": None, "hubspot_owner_id": None,
                           "lifecyclestage": "lead"}), (merged, {"_archived": True})]))
        events.sort(key=lambda e: e[0])
        for c in contacts:
            hc = max(c.created, since)          # copied with its company, or created later
            objects += self._contact_objects(a, c, hc, life, dup_people.get(c.n))
            links.append(("contacts", contact_id(c), "companies", cid, hc, None))
        return objects, links

    def _contact_objects(self, a: _Account, c: _Contact, since: int, life: list, dup) -> list:
        """(kind, id, events) of a contact in HubSpot from `since`, and of its duplicate if any:
        a record under the person's private address, later merged into it."""
        owner, owner_changes = self._owner_events(a.owners, since)
        events = [(since, {"email": c.email, "firstname": c.first, "lastname": c.last, "jobtitle": c.title,
                           "company": a.name, "associatedcompanyid": company_id(a.i), "hubspot_owner_id": owner,
                           "lifecyclestage": _value_at(life, since)})]
        events += owner_changes + [(tm, {"lifecyclestage": v}) for tm, v in life if tm > since]
        out = [("contacts", contact_id(c), events)]
        if dup is not None:
            dup_id = str(_CONTACT_DUP_BASE + c.n + 1)
            events.append((dup[1], {"_merged": dup_id}))
            email = _personal_email(self.org.seed, c.first, c.last, c.n)
            out.append(("contacts", dup_id, [
                (dup[0], {"email": email, "firstname": c.first, "lastname": c.last, "jobtitle": None, "company": None,
                          "associatedcompanyid": None, "hubspot_owner_id": None, "lifecyclestage": "lead"}),
                (dup[1], {"_archived": True})]))
        events.sort(key=lambda e: e[0])
        return out

    # ------------------------------------------------------------------ deals and engagements

    def _deal_events(self, D: _Deal) -> list:
        """One event per version of the simulated deal, carrying every property; rendering keeps
        the changes. hs_date_entered/exited_<stage> hold the latest entry into a stage and the
        exit that followed it."""
        events, entered, exited = [], {}, {}
        moves, m, prev = D.stage_moves, 0, None
        dealtype = "newbusiness" if D.type == "New Customer" else "existingbusiness"
        for tw, stage, amt, close_date, own, deleted in D.versions:
            while m < len(moves) and moves[m][1] <= tw:
                st, tm = moves[m]
                when = _iso(tm)
                if prev is not None:
                    exited[prev] = when
                entered[st] = when
                exited.pop(st, None)
                prev, m = st, m + 1
            sid, _, prob = HS_STAGES[stage]
            props = {"dealname": D.name, "amount": _num(amt), "dealstage": sid, "pipeline": "default",
                     "closedate": _date_iso(close_date), "hubspot_owner_id": owner_id(own),
                     "hs_is_closed": _bool(stage >= 5), "hs_is_closed_won": _bool(stage == 5),
                     "hs_deal_stage_probability": prob, "dealtype": dealtype}
            for k, (sid_k, _, _) in enumerate(HS_STAGES):
                props[f"hs_date_entered_{sid_k}"] = entered.get(k)
                props[f"hs_date_exited_{sid_k}"] = exited.get(k)
            if deleted:
                props["_archived"] = True
            events.append((tw, props))
        return events

    def _engagement(self, D: _Deal, j: int, a: tuple, mail, r) -> tuple[str, list, str]:
        """(kind, events, contact id) of the HubSpot engagement for the deal's activity j:
        meetings for events, emails for logged emails, calls for logged calls, and call tasks for
        calls scheduled ahead or never done."""
        if a[0] == "Event":
            _, created, start, minutes, subject, who, owner = a
            end = start + minutes * _MIN
            return "meetings", [
                (created, {"hs_timestamp": _iso(start), "hs_meeting_title": subject,
                           "hs_meeting_start_time": _iso(start), "hs_meeting_end_time": _iso(end),
                           "hs_meeting_outcome": "SCHEDULED", "hubspot_owner_id": owner_id(owner)}),
                self._meeting_outcome(D, j, created, start, end)], who
        _, created, done, subtype, subject, _, due, who, owner = a
        if subtype == "Email":
            return "emails", [(created, {
                "hs_timestamp": _iso(created), "hs_email_subject": mail.subject,
                "hs_email_direction": "EMAIL" if mail.sender[2] is not None else "INCOMING_EMAIL",
                "hs_email_status": "SENT", "hubspot_owner_id": owner_id(owner),
                "hs_email_headers": _email_headers(mail)})], who
        if done == created:
            seconds = int(min(3600.0, 60 + 420 * r.lognormvariate(0.0, 0.8)))
            return "calls", [(created, {
                "hs_timestamp": _iso(created), "hs_call_title": subject, "hs_call_duration": str(seconds * 1000),
                "hs_call_direction": "OUTBOUND" if r.random() < 0.85 else "INBOUND",
                "hs_call_status": "COMPLETED", "hubspot_owner_id": owner_id(owner)})], who
        due_ms = done if done is not None else _wall(_date_b(due))
        events = [(created, {"hs_timestamp": _iso(due_ms), "hs_task_subject": subject,
                             "hs_task_status": "NOT_STARTED", "hs_task_type": "CALL",
                             "hubspot_owner_id": owner_id(owner)})]
        if done is not None:
            events.append((done, {"hs_task_status": "COMPLETED"}))
        return "tasks", events, who

    def _meeting_outcome(self, D: _Deal, j: int, created: int, start: int, end: int) -> tuple[int, dict]:
        """How the deal's meeting j ends: COMPLETED at its end, or, for a few, CANCELED at a moment
        between its booking and its start, or NO_SHOW at its end. Drawn from the meeting's own
        digest, so nothing else in the org (the calendar event included) changes."""
        h = _digest(self.org.seed, "hs-meeting-outcome", D.i, j)
        u = int.from_bytes(h[:4], "big") / 2 ** 32
        if u < _P_MEETING_CANCELED:
            v = int.from_bytes(h[4:8], "big") / 2 ** 32
            return created + 1 + int(v * max(0, start - created - 1)), {"hs_meeting_outcome": "CANCELED"}
        if u < _P_MEETING_CANCELED + _P_MEETING_NO_SHOW:
            return end, {"hs_meeting_outcome": "NO_SHOW"}
        return end, {"hs_meeting_outcome": "COMPLETED"}

    def _deal_objects(self, D: _Deal):
        """(objects, links, last touch) of a HubSpot deal over its whole life: the deal, its
        engagements, and its links to the company, the contacts it involves and the engagements."""
        org = self.org
        acts = org._activities(D)
        contacts = {c.id: c for c in org._contacts(D.account)}
        logged = {m.logged: m for m in org._gmail.deal_mails(D, acts) if m.logged is not None}
        did, cid, gone = deal_id(D.i), company_id(D.account.i), D.deleted
        objects = [("deals", did, self._deal_events(D))]
        links = [("deals", did, "companies", cid, D.created, gone)]
        involved = {org.primary_contact(D, list(contacts.values())).id: D.created}
        r = org._rng("hubspot-activity", D.i)
        for j, a in enumerate(acts):
            kind, events, who = self._engagement(D, j, a, logged.get(j), r)
            eid, created, kid = engagement_id(D.i, j), events[0][0], contact_id(contacts[who])
            objects.append((kind, eid, events))
            links += [(kind, eid, "deals", did, created, gone), (kind, eid, "contacts", kid, created, None),
                      (kind, eid, "companies", cid, created, None)]
            involved.setdefault(who, created)
        for who, when in involved.items():
            links.append(("deals", did, "contacts", contact_id(contacts[who]), when, gone))
        last = max(max(ev[-1][0] for _, _, ev in objects), gone or 0,
                   max(link[4] for link in links))
        return objects, links, last

    # ------------------------------------------------------------------ streams

    def stream(self, t: int, since: int | None) -> Iterator[tuple[str, dict]]:
        """Every HubSpot record at t (since=None), or those changed in (since, t]."""
        if not self.live:
            return
        org = self.org

        def fresh(rendered):
            return rendered is not None and (since is None or rendered[1] > since)

        for u in org._users:
            rendered = self._owner_record(u, t)
            if fresh(rendered):
                yield "owners", rendered[0]
        rendered = self._pipeline_record(t)
        if fresh(rendered):
            yield "pipelines", rendered[0]
        for a in org._accounts_upto(t):
            hs = self.company_since(a)
            if hs is None or hs > t:
                continue
            objects, links = self._account_objects(a, hs)
            yield from self._emit(objects, links, t, since)
        for D in org._deals_upto(t, since, lo=org._n_sf, touched=self._touched):
            objects, links, last = self._deal_objects(D)
            self._touched[D.i] = last
            if since is None or last > since:
                yield from self._emit(objects, links, t, since)

    @staticmethod
    def _emit(objects, links, t: int, since: int | None):
        for kind, oid, events in objects:
            rendered = _render(kind, oid, events, t)
            if rendered is not None and (since is None or rendered[1] > since):
                yield kind, rendered[0]
        for link in links:
            for rec, mod in _links(link, t):
                if since is None or mod > since:
                    yield "associations", rec

    def truth(self, D: _Deal, t: int):
        """The Salesforce-side truth of a HubSpot deal, in HubSpot's ids and stages; its close-date
        history is the closedate property's, which records every version's change."""
        base = self.org._truth(D, t)
        own = self.org._version_at(D, t)[4]
        return replace(base, id=deal_id(D.i), account_id=company_id(D.account.i), owner_id=owner_id(own),
                       stage=HS_STAGE_OF[base.stage], source_system="hubspot",
                       spells=tuple(StageSpell(HS_STAGE_OF[s.stage], s.entered_at, s.exited_at) for s in base.spells),
                       close_dates=_close_date_changes(D.versions, t), currency=None)

    def identities(self) -> Iterator[dict]:
        """Per real-world person (user, contact) and company, its id in each CRM (None: not there),
        for everything that exists by the horizon."""
        org = self.org
        h = org._horizon
        in_sf = org.crm != "hubspot"
        for u in org._users:
            since = self.owner_since(u)
            yield {"kind": "person", "key": u.email, "salesforce": u.id if in_sf else None,
                   "hubspot": owner_id(u) if since is not None and since <= h else None}
        for a in org._accounts_upto(h):
            sf = in_sf and (org.crm == "salesforce" or a.created < org._migration)
            hs = self.company_since(a)
            hs = hs if hs is not None and hs <= h else None
            yield {"kind": "company", "key": a.domain, "salesforce": a.id if sf else None,
                   "hubspot": company_id(a.i) if hs is not None else None}
            for c in org._contacts(a):
                if c.created > h:
                    continue
                yield {"kind": "person", "key": c.email, "salesforce": c.id if sf else None,
                       "hubspot": contact_id(c) if hs is not None else None}


def _email_headers(mail) -> str:
    """hs_email_headers as HubSpot logs it: a JSON string of the From/To/Cc people."""
    def person(p):
        first, _, last = p[0].partition(" ")
        return {"email": p[1], "firstName": first, "lastName": last}
    return json.dumps({"from": person(mail.sender), "to": [person(p) for p in mail.to],
                       "cc": [person(p) for p in mail.cc], "bcc": []}, separators=(",", ":"))
