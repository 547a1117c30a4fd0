"""Which mail domains say nothing about a company: the org's own, and personal mailboxes.

Identity matching resolves a person by email and a company by domain. A personal
domain (gmail.com) is shared by millions of unrelated people, and the org's own
domain is every rep's: neither may join a contact to an account or a deal. The
org's own domains are the configured ones plus every owner's email domain.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

PERSONAL_DOMAINS = (
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "ymail.com", "outlook.com", "hotmail.com",
    "hotmail.co.uk", "live.com", "msn.com", "icloud.com", "me.com", "mac.com", "aol.com", "proton.me",
    "protonmail.com", "gmx.com", "gmx.de", "gmx.net", "web.de", "mail.com", "yandex.ru", "zoho.com",
    "fastmail.com", "hey.com", "qq.com", "163.com", "orange.fr", "free.fr", "comcast.net", "verizon.net",
)


class IdentitySettings(BaseModel):
    """`identity:` in dealsync.yaml."""

    model_config = ConfigDict(extra="forbid")
    internal_domains: list[str] = Field(default_factory=list,
                                        description="the org's own mail domains, beyond its owners' ones")
    personal_domains: list[str] = Field(default_factory=lambda: list(PERSONAL_DOMAINS))

    @field_validator("internal_domains", "personal_domains")
    @classmethod
    def _normalise(cls, domains: list[str]) -> list[str]:
        return sorted({d.strip().lower().removeprefix("@") for d in domains if d.strip()})

    def mail_domains(self) -> list[tuple[str, str]]:
        """(domain, kind) rows; a domain both internal and personal counts as internal."""
        internal = set(self.internal_domains)
        return [(d, "internal") for d in self.internal_domains] + \
               [(d, "personal") for d in self.personal_domains if d not in internal]
