"""How to reach one Salesforce org: the `sources.salesforce` block of dealsync.yaml."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from connectors.http import RetrySettings
from connectors.secrets import EnvVarName


class SalesforceAuth(BaseModel):
    """How dealsync logs in. Each *_env setting names the environment variable holding the value.

    password: username + password + security token (SOAP login); re-logs in when a session expires.
    session:  an existing session id or OAuth access token; dealsync cannot renew it.
    """

    model_config = ConfigDict(extra="forbid")
    method: Literal["password", "session"] = "password"
    username_env: EnvVarName = "SALESFORCE_USERNAME"
    password_env: EnvVarName = "SALESFORCE_PASSWORD"
    security_token_env: EnvVarName = "SALESFORCE_SECURITY_TOKEN"
    session_id_env: EnvVarName = "SALESFORCE_SESSION_ID"


class SalesforceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Where SOAP login goes. A real org uses login.salesforce.com (test.salesforce.com
    # for a sandbox org, or its My Domain); the local emulator gives its own address.
    login_url: HttpUrl = HttpUrl("https://login.salesforce.com")
    # Needed for session auth only; password auth learns it from the login reply.
    instance_url: HttpUrl | None = None
    api_version: str = Field(default="59.0", pattern=r"^\d{2}\.\d$")
    auth: SalesforceAuth = Field(default_factory=SalesforceAuth)
    # A CA bundle to trust instead of the system store (the sandbox's throw-away CA).
    ca_bundle: Path | None = None
    # The first sync reads records modified at or after this moment.
    start_date: datetime = datetime(2000, 1, 1, tzinfo=timezone.utc)
    timeout_seconds: float = Field(default=60.0, gt=0)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    # Stop pulling (successfully, resuming next run) once the org's daily API usage passes
    # this share, so dealsync never starves the org's other integrations.
    max_api_usage_percent: float = Field(default=90.0, gt=0, le=100)

    def secrets(self) -> dict[str, str]:
        """The environment variables this source reads: name -> what it holds."""
        auth = self.auth
        if auth.method == "session":
            return {auth.session_id_env: "Salesforce session id"}
        return {auth.username_env: "Salesforce username", auth.password_env: "Salesforce password",
                auth.security_token_env: "Salesforce security token"}

    def endpoints(self) -> list[str]:
        """The servers a pull talks to first."""
        return [str(self.login_url if self.auth.method == "password" else self.instance_url or self.login_url)]
