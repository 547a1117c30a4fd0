"""A permanent failure (revoked credentials, a deleted field, a missing permission) stops only
its stream, with a clear message, and leaves every other stream and every cursor intact; once
it is undone, the next run catches up to a fault-free sync. (Split from tests/test_faults.py so
the suite's two workers can run them side by side.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from dlt.common.versioned_state import decompress_state

from jobs.runner import run_job
from pipeline_model.warehouse import Warehouse
from pipeline_model.writer import writer_dir
from tests.conftest import running_sandbox
from tests.test_faults import _config, _run, _warehouse
from tests.warehouse_digest import assert_same, digest


def _working_copy(config: Path) -> Warehouse:
    """What a failed run landed: the writer's working copy (a failed run publishes nothing)."""
    published = _warehouse(config)
    return published.at(writer_dir(published.path) / "working.duckdb")


def _cursors(warehouse: Warehouse) -> dict[str, dict]:
    """vendor -> each resource's dlt state (cursors, historyIds, syncTokens), as committed."""
    out = {}
    for vendor in ("salesforce", "hubspot", "google"):
        [(state,)] = warehouse.fetch(f"select state from raw_{vendor}._dlt_pipeline_state "
                                     "order by created_at desc limit 1")
        out[vendor] = decompress_state(state)["sources"][vendor].get("resources", {})
    return out


def _raw_rows(outcome, vendor: str) -> int:
    return sum(n for asset, n in outcome.rows_by_asset.items() if asset.startswith(f"raw_{vendor}/"))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["deleted_field", "missing_permission", "revoked_credentials"])
def test_a_permanent_failure_stops_only_its_stream_and_leaves_every_cursor_intact(kind, tmp_path, monkeypatch,
                                                                                 instance):
    refuse, streams, vendor, reason = PERMANENT[kind]
    with running_sandbox(tmp_path, monkeypatch, crm="both", google=True) as box:
        clean, broken = _config(box, tmp_path, "clean"), _config(box, tmp_path, "broken")
        _run(clean, instance)
        _run(broken, instance)
        box.advance(7)                       # every stream has changes to read
        before, published = _cursors(_warehouse(broken)), digest(_warehouse(broken))

        refuse(box, True)
        failed = run_job(broken, instance=instance)
        assert not failed.success
        # A run with a refused stream republishes nothing: the model is not rebuilt without it.
        assert_same(digest(_warehouse(broken)), published)
        [(status,)] = _warehouse(broken).fetch("select status from dealsync_meta.runs where run_id = ?",
                                               [failed.run_id])
        assert status == "failed"
        [line] = [f for f in failed.failures if vendor in f]          # one line for the failing source
        for stream in streams:
            assert f"'{stream}'" in line and line.count(f"{vendor} stream") >= 1 and reason in line, line
        assert not any(f"raw_{vendor}/{s}" in failed.rows_by_asset for s in streams)
        others = [v for v in ("salesforce", "hubspot", "google") if v != vendor]
        assert all(_raw_rows(failed, v) > 0 for v in others), failed.rows_by_asset
        after = _cursors(_working_copy(broken))
        assert any(before[vendor].get(s) for s in streams)              # they have cursors to keep
        for stream in streams:               # the refused streams' cursors did not move ...
            assert after[vendor].get(stream) == before[vendor].get(stream), stream
        moved = [s for v in others for s in after[v] if after[v][s] != before[v].get(s)]
        assert moved, "the other streams' cursors should have advanced with their rows"

        refuse(box, False)                   # the permission is back: the next run catches up
        _run(clean, instance)
        _run(broken, instance)
        assert_same(digest(_warehouse(broken)), digest(_warehouse(clean)))


def _deleted_field(box, on: bool) -> None:
    box.salesforce.hide_field("Opportunity", "StageName", on)


def _missing_scope(box, on: bool) -> None:
    box.hubspot.revoke_scope("calls", on)


def _revoked_key(box, on: bool) -> None:
    box.google.revoke_service_accounts(on)


# kind -> (switch, streams it stops, vendor, words the message must hold)
PERMANENT = {
    "deleted_field": (_deleted_field, ["opportunities"], "salesforce", "has no field(s) StageName"),
    # archived_records reads the archived records of every object type, calls included
    "missing_permission": (_missing_scope, ["calls", "archived_records"], "hubspot", "MISSING_SCOPES"),
    "revoked_credentials": (_revoked_key, ["gmail_messages", "calendar_events"], "google", "invalid_grant"),
}
