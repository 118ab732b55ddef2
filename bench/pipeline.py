"""Pipeline throughput: tasks/s with a model of fixed latency, against the ideal N/L.

Runs the real app in HTTP mode against the sandbox fakes. The fake model answers every call
after a fixed delay `d`; a simple task makes `k` model calls (engineer, researcher, engineer,
report with the offline model), so one task's model time is L = k*d and N workers can at best
finish N/L tasks per second. Efficiency = measured / ideal. Also prints the Slack Web API calls
per task.

    uv run python bench/pipeline.py [--workers 4] [--latency 0.25] [--tasks 40]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app import start, stop  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.runtime.logging import configure_logging  # noqa: E402
from sandbox.slack import FakeSlack  # noqa: E402
from storage.migrate import upgrade  # noqa: E402


async def start_model_process(latency: float) -> tuple[asyncio.subprocess.Process, str]:
    """The fake model in its own process, so its CPU time is not counted as pmteam's."""
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox",
        "model",
        "--port",
        str(port),
        "--latency",
        str(latency),
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return process, url
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError("the fake model did not start")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run(workers: int, latency: float, tasks: int) -> dict[str, float]:
    slack = FakeSlack(signing_secret="bench-secret")
    model_process, model_url = await start_model_process(latency)
    await slack.start()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            SLACK_BOT_TOKEN="xoxb-1-2-bench",
            SLACK_SIGNING_SECRET="bench-secret",
            PMTEAM_MODE="http",
            PMTEAM_PORT=0,
            PMTEAM_SLACK_API_URL=slack.api_url,
            PMTEAM_DATABASE_URL=url,
            PMTEAM_COORDINATION_CHANNEL="C0PM",
            ANTHROPIC_API_KEY="sk-ant-bench",
            ANTHROPIC_BASE_URL=model_url,
            PMTEAM_MAX_CONCURRENT_TASKS=workers,
            PMTEAM_RATE_LIMIT_PER_USER=0,
        )
        app = await start(settings, migrate=False)
        slack.set_event_target(f"http://127.0.0.1:{app.http_port}/slack/events")
        try:
            calls_before = len(slack.calls)
            started = time.perf_counter()
            cpu_started = time.process_time()
            for i in range(tasks):
                await slack.post_as_user(
                    "U0ALICE", "C0ENG", f"<@U0PMTEAM> task {i}: design a rate limiter for API {i}"
                )
            try:
                await slack.wait_for(
                    lambda: len(slack.workspace.messages("C0PM")) >= tasks, timeout=tasks * 3
                )
            except TimeoutError:
                await _explain_stall(app, slack, tasks)
                raise
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
            await asyncio.sleep(0.5)  # let the last reaction swaps land before counting calls
            bot_calls = [c for c in slack.calls[calls_before:] if c.token and "xoxb" in c.token]
            turn_seconds = await _turn_seconds(app)
            model_calls = await _model_calls(app)
        finally:
            await stop(app)
            await slack.stop()
            model_process.terminate()
            await model_process.wait()
    per_task = model_calls / tasks
    task_latency = per_task * latency
    ideal = workers / task_latency
    measured = tasks / elapsed
    by_method = collections.Counter(c.method for c in bot_calls)
    print(f"workers N={workers}, model latency d={latency:.3f}s per call, tasks={tasks}")
    print(f"model calls per task k={per_task:.2f}  ->  L = k*d = {task_latency:.2f}s")
    print(f"elapsed {elapsed:.2f}s  measured {measured:.2f} tasks/s  ideal N/L {ideal:.2f} tasks/s")
    print(f"efficiency {measured / ideal:.3f}  (goal >= 0.9)")
    print(f"CPU of this process (pmteam + fake Slack): {cpu / tasks * 1000:.0f} ms per task")
    print(
        f"per turn: {turn_seconds:.2f}s claimed-to-done, of which model time {task_latency:.2f}s "
        f"-> pmteam's own time {turn_seconds - task_latency:.3f}s per turn"
    )
    print(f"Slack Web API calls per task: {len(bot_calls) / tasks:.1f}")
    for method, count in sorted(by_method.items()):
        print(f"  {method:32s} {count / tasks:.2f}")
    return {"efficiency": measured / ideal, "slack_calls_per_task": len(bot_calls) / tasks}


async def _model_calls(app: object) -> int:
    """Model calls made, from pmteam's own usage ledger (one row per call)."""
    from sqlalchemy import func
    from sqlmodel import select

    from storage.models import LLMCall

    async with app.deps.sessions() as session:  # type: ignore[attr-defined]
        count, latency = (
            await session.exec(select(func.count(), func.avg(LLMCall.latency_ms)))
        ).one()
    print(f"model calls as pmteam saw them: {count}, mean latency {latency:.0f} ms")
    return int(count)


async def _turn_seconds(app: object) -> float:
    from sqlmodel import select

    from storage.models import Turn

    async with app.deps.sessions() as session:  # type: ignore[attr-defined]
        turns = (await session.exec(select(Turn))).all()
    from storage.models import LLMCall

    async with app.deps.sessions() as session:  # type: ignore[attr-defined]
        calls = (await session.exec(select(LLMCall).order_by(LLMCall.id))).all()
    by_turn: dict[int, list[LLMCall]] = collections.defaultdict(list)
    for call in calls:
        by_turn[call.turn_id or 0].append(call)
    before = after = between = 0.0
    for t in turns:
        cs = sorted(by_turn[t.id or 0], key=lambda c: c.created_at)
        if not cs or not t.started_at or not t.finished_at:
            continue
        starts = [c.created_at.timestamp() - c.latency_ms / 1000 for c in cs]
        ends = [c.created_at.timestamp() for c in cs]
        before += starts[0] - t.started_at.timestamp()
        after += t.finished_at.timestamp() - ends[-1]
        between += sum(max(0.0, s - e) for s, e in zip(starts[1:], ends[:-1], strict=False))
    n = len(turns)
    print(
        f"gaps per turn: before first call {before / n * 1000:.0f} ms, between calls "
        f"{between / n * 1000:.0f} ms, after last call {after / n * 1000:.0f} ms"
    )
    spans = [
        (t.finished_at - t.started_at).total_seconds()
        for t in turns
        if t.finished_at and t.started_at
    ]
    return sum(spans) / len(spans)


async def _explain_stall(app: object, slack: FakeSlack, tasks: int) -> None:
    from sqlmodel import select

    from storage.models import Turn

    async with app.deps.sessions() as session:  # type: ignore[attr-defined]
        turns = (await session.exec(select(Turn))).all()
    by_status = collections.Counter(turn.status for turn in turns)
    print(f"stalled: {len(slack.workspace.messages('C0PM'))}/{tasks} reports; turns {by_status}")
    for turn in turns:
        if turn.status != "done":
            print(f"  turn {turn.id}: {turn.status} {turn.failure_reason or ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.25)
    parser.add_argument("--tasks", type=int, default=40)
    args = parser.parse_args()
    configure_logging(log_format="console", level="WARNING")
    asyncio.run(run(args.workers, args.latency, args.tasks))


if __name__ == "__main__":
    main()
