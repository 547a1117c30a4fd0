"""`metrics:` in dealsync.yaml: the reference time and periods the metrics are computed for.

Metrics that depend on "now" (deal age, days in the current stage, overdue close dates, the
current forecast period, today's snapshot) read one row, `model.metric_settings`, so every
table agrees on the same instant, and a sandbox or a re-run for a past day can set it: to a
fixed instant, or to a clock dealsync reads when the run builds that row (a sandbox's simulated
now, which `POST /__sandbox/advance` moves).
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import Annotated, Literal, Union

import requests
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

_MONTHS = {"month": 1, "quarter": 3}


class CurrencySettings(BaseModel):
    """Every amount in `model` and `metrics` is in the reporting currency; a deal in another
    currency is converted with its rate here, and one without a rate gets no amount (it is
    listed in model.unconverted_amounts) rather than being added up in the wrong currency."""

    model_config = ConfigDict(extra="forbid")
    reporting: str = Field(default="USD", pattern=r"^[A-Za-z]{3}$")
    default: str | None = Field(default=None, pattern=r"^[A-Za-z]{3}$",
                                description="a deal's currency when its CRM gives none (default: reporting)")
    rates: dict[str, float] = Field(default_factory=dict,
                                    description="units of reporting currency per unit of each other currency")

    @field_validator("rates")
    @classmethod
    def _positive(cls, rates: dict[str, float]) -> dict[str, float]:
        bad = [code for code, rate in rates.items() if rate <= 0 or len(code) != 3]
        if bad:
            raise ValueError(f"rates must be positive, keyed by 3-letter currency codes: {', '.join(bad)}")
        return {code.upper(): rate for code, rate in rates.items()}

    def rows(self) -> list[tuple[str, float]]:
        """(currency, units of reporting currency per unit) for model.currency_rates."""
        return sorted({**self.rates, self.reporting.upper(): 1.0}.items())


class ClockUnreadable(RuntimeError):
    """metrics.as_of names a clock that did not answer with the time."""


class ClockSource(BaseModel):
    """A clock to read at each run instead of the wall clock: `GET clock_url` answers JSON whose
    `now` is an ISO 8601 instant (a sandbox's `/__sandbox/status`)."""

    model_config = ConfigDict(extra="forbid")
    clock_url: str = Field(pattern=r"^https?://")
    ca_bundle: Path | None = Field(default=None, description="PEM file of the CA that signed the clock's "
                                                             "certificate (default: the system's)")
    timeout_seconds: float = Field(default=10.0, gt=0)

    def read(self) -> datetime:
        session = requests.Session()
        # REQUESTS_CA_BUNDLE in the environment would override `verify`, and a proxy would not reach
        # a sandbox on 127.0.0.1.
        session.trust_env = False
        try:
            reply = session.get(self.clock_url, timeout=self.timeout_seconds,
                                verify=str(self.ca_bundle) if self.ca_bundle else True)
            reply.raise_for_status()
            return datetime.fromisoformat(reply.json()["now"])
        except OSError as exc:             # requests' errors, and a missing ca_bundle
            problem = _reason(exc)
        except (ValueError, KeyError, TypeError):
            problem = "the reply has no ISO 8601 `now`"
        raise ClockUnreadable(f"metrics.as_of.clock_url: cannot read the time from {self.clock_url} ({problem}); "
                              "is the sandbox still running? (or set metrics.as_of to an instant)")


def _reason(exc: OSError) -> str:
    if isinstance(exc, requests.HTTPError):
        return f"HTTP {exc.response.status_code}"
    text = str(exc)
    for marker in ("Connection refused", "timed out", "CERTIFICATE_VERIFY_FAILED", "Name or service not known"):
        if marker in text:
            return marker.lower()
    return text.splitlines()[0][:200]


# Tagged, so a mistyped clock block is reported as that, not also as an invalid datetime.
AsOf = Annotated[Union[Annotated[datetime, Tag("instant")], Annotated[ClockSource, Tag("clock")]],
                 Discriminator(lambda value: "clock" if isinstance(value, (dict, ClockSource)) else "instant")]


class MetricSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    as_of: AsOf | None = Field(default=None, description="reference instant, or a clock read at each run; "
                                                          "default: when the build runs")
    period: Literal["month", "quarter"] = "quarter"
    stalled_percentile: float = Field(default=0.75, gt=0, lt=1,
                                      description="an open deal is stalled past this percentile of its stage's "
                                                  "historical time in stage")
    currency: CurrencySettings = Field(default_factory=CurrencySettings)
    snapshot_backfill_days: int = Field(default=365, ge=0,
                                        description="days before the first run's as-of day that the daily snapshot "
                                                    "rebuilds from the CRMs' history")

    def reference_time(self) -> datetime:
        """The run's "now". A clock is read at every call, so a run calls this once (through
        `row()`) and every later step reads model.metric_settings instead."""
        if isinstance(self.as_of, ClockSource):
            value = self.as_of.read()
        else:
            value = self.as_of or datetime.now(timezone.utc)
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)

    def row(self) -> tuple:
        """(as_of, period, current start, next start, next end, stalled percentile, reporting currency,
        default currency) for model.metric_settings: built once per run."""
        now = self.reference_time()
        months = _MONTHS[self.period]
        current = date(now.year, (now.month - 1) // months * months + 1, 1)
        following = _add_months(current, months)
        currency = self.currency
        return (now, self.period, current, following, _add_months(following, months), self.stalled_percentile,
                currency.reporting.upper(), (currency.default or currency.reporting).upper())


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)
