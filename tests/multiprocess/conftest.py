"""Fixtures for tests that run pmteam in several processes at once: fresh, empty databases."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest

from tests.conftest import IN_CI, POSTGRES_ADMIN_URL, _postgres_unavailable


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "multiprocess: starts several processes against one database (runs in every suite)",
    )


@pytest.fixture
def empty_postgres() -> Iterator[Callable[[], str]]:
    """Makes a new, empty PostgreSQL database (no schema, no alembic_version) per call, and
    drops them all after the test."""
    problem = _postgres_unavailable()
    if problem:
        if IN_CI:
            pytest.fail(f"{problem}; CI must run the PostgreSQL tests")
        pytest.skip(f"{problem}; set PMTEAM_TEST_POSTGRES_URL to run these tests")
    base = POSTGRES_ADMIN_URL.rpartition("/")[0]
    made: list[str] = []

    def make() -> str:
        name = f"pmteam_cold_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return f"{base}/{name}"

    yield make
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
