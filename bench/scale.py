"""Scale across replicas: tasks/s of 1, 2 and 3 `pmteam run` processes on one PostgreSQL database.

Creates a fresh PostgreSQL database (`pmteam_bench_<random>`, dropped afterwards) and migrates
it once. One fake Slack runs in this process (signed HTTP event delivery) and one fake model in
its own process, answering every call after a fixed delay (default 1 s). Then, for N = 1, 2, 3:
N `pmteam run` processes (HTTP mode, each on its own port, all on that database, 4 workers
each), one warm-up mention per replica worked to the end, then `--tasks-per-replica` x N
mentions in separate threads posted at once, which the fake Slack delivers to a round-robin
proxy in this process that passes each event on to the next replica, and a wait, polling the
database, until every turn is done. Per N it prints tasks/s,
the speed-up against N = 1 and its efficiency against N x, the CPU seconds per task of the
pmteam processes and of PostgreSQL (from /proc), what other processes on the machine used
meanwhile, where the workers' time went, and the PostgreSQL connections per replica at the
peak, against what pmteam's pools allow and the server's max_connections.

Goal: >= 1.9x at 2 replicas and >= 2.8x at 3 at 1 s per model call; exit status 1 if not met.

    uv run python bench/scale.py [--latency 1.0] [--tasks-per-replica 8] [--replicas 1,2,3]
                                 [--warmup 1] [--sequential] [--lease-seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import aiohttp  # noqa: E402
import psycopg  # noqa: E402
from ack_latency import cpu_seconds, free_port, wait_http  # noqa: E402
from aiohttp import web  # noqa: E402

from sandbox.slack import FakeSlack  # noqa: E402
from storage.db import create_blocking_engine, create_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
SECRET = "bench-signing-secret"
WORKERS = 4  # PMTEAM_MAX_CONCURRENT_TASKS per replica
GOALS = {2: 1.9, 3: 2.8}  # speed-up against one replica, at 1 s per model call
BUSY_CORES = 0.25  # other processes' CPU, in cores, above which a figure is flagged
SAMPLE_INTERVAL = 0.05  # seconds between polls of the database (turns done, connections)


# --- CPU from /proc ------------------------------------------------------------------------------


def _stat_fields(pid: int | str) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def postgres_cpu_seconds(exclude: set[int]) -> tuple[float, int]:
    """User + system CPU of every process named `postgres`, with what the postmaster has
    reaped from backends that already exited (cutime + cstime), and how many there are.
    Server-wide: anything else the server does in the window is counted too."""
    ticks = 0
    count = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in exclude:
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            fields = _stat_fields(entry.name)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        ticks += sum(int(fields[i]) for i in (11, 12, 13, 14))
        count += 1
    return ticks / os.sysconf("SC_CLK_TCK"), count


def machine_busy_seconds() -> float:
    """CPU time every core of the machine spent busy so far (not idle, not waiting for I/O)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class BackendCpu:
    """CPU of the PostgreSQL backends serving the bench database: each backend's /proc CPU
    when first seen (0 for one that connected during the run) against its latest. A backend
    that exits between two samples loses what it spent after the earlier one."""

    def __init__(self) -> None:
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}

    def sample(self, pids: list[int], *, at_start: bool = False) -> None:
        for pid in pids:
            try:
                spent = cpu_seconds(pid)
            except (FileNotFoundError, ProcessLookupError):
                continue
            self.first.setdefault(pid, spent if at_start else 0.0)
            self.last[pid] = spent

    @property
    def seconds(self) -> float:
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


# --- the database --------------------------------------------------------------------------------


@dataclass
class ServerFacts:
    version: str
    max_connections: int
    reserved: int


def server_facts(admin_url: str) -> ServerFacts:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        maximum = conn.execute("SHOW max_connections").fetchone()
        reserved = conn.execute("SHOW superuser_reserved_connections").fetchone()
    assert version and maximum and reserved
    return ServerFacts(str(version[0]).split()[0], int(maximum[0]), int(reserved[0]))


def pool_allowance(url: str) -> dict[str, tuple[int, int]]:
    """pool_size and max_overflow of the two engines a replica makes (storage/db.py defaults)."""
    engines = {
        "sessions (async)": create_engine(url).sync_engine,
        "intake writer (blocking)": create_blocking_engine(url, synced=True, connections=1),
    }
    allowed = {}
    for name, engine in engines.items():
        pool: Any = engine.pool
        allowed[name] = (int(pool.size()), int(getattr(pool, "_max_overflow", 0)))
        engine.dispose()
    return allowed


# --- the replicas --------------------------------------------------------------------------------


@dataclass
class Replica:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"


def start_replicas(
    n: int, *, database_url: str, slack: FakeSlack, model_url: str, folder: Path, lease: int
) -> list[Replica]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PMTEAM_", "ANTHROPIC_"))
    }
    replicas = []
    for i in range(n):
        port = free_port()
        env = {
            **base,
            "SLACK_BOT_TOKEN": "xoxb-1-2-bench",
            "SLACK_SIGNING_SECRET": SECRET,
            "PMTEAM_MODE": "http",
            "PMTEAM_PORT": str(port),
            "PMTEAM_SLACK_API_URL": slack.api_url,
            "PMTEAM_DATABASE_URL": database_url,
            "PMTEAM_COORDINATION_CHANNEL": "C0PM",
            "PMTEAM_RATE_LIMIT_PER_USER": "0",
            "PMTEAM_MAX_CONCURRENT_TASKS": str(WORKERS),
            "PMTEAM_LEASE_SECONDS": str(lease),
            "PMTEAM_LOG_LEVEL": "WARNING",
            "PMTEAM_LOG_FORMAT": "json",
            "ANTHROPIC_API_KEY": "sk-ant-bench",
            "ANTHROPIC_BASE_URL": model_url,
        }
        log = folder / f"replica-{n}-{i}.log"
        with log.open("wb") as handle:
            process = subprocess.Popen(
                [sys.executable, "-m", "bot", "run"],
                env=env,
                cwd=folder,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        replicas.append(Replica(process, port, log))
    return replicas


def stop_replicas(replicas: list[Replica]) -> None:
    for replica in replicas:
        if replica.process.poll() is None:
            replica.process.send_signal(signal.SIGINT)
    for replica in replicas:
        try:
            replica.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            replica.process.kill()
            replica.process.wait()


class RoundRobin:
    """A tiny load balancer in front of the replicas: the fake Slack delivers every event to
    `url`, and each request goes on to the next replica in turn, headers and body as they came
    (so the signature still holds), the replica's answer back as it came."""

    FORWARDED = (
        "Content-Type",
        "User-Agent",
        "X-Slack-Request-Timestamp",
        "X-Slack-Signature",
        "X-Slack-Retry-Num",
        "X-Slack-Retry-Reason",
    )

    def __init__(self) -> None:
        self.targets: list[str] = []
        self.sent: Counter[str] = Counter()
        self._next = 0
        self._port = free_port()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/slack/events"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/slack/events", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self._port).start()
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def route_to(self, targets: list[str]) -> None:
        self.targets, self._next = list(targets), 0
        self.sent.clear()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None and self.targets
        target = self.targets[self._next % len(self.targets)]
        self._next += 1
        self.sent[target] += 1
        body = await request.read()
        headers = {k: request.headers[k] for k in self.FORWARDED if k in request.headers}
        try:
            async with self._session.post(
                target, data=body, headers=headers, allow_redirects=False
            ) as response:
                answer = await response.read()
                kept = ("Content-Type", "X-Slack-No-Retry")
                back = {k: response.headers[k] for k in kept if k in response.headers}
                return web.Response(status=response.status, body=answer, headers=back)
        except aiohttp.ClientError:
            return web.Response(status=502)


async def start_model_process(latency: float) -> tuple[asyncio.subprocess.Process, str]:
    """The fake model in its own process, so its CPU is counted as neither ours nor pmteam's."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox",
        "model",
        "--port",
        str(port),
        "--latency",
        str(latency),
        cwd=ROOT,
        stderr=asyncio.subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError("the fake model did not start")


# --- one measurement -----------------------------------------------------------------------------


@dataclass
class Row:
    n: int
    tasks: int
    elapsed: float  # first post to the last turn seen done
    posting: float  # posting every mention, each acked by its replica
    first_round: float  # first post to the claim that made every worker busy
    failed: int
    model_calls: int
    model_seconds: float  # the model calls' latency as pmteam saw it, summed
    turn_seconds: float  # claimed-to-done, summed over turns
    gaps: tuple[float, float, float]  # in turns, summed: before the first call, between, after
    pmteam_cpu: float
    postgres_cpu: float  # the backends of the bench database
    postgres_server_cpu: float  # every postgres process (other databases' work too)
    other_cpu: float  # the rest of the machine, PostgreSQL's background and other databases too
    bench_cpu: float  # this process: the fake Slack, the posting and the polling
    model_cpu: float  # the fake model's process
    peak_connections: int
    peak_active: int  # connections running a statement, at the most
    rest_connections: int
    lock_share: float  # share of samples in which a connection waited on a lock
    new_connections: int  # sessions PostgreSQL opened for the database during the run
    per_replica: list[int] = field(default_factory=list)  # mentions each replica took in

    @property
    def rate(self) -> float:
        return self.tasks / self.elapsed

    @property
    def k(self) -> float:
        return self.model_calls / self.tasks


def turn_timings(
    turns: list[tuple[Any, ...]], calls: list[tuple[Any, ...]]
) -> tuple[float, float, tuple[float, float, float], list[float]]:
    """Model seconds, claimed-to-done seconds, the gaps around the model calls (all summed over
    turns) and the claim times, from (id, started, finished) and (turn, ended, latency_ms)."""
    by_turn: dict[int, list[tuple[float, float]]] = {}
    model = 0.0
    for turn_id, ended, latency_ms in calls:
        seconds = float(latency_ms) / 1000
        by_turn.setdefault(int(turn_id), []).append((float(ended) - seconds, float(ended)))
        model += seconds
    spans = before = between = after = 0.0
    claims = []
    for turn_id, started, finished in turns:
        if started is None or finished is None:
            continue
        started, finished = float(started), float(finished)
        claims.append(started)
        spans += finished - started
        windows = sorted(by_turn.get(int(turn_id), []))
        if not windows:
            continue
        before += windows[0][0] - started
        after += finished - windows[-1][1]
        between += sum(
            max(0.0, s - e) for (s, _), (_, e) in zip(windows[1:], windows[:-1], strict=True)
        )
    return model, spans, (before, between, after), sorted(claims)


async def measure(
    n: int,
    *,
    latency: float,
    per_replica: int,
    database_url: str,
    slack: FakeSlack,
    proxy: RoundRobin,
    model: asyncio.subprocess.Process,
    model_url: str,
    folder: Path,
    lease: int,
    sequential: bool,
    warmup: int,
) -> Row:
    tasks = per_replica * n
    replicas = start_replicas(
        n,
        database_url=database_url,
        slack=slack,
        model_url=model_url,
        folder=folder,
        lease=lease,
    )
    monitor = await psycopg.AsyncConnection.connect(database_url, autocommit=True)

    async def one(sql: str, *params: Any) -> tuple[Any, ...]:
        found = await (await monitor.execute(sql, params or None)).fetchone()
        assert found is not None
        return tuple(found)

    async def every(sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in await (await monitor.execute(sql, params)).fetchall()]

    connections_sql = (
        "SELECT count(*), count(*) FILTER (WHERE state = 'active'), "
        "count(*) FILTER (WHERE wait_event_type = 'Lock'), coalesce(array_agg(pid), '{}') "
        "FROM pg_stat_activity "
        "WHERE datname = current_database() AND backend_type = 'client backend' "
        "AND pid <> pg_backend_pid()"
    )
    try:
        for replica in replicas:
            await asyncio.to_thread(wait_http, f"http://127.0.0.1:{replica.port}/healthz", 90.0)
        await asyncio.sleep(1.0)  # the scheduler's first jobs, the pools' first connections
        if warmup:
            # Each replica's first mention and turn (the intake's engine, the first Slack and
            # model calls) before the measurement: replicas are long-lived, start-up is not
            # what is measured.
            proxy.route_to([r.events_url for r in replicas])
            (mark,) = await one("SELECT coalesce(max(id), 0) FROM turn")
            await asyncio.gather(
                *(
                    slack.post_as_user("U0ALICE", "C0ENG", f"<@U0PMTEAM> warm-up {i} (N={n})")
                    for i in range(warmup * n)
                )
            )
            deadline = time.perf_counter() + 8 * latency * warmup + 60
            warm_sql = "SELECT count(*) FROM turn WHERE id > %s AND status = 'done'"
            while (await one(warm_sql, mark))[0] < warmup * n:
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"N={n}: the warm-up turns did not finish")
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # the warm-up's last Slack calls (reactions) land
        (own_pid,) = await one("SELECT pg_backend_pid()")
        backends = BackendCpu()
        rest, _, _, pids_now = await one(connections_sql)
        proxy.route_to([r.events_url for r in replicas])
        (base,) = await one("SELECT coalesce(max(id), 0) FROM turn")
        sessions_sql = "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        (sessions_before,) = await one(sessions_sql)
        pids = [r.process.pid for r in replicas]
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        pg_before, _ = postgres_cpu_seconds({int(own_pid)})
        machine_before = machine_busy_seconds()
        backends.sample(list(pids_now), at_start=True)
        bench_before, model_before = time.process_time(), cpu_seconds(model.pid)
        wall_started, started = time.time(), time.perf_counter()

        async def mention(i: int) -> None:
            text = f"<@U0PMTEAM> task {i} of {tasks} (N={n}): design a rate limiter for API {i}"
            post = await slack.post_as_user("U0ALICE", "C0ENG", text)
            if not post.deliveries or not all(d.acked for d in post.deliveries):
                raise RuntimeError(f"mention {i} was not acknowledged")

        if sequential:
            for i in range(tasks):
                await mention(i)
        else:  # a burst: Slack delivers events concurrently, as they come
            await asyncio.gather(*(mention(i) for i in range(tasks)))
        posting = time.perf_counter() - started
        peak, peak_active = int(rest), 0
        samples = lock_samples = 0
        deadline = time.perf_counter() + tasks * 8 * latency + 120
        while True:
            done, failed = await one(
                "SELECT count(*) FILTER (WHERE status IN ('done', 'failed')), "
                "count(*) FILTER (WHERE status = 'failed') FROM turn WHERE id > %s",
                base,
            )
            count, active, waiting, pids_now = await one(connections_sql)
            backends.sample(list(pids_now))
            peak, peak_active = max(peak, int(count)), max(peak_active, int(active))
            samples, lock_samples = samples + 1, lock_samples + (int(waiting) > 0)
            if done >= tasks:
                break
            if time.perf_counter() > deadline:
                raise TimeoutError(f"N={n}: {done}/{tasks} turns done after the deadline")
            for replica in replicas:
                if replica.process.poll() is not None:
                    raise RuntimeError(f"a replica exited: {replica.log.read_text()[-2000:]}")
            await asyncio.sleep(SAMPLE_INTERVAL)
        elapsed = time.perf_counter() - started
        pmteam_cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
        pg_after, _ = postgres_cpu_seconds({int(own_pid)})
        machine = machine_busy_seconds() - machine_before
        (sessions_after,) = await one(sessions_sql)
        bench_cpu = time.process_time() - bench_before
        model_cpu = cpu_seconds(model.pid) - model_before
        turns = await every(
            "SELECT id, extract(epoch FROM started_at), extract(epoch FROM finished_at) "
            "FROM turn WHERE id > %s",
            base,
        )
        calls = await every(
            "SELECT turn_id, extract(epoch FROM created_at), latency_ms FROM llm_call "
            "WHERE turn_id > %s",
            base,
        )
    finally:
        await monitor.close()
        await asyncio.to_thread(stop_replicas, replicas)
    model_seconds, turn_seconds, gaps, claims = turn_timings(turns, calls)
    busy_at = claims[min(len(claims), WORKERS * n) - 1] - wall_started if claims else 0.0
    return Row(
        n=n,
        tasks=tasks,
        elapsed=elapsed,
        posting=posting,
        first_round=busy_at,
        failed=int(failed),
        model_calls=len(calls),
        model_seconds=model_seconds,
        turn_seconds=turn_seconds,
        gaps=gaps,
        pmteam_cpu=pmteam_cpu,
        postgres_cpu=backends.seconds,
        postgres_server_cpu=pg_after - pg_before,
        other_cpu=machine - pmteam_cpu - backends.seconds - bench_cpu - model_cpu,
        bench_cpu=bench_cpu,
        model_cpu=model_cpu,
        peak_connections=peak,
        peak_active=peak_active,
        rest_connections=int(rest),
        lock_share=lock_samples / max(1, samples),
        new_connections=int(sessions_after) - int(sessions_before),
        per_replica=sorted(proxy.sent.values()),
    )


def show(row: Row, first: Row, latency: float) -> None:
    speedup = row.rate / first.rate
    ideal = WORKERS * row.n / (row.k * latency)
    per = row.tasks
    own = (row.turn_seconds - row.model_seconds) / per
    capacity = WORKERS * row.n * row.elapsed
    idle = capacity - row.turn_seconds
    before, between, after = (g / per * 1000 for g in row.gaps)
    print(
        f"N={row.n}: {row.tasks} tasks in {row.elapsed:.2f} s = {row.rate:.3f} tasks/s | "
        f"speed-up {speedup:.2f}x, efficiency against {row.n}x {speedup / row.n:.3f} | "
        f"k={row.k:.2f} calls/task, ideal {WORKERS}N/(k*d) {ideal:.3f} tasks/s "
        f"({row.rate / ideal:.3f} of it)",
        flush=True,
    )
    ours = row.pmteam_cpu + row.postgres_cpu + row.bench_cpu + row.model_cpu
    print(
        f"     CPU per task: pmteam {row.pmteam_cpu / per:.3f} s, PostgreSQL "
        f"{row.postgres_cpu / per:.3f} s (this database's backends; "
        f"{row.postgres_server_cpu / per:.3f} s server-wide), fake Slack and bench "
        f"{row.bench_cpu / per:.3f} s, fake model {row.model_cpu / per:.3f} s | in cores over "
        f"the run: pmteam {row.pmteam_cpu / row.elapsed:.2f}, the bench's processes in all "
        f"{ours / row.elapsed:.2f}, everything else on the machine "
        f"{row.other_cpu / row.elapsed:.2f}",
        flush=True,
    )
    print(
        f"     connections: {row.rest_connections} at rest, {row.peak_connections} at peak = "
        f"{row.peak_connections / row.n:.1f} per replica, at most {row.peak_active} active at "
        f"once, a lock wait in {row.lock_share:.0%} of samples, {row.new_connections} new "
        f"connections in the run | mentions per replica {row.per_replica} | failed turns "
        f"{row.failed}",
        flush=True,
    )
    print(
        f"     worker time {capacity:.1f} s: model {row.model_seconds / capacity:.0%} "
        f"(a call {row.model_seconds / max(1, row.model_calls):.3f} s as pmteam sees it), "
        f"pmteam's own in turns {(row.turn_seconds - row.model_seconds) / capacity:.0%} "
        f"({own:.3f} s per turn: {before:.0f} ms before the first call, {between:.0f} ms "
        f"between calls, {after:.0f} ms after the last), idle {idle / capacity:.0%} | "
        f"posting took {row.posting:.2f} s, every worker busy {row.first_round:.2f} s "
        f"after the first post",
        flush=True,
    )


# --- the bench -----------------------------------------------------------------------------------


async def run(args: argparse.Namespace, database_url: str, folder: Path) -> list[Row]:
    slack = FakeSlack(signing_secret=SECRET)
    proxy = RoundRobin()
    await slack.start()
    await proxy.start()
    slack.set_event_target(proxy.url)
    model_process, model_url = await start_model_process(args.latency)
    rows: list[Row] = []
    try:
        for n in args.replicas:
            row = await measure(
                n,
                latency=args.latency,
                per_replica=args.tasks_per_replica,
                database_url=database_url,
                slack=slack,
                proxy=proxy,
                model=model_process,
                model_url=model_url,
                folder=folder,
                lease=args.lease_seconds,
                sequential=args.sequential,
                warmup=args.warmup,
            )
            rows.append(row)
            show(row, rows[0], args.latency)
    finally:
        await slack.stop()
        await proxy.stop()
        model_process.terminate()
        await model_process.wait()
    return rows


def parse_replicas(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("a list of replica counts such as 1,2,3")
    return values


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--latency", type=float, default=1.0, help="seconds per model call")
    parser.add_argument("--tasks-per-replica", type=int, default=8)
    parser.add_argument("--replicas", type=parse_replicas, default=[1, 2, 3])
    parser.add_argument("--lease-seconds", type=int, default=30)
    parser.add_argument("--postgres-url", default=POSTGRES_ADMIN_URL)
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="mentions per replica worked to the end before the measurement (0: none)",
    )
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="post one mention at a time, each acked before the next, instead of a burst",
    )
    args = parser.parse_args()
    if args.replicas[0] != 1:
        parser.error("--replicas must start with 1 (the speed-up is against one replica)")

    facts = server_facts(args.postgres_url)
    name = f"pmteam_bench_{uuid.uuid4().hex[:8]}"
    database_url = f"{args.postgres_url.rpartition('/')[0]}/{name}"
    with psycopg.connect(args.postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        upgrade(database_url)
        allowed = pool_allowance(database_url)
        print(
            f"PostgreSQL {facts.version}, database {name}; {os.cpu_count()} cores; "
            f"model latency {args.latency:.2f} s per call; {WORKERS} workers and "
            f"{args.tasks_per_replica} tasks per replica",
            flush=True,
        )
        with tempfile.TemporaryDirectory() as tmp:
            rows = asyncio.run(run(args, database_url, Path(tmp)))
    finally:
        with psycopg.connect(args.postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    first = rows[0]
    print()
    print(
        "| replicas | tasks | tasks/s | speed-up | efficiency (vs N×) | k | pmteam CPU/task | "
        "PostgreSQL CPU/task | own time/turn | connections per replica (peak) | "
        "other load (cores) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        speedup = row.rate / first.rate
        own = (row.turn_seconds - row.model_seconds) / row.tasks
        print(
            f"| {row.n} | {row.tasks} | {row.rate:.3f} | {speedup:.2f}× | "
            f"{speedup / row.n:.3f} | {row.k:.2f} | {row.pmteam_cpu / row.tasks * 1000:.0f} ms | "
            f"{row.postgres_cpu / row.tasks * 1000:.0f} ms | {own:.2f} s | "
            f"{row.peak_connections / row.n:.1f} | {row.other_cpu / row.elapsed:.2f} |"
        )

    per_replica_allowed = sum(size + overflow for size, overflow in allowed.values())
    sessions_pool = allowed["sessions (async)"]
    in_practice = sum(sessions_pool) + 1  # the intake writer is one thread: one connection
    pools = ", ".join(f"{k} {s}+{o}" for k, (s, o) in allowed.items())
    usable = facts.max_connections - facts.reserved
    peak_per_replica = max(row.peak_connections / row.n for row in rows)

    def fits(total: float) -> str:
        return f"{total:.0f} -> {'fits' if total <= usable else 'does NOT fit'}"

    print()
    print(
        f"pmteam's pools allow per replica: {pools} (pool_size+max_overflow) = "
        f"{per_replica_allowed}; {in_practice} in practice, since the intake writer is one "
        f"thread and so holds one connection; measured at the peak: {peak_per_replica:.1f}"
    )
    print(
        f"PostgreSQL max_connections {facts.max_connections} ({facts.reserved} reserved for "
        f"superusers: {usable} usable). 10 replicas: every pool full "
        f"{fits(10 * per_replica_allowed)}; the sessions pool full and the intake writer "
        f"{fits(10 * in_practice)}; at the peak measured here "
        f"{fits(10 * peak_per_replica)}"
    )
    busy = [row.n for row in rows if row.other_cpu / row.elapsed > BUSY_CORES]
    if busy:
        print(
            f"note: other processes used more than {BUSY_CORES} of a core on average while "
            f"N={', '.join(map(str, busy))} ran: those figures share the cores with them"
        )
    results = []
    met = all(row.failed == 0 for row in rows)
    for n, goal in GOALS.items():
        found = next((r for r in rows if r.n == n), None)
        if found is None:
            continue
        speedup = found.rate / first.rate
        results.append(f">= {goal}x at {n} replicas: {speedup:.2f}x")
        met = met and speedup >= goal
    if args.latency != 1.0:
        print(f"(the goals are set at 1 s per call; this run used {args.latency:.2f} s)")
    print(f"goal: {'; '.join(results) or 'no goal in this run'} -> {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
