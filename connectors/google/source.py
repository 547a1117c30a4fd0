"""Gmail and Google Calendar pull sides as one dlt source.

gmail_messages   per mailbox: the first run lists the messages (gmail_query) and fetches
                 their headers in batches; later runs read users.history.list from the
                 stored historyId. A historyId too old for Gmail (404) triggers a full
                 re-read, recorded in gmail_full_syncs. Only headers needed for matching
                 are stored: never a body, never a snippet.
calendar_events  per calendar: a full read (recurring events expanded), then syncToken.
                 An invalid token (410) triggers a full re-read, recorded in
                 calendar_full_syncs. Cancelled events arrive as deletions.

The historyIds and syncTokens are dlt resource state, committed with the rows they
describe. After a full re-read, a row not seen again (synced_at older than the re-read)
no longer exists in the source; the model drops it, the raw layer keeps it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any, Callable, Iterator

import dlt
from googleapiclient.errors import HttpError

from connectors.google.client import GoogleUser, translate_errors
from connectors.google.settings import GoogleSettings
from connectors.progress import page_read
from connectors.rejections import rejected_text
from connectors.text import clean, clean_row

HEADERS = ("From", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To", "References")
BATCH = 50          # Gmail recommends at most 50 requests a batch
LIST_PAGE = 500
_MESSAGE_COLUMNS = {"internal_date": {"data_type": "timestamp"}, "sent_at": {"data_type": "timestamp"},
                    "synced_at": {"data_type": "timestamp"}, "deleted": {"data_type": "bool"},
                    "history_id": {"data_type": "bigint"}, "rejected_date": {"data_type": "text"}}
_EVENT_COLUMNS = {"start_at": {"data_type": "timestamp"}, "end_at": {"data_type": "timestamp"},
                  "updated_at": {"data_type": "timestamp"}, "synced_at": {"data_type": "timestamp"},
                  "deleted": {"data_type": "bool"}, "all_day": {"data_type": "bool"}}


@dlt.source(name="google", max_table_nesting=0)
def google_source(settings: GoogleSettings):
    users = {address: GoogleUser(settings, address) for address in {*settings.mailboxes, *settings.calendars}}
    synced_at = datetime.now(timezone.utc)
    if settings.mailboxes:
        yield _gmail(settings, users, synced_at)
    if settings.calendars:
        yield _calendar(settings, users, synced_at)


def _follow(stream: str, owners: list[str], state_key: str, full_sync_table: str, owner_column: str,
            synced_at: datetime, url: str, changes: Callable, full: Callable) -> Iterator[Any]:
    """Per mailbox or calendar: the changes since its stored cursor, or, on the first run and
    whenever Google no longer accepts the cursor (changes() returns None), a full read that is
    logged in `full_sync_table`. The new cursor goes into the resource state with the rows."""
    cursors = dlt.current.resource_state().setdefault(state_key, {})
    for owner in owners:
        with translate_errors(stream, owner, url):
            result = changes(owner, cursors[owner]) if cursors.get(owner) else None
            if result is None:
                result = full(owner)
                yield _full_sync_row(full_sync_table, {owner_column: owner, "synced_at": synced_at})
            rows, cursors[owner] = result
            yield rows


def _full_sync_row(table: str, row: dict) -> Any:
    """A row for the log of full re-reads: appended, with its own (no) key."""
    return dlt.mark.with_hints(row, dlt.mark.make_hints(table_name=table, write_disposition="append",
                                                        primary_key=(), columns={"synced_at": {"data_type": "timestamp"}}),
                               create_table_variant=True)


# ------------------------------------------------------------------ Gmail

def _gmail(settings: GoogleSettings, users: dict[str, GoogleUser], synced_at: datetime):
    @dlt.resource(name="gmail_messages", primary_key=["mailbox", "id"], write_disposition="merge",
                  columns=_MESSAGE_COLUMNS)
    def gmail_messages() -> Iterator[Any]:
        yield from _follow(
            "gmail_messages", settings.mailboxes, "history_ids", "gmail_full_syncs", "mailbox", synced_at,
            url=str(settings.gmail_url),
            changes=lambda mailbox, start: _gmail_changes(users[mailbox], start, synced_at),
            full=lambda mailbox: _gmail_full(users[mailbox], settings.gmail_query, synced_at))

    return gmail_messages


def _gmail_full(user: GoogleUser, query: str, synced_at: datetime) -> tuple[list[dict], str]:
    # The historyId is taken before listing, so whatever arrives during the read is in the next run.
    history_id = user.execute(user.gmail.users().getProfile(userId="me"))["historyId"]
    ids, token = [], None
    while True:
        page = user.execute(user.gmail.users().messages().list(userId="me", q=query or None, maxResults=LIST_PAGE,
                                                               pageToken=token))
        page_read("gmail_messages")
        ids += [m["id"] for m in page.get("messages", [])]
        token = page.get("nextPageToken")
        if not token:
            break
    return _fetch_headers(user, ids, synced_at), history_id


def _gmail_changes(user: GoogleUser, start: str, synced_at: datetime) -> tuple[list[dict], str] | None:
    """Messages added or deleted since `start`, or None when Gmail answers 404 (too old)."""
    added, deleted, token = [], set(), None
    try:
        while True:
            page = user.execute(user.gmail.users().history().list(
                userId="me", startHistoryId=start, historyTypes=["messageAdded", "messageDeleted"],
                maxResults=LIST_PAGE, pageToken=token))
            page_read("gmail_messages")
            for record in page.get("history", []):
                added += [m["message"]["id"] for m in record.get("messagesAdded", [])]
                deleted |= {m["message"]["id"] for m in record.get("messagesDeleted", [])}
            token = page.get("nextPageToken")
            if not token:
                break
    except HttpError as exc:
        if exc.status_code == 404:
            return None
        raise
    fresh = [i for i in dict.fromkeys(added) if i not in deleted]
    rows = _fetch_headers(user, fresh, synced_at)
    rows += [_deleted_message(user.user, i, synced_at) for i in sorted(deleted)]
    return rows, page["historyId"]


def _fetch_headers(user: GoogleUser, ids: list[str], synced_at: datetime) -> list[dict]:
    rows = []
    messages = user.gmail.users().messages()
    for start in range(0, len(ids), BATCH):
        chunk = ids[start:start + BATCH]
        requests = [messages.get(userId="me", id=i, format="metadata", metadataHeaders=list(HEADERS)) for i in chunk]
        replies = user.batch(requests)
        page_read("gmail_messages")
        for message_id, (message, error) in zip(chunk, replies):
            if error is not None and error.status_code == 404:   # deleted between listing and fetching
                rows.append(_deleted_message(user.user, message_id, synced_at))
            elif error is not None:
                raise error
            else:
                rows.append(_message_row(user.user, message, synced_at))
    return rows


def _message_row(mailbox: str, message: dict, synced_at: datetime) -> dict:
    headers = {h["name"].lower(): clean(h["value"]) for h in message.get("payload", {}).get("headers", [])}
    sent_at = _date(headers.get("date"))
    # A Date header is whatever the sender's software wrote: one that is no date is reported
    # (model.rejected_values), not silently left out.
    rejected = rejected_text(headers["date"]) if sent_at is None and headers.get("date") else None
    return {
        "mailbox": mailbox, "id": message["id"], "thread_id": message.get("threadId"),
        "label_ids": ",".join(message.get("labelIds", [])),
        "internal_date": datetime.fromtimestamp(int(message["internalDate"]) / 1000, tz=timezone.utc),
        "history_id": int(message["historyId"]),
        "from_address": _addresses(headers.get("from")), "to_addresses": _addresses(headers.get("to")),
        "cc_addresses": _addresses(headers.get("cc")), "subject": headers.get("subject"),
        "sent_at": sent_at, "rejected_date": rejected, "message_id": headers.get("message-id"),
        "in_reply_to": headers.get("in-reply-to"), "references": headers.get("references"),
        "deleted": False, "synced_at": synced_at,
    }


def _deleted_message(mailbox: str, message_id: str, synced_at: datetime) -> dict:
    return {"mailbox": mailbox, "id": message_id, "deleted": True, "synced_at": synced_at}


def _addresses(value: str | None) -> str | None:
    """Lower-cased addresses, comma-separated, display names dropped."""
    if not value:
        return None
    return ",".join(addr.lower() for _, addr in getaddresses([value]) if addr) or None


def _date(value: str | None) -> datetime | None:
    try:
        return parsedate_to_datetime(value).astimezone(timezone.utc) if value else None
    except (TypeError, ValueError, OverflowError):
        return None


# ------------------------------------------------------------------ Calendar

def _calendar(settings: GoogleSettings, users: dict[str, GoogleUser], synced_at: datetime):
    @dlt.resource(name="calendar_events", primary_key=["calendar_id", "id"], write_disposition="merge",
                  columns=_EVENT_COLUMNS)
    def calendar_events() -> Iterator[Any]:
        yield from _follow(
            "calendar_events", settings.calendars, "sync_tokens", "calendar_full_syncs", "calendar_id", synced_at,
            url=str(settings.calendar_url),
            changes=lambda cal, token: _events(users[cal], cal, {"syncToken": token}, synced_at),
            full=lambda cal: _events(users[cal], cal, {"timeMin": _rfc3339(settings.calendar_start)}, synced_at))

    return calendar_events


def _events(user: GoogleUser, calendar_id: str, params: dict, synced_at: datetime) -> tuple[list[dict], str] | None:
    rows, page_token = [], None
    events = user.calendar.events()
    try:
        while True:
            page = user.execute(events.list(calendarId=calendar_id, singleEvents=True, showDeleted=True,
                                            maxResults=2500, pageToken=page_token, **params))
            page_read("calendar_events")
            rows += [_event_row(calendar_id, e, synced_at) for e in page.get("items", [])]
            page_token = page.get("nextPageToken")
            if not page_token:
                return rows, page["nextSyncToken"]
    except HttpError as exc:
        if exc.status_code == 410 and "syncToken" in params:
            return None
        raise


def _event_row(calendar_id: str, event: dict, synced_at: datetime) -> dict:
    start, end = event.get("start", {}), event.get("end", {})
    attendees = event.get("attendees", [])
    return clean_row({
        "calendar_id": calendar_id, "id": event["id"], "status": event.get("status"),
        "deleted": event.get("status") == "cancelled", "summary": event.get("summary"),
        "start_at": _when(start), "end_at": _when(end), "all_day": "date" in start,
        "recurring_event_id": event.get("recurringEventId"), "ical_uid": event.get("iCalUID"),
        "organizer_email": (event.get("organizer") or {}).get("email", "").lower() or None,
        "attendee_emails": ",".join(a["email"].lower() for a in attendees if a.get("email")) or None,
        "attendee_responses": ",".join(a.get("responseStatus", "") for a in attendees if a.get("email")) or None,
        "updated_at": _when({"dateTime": event["updated"]}) if event.get("updated") else None,
        "synced_at": synced_at,
    })


def _when(value: dict) -> datetime | None:
    if "dateTime" in value:
        return datetime.fromisoformat(value["dateTime"].replace("Z", "+00:00")).astimezone(timezone.utc)
    if "date" in value:
        return datetime.fromisoformat(value["date"]).replace(tzinfo=timezone.utc)
    return None


def _rfc3339(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
