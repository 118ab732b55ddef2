"""Fencing: work a process no longer holds must not reach Slack. Pure: a context variable
holding a check, set by the worker for the turn it runs, asked before every post."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_held: ContextVar[Callable[[], bool] | None] = ContextVar("pmteam_fence", default=None)


class Fenced(Exception):
    """This process no longer holds the turn it was working on (its lease ran out while it
    was paused or cut off): another worker may have taken it over, so it posts nothing more."""


@contextmanager
def holding(check: Callable[[], bool]) -> Iterator[None]:
    """Within this block (and the tasks it starts), `ensure_held` asks `check`."""
    token = _held.set(check)
    try:
        yield
    finally:
        _held.reset(token)


def held() -> bool:
    """Whether the current work still holds what it works on (True outside any work)."""
    check = _held.get()
    return check is None or check()


def ensure_held() -> None:
    """Raise Fenced if the current work's hold has lapsed; outside any work, do nothing."""
    check = _held.get()
    if check is not None and not check():
        raise Fenced("the lease on this work ran out")
