"""What a pull tells the operator beyond row counts."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PullReport:
    # stream -> why it stopped before reading everything (it resumes from there next run)
    stopped_early: dict[str, str] = field(default_factory=dict)

    def stop(self, stream: str, reason: str) -> None:
        self.stopped_early.setdefault(stream, reason)
