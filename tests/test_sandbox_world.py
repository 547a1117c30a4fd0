"""A running sandbox is one world: one advance, sent to any emulator, moves every vendor."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
import yaml
from simple_salesforce import Salesforce

from sandbox.runner import Sandbox


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    with Sandbox(seed=7, crm="both", workdir=tmp_path_factory.mktemp("sandbox")) as sandbox:
        yield sandbox


def _http(box: Sandbox) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(box.ca.ca_path)
    return session


def test_an_advance_sent_to_one_emulator_moves_every_emulator(box):
    before = box.now
    reply = _http(box).post(f"{box.google.url}/__sandbox/advance", json={"days": 7})
    assert reply.status_code == 200
    body, later = reply.json(), before + timedelta(days=7)
    assert {e.name: e.now for e in box.emulators} == {"salesforce": later, "hubspot": later, "google": later}
    assert body["now"] == later.isoformat() and body["counts"]["messages"] > 0
    assert set(body["emulators"]) == {"salesforce", "hubspot", "google"}
    for emulator in box.emulators:
        said = body["emulators"][emulator.name]
        assert said["url"] == emulator.url and said["now"] == later.isoformat()
        assert sum(said["counts"].values()) > 0, emulator.name     # every vendor changed, not only Google
    # ... and the vendor the request never reached serves what changed in its window.
    sf = Salesforce(instance_url=box.salesforce.url, session_id=box.salesforce.issue_session(), session=_http(box))
    changed = sf.query_all(f"SELECT Id FROM Opportunity WHERE SystemModstamp > {before.strftime('%Y-%m-%dT%H:%M:%SZ')}")
    assert changed["totalSize"] == body["emulators"]["salesforce"]["counts"]["Opportunity"] > 0


def test_the_clock_a_config_can_follow_reads_the_shared_now(box):
    clock = box.config()["metrics"]["as_of"]          # what `dealsync sandbox --write-config` writes
    assert clock == box.clock()
    session = _http(box)
    session.verify = clock["ca_bundle"]
    before = session.get(clock["clock_url"]).json()["now"]
    session.post(f"{box.hubspot.url}/__sandbox/advance", json={"days": 2}).raise_for_status()
    status = session.get(clock["clock_url"]).json()
    assert status["now"] == (box.now).isoformat() != before
    assert {name: e["now"] for name, e in status["emulators"].items()} == \
        {e.name: status["now"] for e in box.emulators}
    assert box.config(follow_clock=False)["metrics"]["as_of"] == status["now"]    # the same instant, fixed


def test_dealsync_reads_the_clock_at_each_call_and_names_the_field_when_it_cannot(tmp_path):
    from jobs.config import load_config
    from pipeline_model.metric_settings import ClockSource, ClockUnreadable

    with Sandbox(seed=7, crm="salesforce", google=False, workdir=tmp_path / "sandbox") as box:
        config = box.config(str(tmp_path / "warehouse.duckdb"))
        config["metrics"]["as_of"]["ca_bundle"] = "sandbox/tls/ca.pem"      # relative to the config file
        path = tmp_path / "dealsync.yaml"
        path.write_text(yaml.safe_dump(config))
        metrics = load_config(path).metrics
        assert isinstance(metrics.as_of, ClockSource) and metrics.as_of.ca_bundle == box.ca.ca_path
        assert metrics.row()[0] == box.now
        box.advance(3)
        assert metrics.reference_time() == box.now                 # read again, not kept from load
    with pytest.raises(ClockUnreadable) as stopped:
        metrics.reference_time()
    message = str(stopped.value)
    assert "metrics.as_of.clock_url" in message and metrics.as_of.clock_url in message
    assert "connection refused" in message and "\n" not in message
