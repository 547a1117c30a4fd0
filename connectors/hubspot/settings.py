"""How to reach one HubSpot portal: the `sources.hubspot` block of dealsync.yaml."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from connectors.http import RetrySettings
from connectors.secrets import EnvVarName


class HubSpotSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: HttpUrl = HttpUrl("https://api.hubapi.com")
    # A private app's access token (pat-...), by environment variable.
    access_token_env: EnvVarName = "HUBSPOT_ACCESS_TOKEN"
    ca_bundle: Path | None = None
    start_date: datetime = datetime(2000, 1, 1, tzinfo=timezone.utc)
    # Search results lag writes by a few seconds to minutes: each incremental run re-reads this
    # much before its cursor, and the merge drops what it already has.
    lookback_minutes: float = Field(default=10.0, ge=0)
    # HubSpot allows ~100 calls / 10 s per private app, and 5 searches / s per account.
    requests_per_second: float = Field(default=9.0, gt=0)
    search_requests_per_second: float = Field(default=4.0, gt=0)
    timeout_seconds: float = Field(default=60.0, gt=0)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    # A new or removed association does not change either record's modified date, so every
    # record's associations are re-read this often (0: every run).
    association_sweep_hours: float = Field(default=24.0, ge=0)

    def secrets(self) -> dict[str, str]:
        """The environment variables this source reads: name -> what it holds."""
        return {self.access_token_env: "HubSpot private-app access token"}

    def endpoints(self) -> list[str]:
        return [str(self.host)]
