"""Signed ack latency while unsigned oversized bodies flood POST /slack/events.

pmteam (`pmteam run`, HTTP mode, SQLite) runs in its own process against the fake Slack in this
one, its workers parked on a slow fake model, as in bench/ack_latency.py. Signed app_mention
events come from bench/load.py (open loop, its own process). The flooders run in another
process: each keeps one connection busy sending unsigned bodies (a fresh timestamp and a wrong
X-Slack-Signature, with a Content-Length) as fast as the server answers. Three scenarios:
  1. baseline: the signed load alone (default 50 events/s for 10 s);
  2. the same load while the flooders send 2 MiB bodies (refused from the header, 413; the
     server still has to take in and drop the bytes that arrive on the connection);
  3. the same load while they send bodies just under the 512 KiB limit, which the server must
     read whole and HMAC before refusing them (401).
Exit status 1 if a signed ack failed or the p99 under a flood exceeds 100 ms.

    uv run python bench/flood.py [--rate 50] [--duration 10] [--flooders 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ack_latency import SECRET, cpu_seconds, free_port, load, percentile, wait_http  # noqa: E402

from sandbox.model import FakeModel  # noqa: E402
from sandbox.slack import FakeSlack  # noqa: E402

GOAL_P99_MS = 100.0  # signed acks under a flood of unsigned bodies
MAX_BODY_BYTES = 512 * 1024  # bot/runtime/http.py, restated so that this file stays standalone


# --- the flooders (a process of their own) -----------------------------------------------------


async def read_response(reader: asyncio.StreamReader) -> str:
    """The status code of one HTTP/1.1 response, its body read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 2)[1]
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


async def flood(url: str, size: int, concurrency: int, ready: Event, stop: Event) -> dict[str, Any]:
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    body = b'{"type":"event_callback","pad":"' + b"a" * max(0, size - 34) + b'"}'
    statuses: Counter[str] = Counter()
    per_second: Counter[int] = Counter()
    sent = 0
    start = time.perf_counter()

    def request_head() -> bytes:
        return (
            f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"X-Slack-Request-Timestamp: {int(time.time())}\r\n"
            f"X-Slack-Signature: v0={'0' * 64}\r\n\r\n"
        ).encode()

    async def client() -> None:
        nonlocal sent
        while True:
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError as exc:
                statuses[f"connect:{type(exc).__name__}"] += 1
                await asyncio.sleep(0.01)
                continue
            try:
                while True:
                    writer.write(request_head())
                    writer.write(body)
                    sent += 1
                    status = await read_response(reader)
                    statuses[status] += 1
                    per_second[int(time.perf_counter() - start)] += 1
                    # The server may answer before the body is in; the next request waits
                    # until this one's bytes are handed to the kernel.
                    await writer.drain()
            except (
                OSError,
                ValueError,
                IndexError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
            ) as exc:
                statuses[f"error:{type(exc).__name__}"] += 1
            finally:
                writer.close()

    tasks = [asyncio.create_task(client()) for _ in range(concurrency)]
    ready.set()
    await asyncio.to_thread(stop.wait)
    elapsed = time.perf_counter() - start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    seconds = [per_second[s] for s in range(1, int(elapsed))]  # whole seconds after the first
    return {
        "sent": sent,
        "answered": sum(v for k, v in statuses.items() if k.isdigit()),
        "statuses": dict(statuses),
        "elapsed": elapsed,
        "per_second_min": min(seconds, default=0),
        "per_second_max": max(seconds, default=0),
        "cpu": time.process_time(),
    }


def flooder_process(
    url: str, size: int, concurrency: int, ready: Event, stop: Event, results: Any
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the bench stops us through `stop`
    results.put(asyncio.run(flood(url, size, concurrency, ready, stop)))


# --- the bench -----------------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    size: int | None  # unsigned body size, None: no flood


def proc_status(pid: int, field: str) -> int:
    """A kB figure from /proc/<pid>/status (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def log_since(path: Path, offset: int) -> tuple[int, Counter[str]]:
    """Bytes pmteam logged after `offset`, and how many lines of each event."""
    with path.open("rb") as handle:
        handle.seek(offset)
        text = handle.read()
    events: Counter[str] = Counter()
    for line in text.decode("utf-8", "replace").splitlines():
        try:
            events[str(json.loads(line).get("event"))] += 1
        except (ValueError, AttributeError):
            events[line[:60]] += 1
    return len(text), events


async def run_scenario(
    scenario: Scenario,
    *,
    pid: int,
    url: str,
    log_path: Path,
    rate: float,
    duration: float,
    flooders: int,
    processes: int,
    ramp: float,
    ts_file: str,
) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    children: list[Any] = []
    stop, results = context.Event(), context.Queue()
    log_before, flood_started = log_path.stat().st_size, time.perf_counter()
    try:
        if scenario.size is not None:
            share = [flooders // processes + (i < flooders % processes) for i in range(processes)]
            for count in (c for c in share if c):
                ready = context.Event()
                child = context.Process(
                    target=flooder_process,
                    args=(url, scenario.size, count, ready, stop, results),
                    daemon=True,
                )
                child.start()
                children.append(child)
                if not await asyncio.to_thread(ready.wait, 30):
                    raise RuntimeError("a flooder did not start")
            await asyncio.sleep(ramp)
        cpu_before = cpu_seconds(pid)
        started = time.perf_counter()
        signed: dict[str, Any] = await load(
            url,
            *("--mode", "open", "--rate", str(rate), "--duration", str(duration)),
            *("--ts-file", ts_file),
        )
        elapsed = time.perf_counter() - started
        cpu_share = (cpu_seconds(pid) - cpu_before) / elapsed
    finally:
        stop.set()
    floods = [await asyncio.to_thread(results.get, True, 30) for _ in children]
    for child in children:
        await asyncio.to_thread(child.join, 10)
    await asyncio.sleep(0.5)  # lets pmteam finish what it was logging
    logged, events = log_since(log_path, log_before)
    log_window = time.perf_counter() - flood_started
    latencies = list(signed["latencies"])
    statuses: Counter[str] = Counter()
    for result in floods:
        statuses.update(result["statuses"])
    flood_elapsed = max((r["elapsed"] for r in floods), default=1.0)
    row = {
        "name": scenario.name,
        "sent": int(signed["sent"]),
        "ok": len(latencies),
        "errors": int(signed["errors"]),
        "p50": percentile(latencies, 0.50) if latencies else float("nan"),
        "p99": percentile(latencies, 0.99) if latencies else float("nan"),
        "max": max(latencies) * 1000 if latencies else float("nan"),
        "flood_sent": sum(r["sent"] for r in floods) / flood_elapsed,
        "flood_answered": sum(r["answered"] for r in floods) / flood_elapsed,
        "flood_per_second": (
            sum(r["per_second_min"] for r in floods),
            sum(r["per_second_max"] for r in floods),
        ),
        "flood_mb_s": sum(r["sent"] for r in floods) * (scenario.size or 0) / flood_elapsed / 1e6,
        "flood_cpu": sum(r["cpu"] for r in floods) / flood_elapsed,
        "statuses": dict(sorted(statuses.items())),
        "server_cpu": cpu_share,
        "rss_mb": proc_status(pid, "VmRSS") / 1024,
        "logged": logged,
        "events": dict(events),
    }
    flood_text = (
        f"flood {row['flood_answered']:.0f} answered/s ({row['flood_sent']:.0f} sent/s, "
        f"{row['flood_mb_s']:.0f} MB/s, {row['flood_per_second'][0]}-"
        f"{row['flood_per_second'][1]} per second) {row['statuses']}, "
        f"flooders' CPU {row['flood_cpu']:.0%}"
        if floods
        else "no flood"
    )
    print(
        f"{scenario.name:16s} signed {row['ok']}/{row['sent']} ok: p50 {row['p50']:.1f} ms, "
        f"p99 {row['p99']:.1f} ms, max {row['max']:.1f} ms | {flood_text} | pmteam CPU "
        f"{cpu_share:.0%} of a core, RSS {row['rss_mb']:.0f} MB | pmteam logged {logged} bytes "
        f"in {log_window:.0f} s: {dict(events) or 'nothing'}",
        flush=True,
    )
    return row


async def seed_messages(slack: FakeSlack, folder: Path, counts: dict[str, int]) -> dict[str, str]:
    """Messages in #engineering for the signed load to mention (their ts are unique keys)."""
    files = {}
    for name, count in counts.items():
        stamps = [
            (await slack.post_as_user("U0ALICE", "C0ENG", f"bench message {i}")).ts
            for i in range(count)
        ]
        path = folder / f"{name}.ts"
        path.write_text("\n".join(stamps))
        files[name] = str(path)
    return files


def kib(text: str) -> int:
    """A size: bytes, or with a KiB / MiB suffix."""
    units = {"kib": 1024, "mib": 1024 * 1024, "k": 1024, "m": 1024 * 1024}
    lowered = text.strip().lower()
    for suffix, factor in units.items():
        if lowered.endswith(suffix):
            return int(float(lowered[: -len(suffix)]) * factor)
    return int(lowered)


async def main(args: argparse.Namespace) -> int:
    scenarios = [
        Scenario("baseline", None),
        Scenario(f"flood {args.size // 1024} KiB", args.size),
        Scenario(f"flood {args.near_size // 1024} KiB", args.near_size),
    ]
    slack = FakeSlack(signing_secret=SECRET)
    model = FakeModel(latency=600)  # parks pmteam's workers: the ack path is what is measured
    await slack.start()
    await model.start()
    tmp = tempfile.TemporaryDirectory()
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PMTEAM_"))},
        "SLACK_BOT_TOKEN": "xoxb-1-2-bench",
        "SLACK_SIGNING_SECRET": SECRET,
        "PMTEAM_MODE": "http",
        "PMTEAM_PORT": str(port),
        "PMTEAM_SLACK_API_URL": slack.api_url,
        "PMTEAM_DATABASE_URL": f"sqlite+aiosqlite:///{Path(tmp.name) / 'bench.db'}",
        "PMTEAM_COORDINATION_CHANNEL": "C0PM",
        "PMTEAM_RATE_LIMIT_PER_USER": "0",
        "PMTEAM_LOG_LEVEL": "WARNING",
        "PMTEAM_LOG_FORMAT": "json",
        "ANTHROPIC_API_KEY": "sk-ant-bench",
        "ANTHROPIC_BASE_URL": model.base_url,
    }
    log_path = Path(tmp.name) / "pmteam.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"],
            env=env,
            cwd=tmp.name,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/slack/events"
    rows = []
    try:
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/healthz")
        await asyncio.sleep(1.0)
        per_phase = int(args.rate * args.duration) + 10
        ts_files = await seed_messages(
            slack, Path(tmp.name), {"warm": 60, **{s.name: per_phase for s in scenarios}}
        )
        print(
            f"signed load {args.rate:.0f} events/s for {args.duration:.0f}s per scenario; "
            f"{args.flooders} flooders in {args.processes} process(es); "
            f"{os.cpu_count()} cores; SQLite; body limit {MAX_BODY_BYTES // 1024} KiB",
            flush=True,
        )
        warm = ("--rate", "50", "--duration", "1", "--ts-file", ts_files["warm"])
        await load(url, "--mode", "open", *warm)
        for scenario in scenarios:
            rows.append(
                await run_scenario(
                    scenario,
                    pid=process.pid,
                    url=url,
                    log_path=log_path,
                    rate=args.rate,
                    duration=args.duration,
                    flooders=args.flooders,
                    processes=args.processes,
                    ramp=args.ramp,
                    ts_file=ts_files[scenario.name],
                )
            )
        peak = proc_status(process.pid, "VmHWM") / 1024
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        await slack.stop()
        await model.stop()
        tmp.cleanup()

    base = rows[0]["p99"]
    print()
    print(
        "| scenario | signed acks ok/sent | p50 | p99 | max | flood answered/s | flood statuses "
        "| p99 / baseline |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        statuses = ", ".join(f"{k}: {v:,}" for k, v in row["statuses"].items()) or "–"
        rate = f"{row['flood_answered']:.0f}" if row["statuses"] else "–"
        print(
            f"| {row['name']} | {row['ok']}/{row['sent']} | {row['p50']:.1f} ms | "
            f"{row['p99']:.1f} ms | {row['max']:.1f} ms | {rate} | {statuses} | "
            f"{row['p99'] / base:.2f}x |"
        )
    print(f"\npmteam's peak RSS over the run: {peak:.0f} MB")
    failed = sum(row["errors"] + row["sent"] - row["ok"] for row in rows)
    worst = max(row["p99"] for row in rows[1:])
    met = failed == 0 and worst <= GOAL_P99_MS
    print(
        f"goal: every signed ack 200 and p99 <= {GOAL_P99_MS:.0f} ms under each flood: "
        f"{'met' if met else 'NOT met'} (failed acks {failed}, worst p99 {worst:.1f} ms)"
    )
    return 0 if met else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--rate", type=float, default=50, help="signed events/s")
    parser.add_argument("--duration", type=float, default=10, help="seconds per scenario")
    parser.add_argument("--flooders", type=int, default=4, help="concurrent flood connections")
    parser.add_argument(
        "--processes", type=int, default=1, help="processes the flood connections are split over"
    )
    parser.add_argument("--size", type=kib, default="2MiB", help="oversized body (B, KiB, MiB)")
    parser.add_argument(
        "--near-size", type=kib, default="500KiB", help="body just under the 512 KiB limit"
    )
    parser.add_argument(
        "--ramp", type=float, default=1.0, help="seconds of flood before the signed load starts"
    )
    sys.exit(asyncio.run(main(parser.parse_args())))
