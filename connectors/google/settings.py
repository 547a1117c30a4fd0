"""How to reach the reps' Gmail mailboxes and Google calendars: `sources.google` in dealsync.yaml."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from connectors.http import RetrySettings
from connectors.secrets import EnvVarName


# A mailbox or calendar id becomes a URL path segment and the subject of a delegated token: an
# address, checked here, so a stray slash, space, "?" or newline is a config error naming the
# entry instead of a request for another resource.
Address = Annotated[str, Field(pattern=r"^[A-Za-z0-9.!#$&'*+=^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$",
                               max_length=254)]


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
    refresh_token_envs: dict[Address, EnvVarName] = Field(default_factory=dict)
    token_uri: HttpUrl = HttpUrl("https://oauth2.googleapis.com/token")


class GoogleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gmail_url: HttpUrl = HttpUrl("https://gmail.googleapis.com")
    calendar_url: HttpUrl = HttpUrl("https://www.googleapis.com/calendar/v3")
    ca_bundle: Path | None = None
    auth: GoogleAuth = Field(default_factory=GoogleAuth)
    mailboxes: list[Address] = Field(default_factory=list)
    calendars: list[Address] = Field(default_factory=list)
    # What the first full read of a mailbox covers (Gmail search syntax). Sent as the `q`
    # parameter, which the client URL-encodes; control characters are refused, not sent.
    gmail_query: str = Field(default="newer_than:730d -in:chats", pattern=r"^[^\x00-\x1f\x7f]*$", max_length=2000)
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
