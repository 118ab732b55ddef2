"""Work asked for often but needed once: requests made while a run is waiting or going fold
into one more run, never a queue of them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol


class Spawn(Protocol):
    def __call__(self, coro: Coroutine[Any, Any, Any], *, name: str) -> None: ...


class Coalesced:
    """`request()` runs `run` soon; requests while it runs bring exactly one more run."""

    def __init__(self, run: Callable[[], Awaitable[None]], *, spawn: Spawn, name: str) -> None:
        self._run = run
        self._spawn = spawn
        self._name = name
        self._wanted = False
        self._running = False

    def request(self) -> None:
        self._wanted = True
        if not self._running:
            self._running = True
            self._spawn(self._drain(), name=self._name)

    async def _drain(self) -> None:
        try:
            while self._wanted:
                self._wanted = False
                await self._run()
        finally:
            self._running = False
