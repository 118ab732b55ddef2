"""What each spawned process of these tests runs: `storage.migrate.upgrade`, reporting back.

A module of its own so a child imports only what a migration needs, before it waits at the
barrier: the processes then start migrating within a millisecond of each other."""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

import storage.models  # noqa: F401  (what the migrations' env.py imports, loaded up front)
from storage.migrate import upgrade

BARRIER_TIMEOUT = 60.0


@dataclass(frozen=True)
class Outcome:
    """What one process did: its traceback if `upgrade` raised, and what it logged."""

    index: int
    error: str | None
    log: list[str] = field(default_factory=list)

    @property
    def waited(self) -> bool:
        return any("waiting for it to finish" in line for line in self.log)

    @property
    def migrated(self) -> bool:
        """Alembic ran at least one migration here ("Running upgrade  -> 0001, …")."""
        return any("Running upgrade" in line for line in self.log)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")


def migrate(
    index: int,
    url: str,
    barrier: Barrier | None,
    ready: Queue[int] | None,
    outcomes: Queue[Outcome],
) -> None:
    """Say it is ready, wait at the barrier with the others, then `upgrade(url)`; exit 1 if
    that raised."""
    lines = _Lines()
    root = logging.getLogger()
    root.addHandler(lines)
    root.setLevel(logging.INFO)
    error = None
    try:
        if ready is not None:
            ready.put(index)
        if barrier is not None:
            barrier.wait(timeout=BARRIER_TIMEOUT)
        upgrade(url)
    except BaseException:
        error = traceback.format_exc()
    outcomes.put(Outcome(index, error, lines.lines))
    if error is not None:
        raise SystemExit(1)
