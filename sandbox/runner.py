"""Run the sandbox: a seeded synthetic org served by the local vendor emulators.

The sandbox's credentials are fixed and public (they guard nothing); they still
travel by environment variable, exactly as a real org's would, so the connector
code path is the same.
"""

from __future__ import annotations

import os
from pathlib import Path

from sandbox.org import SyntheticOrg
from sandbox.salesforce.emulator import SalesforceEmulator
from sandbox.tls import LocalCA

SALESFORCE_CREDENTIALS = {
    "DEALSYNC_SANDBOX_SF_USERNAME": "ops@sandbox.dealsync.example",
    "DEALSYNC_SANDBOX_SF_PASSWORD": "sandbox-password",
    "DEALSYNC_SANDBOX_SF_TOKEN": "SANDBOXTOKEN",
}


class Sandbox:
    def __init__(self, seed: int = 42, size: str = "small", workdir: Path | str = ".dealsync/sandbox",
                 salesforce_port: int = 0):
        self.org = SyntheticOrg(seed=seed, size=size)
        self.workdir = Path(workdir).resolve()
        self.ca = LocalCA(self.workdir / "tls")
        self.salesforce = SalesforceEmulator(
            ca=self.ca, port=salesforce_port, db_path=self._store_path(size),
            username=SALESFORCE_CREDENTIALS["DEALSYNC_SANDBOX_SF_USERNAME"],
            password=SALESFORCE_CREDENTIALS["DEALSYNC_SANDBOX_SF_PASSWORD"],
            security_token=SALESFORCE_CREDENTIALS["DEALSYNC_SANDBOX_SF_TOKEN"],
        )

    def _store_path(self, size: str) -> Path | None:
        """Small orgs live in memory; larger ones in a fresh SQLite file, to bound memory."""
        if size == "small":
            return None
        self.workdir.mkdir(parents=True, exist_ok=True)
        path = self.workdir / f"salesforce-{size}.sqlite"
        path.unlink(missing_ok=True)
        return path

    def start(self) -> "Sandbox":
        self.salesforce.attach_org(self.org)
        self.salesforce.start()
        return self

    def stop(self) -> None:
        self.salesforce.stop()

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def advance(self, days: float) -> dict[str, dict[str, int]]:
        """Move simulated time forward in every vendor at once."""
        return {"salesforce": self.salesforce.advance(days)}

    def export_credentials(self, environ: dict | None = None) -> None:
        (os.environ if environ is None else environ).update(SALESFORCE_CREDENTIALS)

    def config(self, warehouse_path: str = ".dealsync/warehouse.duckdb") -> dict:
        """The warehouse and sources blocks of a dealsync.yaml pointing at this sandbox."""
        return {
            "warehouse": {"backend": "duckdb", "path": warehouse_path},
            "sources": {"salesforce": {
                "login_url": self.salesforce.url,
                "ca_bundle": str(self.ca.ca_path),
                "auth": {"method": "password",
                         "username_env": "DEALSYNC_SANDBOX_SF_USERNAME",
                         "password_env": "DEALSYNC_SANDBOX_SF_PASSWORD",
                         "security_token_env": "DEALSYNC_SANDBOX_SF_TOKEN"},
            }},
        }
