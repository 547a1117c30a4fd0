"""`metrics:` in dealsync.yaml: the reference time and periods the metrics are computed for.

Metrics that depend on "now" (deal age, days in the current stage, overdue close dates, the
current forecast period, today's snapshot) read one row, `model.metric_settings`, so every
table agrees on the same instant, and a sandbox or a re-run for a past day can set it.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

_MONTHS = {"month": 1, "quarter": 3}


class MetricSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    as_of: datetime | None = Field(default=None, description="reference instant; default: when the build runs")
    period: Literal["month", "quarter"] = "quarter"
    stalled_percentile: float = Field(default=0.75, gt=0, lt=1,
                                      description="an open deal is stalled past this percentile of its stage's "
                                                  "historical time in stage")
    snapshot_backfill_days: int = Field(default=365, ge=0,
                                        description="days of daily snapshot reconstructed from stage history on "
                                                    "the first run")

    def reference_time(self) -> datetime:
        value = self.as_of or datetime.now(timezone.utc)
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)

    def row(self) -> tuple:
        """(as_of, period, current start, next start, next end, stalled percentile) for model.metric_settings."""
        now = self.reference_time()
        months = _MONTHS[self.period]
        current = date(now.year, (now.month - 1) // months * months + 1, 1)
        following = _add_months(current, months)
        return (now, self.period, current, following, _add_months(following, months), self.stalled_percentile)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)
