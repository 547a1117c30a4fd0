"""How to reach the reps' Gmail mailboxes and Google calendars: `sources.google` in dealsync.yaml."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from connectors.http import RetrySettings
from connectors.secrets import EnvVarName


class GoogleAuth(BaseModel):
    """service_account: one key with domain-wide delegation reads every listed mailbox/calendar.
    oauth_user: each rep authorised dealsync once; their refresh tokens are in env vars."""

    model_config = ConfigDict(extra="forbid")
    method: Literal["service_account", "oauth_user"] = "service_account"
    # The service account's JSON key itself (not a path), by environment variable.
    service_account_key_env: EnvVarName = "GOOGLE_SERVICE_ACCOUNT_KEY"
    client_id_env: EnvVarName = "GOOGLE_CLIENT_ID"
    client_secret_env: EnvVarName = "GOOGLE_CLIENT_SECRET"
    # mailbox address -> the env var holding that user's refresh token
    refresh_token_envs: dict[str, EnvVarName] = Field(default_factory=dict)
    token_uri: HttpUrl = HttpUrl("https://oauth2.googleapis.com/token")


class GoogleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gmail_url: HttpUrl = HttpUrl("https://gmail.googleapis.com")
    calendar_url: HttpUrl = HttpUrl("https://www.googleapis.com/calendar/v3")
    ca_bundle: Path | None = None
    auth: GoogleAuth = Field(default_factory=GoogleAuth)
    mailboxes: list[str] = Field(default_factory=list)
    calendars: list[str] = Field(default_factory=list)
    # What the first full read of a mailbox covers (Gmail search syntax).
    gmail_query: str = "newer_than:730d -in:chats"
    calendar_start: datetime = datetime(2000, 1, 1, tzinfo=timezone.utc)
    # Per mailbox owner: Gmail allows 250 quota units a second per user (a message get costs 5).
    requests_per_second: float = Field(default=10.0, gt=0)
    timeout_seconds: float = Field(default=60.0, gt=0)
    retry: RetrySettings = Field(default_factory=RetrySettings)

    def secrets(self) -> dict[str, str]:
        """The environment variables this source reads: name -> what it holds."""
        auth = self.auth
        if auth.method == "service_account":
            return {auth.service_account_key_env: "Google service-account key"}
        return {auth.client_id_env: "Google OAuth client id", auth.client_secret_env: "Google OAuth client secret",
                **{env: f"Google refresh token of {user}" for user, env in auth.refresh_token_envs.items()}}

    def endpoints(self) -> list[str]:
        return [str(url) for url, wanted in ((self.gmail_url, self.mailboxes), (self.calendar_url, self.calendars))
                if wanted]
