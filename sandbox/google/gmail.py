"""Gmail v1 under /gmail/v1/users/{userId}/: profile, labels, messages.list/get, history.list.

Wire shapes per the reference §C: ids and history ids as strings, internalDate in epoch ms
as a string, empty repeated fields omitted (`messages`, `history`), newest-first listing,
404 for unknown or deleted messages and for a startHistoryId older than the retention window.
"""

from __future__ import annotations

import html
import json
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP

from sandbox.google.auth import GMAIL_FULL, GMAIL_METADATA, GMAIL_READ, require_scope
from sandbox.google.gmail_query import compile_query, label_clause
from sandbox.google.wire import (ApiError, Call, b64url, bad_request, bounded_int, decode_token, encode_token, first,
                                 flag, json_response, not_found)

FORMATS = ("minimal", "metadata", "full", "raw")
HISTORY_TYPES = {"messageAdded": "added", "messageDeleted": "deleted", "labelAdded": None, "labelRemoved": None}
SYSTEM_LABELS = ("CHAT", "SENT", "INBOX", "IMPORTANT", "TRASH", "DRAFT", "SPAM", "CATEGORY_FORUMS",
                 "CATEGORY_UPDATES", "CATEGORY_PERSONAL", "CATEGORY_PROMOTIONS", "CATEGORY_SOCIAL", "STARRED",
                 "UNREAD")
_BOUNDARY = "000000000000sandbox0boundary"


class GmailApi:
    def __init__(self, emulator):
        self.emu = emulator
        self.store = emulator.store

    def handle(self, call: Call):
        seg = call.segments
        if len(seg) < 3 or seg[0] != "users":
            raise not_found()
        mailbox = self._mailbox(call, seg[1])
        route = (seg[2], len(seg))
        if call.method != "GET":
            raise ApiError(405, "httpMethodNotAllowed", f"Method {call.method} is not supported by the sandbox")
        if route == ("profile", 3):
            return self.profile(call, mailbox)
        if route == ("labels", 3):
            return self.labels(call)
        if route == ("messages", 3):
            return self.list_messages(call, mailbox)
        if route == ("messages", 4):
            return self.get_message(call, mailbox, seg[3])
        if route == ("history", 3):
            return self.history(call, mailbox)
        raise not_found()

    def _mailbox(self, call: Call, user_id: str) -> str:
        """`me` or the token's own address; anyone else's mailbox is refused, as Gmail refuses
        a token minted for another user (403 "Delegation denied")."""
        user = call.principal.user
        if user_id != "me" and user_id.lower() != user.lower():
            raise ApiError(403, "forbidden", f"Delegation denied for {user}")
        require_scope(call.principal, GMAIL_READ)
        mailbox = self.store.mailbox(user)
        if mailbox is None:          # e.g. a service account's own token, or a user without Gmail
            raise ApiError(400, "failedPrecondition", "Precondition check failed.")
        return mailbox

    def _metadata_only(self, call: Call) -> bool:
        scopes = call.principal.scopes
        return GMAIL_METADATA in scopes and scopes.isdisjoint(GMAIL_FULL)

    # ----------------------------------------------------------------- resources

    def profile(self, call: Call, mailbox: str):
        messages, threads = self.store.profile(mailbox)
        call.entry.items_returned = 1
        return json_response(200, {"emailAddress": mailbox, "messagesTotal": messages, "threadsTotal": threads,
                                   "historyId": str(self.store.current_history(mailbox))})

    def labels(self, call: Call):
        labels = [{"id": name, "name": name, "type": "system"} for name in SYSTEM_LABELS]
        call.entry.items_returned = len(labels)
        return json_response(200, {"labels": labels})

    def list_messages(self, call: Call, mailbox: str):
        p = call.params
        if first(p, "q") and self._metadata_only(call):
            raise ApiError(403, "forbidden", "Metadata scope does not support 'q' parameter")
        query = compile_query(first(p, "q") or "", call.now_ms)
        where, args = ([query.where] if query.where else []), list(query.params)
        for label in p.get("labelIds", []):
            clause, clause_args = label_clause(label)
            where.append(clause)
            args += clause_args
        if not (flag(p, "includeSpamTrash") or query.spam_trash or set(p.get("labelIds", [])) & {"SPAM", "TRASH"}):
            where.append("labels NOT LIKE '% SPAM %' AND labels NOT LIKE '% TRASH %'")
        sql = " AND ".join(f"({w})" for w in where)
        limit = bounded_int(p, "maxResults", 100, 500)
        after = _message_cursor(first(p, "pageToken"))
        rows = self.store.list_messages(mailbox, sql, args, after, limit + 1)
        payload = {}
        if rows[:limit]:
            payload["messages"] = [{"id": r["id"], "threadId": r["thread_id"]} for r in rows[:limit]]
        if len(rows) > limit:
            last = rows[limit - 1]
            payload["nextPageToken"] = encode_token({"d": last["internal_ms"], "i": last["id"]})
        payload["resultSizeEstimate"] = self.store.count_messages(mailbox, sql, args)
        call.entry.items_returned = min(len(rows), limit)
        return json_response(200, payload)

    def get_message(self, call: Call, mailbox: str, message_id: str):
        fmt = (first(call.params, "format") or "full").lower()
        if fmt not in FORMATS:
            raise bad_request(f"Invalid value for format: {fmt}")
        if fmt in ("full", "raw") and self._metadata_only(call):
            raise ApiError(403, "forbidden", f"Metadata scope doesn't allow format {fmt.upper()}")
        row = self.store.message(mailbox, message_id)
        if row is None:
            raise not_found()
        call.entry.items_returned = 1
        return json_response(200, render_message(row, fmt, call.params.get("metadataHeaders", [])))

    def history(self, call: Call, mailbox: str):
        p = call.params
        start = _history_id(first(p, "startHistoryId"))
        cutoff = call.now_ms - int(self.emu.history_retention_days * 86_400_000)
        if start < self.store.history_floor(mailbox, cutoff):
            raise not_found()
        wanted = _history_kinds(p.get("historyTypes", []))
        label = first(p, "labelId")
        limit = bounded_int(p, "maxResults", 100, 500)
        after = _history_cursor(first(p, "pageToken"), start)
        records = []
        for record in _history_records(self.store.history_events(mailbox, after), wanted, label):
            records.append(record)
            if len(records) > limit:
                break
        payload = {}
        if records[:limit]:
            payload["history"] = records[:limit]
        if len(records) > limit:
            payload["nextPageToken"] = encode_token({"h": int(records[limit - 1]["id"])})
        payload["historyId"] = str(self.store.current_history(mailbox))
        call.entry.items_returned = min(len(records), limit)
        return json_response(200, payload)


# --------------------------------------------------------------------------- rendering

def render_message(row, fmt: str, wanted_headers: list[str]) -> dict:
    headers = json.loads(row["headers"])
    message = {"id": row["id"], "threadId": row["thread_id"], "labelIds": json.loads(row["label_ids"]),
               "snippet": row["snippet"]}
    if fmt == "metadata":
        wanted = {h.lower() for h in wanted_headers}
        shown = [h for h in _top_headers(headers) if not wanted or h["name"].lower() in wanted]
        message["payload"] = {"partId": "", "mimeType": "multipart/alternative", "filename": "", "headers": shown}
    elif fmt == "full":
        message["payload"] = _full_payload(headers, row["body"])
    message.update(sizeEstimate=row["size"], historyId=str(row["history_id"]), internalDate=str(row["internal_ms"]))
    if fmt == "raw":
        message["raw"] = b64url(_rfc822(headers, row["body"]))
    return message


def _top_headers(headers: list[dict]) -> list[dict]:
    return [*headers, {"name": "MIME-Version", "value": "1.0"},
            {"name": "Content-Type", "value": f'multipart/alternative; boundary="{_BOUNDARY}"'}]


def _full_payload(headers: list[dict], body: str) -> dict:
    """A real mail client's shape: the text sits in parts, never in the top-level body."""
    html_body = '<div dir="ltr">' + html.escape(body).replace("\n", "<br>") + "</div>"
    return {"partId": "", "mimeType": "multipart/alternative", "filename": "", "headers": _top_headers(headers),
            "body": {"size": 0},
            "parts": [_part("0", "text/plain", body), _part("1", "text/html", html_body)]}


def _part(part_id: str, mime_type: str, text: str) -> dict:
    data = text.encode()
    return {"partId": part_id, "mimeType": mime_type, "filename": "",
            "headers": [{"name": "Content-Type", "value": f'{mime_type}; charset="UTF-8"'}],
            "body": {"size": len(data), "data": b64url(data)}}


def _rfc822(headers: list[dict], body: str) -> bytes:
    mime = MIMEMultipart("alternative", boundary=_BOUNDARY)
    for h in headers:
        mime[h["name"]] = h["value"]
    mime.attach(MIMEText(body, "plain", "utf-8"))
    mime.attach(MIMEText('<div dir="ltr">' + html.escape(body) + "</div>", "html", "utf-8"))
    return mime.as_bytes(policy=SMTP)


# --------------------------------------------------------------------------- history

def _history_records(events, wanted: set[str], label: str | None):
    """Group added/deleted events by history id into history records, ascending."""
    current, record = None, None
    for event in events:
        if event["hid"] != current:
            if record and _keep(record):
                yield record
            current, record = event["hid"], {"id": str(event["hid"]), "messages": []}
        if event["kind"] not in wanted or (label and f" {label} " not in event["labels"]):
            continue
        ref = {"id": event["id"], "threadId": event["thread_id"]}
        record["messages"].append(ref)
        key = "messagesAdded" if event["kind"] == "added" else "messagesDeleted"
        record.setdefault(key, []).append({"message": {**ref, "labelIds": json.loads(event["label_ids"])}})
    if record and _keep(record):
        yield record


def _keep(record: dict) -> bool:
    return bool(record["messages"])


def _history_kinds(types: list[str]) -> set[str]:
    if not types:
        return {"added", "deleted"}
    unknown = [t for t in types if t not in HISTORY_TYPES]
    if unknown:
        raise bad_request(f"Invalid value for historyTypes: {unknown[0]}")
    return {HISTORY_TYPES[t] for t in types if HISTORY_TYPES[t]}


def _history_id(raw: str | None) -> int:
    if not raw:
        raise bad_request("Missing required parameter: startHistoryId")
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"Invalid value at 'start_history_id' ({raw})") from None


def _history_cursor(token: str | None, start: int) -> int:
    if not token:
        return start
    cursor = decode_token(token)
    if not cursor or not isinstance(cursor.get("h"), int):
        raise bad_request("Invalid pageToken")
    return max(start, cursor["h"])


def _message_cursor(token: str | None) -> tuple[int, str] | None:
    if not token:
        return None
    cursor = decode_token(token)
    if not cursor or not isinstance(cursor.get("d"), int) or not isinstance(cursor.get("i"), str):
        raise bad_request("Invalid pageToken")
    return cursor["d"], cursor["i"]
