"""Progress of a pull, per stream, for the operator: records and rate while it runs.

A dlt progress collector: dlt reports every batch of records it extracts, and the start of
its normalise and load steps. Lines go to the `dealsync.progress`
logger at most every `period` seconds per stream, and once more when a stream's extract ends,
so a terminal, a log file and Dagster's event log all show the same lines.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from dlt.common.runtime.collector_base import Collector

log = logging.getLogger("dealsync.progress")


@dataclass
class _Stream:
    started: float = field(default_factory=time.monotonic)
    records: int = 0
    last_logged: float = field(default_factory=time.monotonic)

    def line(self, vendor: str, name: str) -> str:
        elapsed = time.monotonic() - self.started
        rate = f" ({self.records / elapsed:,.0f}/s)" if elapsed >= 1 else ""
        return f"{vendor} {name}: {self.records:,} records{rate}"


class StreamProgress(Collector):
    """Counts each stream's records as dlt extracts them, and logs them."""

    def __init__(self, vendor: str, period: float = 10.0):
        self.vendor, self.period = vendor, period
        self.step: str | None = None
        self.streams: dict[str, _Stream] = {}

    def update(self, name: str, inc: int = 1, total: int | None = None, inc_total: int | None = None,
               message: str | None = None, label: str | None = None) -> None:
        if not (self.step or "").startswith("Extract") or name == "Resources" or name.startswith("_dlt"):
            return                       # normalise and load report files and jobs, not records
        stream = self.streams.setdefault(name, _Stream())
        stream.records += inc
        now = time.monotonic()
        if now - stream.last_logged >= self.period:
            stream.last_logged = now
            log.info(stream.line(self.vendor, name))

    def _start(self, step: str) -> None:
        self.step = step
        if not step.startswith("Extract"):
            log.info(f"{self.vendor}: {step.split()[0].lower()} started")

    def _stop(self) -> None:
        if (self.step or "").startswith("Extract"):
            for name, stream in self.streams.items():
                log.info(stream.line(self.vendor, name) + ", extracted")
            self.streams.clear()
        self.step = None
