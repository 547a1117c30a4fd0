"""Mixed vendor faults: a sync under a seeded mix of every fault the emulators inject ends with
exactly the warehouse of a fault-free sync (permanent failures: tests/test_permanent_failures.py).

Faults come from the emulators over real HTTP (sandbox/faults.py); the vendor clients and the
connectors meet them as they would meet a real vendor's. Each test is deterministic for its seed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from jobs.config import load_config
from jobs.runner import run_job
from pipeline_model.warehouse import Warehouse
from sandbox.faults import KINDS, FaultPlan, request_key
from tests.conftest import running_sandbox, unthrottled_config
from tests.warehouse_digest import assert_same, digest

SEED = 11
# The logs of full re-reads: a fault-free sync has one per mailbox and calendar on its first run; an
# expired historyId or syncToken adds the re-read it caused, which is what those tables are for.
FULL_SYNC_LOGS = ("raw_google.gmail_full_syncs", "raw_google.calendar_full_syncs")


def _config(box, tmp_path: Path, name: str) -> Path:
    """The sandbox's config for warehouse `name`, with a short client timeout (a timeout fault holds
    its answer until the client gives up) and quick retries."""
    path = unthrottled_config(box, tmp_path / f"{name}.yaml", tmp_path / f"{name}.duckdb")
    config = yaml.safe_load(path.read_text())
    for source in config["sources"].values():
        source.update(timeout_seconds=3, retry={"attempts": 4, "backoff_seconds": 0.01})
    path.write_text(yaml.safe_dump(config))
    return path


def _warehouse(config: Path) -> Warehouse:
    return Warehouse(load_config(config).warehouse)


def _run(config: Path, instance) -> None:
    outcome = run_job(config, instance=instance)
    assert outcome.success, outcome.error


@pytest.mark.slow
def test_a_sync_under_a_seeded_mix_of_every_fault_equals_a_fault_free_sync(tmp_path, monkeypatch, instance):
    with running_sandbox(tmp_path, monkeypatch, crm="both", google=True) as box:
        clean, faulty = _config(box, tmp_path, "clean"), _config(box, tmp_path, "faulty")
        injected: dict[str, int] = {}
        for run in (1, 2):            # a first full sync, then an incremental one after a week
            _run(clean, instance)
            plan = box.inject_faults(FaultPlan(seed=SEED * 100 + run, rate=0.12))
            try:
                _run(faulty, instance)
            finally:
                box.inject_faults(None)
            for kind, n in plan.counts().items():
                injected[kind] = injected.get(kind, 0) + n
            if run == 1:
                box.advance(7)
        print(f"faults injected (seed {SEED}): {dict(sorted(injected.items()))}")
        assert set(injected) == set(KINDS), f"kinds never injected: {set(KINDS) - set(injected)}; {injected}"
        expected, got = digest(_warehouse(clean)), digest(_warehouse(faulty))
        assert_same(got, expected, ignore=FULL_SYNC_LOGS)
        re_reads = injected["expired_history"] + injected["expired_sync_token"]
        assert sum(got[t][0] for t in FULL_SYNC_LOGS) == sum(expected[t][0] for t in FULL_SYNC_LOGS) + re_reads


# ------------------------------------------------------------------ the plan itself (fast)

def _decisions(plan: FaultPlan, requests: list[str]) -> list[str | None]:
    return [plan.decide("hubspot", key, ("expired_token",)) for key in requests]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_fault_plan_is_a_pure_function_of_its_seed_and_caps_each_request(seed):
    requests = [f"GET /crm/v3/objects/deals?after={i % 40}" for i in range(400)]
    first = _decisions(FaultPlan(seed=seed, rate=0.3), requests)
    assert first == _decisions(FaultPlan(seed=seed, rate=0.3), requests)
    assert first != _decisions(FaultPlan(seed=seed + 100, rate=0.3), requests)
    per_request = {}
    for key, kind in zip(requests, first):
        per_request[key] = per_request.get(key, 0) + (kind is not None)
    assert max(per_request.values()) <= 2                 # every request gets through on its third try
    assert {"expired_token", "rate_limited"} <= set(first)
    # a 429 comes in a burst: a request refused first with 429 is refused again on its next try
    tries: dict[str, list] = {}
    for key, kind in zip(requests, first):
        tries.setdefault(key, []).append(kind)
    bursts = [t for t in tries.values() if [k for k in t if k][:1] == ["rate_limited"]]
    assert bursts and all(t[t.index("rate_limited") + 1:][:1] in (["rate_limited"], []) for t in bursts)


def test_a_request_is_known_again_without_what_changes_between_two_sends():
    batch = "multipart/mixed; boundary=\"===%s==\""
    body = ("--===%s==\r\nContent-ID: <%s+1>\r\n\r\nGET /gmail/v1/users/me/messages/1\r\n"
            "authorization: Bearer %s\r\nHost: 127.0.0.1:%s\r\n")
    first = request_key("POST", "/batch/gmail/v1", batch % "1", (body % ("1", "a", "ya29.one", "4001")).encode())
    again = request_key("POST", "/batch/gmail/v1", batch % "2", (body % ("2", "b", "ya29.two", "4002")).encode())
    assert first == again
    other = request_key("POST", "/batch/gmail/v1", batch % "2",
                        (body % ("2", "b", "x", "4002")).replace("1\r", "2\r").encode())
    assert other != first
    form = "application/x-www-form-urlencoded"
    assert request_key("POST", "/token", form, b"grant_type=jwt&assertion=signed-at-1") == \
        request_key("POST", "/token", form, b"assertion=signed-at-2&grant_type=jwt")
    assert request_key("GET", "/q?b=2&a=1", "", b"") == request_key("GET", "/q?a=1&b=2", "", b"")


def test_the_control_endpoint_sets_a_plan_that_faults_real_requests(tmp_path, monkeypatch):
    import requests

    with running_sandbox(tmp_path, monkeypatch) as box:
        session = requests.Session()
        session.trust_env = False            # REQUESTS_CA_BUNDLE would override `verify`
        session.verify = str(box.ca.ca_path)
        url = box.salesforce.url
        plan = {"seed": 1, "rate": 1.0, "kinds": ["server_error"], "retry_after": 0}
        assert session.post(f"{url}/__sandbox/faults", json=plan).status_code == 200
        statuses = [session.get(f"{url}/services/data").status_code for _ in range(3)]
        assert statuses == [503, 503, 200]
        assert session.get(f"{url}/__sandbox/faults").json()["injected"] == {"salesforce:server_error": 2}
        assert session.post(f"{url}/__sandbox/faults", json={}).json() == {}
        assert box.salesforce.faults is None
