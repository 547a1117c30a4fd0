"""Run the sandbox: a seeded synthetic org served by the local vendor emulators.

The sandbox's credentials are fixed and public (they guard nothing); they still
travel by environment variable, exactly as a real org's would, so the connector
code path is the same.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import json

from sandbox.faults import FaultPlan
from sandbox.google.emulator import GoogleEmulator
from sandbox.hubspot.emulator import HubSpotEmulator
from sandbox.org import SyntheticOrg
from sandbox.salesforce.emulator import SalesforceEmulator
from sandbox.tls import LocalCA
from sandbox.world import World

SALESFORCE_CREDENTIALS = {
    "DEALSYNC_SANDBOX_SF_USERNAME": "ops@sandbox.dealsync.example",
    "DEALSYNC_SANDBOX_SF_PASSWORD": "sandbox-password",
    "DEALSYNC_SANDBOX_SF_TOKEN": "SANDBOXTOKEN",
}
HUBSPOT_CREDENTIALS = {"DEALSYNC_SANDBOX_HUBSPOT_TOKEN": "pat-na1-sandbox-token"}
CREDENTIALS = {**SALESFORCE_CREDENTIALS, **HUBSPOT_CREDENTIALS}


class Sandbox:
    """The org in Salesforce, HubSpot or both (crm=...), each CRM behind its emulator; with
    currencies=("USD", "EUR", ...) its Salesforce org has several currencies (see sandbox.org)."""

    def __init__(self, seed: int = 42, size: str = "small", workdir: Path | str = ".dealsync/sandbox",
                 crm: str = "salesforce", google: bool = True, salesforce_port: int = 0, hubspot_port: int = 0,
                 google_port: int = 0, currencies: Sequence[str] | None = None):
        self.org = SyntheticOrg(seed=seed, size=size, crm=crm, currencies=currencies)
        self.workdir = Path(workdir).resolve()
        self.ca = LocalCA(self.workdir / "tls")
        self.salesforce = self.hubspot = None
        if crm in ("salesforce", "both"):
            self.salesforce = SalesforceEmulator(
                ca=self.ca, port=salesforce_port, db_path=self._store_path(size, "salesforce"),
                username=SALESFORCE_CREDENTIALS["DEALSYNC_SANDBOX_SF_USERNAME"],
                password=SALESFORCE_CREDENTIALS["DEALSYNC_SANDBOX_SF_PASSWORD"],
                security_token=SALESFORCE_CREDENTIALS["DEALSYNC_SANDBOX_SF_TOKEN"],
                currencies=self.org.currencies)
        if crm in ("hubspot", "both"):
            self.hubspot = HubSpotEmulator(ca=self.ca, port=hubspot_port, db_path=self._store_path(size, "hubspot"),
                                           access_token=HUBSPOT_CREDENTIALS["DEALSYNC_SANDBOX_HUBSPOT_TOKEN"])

        self.google = GoogleEmulator(ca=self.ca, port=google_port, db_path=self._store_path(size, "google")) \
            if google else None
        self._google_key = None   # registered once the emulator has its address (the key names it)
        self.world = World(self.emulators)   # one clock: an advance sent to any emulator moves all

    @property
    def emulators(self) -> list:
        return [e for e in (self.salesforce, self.hubspot, self.google) if e is not None]

    @property
    def now(self):
        return self.world.now

    def _store_path(self, size: str, vendor: str) -> Path | None:
        """Small orgs live in memory; larger ones in a fresh SQLite file, to bound memory."""
        if size == "small":
            return None
        self.workdir.mkdir(parents=True, exist_ok=True)
        path = self.workdir / f"{vendor}-{size}.sqlite"
        path.unlink(missing_ok=True)
        return path

    def start(self) -> "Sandbox":
        for emulator in self.emulators:
            emulator.attach_org(self.org)
            emulator.start()
        if self.google:
            self._google_key = self.google.register_service_account()
        return self

    def stop(self) -> None:
        for emulator in self.emulators:
            emulator.stop()

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def advance(self, days: float) -> dict[str, dict[str, int]]:
        """Move simulated time forward in every vendor at once (as POST /__sandbox/advance does)."""
        return self.world.advance(days)

    def inject_faults(self, plan: "FaultPlan | None") -> "FaultPlan | None":
        """Every emulator injects faults by this seeded plan from now on (None: no more faults);
        over HTTP, POST /__sandbox/faults to each emulator does the same (sandbox/faults.py)."""
        for emulator in self.emulators:
            emulator.faults = plan
        return plan

    def clock(self) -> dict[str, str]:
        """Where a reader (dealsync's metrics.as_of) finds the sandbox's clock: `now` in the
        JSON of this URL, whichever emulator a later advance is sent to."""
        return {"clock_url": f"{self.emulators[0].url}/__sandbox/status", "ca_bundle": str(self.ca.ca_path)}

    @property
    def credentials(self) -> dict[str, str]:
        """Every env var the sandbox's config names, with its value."""
        google = {"DEALSYNC_SANDBOX_GOOGLE_KEY": json.dumps(self._google_key)} if self.google else {}
        return {**CREDENTIALS, **google}

    def export_credentials(self, environ: dict | None = None) -> None:
        (os.environ if environ is None else environ).update(self.credentials)

    def config(self, warehouse_path: str = ".dealsync/warehouse.duckdb", follow_clock: bool = True) -> dict:
        """The warehouse, sources and metrics blocks of a dealsync.yaml pointing at this sandbox.
        metrics.as_of is the sandbox's clock (`clock()`), read by dealsync at each run, so a run
        after an advance measures on the new day; without follow_clock, the simulated now, fixed
        (a run then needs the sandbox for its sources only)."""
        sources = {}
        if self.salesforce:
            sources["salesforce"] = {
                "login_url": self.salesforce.url,
                "ca_bundle": str(self.ca.ca_path),
                "auth": {"method": "password",
                         "username_env": "DEALSYNC_SANDBOX_SF_USERNAME",
                         "password_env": "DEALSYNC_SANDBOX_SF_PASSWORD",
                         "security_token_env": "DEALSYNC_SANDBOX_SF_TOKEN"},
            }
        if self.hubspot:
            sources["hubspot"] = {"host": self.hubspot.url, "ca_bundle": str(self.ca.ca_path),
                                  "access_token_env": "DEALSYNC_SANDBOX_HUBSPOT_TOKEN"}
        if self.google:
            sources["google"] = {
                "gmail_url": self.google.url, "calendar_url": f"{self.google.url}/calendar/v3",
                "ca_bundle": str(self.ca.ca_path),
                "auth": {"method": "service_account", "service_account_key_env": "DEALSYNC_SANDBOX_GOOGLE_KEY"},
                "mailboxes": list(self.org.mailboxes()), "calendars": list(self.org.calendars()),
                "gmail_query": "", "calendar_start": self.org.start.isoformat()}
        # Metrics measure "now" on the sandbox's simulated clock, not the wall clock.
        as_of = self.clock() if follow_clock else self.now.isoformat()
        return {"warehouse": {"backend": "duckdb", "path": warehouse_path}, "sources": sources,
                "metrics": {"as_of": as_of}}
