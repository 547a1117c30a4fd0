"""The reps' Gmail mailboxes (sandbox/org_gmail.py): message shape per sandbox/README.md,
history ids, threads, copies per mailbox, the replay law of gmail_changes(), and the ground
truth: every logged CRM email is a real message, deal mail involves the deal's contacts."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import timedelta, timezone
from email.utils import getaddresses, parsedate_to_datetime

import pytest

from sandbox.org import SyntheticOrg

UTC = timezone.utc
KEYS = ["id", "threadId", "labelIds", "snippet", "internalDate", "historyId", "headers", "body", "sizeEstimate",
        "deletedAt", "deletedHistoryId", "truth"]
FREE_MAIL = {"gmail.com", "yahoo.com", "outlook.com", "icloud.com", "hotmail.com"}
HEX16 = re.compile(r"^[0-9a-f]{16}$")


def header(m: dict, name: str) -> str | None:
    return next((h["value"] for h in m["headers"] if h["name"] == name), None)


def addresses(m: dict, *names: str) -> list[str]:
    values = [header(m, n) for n in names]
    return [a.lower() for _, a in getaddresses([v for v in values if v])]


@pytest.fixture(scope="module")
def mail(org) -> list[tuple[str, dict]]:
    return list(org.gmail_messages(org.now))


# --------------------------------------------------------------------------- shape

def test_mailboxes_are_the_users(org, sf):
    assert org.mailboxes() == [u["Email"] for u in sorted(sf["User"].values(), key=lambda u: u["Id"])]
    assert all(b.endswith("@" + org.internal_domain) for b in org.mailboxes())


def test_messages_match_the_readme(org, mail):
    ids = defaultdict(set)
    for box, m in mail:
        assert list(m) == KEYS
        assert HEX16.match(m["id"]) and HEX16.match(m["threadId"])
        assert m["id"] not in ids[box], "ids are unique per mailbox"
        ids[box].add(m["id"])
        assert m["labelIds"] in (["SENT"], ["INBOX", "CATEGORY_PERSONAL"], ["INBOX", "UNREAD", "CATEGORY_PROMOTIONS"],
                                 ["INBOX", "UNREAD", "CATEGORY_UPDATES"])
        assert m["snippet"] == " ".join(m["body"].split())[:100]
        t = m["internalDate"]
        assert t.utcoffset() == timedelta(0) and t.microsecond % 1000 == 0 and org.start <= t <= org.now
        assert type(m["historyId"]) is int and m["historyId"] > 0
        names = [h["name"] for h in m["headers"]]
        assert names[:2] == ["From", "To"] and {"Subject", "Date", "Message-ID"} <= set(names)
        assert ("In-Reply-To" in names) == ("References" in names)
        assert parsedate_to_datetime(header(m, "Date")) == t.replace(microsecond=0)
        assert header(m, "Message-ID").startswith("<") and header(m, "Message-ID").endswith(">")
        assert type(m["sizeEstimate"]) is int and m["sizeEstimate"] > len(m["body"])
        assert (m["deletedAt"] is None) == (m["deletedHistoryId"] is None)
        if m["deletedAt"] is not None:
            assert t < m["deletedAt"] <= org.now and m["deletedHistoryId"] > m["historyId"]
        truth = m["truth"]
        assert set(truth) == {"kind", "deal", "personal_address"}
        assert truth["kind"] in ("deal", "internal", "personal", "newsletter")
        assert (truth["deal"] is None) == (truth["kind"] != "deal")
        assert truth["personal_address"] is False or truth["kind"] == "deal"
        sent = m["labelIds"] == ["SENT"]
        assert sent == (addresses(m, "From") == [box])
        assert sent or box in addresses(m, "To", "Cc")


def test_history_ids_rise_with_time_in_every_mailbox(org):
    events = defaultdict(list)
    for box, m in org.gmail_messages(org.horizon):
        events[box].append((m["internalDate"], m["historyId"]))
        if m["deletedAt"]:
            events[box].append((m["deletedAt"], m["deletedHistoryId"]))
    assert len(events) == len(org.mailboxes())
    for box, rows in events.items():
        rows.sort()
        for (t1, h1), (t2, h2) in zip(rows, rows[1:]):
            assert h2 > h1 if t2 > t1 else h2 == h1, box


def test_internal_participants_own_mailboxes(org, mail):
    boxes = set(org.mailboxes())
    domain = "@" + org.internal_domain
    seen = Counter()
    for _, m in mail:
        for a in addresses(m, "From", "To", "Cc"):
            if a.endswith(domain):
                assert a in boxes
                seen[a] += 1
    assert set(seen) == boxes


# --------------------------------------------------------------------------- threads and copies

def test_threads_and_copies(mail):
    by_mid = defaultdict(list)
    threads = defaultdict(list)
    for box, m in mail:
        by_mid[header(m, "Message-ID")].append((box, m))
        threads[(box, m["threadId"])].append(m)
    # One real email, several mailboxes: same Message-ID, other ids.
    multi = [copies for copies in by_mid.values() if len(copies) > 1]
    assert len(multi) > 100
    for copies in multi:
        assert len({b for b, _ in copies}) == len(copies)
        assert len({m["id"] for _, m in copies}) == len(copies)
        assert len({(m["internalDate"], header(m, "Subject"), m["body"]) for _, m in copies}) == 1
    replies = 0
    for (box, tid), msgs in threads.items():
        msgs.sort(key=lambda m: m["internalDate"])
        assert msgs[0]["id"] == tid, "a thread is named after its first message in the mailbox"
        assert len({m["truth"]["kind"] for m in msgs}) == 1
        for m in msgs:
            if header(m, "In-Reply-To"):
                replies += 1
                assert header(m, "References").split()[-1] == header(m, "In-Reply-To")
                assert header(m, "In-Reply-To") in by_mid
                parent = by_mid[header(m, "In-Reply-To")][0][1]
                assert parent["internalDate"] < m["internalDate"]
                assert header(m, "Subject").startswith("Re: ")
                assert header(m, "Subject").removeprefix("Re: ") in header(parent, "Subject")
    assert replies > 500


def test_every_kind_of_mail_and_deletions(mail):
    kinds = Counter(m["truth"]["kind"] for _, m in mail)
    assert set(kinds) == {"deal", "internal", "personal", "newsletter"}
    assert kinds["deal"] > kinds["internal"] > kinds["newsletter"] > kinds["personal"] > 50
    deleted = Counter(m["truth"]["kind"] for _, m in mail if m["deletedAt"])
    assert all(deleted[k] > 0 for k in kinds)
    assert deleted["newsletter"] / kinds["newsletter"] > 5 * deleted["deal"] / kinds["deal"]
    for _, m in mail:
        if m["truth"]["kind"] == "personal":
            assert {a.split("@")[1] for a in addresses(m, "From", "To")} & FREE_MAIL


# --------------------------------------------------------------------------- ground truth against the CRM

def test_deal_mail_involves_the_deals_contacts(org, mail, sf):
    personal = 0
    contact_emails = {c["Email"].lower(): c for c in sf["Contact"].values()}
    names = {(c["FirstName"], c["LastName"], c["AccountId"]) for c in sf["Contact"].values()}
    domain = "@" + org.internal_domain
    for _, m in mail:
        if m["truth"]["kind"] != "deal":
            continue
        system, deal_id = m["truth"]["deal"]
        opp = sf["Opportunity"][deal_id]
        assert system == "salesforce" and opp["Name"] in m["body"]
        external = [a for a in addresses(m, "From", "To", "Cc") if not a.endswith(domain)]
        assert external
        for a in external:
            if a in contact_emails:
                assert contact_emails[a]["AccountId"] == opp["AccountId"]
            else:
                assert m["truth"]["personal_address"] and a.split("@")[1] in FREE_MAIL
                personal += 1
                display = next(n for n, x in getaddresses([header(m, "From"), header(m, "To")]) if x.lower() == a)
                first, last = display.split(" ", 1)
                assert (first, last, opp["AccountId"]) in names
    assert personal > 10


def test_every_logged_email_task_is_a_message(org, mail, sf):
    index = defaultdict(list)
    for box, m in mail:
        index[(box, m["internalDate"])].append(m)
    users = sf["User"]
    logged = 0
    for task in sf["Task"].values():
        if task["TaskSubtype"] != "Email":
            continue
        logged += 1
        box = users[task["OwnerId"]]["Email"]
        [m] = [m for m in index[(box, task["CreatedDate"])] if m["truth"]["kind"] == "deal"]
        assert header(m, "Subject") == task["Subject"].removeprefix("Email: ")
        assert m["truth"]["deal"] == ("salesforce", task["WhatId"])
        contact = sf["Contact"][task["WhoId"]]
        if not m["truth"]["personal_address"]:
            assert contact["Email"].lower() in addresses(m, "From", "To")
    # More mail than the CRM logged: ~60 % of the deal emails are logged.
    distinct = {header(m, "Message-ID") for _, m in mail if m["truth"]["kind"] == "deal"}
    assert 0.5 <= logged / len(distinct) <= 0.7, logged / len(distinct)
    assert 2.0 <= len(mail) / logged <= 3.0, len(mail) / logged


def test_hubspot_emails_are_messages_too():
    o = SyntheticOrg(seed=42, size="small", crm="both")
    boxes = {}
    emails = []
    for kind, rec in o.hubspot_records(o.now):
        if kind == "owners":
            boxes[rec["id"]] = rec["email"]
        elif kind == "emails":
            emails.append(rec)
    index = defaultdict(list)
    systems = Counter()
    for box, m in o.gmail_messages(o.now):
        index[(box, m["internalDate"])].append(m)
        if m["truth"]["kind"] == "deal":
            systems[m["truth"]["deal"][0]] += 1
    assert emails and systems["salesforce"] and systems["hubspot"]
    for e in emails:
        p = e["properties"]
        box = boxes[p["hubspot_owner_id"]]
        [m] = [m for m in index[(box, e["createdAt"])] if m["truth"]["kind"] == "deal"]
        assert m["truth"]["deal"][0] == "hubspot"
        assert header(m, "Subject") == p["hs_email_subject"]
        logged = json.loads(p["hs_email_headers"])
        assert addresses(m, "From") == [logged["from"]["email"]]
        assert addresses(m, "To") == [x["email"] for x in logged["to"]]
        assert (p["hs_email_direction"] == "EMAIL") == (m["labelIds"] == ["SENT"])


@pytest.mark.slow
def test_message_volume_per_rep_holds_at_medium_size():
    o = SyntheticOrg(seed=42, size="medium")
    logged = sum(r["TaskSubtype"] == "Email" for _, r in o.records(o.now, objects=["Task"]))
    messages = sum(1 for _ in o.gmail_messages(o.now))
    assert 2.0 <= messages / logged <= 3.0, messages / logged


# --------------------------------------------------------------------------- changes

def _key(box: str, m: dict) -> tuple:
    return box, m["id"]


@pytest.mark.parametrize("days", [7, 30])
def test_changes_replay_messages(org, days):
    since, until = org.now, org.now + timedelta(days=days)
    state = {_key(b, m): m for b, m in org.gmail_messages(since)}
    changes = list(org.gmail_changes(since, until))
    keys = [_key(b, m) for b, m in changes]
    assert len(set(keys)) == len(keys)
    for (box, m), k in zip(changes, keys):
        assert since < m["internalDate"] <= until or (m["deletedAt"] and since < m["deletedAt"] <= until)
        state[k] = m
    assert state == {_key(b, m): m for b, m in org.gmail_messages(until)}
    assert any(m["deletedAt"] and m["internalDate"] <= since for _, m in changes), "old messages deleted"
    assert any(m["internalDate"] > since for _, m in changes), "new messages"
    assert {m["truth"]["kind"] for _, m in changes} == {"deal", "internal", "personal", "newsletter"}


def test_changes_edges(org):
    assert list(org.gmail_changes(org.now, org.now)) == []
    assert list(org.gmail_changes(org.horizon, org.horizon + timedelta(days=10))) == []
    assert list(org.gmail_messages(org.start - timedelta(days=1))) == []
