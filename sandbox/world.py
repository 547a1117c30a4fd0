"""One simulated clock for every emulator of a sandbox.

Each emulator keeps its own ``now`` so it can be used alone (as most tests do). Emulators
that belong to one ``Sandbox`` join a ``World``: then ``POST /__sandbox/advance`` sent to
any of them moves all of them, because a user who advances "the sandbox" by one request
expects Salesforce, HubSpot and Google to agree on the day afterwards, and the next sync
to find changes in every source.

The control replies both endpoints share (the emulator's own JSON rendering wraps them):
  GET  /__sandbox/status   {"now", "counts": this emulator's stored totals,
                            "emulators": {name: {"url", "now"}}}
  POST /__sandbox/advance  {"now", "counts": what changed here,
                            "emulators": {name: {"url", "now", "counts": what changed there}}}
``now`` is the sandbox's clock (ISO 8601, UTC), the same on every emulator of a world.
"""

from __future__ import annotations

import threading
from datetime import datetime


class World:
    """The emulators of one sandbox, advanced together and one advance at a time."""

    def __init__(self, emulators: list):
        self.emulators = list(emulators)
        self._lock = threading.Lock()      # two advances must not interleave their windows
        for emulator in self.emulators:
            emulator.world = self

    @property
    def now(self) -> datetime:
        return self.emulators[0].now

    def advance(self, days: float) -> dict[str, dict[str, int]]:
        """Move every emulator's clock by ``days``: what changed, by emulator name."""
        with self._lock:
            return {emulator.name: emulator.advance(days) for emulator in self.emulators}


def _members(emulator) -> list:
    return emulator.world.emulators if emulator.world is not None else [emulator]


def advance_reply(emulator, days: float) -> dict:
    """An advance received over HTTP: the whole world moves, or the emulator alone."""
    world = emulator.world
    changed = world.advance(days) if world is not None else {emulator.name: emulator.advance(days)}
    return {"now": emulator.now.isoformat(), "counts": changed[emulator.name],
            "emulators": {e.name: {"url": e.url, "now": e.now.isoformat(), "counts": changed[e.name]}
                          for e in _members(emulator)}}


def status_reply(emulator) -> dict:
    return {"now": emulator.now.isoformat(), "counts": emulator.store.counts(),
            "emulators": {e.name: {"url": e.url, "now": e.now.isoformat()} for e in _members(emulator)}}
