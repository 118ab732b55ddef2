"""Alembic, driven from code: `pmteam db upgrade` and the start of `pmteam run`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.engine import URL

from storage.db import sync_url

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str | URL) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Passed as an attribute rather than an ini option so '%' in passwords needs no escaping.
    config.attributes["database_url"] = sync_url(database_url)
    return config


def upgrade(database_url: str | URL, revision: str = "head") -> None:
    """Bring the schema up to `revision` (blocking; run it in a thread from async code)."""
    command.upgrade(alembic_config(database_url), revision)


def current_revision(database_url: str | URL) -> str | None:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
