"""Replicas started together on an empty database: one migrates, the others wait for it and
then find nothing to do (`storage.migrate.upgrade` holds a lock for the whole migration).

Without the lock three replicas on an empty PostgreSQL database each tried to create
`alembic_version`, and all but one could die with a UniqueViolation."""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from alembic import command

from sandbox.model import FakeModel
from sandbox.slack import FakeSlack
from storage.migrate import (
    LOCK_FILE_SUFFIX,
    alembic_config,
    current_revision,
    head_revision,
    migration_lock,
)
from tests.multiprocess import racers
from tests.multiprocess.racers import Outcome
from tests.multiprocess.replicas import (
    clean_environment,
    start_replica,
    stop_replica,
    wait_healthy,
)

pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(120)]

SPAWN = multiprocessing.get_context("spawn")
REPLICAS = 3
ROUNDS = 5  # fresh databases per test: a race that shows one time in three shows here
PROCESS_TIMEOUT = 60.0


@dataclass(frozen=True)
class Ran:
    """One process of a race: how it exited and what it reported."""

    exitcode: int | None
    outcome: Outcome | None

    def describe(self) -> str:
        if self.outcome is None:
            return f"exit {self.exitcode}, reported nothing"
        return f"exit {self.exitcode}:\n{self.outcome.error or 'ok'}"


def _collect(
    outcomes: multiprocessing.queues.Queue[Outcome],
    processes: list[multiprocessing.process.BaseProcess],
) -> dict[int, Outcome]:
    got: dict[int, Outcome] = {}
    deadline = time.monotonic() + PROCESS_TIMEOUT
    while len(got) < len(processes) and time.monotonic() < deadline:
        try:
            outcome = outcomes.get(timeout=0.2)
        except queue.Empty:
            if not any(process.is_alive() for process in processes) and outcomes.empty():
                break
            continue
        got[outcome.index] = outcome
    return got


def _finish(processes: list[multiprocessing.process.BaseProcess]) -> None:
    for process in processes:
        process.join(timeout=PROCESS_TIMEOUT)
        if process.is_alive():
            process.kill()
            process.join()


def migrate_at_once(url: str, replicas: int = REPLICAS) -> list[Ran]:
    """`replicas` spawned processes, each calling `upgrade(url)` the moment all are ready."""
    barrier = SPAWN.Barrier(replicas)
    outcomes: multiprocessing.queues.Queue[Outcome] = SPAWN.Queue()
    processes: list[multiprocessing.process.BaseProcess] = [
        SPAWN.Process(target=racers.migrate, args=(index, url, barrier, None, outcomes))
        for index in range(replicas)
    ]
    for process in processes:
        process.start()
    try:
        got = _collect(outcomes, processes)
    finally:
        _finish(processes)
    return [Ran(process.exitcode, got.get(index)) for index, process in enumerate(processes)]


def alembic_rows(url: str) -> list[str]:
    if url.startswith("sqlite"):
        connection = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            return [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]
        finally:
            connection.close()
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT version_num FROM alembic_version")]


def assert_one_migrated_the_rest_waited(rounds: list[list[Ran]], urls: list[str]) -> None:
    head = head_revision()
    assert head is not None
    for number, (ran, url) in enumerate(zip(rounds, urls, strict=True), start=1):
        failed = [each.describe() for each in ran if each.exitcode != 0 or each.outcome is None]
        assert failed == [], f"round {number}: " + "\n\n".join(failed)
        assert current_revision(url) == head, f"round {number}"
        assert alembic_rows(url) == [head], f"round {number}"
        outcomes = [each.outcome for each in ran if each.outcome is not None]
        # The migrations ran in exactly one process; the others found them done.
        assert sum(outcome.migrated for outcome in outcomes) == 1, f"round {number}"
    # The processes really did meet: in some round one found another migrating and waited.
    waits = sum(each.outcome.waited for ran in rounds for each in ran if each.outcome)
    assert waits > 0, "no process ever waited: the race never happened"


@pytest.mark.reliability("Three replicas migrate an empty PostgreSQL database at once")
def test_three_processes_migrate_an_empty_postgres_database_at_once(
    empty_postgres: Callable[[], str],
) -> None:
    urls = [empty_postgres() for _ in range(ROUNDS)]

    rounds = [migrate_at_once(url) for url in urls]

    assert_one_migrated_the_rest_waited(rounds, urls)


@pytest.mark.reliability("Three processes migrate a new SQLite file at once")
def test_three_processes_migrate_a_new_sqlite_file_at_once(tmp_path: Path) -> None:
    urls = [f"sqlite:///{tmp_path / f'cold-{number}.db'}" for number in range(ROUNDS)]

    rounds = [migrate_at_once(url) for url in urls]

    assert_one_migrated_the_rest_waited(rounds, urls)
    assert (tmp_path / f"cold-0.db{LOCK_FILE_SUFFIX}").exists()


@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
def test_a_process_that_finds_a_migration_under_way_waits_then_does_nothing(
    kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    if kind == "postgres":
        url: str = request.getfixturevalue("empty_postgres")()
    else:
        url = f"sqlite:///{tmp_path / 'waits.db'}"
    ready: multiprocessing.queues.Queue[int] = SPAWN.Queue()
    outcomes: multiprocessing.queues.Queue[Outcome] = SPAWN.Queue()
    process = SPAWN.Process(target=racers.migrate, args=(0, url, None, ready, outcomes))

    with migration_lock(url):  # this process is the one migrating
        process.start()
        try:
            ready.get(timeout=PROCESS_TIMEOUT)
            time.sleep(1.0)
            assert process.is_alive(), "it did not wait for the lock"
            assert current_revision(url) is None
            command.upgrade(alembic_config(url), "head")
        except BaseException:
            process.kill()
            raise
    try:
        [outcome] = _collect(outcomes, [process]).values()
    finally:
        _finish([process])

    assert process.exitcode == 0, outcome.error
    assert outcome.waited, outcome.log
    assert not outcome.migrated, outcome.log
    assert current_revision(url) == head_revision()
    assert alembic_rows(url) == [head_revision()]


# --- three real `pmteam run` replicas ---------------------------------------------------------


@pytest.mark.reliability("Three `pmteam run` replicas start together on an empty database")
async def test_three_pmteam_run_replicas_start_together_on_an_empty_postgres_database(
    empty_postgres: Callable[[], str],
    fake_slack: FakeSlack,
    fake_model: FakeModel,
    tmp_path: Path,
) -> None:
    url = empty_postgres()
    env = {
        **clean_environment(),
        "PMTEAM_DATABASE_URL": url,
        "PMTEAM_MODE": "http",
        "PMTEAM_LOG_FORMAT": "json",
        "PMTEAM_SLACK_API_URL": fake_slack.api_url,
        "PMTEAM_COORDINATION_CHANNEL": "C0PM",
        "SLACK_BOT_TOKEN": "xoxb-1-2-cold-start",
        "SLACK_SIGNING_SECRET": "cold-start-signing-secret",
        "ANTHROPIC_API_KEY": "sk-ant-cold-start",
        "ANTHROPIC_BASE_URL": fake_model.base_url,
    }

    replicas = list(await asyncio.gather(*(start_replica(env, tmp_path) for _ in range(REPLICAS))))
    try:
        await asyncio.gather(*(wait_healthy(replica) for replica in replicas))
    finally:
        codes = [await stop_replica(replica) for replica in replicas]

    for replica, code in zip(replicas, codes, strict=True):
        assert code == 0, replica.log()
        assert "Traceback" not in replica.log(), replica.log()
    assert current_revision(url) == head_revision()
    assert alembic_rows(url) == [head_revision()]
