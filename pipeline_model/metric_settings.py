"""`metrics:` in dealsync.yaml: the reference time and periods the metrics are computed for.

Metrics that depend on "now" (deal age, days in the current stage, overdue close dates, the
current forecast period, today's snapshot) read one row, `model.metric_settings`, so every
table agrees on the same instant, and a sandbox or a re-run for a past day can set it.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

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


class MetricSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    as_of: datetime | None = Field(default=None, description="reference instant; default: when the build runs")
    period: Literal["month", "quarter"] = "quarter"
    stalled_percentile: float = Field(default=0.75, gt=0, lt=1,
                                      description="an open deal is stalled past this percentile of its stage's "
                                                  "historical time in stage")
    currency: CurrencySettings = Field(default_factory=CurrencySettings)
    snapshot_backfill_days: int = Field(default=365, ge=0,
                                        description="days of daily snapshot reconstructed from stage history on "
                                                    "the first run")

    def reference_time(self) -> datetime:
        value = self.as_of or datetime.now(timezone.utc)
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)

    def row(self) -> tuple:
        """(as_of, period, current start, next start, next end, stalled percentile, reporting currency,
        default currency) for model.metric_settings."""
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
