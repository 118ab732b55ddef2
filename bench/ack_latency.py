"""Ack latency of Slack events: pmteam against a bare Bolt AsyncApp, measured in the same run.

Both apps run in their own processes; signed app_mention events come from a separate load
process (bench/load.py). pmteam does its real intake (dedupe, allowlists, the durable turn
commit in SQLite) before acking; its workers are parked on a slow fake model so the
measurement is the ack path. The CPU each app's process spends per event at its maximum
rate is printed too (from /proc). Two phases per app, then whether pmteam met its goals:
  1. open loop: a fixed offered rate (default 200 events/s for 30 s), p50/p99 latency;
  2. closed loop: 32 requests in flight for 10 s, the maximum sustained rate.

    uv run python bench/ack_latency.py [--rate 200] [--duration 30] [--max-duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox.model import FakeModel  # noqa: E402
from sandbox.slack import FakeSlack  # noqa: E402

SECRET = "bench-signing-secret"
# Slack sends a workspace at most about 8 events/s: the goals leave a wide margin over that.
GOAL_P99_MS = 25.0  # p99 ack at the offered rate (200 events/s by default)
GOAL_RATE = 1_000.0  # events/s sustained, on 2 cores


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)  # noqa: S310 (loopback only)
            return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def load(url: str, *args: str) -> dict[str, object]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "bench" / "load.py"),
        url,
        SECRET,
        *args,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    result: dict[str, object] = json.loads(out)
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    name: str,
    pid: int,
    url: str,
    rate: float,
    duration: float,
    max_duration: float,
    ts_files: list[str],
) -> dict[str, float]:
    warm, opening, closing = (["--ts-file", f] for f in ts_files)
    await load(url, "--mode", "open", "--rate", "50", "--duration", "1", *warm)
    opened = await load(
        url, "--mode", "open", "--rate", str(rate), "--duration", str(duration), *opening
    )
    latencies = list(opened["latencies"])  # type: ignore[call-overload]
    cpu_before = cpu_seconds(pid)
    closed = await load(
        url, "--mode", "closed", "--concurrency", "32", "--duration", str(max_duration), *closing
    )
    closed_latencies = list(closed["latencies"])  # type: ignore[call-overload]
    cpu_per_event = (cpu_seconds(pid) - cpu_before) / max(1, len(closed_latencies))
    row = {
        "p50": percentile(latencies, 0.50),
        "p99": percentile(latencies, 0.99),
        "errors": float(opened["errors"]) + float(closed["errors"]),  # type: ignore[arg-type]
        "max_rate": len(closed_latencies) / float(closed["elapsed"]),  # type: ignore[arg-type]
        "max_p99": percentile(closed_latencies, 0.99),
        "achieved": len(latencies) / float(opened["elapsed"]),  # type: ignore[arg-type]
        "cpu_ms": cpu_per_event * 1000,
    }
    print(
        f"{name:8s} open loop {rate:.0f}/s x {duration:.0f}s: achieved {row['achieved']:.0f}/s "
        f"p50 {row['p50']:.1f} ms  p99 {row['p99']:.1f} ms | closed loop (32 in flight): "
        f"{row['max_rate']:.0f} events/s, p99 {row['max_p99']:.1f} ms, "
        f"{row['cpu_ms']:.3f} ms CPU/event | errors {row['errors']:.0f}",
        flush=True,
    )
    return row


async def seed_messages(
    slack: FakeSlack, folder: Path, rate: float, duration: float, max_duration: float
) -> list[str]:
    """Messages in #engineering for the load to mention, one per event (ts are unique keys)."""
    files = []
    for name, count in (
        ("warm", 60),
        ("open", int(rate * duration) + 10),
        ("closed", int(max_duration * 2500)),
    ):
        stamps = [
            (await slack.post_as_user("U0ALICE", "C0ENG", f"bench message {i}")).ts
            for i in range(count)
        ]
        path = folder / f"{name}.ts"
        path.write_text("\n".join(stamps))
        files.append(str(path))
    return files


async def main(rate: float, duration: float, max_duration: float) -> None:
    slack = FakeSlack(signing_secret=SECRET)
    model = FakeModel(latency=600)  # parks pmteam's workers: the ack path is what is measured
    await slack.start()
    await model.start()
    tmp = tempfile.TemporaryDirectory()
    pm_port, bare_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PMTEAM_"))},
        "SLACK_BOT_TOKEN": "xoxb-1-2-bench",
        "SLACK_SIGNING_SECRET": SECRET,
        "PMTEAM_MODE": "http",
        "PMTEAM_PORT": str(pm_port),
        "PMTEAM_SLACK_API_URL": slack.api_url,
        "PMTEAM_DATABASE_URL": f"sqlite+aiosqlite:///{Path(tmp.name) / 'bench.db'}",
        "PMTEAM_COORDINATION_CHANNEL": "C0PM",
        "PMTEAM_RATE_LIMIT_PER_USER": "0",
        "PMTEAM_LOG_LEVEL": "WARNING",
        "PMTEAM_LOG_FORMAT": "json",
        "ANTHROPIC_API_KEY": "sk-ant-bench",
        "ANTHROPIC_BASE_URL": model.base_url,
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "bot", "run"],
            env=env,
            cwd=tmp.name,
            stdout=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "bare_app.py"), str(bare_port), SECRET],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    try:
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{pm_port}/healthz")
        await asyncio.sleep(1.0)
        ts_files = await seed_messages(slack, Path(tmp.name), rate, duration, max_duration)
        print(
            f"offered load {rate:.0f} events/s for {duration:.0f}s; {os.cpu_count()} cores; SQLite"
        )
        bare = await measure(
            "bare",
            processes[1].pid,
            f"http://127.0.0.1:{bare_port}/slack/events",
            rate,
            duration,
            max_duration,
            ts_files,
        )
        ours = await measure(
            "pmteam",
            processes[0].pid,
            f"http://127.0.0.1:{pm_port}/slack/events",
            rate,
            duration,
            max_duration,
            ts_files,
        )
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        await slack.stop()
        await model.stop()
        tmp.cleanup()
    print(
        f"pmteam/bare: p99 at {rate:.0f}/s {ours['p99'] / bare['p99']:.2f}x, "
        f"max rate {ours['max_rate'] / bare['max_rate']:.2f}x, "
        f"CPU per event at the max {ours['cpu_ms'] / bare['cpu_ms']:.2f}x"
    )
    print(
        f"goals: p99 <= {GOAL_P99_MS:.0f} ms at {rate:.0f}/s: "
        f"{'met' if ours['p99'] <= GOAL_P99_MS else 'NOT met'}; "
        f">= {GOAL_RATE:,.0f} events/s sustained: "
        f"{'met' if ours['max_rate'] >= GOAL_RATE else 'NOT met'}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--max-duration", type=float, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.rate, args.duration, args.max_duration))
