"""The Google emulator, driven by the real googleapiclient + google-auth + httplib2 stack over HTTPS."""

from __future__ import annotations

import base64
import json
from datetime import date, datetime, timedelta, timezone

import httplib2
import pytest
from google.auth.exceptions import RefreshError
from google.oauth2 import service_account
from google.oauth2.credentials import Credentials
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from sandbox.google import GoogleEmulator
from sandbox.google.recurrence import Rule, occurrences
from sandbox.tls import LocalCA

NOW = datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)
REP = "rita.rep@northwind-sales.example"
OTHER = "omar.other@northwind-sales.example"
BUYER = "Bea Buyer <bea@acme-robotics.example>"
GMAIL_RO = "https://www.googleapis.com/auth/gmail.readonly"
GMAIL_METADATA = "https://www.googleapis.com/auth/gmail.metadata"
CALENDAR = "https://www.googleapis.com/auth/calendar"
CALENDAR_RO = "https://www.googleapis.com/auth/calendar.readonly"


# --------------------------------------------------------------------------- README-shaped records

def message(n: int, mailbox: str = REP, *, at: datetime | None = None, labels=("INBOX", "UNREAD"),
            sender: str = BUYER, to: str = REP, subject: str | None = None, history_id: int | None = None,
            deleted_at: datetime | None = None, deleted_history_id: int | None = None) -> tuple[str, dict]:
    at = at or NOW - timedelta(hours=n)
    body = f"Hi Rita,\nfollowing up on proposal {n}.\nBea"
    return mailbox, {
        "id": f"18f2a1b3c4{n:06x}", "threadId": f"18f2a1b3c4{n // 2:06x}", "labelIds": list(labels),
        "snippet": body[:100], "internalDate": at, "historyId": history_id or 1000 + n,
        "headers": [{"name": "From", "value": sender}, {"name": "To", "value": to},
                    {"name": "Subject", "value": subject or f"Re: proposal {n}"},
                    {"name": "Date", "value": at.strftime("%a, %d %b %Y %H:%M:%S +0000")},
                    {"name": "Message-ID", "value": f"<m{n}@mail.acme-robotics.example>"}],
        "body": body, "sizeEstimate": 2048, "deletedAt": deleted_at, "deletedHistoryId": deleted_history_id,
        "truth": {"kind": "deal", "deal": ("salesforce", "006000000000001AAA")}}


def event(n: int, calendar: str = REP, *, start: datetime | None = None, minutes: int = 30,
          updated: datetime = NOW - timedelta(days=1), status: str = "confirmed", summary: str | None = None,
          recurrence: list[str] | None = None) -> tuple[str, dict]:
    start = start or NOW + timedelta(days=n)
    record = {"id": f"ev{n:04d}sandbox", "status": status, "summary": summary or f"Acme sync {n}",
              "description": "pricing review", "created": NOW - timedelta(days=30), "updated": updated,
              "start": {"dateTime": start}, "end": {"dateTime": start + timedelta(minutes=minutes)},
              "organizer": {"email": calendar}, "creator": {"email": calendar},
              "attendees": [{"email": calendar, "displayName": "Rita Rep", "responseStatus": "accepted",
                             "organizer": True},
                            {"email": "bea@acme-robotics.example", "displayName": "Bea Buyer",
                             "responseStatus": "needsAction", "optional": False}],
              "iCalUID": f"ev{n:04d}sandbox@google.com", "sequence": 0,
              "truth": {"kind": "deal", "deal": ("salesforce", "006000000000001AAA")}}
    if recurrence:
        record["recurrence"] = recurrence
    return calendar, record


# --------------------------------------------------------------------------- client construction

@pytest.fixture(scope="session")
def ca(tmp_path_factory) -> LocalCA:
    return LocalCA(tmp_path_factory.mktemp("google-ca"))


@pytest.fixture
def emu(ca):
    with GoogleEmulator(ca=ca, clock=NOW) as emulator:
        emulator.add_mailboxes([REP, OTHER])
        emulator.add_calendars([REP, OTHER])
        yield emulator


@pytest.fixture
def batch_trust(ca, monkeypatch):
    """googleapiclient refreshes credentials for batches with a bare httplib2.Http() (see
    test_batch_refresh_needs_httplib2_to_trust_the_ca): trust the sandbox CA process-wide."""
    monkeypatch.setattr(httplib2, "CA_CERTS", str(ca.ca_path))


def authorized_http(emu: GoogleEmulator, creds) -> AuthorizedHttp:
    # ca_certs is explicit: HTTPLIB2_CA_CERTS (set in this environment) only changes the default.
    return AuthorizedHttp(creds, http=httplib2.Http(ca_certs=str(emu.ca.ca_path), proxy_info=None))


def gmail(emu: GoogleEmulator, creds):
    return build("gmail", "v1", http=authorized_http(emu, creds), static_discovery=True,
                 client_options={"api_endpoint": emu.url + "/"})


def calendar(emu: GoogleEmulator, creds):
    # Calendar's servicePath is replaced by api_endpoint, so the endpoint carries /calendar/v3/.
    return build("calendar", "v3", http=authorized_http(emu, creds), static_discovery=True,
                 client_options={"api_endpoint": emu.url + "/calendar/v3/"})


def user_creds(emu: GoogleEmulator, user: str = REP, scopes=None) -> Credentials:
    client = emu.register_oauth_client(user, scopes)
    return Credentials(token=None, refresh_token=client["refresh_token"], token_uri=client["token_uri"],
                       client_id=client["client_id"], client_secret=client["client_secret"])


def sa_creds(emu: GoogleEmulator, user: str = REP, scopes=(GMAIL_RO, CALENDAR)):
    key = emu.register_service_account()
    return service_account.Credentials.from_service_account_info(key, scopes=list(scopes), subject=user)


def all_pages(collection, request):
    pages = []
    while request is not None:
        response = request.execute()
        pages.append(response)
        request = collection.list_next(request, response)
    return pages


def kinds(emu: GoogleEmulator) -> list[tuple[str, int]]:
    return [(e.kind, e.status) for e in emu.request_log]


# --------------------------------------------------------------------------- Gmail

def test_profile(emu):
    emu.load_gmail([message(1), message(2), message(3, history_id=1500)])
    profile = gmail(emu, user_creds(emu)).users().getProfile(userId="me").execute()
    assert profile == {"emailAddress": REP, "messagesTotal": 3, "threadsTotal": 2, "historyId": "1500"}


def test_messages_list_pages_newest_first(emu):
    emu.load_gmail(message(n) for n in range(1, 251))
    messages = gmail(emu, user_creds(emu)).users().messages()
    pages = all_pages(messages, messages.list(userId="me", maxResults=100))
    assert [len(p["messages"]) for p in pages] == [100, 100, 50]
    assert [("nextPageToken" in p) for p in pages] == [True, True, False]
    assert {p["resultSizeEstimate"] for p in pages} == {250}
    ids = [m["id"] for p in pages for m in p["messages"]]
    assert ids == [message(n)[1]["id"] for n in range(1, 251)]          # n=1 is the newest
    assert set(pages[0]["messages"][0]) == {"id", "threadId"}


def test_messages_list_query(emu):
    emu.load_gmail([
        message(1, at=NOW - timedelta(days=1)),
        message(2, at=NOW - timedelta(days=10), labels=["SENT"], sender=REP, to="Carl <carl@globex.example>"),
        message(3, at=NOW - timedelta(days=40), labels=["INBOX", "CATEGORY_PROMOTIONS"],
                sender="News <news@vendor.example>", subject="Weekly digest"),
        message(4, at=NOW - timedelta(days=2), labels=["SPAM"]),
    ])
    messages = gmail(emu, user_creds(emu)).users().messages()

    def ids(q, **kw):
        return sorted(int(m["id"][-6:], 16) for m in messages.list(userId="me", q=q, **kw).execute()
                      .get("messages", []))

    assert ids("in:inbox") == [1, 3]
    assert ids("in:sent") == [2]
    assert ids("newer_than:7d") == [1]                       # spam and trash stay out of listings
    assert ids("older_than:30d") == [3]
    assert ids(f"after:{int((NOW - timedelta(days=15)).timestamp())}") == [1, 2]
    assert ids("after:2024/04/20 before:2024/04/25") == [2]  # dates are midnight Pacific time
    assert ids("from:bea@acme-robotics.example") == [1]
    assert ids("to:carl@globex.example") == [2]
    assert ids("label:category_promotions") == [3]
    assert ids("-in:inbox") == [2]
    assert ids("{from:news@vendor.example to:carl@globex.example}") == [2, 3]
    assert ids("digest") == [3]
    assert ids("in:spam") == [4]
    assert ids("newer_than:7d", includeSpamTrash=True) == [1, 4]
    assert ids("", labelIds=["SENT"]) == [2]
    empty = messages.list(userId="me", q="from:nobody@nowhere.example").execute()
    assert empty == {"resultSizeEstimate": 0}                # `messages` omitted when empty


def test_messages_get_formats(emu):
    emu.load_gmail([message(1)])
    msg_id = message(1)[1]["id"]
    messages = gmail(emu, user_creds(emu)).users().messages()

    meta = messages.get(userId="me", id=msg_id, format="metadata", metadataHeaders=["From", "subject"]).execute()
    assert meta["payload"]["headers"] == [{"name": "From", "value": BUYER},
                                          {"name": "Subject", "value": "Re: proposal 1"}]
    assert "parts" not in meta["payload"] and "body" not in meta["payload"]
    assert meta["historyId"] == "1001"
    assert meta["internalDate"] == str(int((NOW - timedelta(hours=1)).timestamp() * 1000))
    assert "truth" not in meta and "body" not in meta

    full = messages.get(userId="me", id=msg_id, format="full").execute()
    plain = full["payload"]["parts"][0]
    assert plain["mimeType"] == "text/plain"
    assert base64.urlsafe_b64decode(plain["body"]["data"]).decode() == message(1)[1]["body"]
    assert full["payload"]["body"] == {"size": 0}            # the text is in the parts, not the top level

    raw = messages.get(userId="me", id=msg_id, format="raw").execute()
    assert b"Subject: Re: proposal 1" in base64.urlsafe_b64decode(raw["raw"])
    minimal = messages.get(userId="me", id=msg_id, format="minimal").execute()
    assert "payload" not in minimal and minimal["labelIds"] == ["INBOX", "UNREAD"]

    with pytest.raises(HttpError) as err:
        messages.get(userId="me", id="ffffffffffffffff").execute()
    assert err.value.status_code == 404 and err.value.error_details[0]["reason"] == "notFound"


def test_metadata_scope_refuses_q_and_full(emu):
    emu.load_gmail([message(1)])
    messages = gmail(emu, user_creds(emu, scopes=[GMAIL_METADATA])).users().messages()
    assert len(messages.list(userId="me").execute()["messages"]) == 1
    with pytest.raises(HttpError) as err:
        messages.list(userId="me", q="in:inbox").execute()
    assert err.value.status_code == 403
    with pytest.raises(HttpError) as err:
        messages.get(userId="me", id=message(1)[1]["id"], format="full").execute()
    assert err.value.status_code == 403


def test_batch_get_120_ids_in_parts_of_at_most_100(emu, batch_trust):
    emu.load_gmail(message(n) for n in range(1, 121))
    service = gmail(emu, user_creds(emu))
    ids = [message(n)[1]["id"] for n in range(1, 121)]
    got, errors = {}, []

    def on_response(request_id, response, exception):
        if exception is not None:
            errors.append(exception)
        else:
            got[response["id"]] = response

    for chunk in (ids[:100], ids[100:]):
        batch = BatchHttpRequest(callback=on_response, batch_uri=emu.url + "/batch/gmail/v1")
        for msg_id in chunk:
            batch.add(service.users().messages().get(userId="me", id=msg_id, format="metadata",
                                                     metadataHeaders=["From", "To", "Subject"]))
        batch.execute()
    assert not errors and sorted(got) == sorted(ids)
    assert got[ids[0]]["payload"]["headers"][0] == {"name": "From", "value": BUYER}
    outer = [e for e in emu.request_log if e.kind == "batch"]
    assert [e.batch_parts for e in outer] == [100, 20]
    assert sum(1 for e in emu.request_log if e.kind == "messages.get" and e.in_batch and e.status == 200) == 120

    too_big = BatchHttpRequest(callback=on_response, batch_uri=emu.url + "/batch/gmail/v1")
    for msg_id in ids[:101]:
        too_big.add(service.users().messages().get(userId="me", id=msg_id))
    with pytest.raises(HttpError) as err:
        too_big.execute()
    assert err.value.status_code == 400


def test_batch_part_errors_are_inner_responses(emu, batch_trust):
    emu.load_gmail([message(1), message(2)])
    service = gmail(emu, user_creds(emu))
    results = {}
    batch = BatchHttpRequest(callback=lambda rid, resp, exc: results.__setitem__(rid, exc or resp),
                             batch_uri=emu.url + "/batch")
    batch.add(service.users().messages().get(userId="me", id=message(1)[1]["id"]), request_id="ok")
    batch.add(service.users().messages().get(userId="me", id="ffffffffffffffff"), request_id="missing")
    batch.add(service.users().messages().get(userId="me", id=message(2)[1]["id"]), request_id="limited")
    emu.fail_next(429, "rateLimitExceeded", path_contains=message(2)[1]["id"])
    batch.execute()
    assert results["ok"]["id"] == message(1)[1]["id"]
    assert results["missing"].status_code == 404
    assert results["limited"].status_code == 429


def test_history_lists_additions_and_deletions(emu):
    emu.load_gmail([message(1), message(2), message(3)])
    service = gmail(emu, user_creds(emu))
    start = service.users().getProfile(userId="me").execute()["historyId"]
    assert start == "1003"
    emu.load_gmail([message(4, history_id=1010), message(5, history_id=1011),
                    message(2, deleted_at=NOW, deleted_history_id=1012)])

    history = service.users().history()
    page = history.list(userId="me", startHistoryId=start).execute()
    assert page["historyId"] == "1012" and "nextPageToken" not in page
    assert [(h["id"], list(h)[2]) for h in page["history"]] == [
        ("1010", "messagesAdded"), ("1011", "messagesAdded"), ("1012", "messagesDeleted")]
    assert page["history"][2]["messagesDeleted"][0]["message"]["id"] == message(2)[1]["id"]

    added_only = history.list(userId="me", startHistoryId=start, historyTypes=["messageAdded"]).execute()
    assert [h["id"] for h in added_only["history"]] == ["1010", "1011"]
    pages = all_pages(history, history.list(userId="me", startHistoryId=start, maxResults=2))
    assert [[h["id"] for h in p["history"]] for p in pages] == [["1010", "1011"], ["1012"]]
    assert history.list(userId="me", startHistoryId="1012").execute() == {"historyId": "1012"}

    # The deleted message is gone from list and get.
    listed = {m["id"] for m in service.users().messages().list(userId="me").execute()["messages"]}
    assert message(2)[1]["id"] not in listed and len(listed) == 4
    with pytest.raises(HttpError) as err:
        service.users().messages().get(userId="me", id=message(2)[1]["id"]).execute()
    assert err.value.status_code == 404


def test_history_404_when_expired(ca):
    with GoogleEmulator(ca=ca, clock=NOW, history_retention_days=30) as emu:
        emu.load_gmail([message(1, at=NOW - timedelta(days=60), history_id=10),
                        message(2, at=NOW - timedelta(days=5), history_id=20)])
        history = gmail(emu, user_creds(emu)).users().history()
        with pytest.raises(HttpError) as err:                # record 10 was pruned: 5 would miss it
            history.list(userId="me", startHistoryId="5").execute()
        assert err.value.status_code == 404 and err.value.error_details[0]["reason"] == "notFound"
        assert [h["id"] for h in history.list(userId="me", startHistoryId="10").execute()["history"]] == ["20"]

        emu.advance(40)                                      # record 20 now falls out of the window too
        with pytest.raises(HttpError):
            history.list(userId="me", startHistoryId="10").execute()
        assert history.list(userId="me", startHistoryId="20").execute() == {"historyId": "20"}

        emu.load_gmail([message(3, at=emu.now, history_id=30)])
        emu.expire_history(REP)
        with pytest.raises(HttpError) as err:
            history.list(userId="me", startHistoryId="20").execute()
        assert err.value.status_code == 404


# --------------------------------------------------------------------------- Calendar

def test_calendar_list_shows_own_calendars(emu):
    listing = calendar(emu, user_creds(emu)).calendarList().list().execute()
    assert [(c["id"], c.get("primary"), c["accessRole"]) for c in listing["items"]] == [(REP, True, "owner")]


def test_events_full_sync_then_incremental(emu):
    emu.load_calendar(event(n) for n in range(1, 31))
    events = calendar(emu, user_creds(emu)).events()
    pages = all_pages(events, events.list(calendarId=REP, maxResults=10))
    assert [len(p["items"]) for p in pages] == [10, 10, 10]
    assert [("nextPageToken" in p, "nextSyncToken" in p) for p in pages] == [(True, False)] * 2 + [(False, True)]
    first = pages[0]["items"][0]
    assert first["organizer"] == {"email": REP, "self": True} and "truth" not in first
    assert first["attendees"][1] == {"email": "bea@acme-robotics.example", "displayName": "Bea Buyer",
                                     "responseStatus": "needsAction"}    # false flags omitted
    token = pages[-1]["nextSyncToken"]

    later = NOW + timedelta(hours=1)
    emu.load_calendar([event(3, summary="Acme sync 3 (moved)", updated=later),
                       event(4, status="cancelled", updated=later), event(31, updated=later)])
    changed = events.list(calendarId=REP, syncToken=token).execute()
    by_id = {e["id"]: e for e in changed["items"]}
    assert sorted(by_id) == ["ev0003sandbox", "ev0004sandbox", "ev0031sandbox"]
    assert by_id["ev0003sandbox"]["summary"] == "Acme sync 3 (moved)"
    assert by_id["ev0004sandbox"]["status"] == "cancelled" and "summary" not in by_id["ev0004sandbox"]
    assert "nextSyncToken" in changed and "nextPageToken" not in changed

    assert events.list(calendarId=REP, syncToken=changed["nextSyncToken"]).execute()["items"] == []
    visible = {e["id"] for p in all_pages(events, events.list(calendarId=REP)) for e in p["items"]}
    assert "ev0004sandbox" not in visible and len(visible) == 30
    with_deleted = events.list(calendarId="primary", showDeleted=True, maxResults=2500).execute()["items"]
    assert {"status": "cancelled"}.items() <= next(e for e in with_deleted if e["id"] == "ev0004sandbox").items()


def test_sync_token_410_and_400(emu):
    emu.load_calendar([event(1)])
    events = calendar(emu, user_creds(emu)).events()
    token = events.list(calendarId=REP).execute()["nextSyncToken"]
    with pytest.raises(HttpError) as err:
        events.list(calendarId=REP, syncToken=token, timeMin="2024-05-01T00:00:00Z").execute()
    assert err.value.status_code == 400
    emu.invalidate_sync_tokens(REP)
    with pytest.raises(HttpError) as err:
        events.list(calendarId=REP, syncToken=token).execute()
    assert err.value.status_code == 410 and err.value.error_details[0]["reason"] == "fullSyncRequired"

    fresh = events.list(calendarId=REP).execute()["nextSyncToken"]
    emu.advance(31)                                          # older than sync_token_ttl_days
    with pytest.raises(HttpError) as err:
        events.list(calendarId=REP, syncToken=fresh).execute()
    assert err.value.status_code == 410


def test_single_events_expands_weekly_series(emu):
    monday = datetime(2024, 5, 6, 15, 0, tzinfo=timezone.utc)
    emu.load_calendar([event(1, start=monday, recurrence=["RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=6"]),
                       event(2, start=datetime(2024, 5, 14, 9, 0, tzinfo=timezone.utc))])
    events = calendar(emu, user_creds(emu)).events()
    items = events.list(calendarId=REP, singleEvents=True, orderBy="startTime").execute()["items"]
    assert [e["id"] for e in items] == [
        "ev0001sandbox_20240506T150000Z", "ev0001sandbox_20240508T150000Z", "ev0001sandbox_20240513T150000Z",
        "ev0002sandbox", "ev0001sandbox_20240515T150000Z", "ev0001sandbox_20240520T150000Z",
        "ev0001sandbox_20240522T150000Z"]
    instance = items[2]
    assert instance["recurringEventId"] == "ev0001sandbox" and "recurrence" not in instance
    assert instance["originalStartTime"] == {"dateTime": "2024-05-13T15:00:00Z"}
    assert instance["end"] == {"dateTime": "2024-05-13T15:30:00Z"}

    window = events.list(calendarId=REP, singleEvents=True, timeMin="2024-05-10T00:00:00Z",
                         timeMax="2024-05-21T00:00:00+00:00").execute()["items"]
    assert sorted(e["id"] for e in window) == ["ev0001sandbox_20240513T150000Z", "ev0001sandbox_20240515T150000Z",
                                               "ev0001sandbox_20240520T150000Z", "ev0002sandbox"]
    series = events.list(calendarId=REP).execute()["items"]
    assert [e["recurrence"] for e in series if e["id"] == "ev0001sandbox"] == [
        ["RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=6"]]


def test_recurrence_rules():
    start = datetime(2024, 5, 6, 15, 0, tzinfo=timezone.utc)            # a Monday
    far = int(datetime(2030, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
    daily = list(occurrences(start, Rule("DAILY", interval=2, until="20240512T150000Z"), horizon_ms=far))
    assert [d.day for d in daily] == [6, 8, 10, 12]
    fortnightly = list(occurrences(start, Rule("WEEKLY", interval=2, count=3, byday=frozenset({1, 3})),
                                   horizon_ms=far))
    assert [d.day for d in fortnightly] == [7, 9, 21]
    all_day = list(occurrences(date(2024, 5, 6), Rule("WEEKLY", until="20240520"), horizon_ms=far))
    assert all_day == [date(2024, 5, 6), date(2024, 5, 13), date(2024, 5, 20)]


def test_order_by_start_time_needs_single_events(emu):
    events = calendar(emu, user_creds(emu)).events()
    with pytest.raises(HttpError) as err:
        events.list(calendarId=REP, orderBy="startTime").execute()
    assert err.value.status_code == 400


def test_events_insert(emu):
    events = calendar(emu, user_creds(emu)).events()
    token = events.list(calendarId="primary").execute()["nextSyncToken"]
    body = {"summary": "Reminder: follow up Acme", "start": {"dateTime": "2024-05-03T09:00:00Z"},
            "end": {"dateTime": "2024-05-03T09:15:00Z"},
            "reminders": {"useDefault": False, "overrides": [{"method": "popup", "minutes": 10}]}}
    created = events.insert(calendarId="primary", body=body, sendUpdates="none").execute()
    assert created["status"] == "confirmed" and created["summary"] == body["summary"]
    assert created["organizer"] == {"email": REP, "self": True}
    assert created["created"] == created["updated"] == "2024-05-01T10:00:00.000Z"
    assert {"id", "etag", "htmlLink", "iCalUID", "sequence"} <= set(created)
    assert emu.inserted_events == [body]
    assert [e["id"] for e in events.list(calendarId=REP, syncToken=token).execute()["items"]] == [created["id"]]

    with pytest.raises(HttpError) as err:
        events.insert(calendarId="primary", body={"summary": "x", "start": body["start"]}).execute()
    assert err.value.status_code == 400
    with pytest.raises(HttpError) as err:
        calendar(emu, user_creds(emu, scopes=[CALENDAR_RO])).events().insert(calendarId="primary",
                                                                            body=body).execute()
    assert err.value.status_code == 403


def test_calendar_batch(emu, batch_trust):
    emu.load_calendar([event(1)])
    service = calendar(emu, user_creds(emu))
    results = {}
    batch = BatchHttpRequest(callback=lambda rid, resp, exc: results.__setitem__(rid, exc or resp),
                             batch_uri=emu.url + "/batch/calendar/v3")
    batch.add(service.events().list(calendarId=REP), request_id="mine")
    batch.add(service.events().list(calendarId=OTHER), request_id="theirs")
    body = {"summary": "Follow up", "start": {"dateTime": "2024-05-03T09:00:00+02:00"},
            "end": {"dateTime": "2024-05-03T09:15:00+02:00"}, "description": "déjà vu"}
    batch.add(service.events().insert(calendarId="primary", body=body), request_id="insert")
    batch.execute()
    assert [e["id"] for e in results["mine"]["items"]] == ["ev0001sandbox"]
    assert results["theirs"].status_code == 404
    assert results["insert"]["start"] == {"dateTime": "2024-05-03T07:00:00Z"}
    assert results["insert"]["description"] == "déjà vu" and emu.inserted_events == [body]


# --------------------------------------------------------------------------- auth

@pytest.mark.parametrize("kind", ["oauth_user", "service_account"])
def test_refresh_after_expire_tokens_is_invisible(emu, kind):
    emu.load_gmail([message(1)])
    creds = user_creds(emu) if kind == "oauth_user" else sa_creds(emu)
    service = gmail(emu, creds)
    assert service.users().getProfile(userId="me").execute()["emailAddress"] == REP
    first_token = creds.token
    emu.clear_log()
    emu.expire_tokens()
    assert service.users().getProfile(userId="me").execute()["emailAddress"] == REP
    assert creds.token != first_token
    assert kinds(emu) == [("profile", 401), ("token", 200), ("profile", 200)]
    assert emu.request_log[1].user == REP


def test_batch_refresh_needs_httplib2_to_trust_the_ca(emu, monkeypatch):
    """googleapiclient refreshes for batches (initial refresh, and parts answering 401) with a
    bare httplib2.Http(), which ignores the ca_certs given to AuthorizedHttp: the sandbox CA must
    be trusted process-wide (httplib2.CA_CERTS or HTTPLIB2_CA_CERTS before import)."""
    emu.load_gmail([message(1)])
    creds = user_creds(emu)
    service = gmail(emu, creds)
    service.users().getProfile(userId="me").execute()
    emu.expire_tokens()
    results = {}

    def run_batch():
        batch = BatchHttpRequest(callback=lambda rid, resp, exc: results.__setitem__(rid, exc or resp),
                                 batch_uri=emu.url + "/batch/gmail/v1")
        batch.add(service.users().messages().get(userId="me", id=message(1)[1]["id"]), request_id="m")
        batch.execute()

    with pytest.raises(Exception) as err:
        run_batch()
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value)

    monkeypatch.setattr(httplib2, "CA_CERTS", str(emu.ca.ca_path))
    emu.clear_log()
    run_batch()
    assert results["m"]["id"] == message(1)[1]["id"]
    assert kinds(emu) == [("batch", 200), ("messages.get", 401), ("token", 200), ("batch", 200),
                          ("messages.get", 200)]


def test_token_for_one_user_cannot_read_another(emu):
    emu.load_gmail([message(1), message(2, mailbox=OTHER)])
    emu.load_calendar([event(1, calendar=OTHER)])
    for creds in (user_creds(emu), sa_creds(emu)):
        with pytest.raises(HttpError) as err:
            gmail(emu, creds).users().messages().list(userId=OTHER).execute()
        assert err.value.status_code == 403 and "Delegation denied" in err.value.reason
        with pytest.raises(HttpError) as err:
            calendar(emu, creds).events().list(calendarId=OTHER).execute()
        assert err.value.status_code == 404
    own = gmail(emu, user_creds(emu)).users().messages().list(userId=REP).execute()
    assert [m["id"] for m in own["messages"]] == [message(1)[1]["id"]]


def test_token_endpoint_rejections(emu):
    with pytest.raises(RefreshError, match="invalid_grant"):
        gmail(emu, sa_creds(emu, user="stranger@elsewhere.example")).users().getProfile(userId="me").execute()
    creds = user_creds(emu)
    emu.revoke(creds.refresh_token)
    with pytest.raises(RefreshError, match="invalid_grant"):
        gmail(emu, creds).users().getProfile(userId="me").execute()
    with pytest.raises(RefreshError):                        # a 401 with no way to refresh
        gmail(emu, Credentials(token="forged")).users().getProfile(userId="me").execute()


# --------------------------------------------------------------------------- faults, org, log

def test_rate_limits_surface_as_http_errors(emu):
    service = gmail(emu, user_creds(emu))
    service.users().getProfile(userId="me").execute()
    emu.fail_next(429, "rateLimitExceeded", retry_after=7)
    with pytest.raises(HttpError) as err:
        service.users().getProfile(userId="me").execute()
    assert err.value.status_code == 429 and err.value.resp["retry-after"] == "7"
    assert err.value.error_details[0]["reason"] == "rateLimitExceeded"
    emu.fail_next(403, "userRateLimitExceeded")
    with pytest.raises(HttpError) as err:
        service.users().getProfile(userId="me").execute()
    assert err.value.status_code == 403 and err.value.error_details[0]["domain"] == "usageLimits"

    emu.fail_next(429, "rateLimitExceeded", times=2)
    request = service.users().getProfile(userId="me")
    request._sleep = lambda seconds: None                    # the client's own backoff, without waiting
    assert request.execute(num_retries=2)["emailAddress"] == REP
    assert [s for k, s in kinds(emu) if k == "profile"][-3:] == [429, 429, 200]


class TinyOrg:
    """Just enough of sandbox.org.SyntheticOrg's Gmail/Calendar surface."""

    def __init__(self):
        self.now = NOW
        self._messages = [message(1, at=NOW - timedelta(days=3), history_id=100),
                          message(2, at=NOW - timedelta(days=2), history_id=101),
                          message(3, at=NOW + timedelta(days=1), history_id=102)]
        self._deleted = {message(1)[1]["id"]: (NOW + timedelta(days=2), 103)}
        self._events = [event(1, updated=NOW - timedelta(days=1)),
                        event(2, updated=NOW + timedelta(days=1), summary="added later")]

    def mailboxes(self):
        return [REP]

    def calendars(self):
        return [REP]

    def _state(self, mailbox, msg, as_of):
        deleted_at, deleted_hid = self._deleted.get(msg["id"], (None, None))
        if deleted_at is not None and deleted_at <= as_of:
            msg = {**msg, "deletedAt": deleted_at, "deletedHistoryId": deleted_hid}
        return mailbox, msg

    def gmail_messages(self, as_of):
        return [self._state(mb, m, as_of) for mb, m in self._messages if m["internalDate"] <= as_of]

    def gmail_changes(self, since, until):
        changed = [(mb, m) for mb, m in self._messages if since < m["internalDate"] <= until
                   or since < self._deleted.get(m["id"], (NOW - timedelta(days=999),))[0] <= until]
        return [self._state(mb, m, until) for mb, m in changed]

    def calendar_events(self, as_of):
        return [(c, e) for c, e in self._events if e["updated"] <= as_of]

    def calendar_changes(self, since, until):
        return [(c, e) for c, e in self._events if since < e["updated"] <= until]


def test_attach_org_and_advance(ca):
    with GoogleEmulator(ca=ca, clock=datetime(2020, 1, 1, tzinfo=timezone.utc)) as emu:
        assert emu.attach_org(TinyOrg()) == {"messages": 2, "events": 1}
        assert emu.now == NOW
        service = gmail(emu, user_creds(emu))
        start = service.users().getProfile(userId="me").execute()["historyId"]
        assert start == "101"

        http = httplib2.Http(ca_certs=str(ca.ca_path))
        resp, body = http.request(emu.url + "/__sandbox/advance", "POST", body=json.dumps({"days": 1}))
        assert resp.status == 200 and json.loads(body)["counts"] == {"messages": 1, "events": 1}
        assert emu.advance(1) == {"messages": 1, "events": 0}
        assert emu.now == NOW + timedelta(days=2)

        history = service.users().history().list(userId="me", startHistoryId=start).execute()
        assert [(h["id"], "messagesAdded" in h, "messagesDeleted" in h) for h in history["history"]] == [
            ("102", True, False), ("103", False, True)]
        resp, body = http.request(emu.url + "/__sandbox/status", "GET")
        assert json.loads(body)["counts"] == {"mailboxes": 1, "messages": 3, "calendars": 1, "events": 2}


def test_request_log(emu):
    emu.load_gmail([message(1), message(2)])
    emu.load_calendar([event(1)])
    creds = user_creds(emu)
    gmail(emu, creds).users().messages().list(userId="me", q="in:inbox", maxResults=5).execute()
    calendar(emu, creds).events().list(calendarId=REP, singleEvents=True).execute()
    token, listing, events = emu.request_log
    assert (token.api, token.kind, token.user, token.params) == ("token", "token", REP,
                                                                {"grant_type": "refresh_token"})
    assert (listing.api, listing.kind, listing.user, listing.status, listing.items_returned) == (
        "gmail", "messages.list", REP, 200, 2)
    assert listing.params == {"q": "in:inbox", "maxResults": "5", "alt": "json"}
    assert listing.path == "/gmail/v1/users/me/messages"
    assert (events.api, events.kind, events.items_returned) == ("calendar", "events.list", 1)
    emu.clear_log()
    assert emu.request_log == []


def test_wire_details_seen_without_a_client(emu):
    """What the clients rely on, checked on the raw wire."""
    http = httplib2.Http(ca_certs=str(emu.ca.ca_path))
    resp, body = http.request(emu.url + "/gmail/v1/users/me/profile", "GET")
    assert resp.status == 401 and resp["www-authenticate"].startswith("Bearer realm=")
    error = json.loads(body)["error"]
    assert (error["code"], error["status"], error["errors"][0]["reason"]) == (401, "UNAUTHENTICATED", "required")
    resp, body = http.request(emu.url + "/gmail/v1/users/me/profile", "GET", headers={"authorization": "Bearer x"})
    assert json.loads(body)["error"]["errors"][0] == {"message": "Invalid Credentials", "domain": "global",
                                                     "reason": "authError", "location": "Authorization",
                                                     "locationType": "header"}

    resp, body = http.request(emu.url + "/token", "POST", body="grant_type=refresh_token&client_id=nope",
                              headers={"content-type": "application/x-www-form-urlencoded"})
    assert resp.status == 401 and json.loads(body)["error"] == "invalid_client"

    token = json.loads(http.request(emu.url + "/token", "POST", headers={
        "content-type": "application/x-www-form-urlencoded"}, body="&".join(
            f"{k}={v}" for k, v in {**emu.register_oauth_client(REP), "grant_type": "refresh_token"}.items()
            if k != "scopes"))[1])
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3599
    batch = ("--XYZ\nContent-Type: application/http\nContent-ID: <abc + 1>\n\n"
             "GET /gmail/v1/users/me/profile HTTP/1.1\n\n--XYZ--\n")
    resp, body = http.request(emu.url + "/batch", "POST", body=batch, headers={
        "content-type": 'multipart/mixed; boundary="XYZ"', "authorization": "Bearer " + token["access_token"]})
    assert resp.status == 200 and resp["content-type"].startswith("multipart/mixed; boundary=")
    assert b"\r\nContent-ID: <response-abc + 1>\r\n\r\nHTTP/1.1 200 OK\r\n" in body
    assert b'\r\n\r\n{"emailAddress":"' + REP.encode() in body


def test_service_account_without_subject_has_no_mailbox(emu):
    key = emu.register_service_account()
    creds = service_account.Credentials.from_service_account_info(key, scopes=[GMAIL_RO])
    with pytest.raises(HttpError) as err:
        gmail(emu, creds).users().getProfile(userId="me").execute()
    assert err.value.status_code == 400 and err.value.error_details[0]["reason"] == "failedPrecondition"
    assert emu.request_log[0].user == key["client_email"]
