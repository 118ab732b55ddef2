"""Status queries at scale: p50/p99 of `/pm status`, `status T-n`, `list blocked`, the App Home
build and the standup query over a seeded database, with the plan of every statement.

Seeds N tasks (default 1,000,000) spread over two years, with turns, reports, status events,
research requests and the usage ledger in realistic proportions, into a temporary SQLite file
and a fresh PostgreSQL database (`pmteam_bench_<random>`, dropped afterwards). Seeding is a
handful of `INSERT … SELECT` statements over a recursive CTE (SQLite) or `generate_series`
(PostgreSQL), so it takes minutes. Then it times the app's own service functions through the
app's engine and sessions, and prints `EXPLAIN QUERY PLAN` / `EXPLAIN ANALYZE` for each SQL
statement they issue.

    uv run python bench/queries.py [--tasks 1000000] [--runs 200] [--db sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from bot.services.status import home_board, home_tasks, load_task_detail, status_overview, task_page  # noqa: E402
from bot.slack.blocks.home import build_home_view  # noqa: E402
from bot.slack.blocks.pm import (  # noqa: E402
    build_status_blocks,
    build_task_detail_blocks,
    build_task_list_blocks,
)
from bot.slack.blocks.report import ACTION_ACKNOWLEDGE, ACTION_REOPEN  # noqa: E402
from storage.db import create_engine, session_factory  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.queries import ListKind, TaskFilter  # noqa: E402
from storage.standups import standup_digest  # noqa: E402

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
SPAN_DAYS = 730
USERS = 500
CHANNELS = 50
TEAM = "T0BENCH"
WARMUP = 20

# Report JSON as the pipeline stores it (a CompletionReport dump); @@…@@ are filled per row.
_REPORT = {
    "task": "@@TASK@@",
    "status": "@@STATUS@@",
    "pm_scores": {
        "system_architecture_design": 8,
        "implementation_feasibility": 7,
        "scalability_performance": "@@SCALE@@",
        "risk_assessment": 7,
        "integration_reliability": 8,
    },
    "self_assessment": {
        "probability_of_success": 8,
        "implementation_feasibility": 7,
        "quality_completeness": 7,
        "risk_assessment": 6,
        "alignment_value": 8,
    },
    "red_flags": "@@FLAGS@@",
    "confidence_notes": "The design follows established patterns; load figures are assumed.",
    "key_deliverables": [
        {"kind": "system", "description": "Service design with the data model and endpoints"},
        {"kind": "data_storage", "description": "PostgreSQL schema with indexes and migrations"},
    ],
    "dependencies_handoffs": [
        {"kind": "needed_from_others", "description": "Review of the API contract by mobile"}
    ],
    "estimated_time": "@@ESTIMATE@@",
}
_FLAG = [
    {
        "axis": "pm_scores.scalability_performance",
        "explanation": "Peak write load has not been measured",
        "mitigation": "Load test at twice the expected peak before launch",
    }
]


def report_template() -> str:
    text = json.dumps(_REPORT, separators=(",", ":"))
    for key in ("SCALE", "FLAGS", "ESTIMATE"):
        text = text.replace(f'"@@{key}@@"', f"@@{key}@@")
    return text


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Dialect:
    """The few SQL spellings that differ between SQLite and PostgreSQL."""

    name: str

    def ts(self, epoch: str) -> str:
        if self.name == "sqlite":  # naive UTC text, as storage.types.UTCDateTime writes it
            return f"(strftime('%Y-%m-%d %H:%M:%S', {epoch}, 'unixepoch') || '.000000')"
        return f"to_timestamp({epoch})"

    def json(self, text: str) -> str:
        return text if self.name == "sqlite" else f"({text})::json"

    def true(self) -> str:
        return "1" if self.name == "sqlite" else "true"

    def numbers(self, count: int) -> str:
        """A relation `seq(i)` of 1..count."""
        if self.name == "sqlite":
            return (
                "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq "
                f"WHERE i < {count}) "
            )
        return f"WITH seq(i) AS (SELECT generate_series(1, {count})::bigint) "


def seed_statements(d: Dialect, n: int, now: datetime) -> list[tuple[str, str]]:
    """(what, SQL) in order; every row derives from the task id, so runs are repeatable."""
    t0 = int((now - timedelta(days=SPAN_DAYS)).timestamp())
    step = SPAN_DAYS * 86400 / n
    created = f"({t0} + (t.id - 1) * {step})"  # epoch seconds of a task's creation
    bucket = "((t.id * 7919 + 13) % 10000)"
    turns = "(1 + CASE WHEN (t.id * 31 + 7) % 10 < 4 THEN 1 ELSE 0 END"
    turns += " + CASE WHEN (t.id * 31 + 7) % 10 < 1 THEN 1 ELSE 0 END)"
    status = (
        f"CASE WHEN t.id > {n} - 8 THEN 'working' WHEN t.id > {n} - 100 THEN 'queued' "
        f"WHEN {bucket} < 9050 THEN 'completed' WHEN {bucket} < 9350 THEN 'failed' "
        f"WHEN {bucket} < 9800 THEN 'in_progress' ELSE 'blocked' END"
    )
    last_turn_start = f"({created} + ({turns} - 1) * 3600)"
    # A task is last updated when its last turn started (still open) or finished.
    closing = "CASE WHEN t.status IN ('queued', 'working') THEN 5 ELSE 66 END"
    reason = (
        "CASE t.status WHEN 'blocked' THEN 'Waiting for production database credentials "
        "from the platform team' WHEN 'failed' THEN 'I tried this 3 times and each attempt "
        "stopped before it finished.' END"
    )
    turn_start = f"({created} + (k.seq - 1) * 3600)"
    last = f"k.seq = {turns}"
    turn_status = (
        f"CASE WHEN NOT ({last}) THEN 'done' ELSE CASE t.status WHEN 'queued' THEN 'queued' "
        "WHEN 'working' THEN 'running' WHEN 'failed' THEN 'failed' ELSE 'done' END END"
    )
    answer = (
        "'Here is a design for ' || t.title || '. ' || "
        "'Use an idempotency key per request, store it with a unique index, and return the "
        "stored response on a retry. Partition by tenant, keep writes in one transaction, and "
        "put slow work on a durable queue with SKIP LOCKED claims. Measure p99 latency and add "
        "indexes for the two hot queries before launch.'"
    )
    template = report_template().replace("'", "''")
    flagged = "(((u.id % 100000) * 7919) % 100 < 15)"
    report_status = (
        f"CASE WHEN u.seq < {turns} THEN 'IN_PROGRESS' ELSE CASE t.status "
        "WHEN 'completed' THEN 'COMPLETED' WHEN 'blocked' THEN 'BLOCKED' ELSE 'IN_PROGRESS' END END"
    )
    report_data = (
        f"replace(replace(replace(replace(replace('{template}', '@@TASK@@', t.title), "
        f"'@@STATUS@@', {report_status}), "
        f"'@@SCALE@@', CASE WHEN {flagged} THEN '4' ELSE '7' END), "
        f"'@@FLAGS@@', CASE WHEN {flagged} THEN {literal(json.dumps(_FLAG))} "
        "ELSE '[]' END), "
        f"'@@ESTIMATE@@', CASE WHEN {report_status} = 'IN_PROGRESS' THEN '\"2 days\"' "
        "ELSE 'null' END)"
    )
    turn_epoch = f"({created} + (u.seq - 1) * 3600)"
    final_status = (
        f"CASE WHEN u.status = 'failed' THEN 'failed' WHEN u.seq < {turns} THEN 'in_progress' "
        "ELSE t.status END"
    )
    request = json.dumps({"objective": "proven approaches", "context": "bench"})
    sources = json.dumps(
        [
            {"url": f"https://example.com/guide/{i}", "title": f"Engineering guide {i}"}
            for i in range(3)
        ]
    )
    return [
        (
            "tasks",
            d.numbers(n) + "INSERT INTO task (id, team_id, channel_id, thread_ts, requester_id, "
            "title, request_text, status, status_reason, estimated_time, created_at, updated_at) "
            f"SELECT t.id, '{TEAM}', 'C' || (10000 + t.id % {CHANNELS}), "
            "(1700000000 + t.id) || '.000100', "
            f"'U' || (100000 + (t.id * 7919) % {USERS}), "
            "'Design the service ' || t.id || ' with an idempotent API', "
            "'Please design service ' || t.id || ': an idempotent REST API on PostgreSQL with "
            "pagination, retries and an audit log. It must handle 500 writes per second.', "
            f"t.status, {reason}, "
            "CASE t.status WHEN 'in_progress' THEN '2 days' END, "
            f"{d.ts(created)}, "
            f"{d.ts(f'{last_turn_start} + {closing}')} "
            f"FROM (SELECT i AS id, {status.replace('t.id', 'i')} AS status FROM seq) t",
        ),
        (
            "turns",
            "INSERT INTO turn (task_id, seq, team_id, channel_id, message_ts, user_id, text, "
            "source, status, attempts, lease_owner, lease_expires_at, heartbeat_at, answer_text, "
            "failure_reason, created_at, started_at, finished_at) "
            "SELECT t.id, k.seq, t.team_id, t.channel_id, "
            "CASE WHEN k.seq = 1 THEN t.thread_ts ELSE (1700000000 + t.id) || '.00020' || k.seq "
            "END, t.requester_id, "
            "CASE WHEN k.seq = 1 THEN t.request_text ELSE 'Thanks. Can you also cover the "
            "rollback plan and the monitoring we need?' END, 'mention', "
            f"{turn_status}, 0, "
            f"CASE WHEN ({turn_status}) = 'running' THEN 'bench-worker' END, "
            f"CASE WHEN ({turn_status}) = 'running' THEN {d.ts(turn_start + ' + 300')} END, "
            f"CASE WHEN ({turn_status}) = 'running' THEN {d.ts(turn_start + ' + 5')} END, "
            f"CASE WHEN ({turn_status}) = 'done' THEN {answer} END, "
            f"CASE WHEN ({turn_status}) = 'failed' THEN t.status_reason END, "
            f"{d.ts(turn_start)}, "
            f"CASE WHEN ({turn_status}) <> 'queued' THEN {d.ts(turn_start + ' + 5')} END, "
            f"CASE WHEN ({turn_status}) IN ('done', 'failed') THEN {d.ts(turn_start + ' + 65')} "
            "END "
            "FROM task t JOIN bench_seq k ON k.seq <= " + turns + " ORDER BY t.id, k.seq",
        ),
        (
            "reports",
            "INSERT INTO report (task_id, turn_id, status, data, red_flag_count, min_score, gaps, "
            "created_at) "
            f"SELECT u.task_id, u.id, {report_status}, {d.json(report_data)}, "
            f"CASE WHEN {flagged} THEN 1 ELSE 0 END, CASE WHEN {flagged} THEN 4 ELSE 6 END, "
            f"{d.json(literal('[]'))}, {d.ts(turn_epoch + ' + 64')} "
            "FROM turn u JOIN task t ON t.id = u.task_id WHERE u.status = 'done' ORDER BY u.id",
        ),
        (
            "task events",
            "INSERT INTO task_event (task_id, kind, from_status, to_status, actor, note, "
            "created_at) SELECT task_id, kind, from_status, to_status, actor, note, created_at "
            "FROM ("
            "SELECT u.task_id, u.id AS turn_id, 1 AS step, 'status' AS kind, "
            "CASE WHEN u.seq = 1 THEN NULL ELSE 'in_progress' END AS from_status, "
            "'queued' AS to_status, u.user_id AS actor, "
            "CASE WHEN u.seq = 1 THEN 'asked in Slack' ELSE 'follow-up in the thread' END "
            "AS note, u.created_at AS created_at FROM turn u "
            "UNION ALL SELECT u.task_id, u.id, 2, 'status', 'queued', 'working', 'pmteam', NULL, "
            "u.started_at FROM turn u WHERE u.started_at IS NOT NULL "
            f"UNION ALL SELECT u.task_id, u.id, 3, 'status', 'working', {final_status}, "
            "'pmteam', CASE WHEN u.seq = " + turns + " THEN t.status_reason END, u.finished_at "
            "FROM turn u JOIN task t ON t.id = u.task_id WHERE u.finished_at IS NOT NULL "
            "UNION ALL SELECT r.task_id, r.turn_id, 4, 'acknowledged', NULL, NULL, 'U0PM', NULL, "
            f"{d.ts(turn_epoch + ' + 1800')} FROM report r JOIN turn u ON u.id = r.turn_id "
            "JOIN task t ON t.id = u.task_id WHERE r.id % 10 < 3"
            ") e ORDER BY turn_id, step",
        ),
        (
            "usage ledger",
            "INSERT INTO llm_call (task_id, turn_id, agent, model, input_tokens, output_tokens, "
            "cache_read_tokens, cache_write_tokens, web_searches, cost_usd, latency_ms, "
            "stop_reason, request_id, created_at) "
            "SELECT u.task_id, u.id, a.agent, a.model, a.input + u.id % 300, "
            "a.output + u.id % 200, a.cache_read, a.cache_write, a.searches, "
            "a.cost + (u.id % 100) / 10000.0, 800 + u.id % 4000, 'end_turn', "
            "'req_' || u.id || '_' || a.n, "
            f"{d.ts(turn_epoch + ' + 5 + a.n * 10')} "
            "FROM turn u JOIN task t ON t.id = u.task_id "
            "JOIN bench_agent a ON a.agent <> 'researcher' OR u.id % 2 = 0 "
            "WHERE u.started_at IS NOT NULL ORDER BY u.id, a.n",
        ),
        (
            "research",
            "INSERT INTO research_request (task_id, turn_id, objective, request, findings, "
            "sources, live_sources, web_searches, created_at) "
            "SELECT u.task_id, u.id, 'Proven approaches for ' || u.task_id, "
            f"{d.json(literal(request))}, "
            "'Three sources agree: idempotency keys with a unique index, outbox for events, "
            "and SKIP LOCKED queues.', "
            f"{d.json(literal(sources))}, {d.true()}, 1, "
            f"{d.ts(turn_epoch + ' + 20')} "
            "FROM turn u JOIN task t ON t.id = u.task_id "
            "WHERE u.started_at IS NOT NULL AND u.id % 2 = 0 ORDER BY u.id",
        ),
        (
            "home visits",
            "INSERT INTO home_visit (user_id, team_id, opened_at) "
            f"SELECT DISTINCT t.requester_id, '{TEAM}', {d.ts(str(int(now.timestamp()) - 600))} "
            "FROM task t WHERE t.id <= 40",
        ),
    ]


# The triggers logged one +1 per seeded task; fold them into one row per status, as the app's
# housekeeping does every minute (left undone, every timed count would sum a million rows).
COMPACT_COUNTS = [
    "CREATE TEMP TABLE bench_counts AS "
    "SELECT status, sum(delta) AS tasks FROM task_count_delta GROUP BY status",
    "DELETE FROM task_count_delta",
    "INSERT INTO task_count_delta (status, delta) SELECT status, tasks FROM bench_counts",
]

HELPERS = [
    "CREATE TEMP TABLE bench_seq (seq INTEGER PRIMARY KEY)",
    "INSERT INTO bench_seq (seq) VALUES (1), (2), (3)",
    "CREATE TEMP TABLE bench_agent (n INTEGER, agent VARCHAR(32), model VARCHAR(64), "
    "input INTEGER, output INTEGER, cache_read INTEGER, cache_write INTEGER, searches INTEGER, "
    "cost FLOAT)",
    "INSERT INTO bench_agent VALUES "
    "(1, 'engineer', 'claude-sonnet-5-5', 1200, 700, 3700, 500, 0, 0.021), "
    "(2, 'researcher', 'claude-haiku-5-5', 900, 300, 0, 900, 1, 0.012), "
    "(3, 'engineer', 'claude-sonnet-5-5', 400, 600, 4300, 300, 0, 0.014), "
    "(4, 'reporter', 'claude-sonnet-5-5', 0, 450, 4600, 600, 0, 0.009)",
]


def seed_sqlite(path: Path, n: int, now: datetime) -> dict[str, float]:
    import sqlite3

    timings: dict[str, float] = {}
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")  # 1 GB while seeding
    conn.execute("PRAGMA temp_store=MEMORY")
    for sql in HELPERS:
        conn.execute(sql)
    for what, sql in seed_statements(Dialect("sqlite"), n, now):
        started = time.perf_counter()
        conn.execute("BEGIN")
        conn.execute(sql)
        conn.execute("COMMIT")
        timings[what] = time.perf_counter() - started
        print(f"  sqlite: {what:<14} {timings[what]:7.1f} s", flush=True)
    started = time.perf_counter()
    conn.execute("BEGIN")
    for sql in COMPACT_COUNTS:
        conn.execute(sql)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    timings["analyze"] = time.perf_counter() - started
    conn.close()
    return timings


def seed_postgres(url: str, n: int, now: datetime) -> dict[str, float]:
    timings: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("SET work_mem = '256MB'")
        for sql in HELPERS:
            conn.execute(sql.replace("TEMP TABLE", "TEMP TABLE IF NOT EXISTS"))
        for what, sql in seed_statements(Dialect("postgresql"), n, now):
            started = time.perf_counter()
            conn.execute(sql)  # type: ignore[arg-type]
            timings[what] = time.perf_counter() - started
            print(f"  postgres: {what:<14} {timings[what]:7.1f} s", flush=True)
        started = time.perf_counter()
        for sql in COMPACT_COUNTS:
            # TRUNCATE, not DELETE: a million dead rows would stay in the table's pages.
            conn.execute(sql.replace("DELETE FROM", "TRUNCATE"))  # type: ignore[arg-type]
        for table in ("task", "turn", "report", "task_event", "llm_call", "research_request"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # type: ignore[arg-type]
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
        conn.execute("VACUUM (ANALYZE)")  # also sets the visibility map: index-only scans
        timings["analyze"] = time.perf_counter() - started
    return timings


# --- timing ------------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    run: Callable[[random.Random], Awaitable[object]]
    samples: list[float] = field(default_factory=list)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def cases(engine: AsyncEngine, n: int, now: datetime) -> list[Case]:
    sessions = session_factory(engine)

    def user(rng: random.Random) -> str:
        return f"U{100000 + rng.randrange(USERS)}"

    async def pm_status(rng: random.Random) -> object:
        overview = await status_overview(sessions=sessions, user_id=user(rng))
        return build_status_blocks(overview.counts, overview.mine)

    async def pm_status_task(rng: random.Random) -> object:
        detail = await load_task_detail(sessions=sessions, task_id=rng.randint(1, n))
        assert detail is not None
        return build_task_detail_blocks(detail, None)

    async def list_blocked(rng: random.Random) -> object:
        task_filter = TaskFilter(kind=ListKind.BLOCKED)
        page = await task_page(sessions=sessions, task_filter=task_filter)
        return build_task_list_blocks(task_filter, page.tasks, next_before_id=page.next_before_id)

    async def app_home(rng: random.Random) -> object:
        board = await home_board(sessions=sessions, timezone="UTC", now=now)
        mine = await home_tasks(sessions=sessions, user_id=user(rng))
        return build_home_view(
            board, mine, acknowledge_action=ACTION_ACKNOWLEDGE, reopen_action=ACTION_REOPEN
        )

    async def standup(rng: random.Random) -> object:
        # What the scheduled standup reads (services/standups.py).
        async with sessions() as session:
            return await standup_digest(session=session, since=now - timedelta(hours=24), until=now)

    return [
        Case("/pm status", pm_status),
        Case("/pm status T-n", pm_status_task),
        Case("/pm list blocked", list_blocked),
        Case("App Home build", app_home),
        Case("standup digest", standup),
    ]


@contextmanager
def captured_sql(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)


def explain(kind: str, target: str, statements: list[tuple[str, Any]]) -> list[str]:
    """The plan of each statement, as the database shows it."""
    out: list[str] = []
    if kind == "sqlite":
        import sqlite3

        conn = sqlite3.connect(target)
        for statement, params in statements:
            out.append("    " + " ".join(statement.split())[:160])
            for row in conn.execute("EXPLAIN QUERY PLAN " + statement, params or ()):
                out.append(f"      {'  ' * _depth(row)}{row[-1]}")
        conn.close()
        return out
    with psycopg.connect(target) as conn:
        for statement, params in statements:
            out.append("    " + " ".join(statement.split())[:160])
            plan = conn.execute(
                "EXPLAIN (ANALYZE, COSTS OFF, SUMMARY OFF) " + statement,  # type: ignore[arg-type]
                params,
            ).fetchall()
            out += [f"      {row[0]}" for row in plan]
    return out


_sqlite_depths: dict[int, int] = {}


def _depth(row: tuple[Any, ...]) -> int:
    node, parent = row[0], row[1]
    depth = _sqlite_depths.get(parent, -1) + 1 if parent else 0
    _sqlite_depths[node] = depth
    return depth


async def measure(kind: str, url: str, explain_target: str, n: int, runs: int) -> None:
    engine = create_engine(url)
    now = datetime.now(UTC)
    rng = random.Random(42)
    # As `pmteam run` does after start (bot/app.py serve): long-lived objects leave the
    # cyclic collector's view, so its full passes don't add tens of ms to a request.
    gc.collect()
    gc.freeze()
    try:
        plans: dict[str, list[str]] = {}
        for case in cases(engine, n, now):
            for _ in range(WARMUP):
                await case.run(rng)
            with captured_sql(engine) as statements:
                await case.run(rng)
            plans[case.name] = explain(kind, explain_target, statements)
            for _ in range(runs):
                started = time.perf_counter()
                await case.run(rng)
                case.samples.append((time.perf_counter() - started) * 1000)
            p50, p99 = percentile(case.samples, 50), percentile(case.samples, 99)
            verdict = "ok" if p99 <= 50 else "OVER 50 ms"
            print(f"  {kind:<8} {case.name:<18} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   {verdict}")
        print(f"\n  {kind} plans:")
        for name, lines in plans.items():
            print(f"  [{name}]")
            print("\n".join(lines))
        print()
    finally:
        await engine.dispose()


def run_sqlite(n: int, runs: int, keep: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="pmteam-bench-") as folder:
        path = keep or Path(folder) / "bench.db"
        if not path.exists():
            upgrade(f"sqlite:///{path}")
            print(f"SQLite {path}: seeding {n:,} tasks")
            started = time.perf_counter()
            seed_sqlite(path, n, datetime.now(UTC))
            seconds = time.perf_counter() - started
            print(f"  seeded in {seconds:.0f} s, {path.stat().st_size / 1e9:.2f} GB\n")
        else:
            upgrade(f"sqlite:///{path}")  # a kept database gets new indexes too
        asyncio.run(measure("sqlite", f"sqlite+aiosqlite:///{path}", str(path), n, runs))


def run_postgres(n: int, runs: int, admin_url: str, keep: str | None) -> None:
    name = keep or f"pmteam_bench_{uuid.uuid4().hex[:8]}"
    url = f"{admin_url.rpartition('/')[0]}/{name}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    try:
        upgrade(url)
        if not exists:
            print(f"PostgreSQL {name}: seeding {n:,} tasks")
            started = time.perf_counter()
            seed_postgres(url, n, datetime.now(UTC))
            with psycopg.connect(url) as conn:
                size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
            gigabytes = (size[0] if size else 0) / 1e9
            print(f"  seeded in {time.perf_counter() - started:.0f} s, {gigabytes:.2f} GB\n")
        asyncio.run(measure("postgres", url, url, n, runs))
    finally:
        if keep is None:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--postgres-url", default=POSTGRES_ADMIN_URL)
    parser.add_argument(
        "--keep-sqlite", type=Path, help="seed this file once and keep it (reused if it exists)"
    )
    parser.add_argument(
        "--keep-postgres", help="seed this database once and keep it (reused if it exists)"
    )
    args = parser.parse_args()
    if args.tasks < 200:
        parser.error("--tasks must be at least 200")
    if args.db in ("sqlite", "both"):
        run_sqlite(args.tasks, args.runs, args.keep_sqlite)
    if args.db in ("postgres", "both"):
        run_postgres(args.tasks, args.runs, args.postgres_url, args.keep_postgres)


if __name__ == "__main__":
    main()
