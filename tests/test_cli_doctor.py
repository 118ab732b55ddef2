"""`pmteam doctor` answers at once, keeps to its deadline when nothing answers, and changes
nothing: no database file, no migration."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.migrate import upgrade
from tests.test_cli import SETTINGS_PREFIXES, run_cli

# The checks wait 2 s each, all at once; the bound leaves room for a slow, busy machine.
GENEROUS_BOUND = 6.0


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections and never says a word: a server that has hung."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


async def test_doctor_speaks_at_once_and_keeps_to_its_deadline_when_nothing_answers(
    tmp_path: Path, silent_port: int
) -> None:
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1-2-deadline",
        "SLACK_APP_TOKEN": "xapp-1-A1-2-deadline",
        "PMTEAM_SLACK_API_URL": "http://127.0.0.1:9/api/",  # nobody listens: refused
        "ANTHROPIC_API_KEY": "sk-ant-deadline",
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{silent_port}",
    }
    clean = {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_PREFIXES)}
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "doctor",
        cwd=tmp_path,
        env={**clean, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    first = await asyncio.wait_for(process.stdout.readline(), timeout=GENEROUS_BOUND)
    first_after = time.monotonic() - started
    rest, err = await asyncio.wait_for(process.communicate(), timeout=30)
    finished_after = time.monotonic() - started

    out = first.decode() + rest.decode()
    assert process.returncode == 1, out + err.decode()
    assert first.decode().startswith("pmteam doctor: checking the settings from the environment")
    # The first line comes before the slow part (waiting 2 s for the silent model), not with it.
    assert first_after < finished_after - 1.0
    assert finished_after < GENEROUS_BOUND, out
    assert "FAIL  slack        cannot reach http://127.0.0.1:9/api/" in out
    assert "FAIL  socket       cannot reach http://127.0.0.1:9/api/" in out
    assert f"FAIL  model        no answer from http://127.0.0.1:{silent_port} within 2 s" in out
    assert "ok    database" in out and "will be created and migrated" in out
    assert list(tmp_path.iterdir()) == []  # no ./pmteam.db


async def test_doctor_gives_up_on_a_database_server_that_never_answers(
    tmp_path: Path, silent_port: int
) -> None:
    url = f"postgresql://pm:hunter2@127.0.0.1:{silent_port}/pmteam"

    ran = await run_cli("doctor", "--timeout", "1", cwd=tmp_path, env={"PMTEAM_DATABASE_URL": url})

    assert ran.code == 1
    assert ran.seconds < GENEROUS_BOUND
    (line,) = [line for line in ran.out.splitlines() if line.startswith("FAIL  database")]
    assert f"postgresql://pm:***@127.0.0.1:{silent_port}/pmteam" in line
    assert "hunter2" not in ran.out + ran.err


async def test_doctor_leaves_an_empty_database_file_as_it_found_it(tmp_path: Path) -> None:
    (tmp_path / "pmteam.db").touch()

    ran = await run_cli("doctor", cwd=tmp_path)

    assert "ok    database     sqlite+aiosqlite:///./pmteam.db: new; the database will be " in (
        ran.out
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pmteam.db"]
    assert (tmp_path / "pmteam.db").stat().st_size == 0


def _copy(template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "pmteam.db"
    shutil.copy(template, path)
    return path


async def test_doctor_reads_a_migrated_database_without_changing_it(
    tmp_path: Path, sqlite_template: Path
) -> None:
    path = _copy(sqlite_template, tmp_path)
    before = path.read_bytes()

    ran = await run_cli("doctor", cwd=tmp_path)

    assert "ok    database     sqlite+aiosqlite:///./pmteam.db: reachable, schema at revision" in (
        ran.out
    )
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pmteam.db"]  # no -wal, no -shm


async def test_an_older_schema_passes_as_one_run_will_migrate(tmp_path: Path) -> None:
    upgrade(f"sqlite:///{tmp_path / 'pmteam.db'}", "0001")

    ran = await run_cli("doctor", cwd=tmp_path)

    (line,) = [line for line in ran.out.splitlines() if "database" in line and "0001" in line]
    assert line.startswith("ok    database")
    assert "`pmteam run` migrates it to" in line


async def test_a_schema_from_a_newer_pmteam_fails_the_doctor_and_stops_run(
    tmp_path: Path, sqlite_template: Path
) -> None:
    path = _copy(sqlite_template, tmp_path)
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    env = {"SLACK_BOT_TOKEN": "xoxb-1-2-newer", "SLACK_SIGNING_SECRET": "8f742231b10e8888abcd"}

    doctor, run = await asyncio.gather(
        run_cli("doctor", cwd=tmp_path, env=env), run_cli("run", cwd=tmp_path, env=env)
    )

    assert doctor.code == 1
    assert "FAIL  database" in doctor.out and "revision 9999, which this pmteam doesn't know" in (
        doctor.out
    )
    assert run.code == 2 and "Traceback" not in run.err
    assert "revision 9999, which this pmteam doesn't know" in run.err


async def test_doctor_reports_an_unwritable_database_directory(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root may write anywhere")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    url = f"sqlite+aiosqlite:///{locked / 'pmteam.db'}"

    ran = await run_cli("doctor", cwd=tmp_path, env={"PMTEAM_DATABASE_URL": url})

    assert "FAIL  database" in ran.out and "is not writable by this user" in ran.out


async def test_doctor_reads_a_migrated_postgres_database(
    tmp_path: Path, postgres_database: str
) -> None:
    ran = await run_cli("doctor", cwd=tmp_path, env={"PMTEAM_DATABASE_URL": postgres_database})

    (line,) = [line for line in ran.out.splitlines() if " database " in line]
    assert line.startswith("ok    database") and "reachable, schema at revision" in line
