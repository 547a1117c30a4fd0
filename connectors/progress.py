"""Progress of a pull, per stream, for the operator: records, pages and rate while it runs.

A dlt progress collector: dlt reports every batch of records it extracts, and the start of
its normalise and load steps; the connectors report each page (one API response) they read
for a stream through `page_read`. Lines go to the `dealsync.progress` logger at most every
`period` seconds per stream, and once more when a stream's extract ends, so a terminal, a log
file and Dagster's event log all show the same lines.
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
    pages: int = 0
    last_logged: float = field(default_factory=time.monotonic)

    def line(self, vendor: str, name: str) -> str:
        elapsed = time.monotonic() - self.started
        rate = f" ({self.records / elapsed:,.0f}/s)" if elapsed >= 1 else ""
        pages = f", {self.pages:,} page{'s' * (self.pages != 1)}" if self.pages else ""
        return f"{vendor} {name}: {self.records:,} records{pages}{rate}"


_extracting: "StreamProgress | None" = None     # the collector of the extract under way


def page_read(stream: str) -> None:
    """A connector read one page (an API response) for `stream`: counted in its progress line."""
    if _extracting is not None:
        _extracting.page(stream)


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
        self._count(name, records=inc)

    def page(self, name: str) -> None:
        self._count(name, pages=1)

    def _count(self, name: str, records: int = 0, pages: int = 0) -> None:
        stream = self.streams.setdefault(name, _Stream())
        stream.records += records
        stream.pages += pages
        now = time.monotonic()
        if now - stream.last_logged >= self.period:
            stream.last_logged = now
            log.info(stream.line(self.vendor, name))

    def _start(self, step: str) -> None:
        global _extracting
        self.step = step
        if step.startswith("Extract"):
            _extracting = self
        else:
            log.info(f"{self.vendor}: {step.split()[0].lower()} started")

    def _stop(self) -> None:
        global _extracting
        if (self.step or "").startswith("Extract"):
            for name, stream in self.streams.items():
                log.info(stream.line(self.vendor, name) + ", extracted")
            self.streams.clear()
            _extracting = None
        self.step = None
