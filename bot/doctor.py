"""`pmteam doctor`: each check prints ok or fail, and a failure names its fix."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.config import Settings
from storage.db import create_engine
from storage.migrate import current_revision, head_revision


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None

    def render(self) -> str:
        line = f"{'ok  ' if self.ok else 'FAIL'}  {self.name:<12} {self.detail}"
        if not self.ok and self.fix:
            line += f"\n      {'':<12} fix: {self.fix}"
        return line


def display_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


async def check_database(settings: Settings) -> Check:
    shown = display_url(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error is a failed check, shown to the operator
        return Check(
            "database",
            False,
            f"{shown}: cannot connect ({exc.__class__.__name__}: {str(exc).splitlines()[0]})",
            "check PMTEAM_DATABASE_URL and that the server is running",
        )
    finally:
        await engine.dispose()
    current = await asyncio.to_thread(current_revision, settings.database_url)
    head = head_revision()
    if current != head:
        return Check(
            "database",
            False,
            f"{shown}: schema at revision {current or 'none'}, code expects {head}",
            "run `pmteam db upgrade` (`pmteam run` also upgrades on start)",
        )
    return Check("database", True, f"{shown}: reachable, schema at revision {head}")


async def run_checks(settings: Settings) -> list[Check]:
    return [await check_database(settings)]
