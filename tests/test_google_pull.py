"""Gmail and Calendar through the real google-api-python-client against the emulator:
full read, then history.list / syncToken; the 404 and 410 fallbacks; nothing but headers kept."""

from __future__ import annotations

import pytest
import yaml

from connectors.google.client import SCOPES
from jobs.config import load_config
from jobs.runner import run_job
from pipeline_model.warehouse import Warehouse
from tests.conftest import running_sandbox, write_config


@pytest.fixture
def google_box(tmp_path, monkeypatch):
    with running_sandbox(tmp_path, monkeypatch, seed=5, google=True) as box:
        yield box


@pytest.fixture
def google_config(google_box, tmp_path):
    return write_config(google_box, tmp_path, only="google")


def _sync(config, instance):
    outcome = run_job(config, job="sync", instance=instance)
    assert outcome.success, outcome.error
    return outcome, Warehouse(load_config(config).warehouse)


def _live_messages(warehouse) -> set[tuple[str, str]]:
    """Raw rows still in Gmail: not deleted, and seen by the mailbox's latest full read or after
    (a full read cannot report deletions, so a row it did not see again is gone)."""
    return set(warehouse.fetch(
        "select m.mailbox, m.id from raw_google.gmail_messages m "
        "join (select mailbox, max(synced_at) as full_sync from raw_google.gmail_full_syncs group by mailbox) f "
        "  on f.mailbox = m.mailbox "
        "where not m.deleted and m.synced_at >= f.full_sync"))


def _true_messages(box) -> set[tuple[str, str]]:
    return {(mailbox, m["id"]) for mailbox, m in box.org.gmail_messages(box.now) if m["deletedAt"] is None}


def _true_single_events(box) -> dict[tuple[str, str], dict]:
    return {(cal, e["id"]): e for cal, e in box.org.calendar_events(box.now) if not e.get("recurrence")}


def _assert_events_match(box, warehouse):
    rows = {(r["calendar_id"], r["id"]): r for r in warehouse.fetch_dicts("select * from raw_google.calendar_events")}
    for key, event in _true_single_events(box).items():
        if event["status"] == "cancelled":
            assert key not in rows or rows[key]["deleted"], key
        else:
            assert not rows[key]["deleted"] and rows[key]["summary"] == event["summary"], key
    recurring = {e["id"] for _, e in box.org.calendar_events(box.now) if e.get("recurrence")}
    instances = {r["recurring_event_id"] for r in rows.values() if r["recurring_event_id"]}
    assert recurring and recurring <= instances


@pytest.mark.slow
def test_full_then_incremental_through_history_and_sync_tokens(google_box, google_config, instance):
    _, warehouse = _sync(google_config, instance)
    assert _live_messages(warehouse) == _true_messages(google_box)
    _assert_events_match(google_box, warehouse)

    before = google_box.now
    google_box.advance(10)
    google_box.google.clear_log()
    _, warehouse = _sync(google_config, instance)
    assert _live_messages(warehouse) == _true_messages(google_box)
    _assert_events_match(google_box, warehouse)
    kinds = [r.kind for r in google_box.google.request_log]
    assert "messages.list" not in kinds and kinds.count("history.list") >= len(google_box.org.mailboxes())
    event_lists = [r for r in google_box.google.request_log if r.kind == "events.list"]
    assert event_lists and all("syncToken" in r.params for r in event_lists)
    # the syncToken reads returned exactly the events that changed: single events one item each,
    # a changed recurring series all of its instances
    changed = [(cal, e) for cal, e in google_box.org.calendar_changes(before, google_box.now)]
    singles = sum(1 for _, e in changed if not e.get("recurrence"))
    series = {(cal, e["id"]) for cal, e in changed if e.get("recurrence")}
    instances = warehouse.fetch("select calendar_id, recurring_event_id from raw_google.calendar_events "
                                "where recurring_event_id is not null")
    expected = singles + sum(1 for key in instances if key in series)
    assert sum(r.items_returned for r in event_lists) == expected > 0
    fetched = sum(1 for r in google_box.google.request_log if r.kind == "messages.get")
    added = sum(1 for _, m in google_box.org.gmail_changes(before, google_box.now) if m["deletedAt"] is None)
    assert fetched == added > 0


@pytest.mark.slow
def test_expired_history_and_sync_tokens_fall_back_to_a_full_read(google_box, google_config, instance):
    _sync(google_config, instance)
    google_box.advance(3)
    google_box.google.expire_history()
    google_box.google.invalidate_sync_tokens()
    google_box.google.clear_log()
    _, warehouse = _sync(google_config, instance)
    statuses = [(r.kind, r.status) for r in google_box.google.request_log]
    assert ("history.list", 404) in statuses and ("events.list", 410) in statuses
    assert _live_messages(warehouse) == _true_messages(google_box)
    _assert_events_match(google_box, warehouse)
    # no duplicates from reading everything twice
    assert warehouse.fetch("select count(*) from (select mailbox, id from raw_google.gmail_messages "
                           "group by mailbox, id having count(*) > 1) d")[0][0] == 0
    assert warehouse.fetch("select count(distinct synced_at) from raw_google.gmail_full_syncs")[0][0] == 2


@pytest.mark.slow
def test_raw_gmail_holds_headers_only(google_box, google_config, instance):
    _, warehouse = _sync(google_config, instance)
    columns = {c for (c,) in warehouse.fetch("select column_name from information_schema.columns "
                                             "where table_schema = 'raw_google' and table_name = 'gmail_messages'")}
    assert not columns & {"body", "snippet", "payload", "raw"}
    bodies = [m["body"][:40] for _, m in google_box.org.gmail_messages(google_box.now)][:200]
    texts = [v for row in warehouse.fetch("select subject, from_address, to_addresses from raw_google.gmail_messages")
             for v in row if v]
    assert not any(body in text for body in bodies for text in texts if len(body) > 20)
    key = google_box.credentials["DEALSYNC_SANDBOX_GOOGLE_KEY"]
    private_key = yaml.safe_load(key)["private_key"].splitlines()[1]
    assert not any(private_key in text for text in texts)


def _fast_retries_few_users(config_path, users: int = 3) -> set[str]:
    """Quick retries, and only a few mailboxes/calendars: these tests are about the mechanism."""
    config = yaml.safe_load(config_path.read_text())
    google = config["sources"]["google"]
    google["retry"] = {"attempts": 4, "backoff_seconds": 0.01}
    google["mailboxes"], google["calendars"] = google["mailboxes"][:users], google["calendars"][:users]
    config_path.write_text(yaml.safe_dump(config))
    return set(google["mailboxes"])


def test_429_bursts_on_calls_and_batch_parts_are_absorbed(google_box, google_config, instance):
    users = _fast_retries_few_users(google_config)
    google = google_box.google
    google.fail_next(429, "rateLimitExceeded", times=2, retry_after=0, path_contains="/profile")
    google.fail_next(429, "rateLimitExceeded", times=3, retry_after=0, path_contains="format=metadata")
    google.fail_next(403, "userRateLimitExceeded", times=1, path_contains="/events")
    _, warehouse = _sync(google_config, instance)
    assert sum(1 for r in google.request_log if r.status in (403, 429)) == 6
    assert _live_messages(warehouse) == {m for m in _true_messages(google_box) if m[0] in users}


def test_a_token_expiring_mid_sync_is_refreshed(google_box, google_config, instance):
    users = _fast_retries_few_users(google_config)
    _sync(google_config, instance)
    google_box.advance(4)
    google_box.google.clear_log()
    # The access token "expires" mid-run: the second mailbox's history call is refused with 401.
    google_box.google.fail_next(401, "authError", times=1, path_contains="/history")
    _, warehouse = _sync(google_config, instance)
    log = google_box.google.request_log
    assert [r.status for r in log if r.kind == "history.list"].count(401) == 1
    assert sum(1 for r in log if r.kind == "token") == len(users) + 1   # one refresh more than users
    assert _live_messages(warehouse) == {m for m in _true_messages(google_box) if m[0] in users}


def test_oauth_user_tokens_work_like_the_service_account(google_box, google_config, instance, monkeypatch):
    config = yaml.safe_load(google_config.read_text())
    google = config["sources"]["google"]
    mailbox = google["mailboxes"][0]
    client = google_box.google.register_oauth_client(mailbox, scopes=SCOPES)   # the rep authorised dealsync once
    for name, key in (("REP_REFRESH_TOKEN", "refresh_token"), ("GOOGLE_CLIENT_ID", "client_id"),
                      ("GOOGLE_CLIENT_SECRET", "client_secret")):
        monkeypatch.setenv(name, client[key])
    google.update(mailboxes=[mailbox], calendars=[mailbox],
                  auth={"method": "oauth_user", "refresh_token_envs": {mailbox: "REP_REFRESH_TOKEN"},
                        "token_uri": client["token_uri"]})
    google_config.write_text(yaml.safe_dump(config))
    _, warehouse = _sync(google_config, instance)
    assert _live_messages(warehouse) == {m for m in _true_messages(google_box) if m[0] == mailbox}
    assert client["refresh_token"] not in str(warehouse.fetch("select * from raw_google.gmail_messages limit 50"))
