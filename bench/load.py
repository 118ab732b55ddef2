"""Load generator for bench/ack_latency.py: signed app_mention events over HTTP, as JSON out.

python bench/load.py URL SECRET --mode open --rate 200 --duration 30
python bench/load.py URL SECRET --mode closed --concurrency 32 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import sys
import time
import uuid

import aiohttp

# Real message timestamps in the fake's #engineering (see --ts-file): pmteam's 👀 reaction then
# lands on a message that exists, as it does in Slack.
EXISTING_TS: list[str] = []


def signed_mention(secret: str, n: int, run: str) -> tuple[bytes, dict[str, str]]:
    if EXISTING_TS:
        ts = EXISTING_TS[n % len(EXISTING_TS)]
    else:
        ts = f"{1_800_000_000 + n}.{int(run[:6], 16) % 1_000_000:06d}"
    body = json.dumps(
        {
            "token": "bench",
            "team_id": "T0SANDBOX",
            "api_app_id": "A0PMTEAM",
            "type": "event_callback",
            "event_id": f"Ev{run}{n:08d}",
            "event_time": int(time.time()),
            "event": {
                "type": "app_mention",
                "user": "U0ALICE",
                "text": f"<@U0PMTEAM> bench task {n}: add an index for the orders query",
                "ts": ts,
                "channel": "C0ENG",
                "event_ts": ts,
                "team": "T0SANDBOX",
            },
            "authorizations": [{"team_id": "T0SANDBOX", "user_id": "U0PMTEAM", "is_bot": True}],
        }
    ).encode()
    stamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256)
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": "v0=" + digest.hexdigest(),
    }
    return body, headers


async def open_loop(url: str, secret: str, rate: float, duration: float) -> dict[str, object]:
    """Send at a fixed schedule whatever the answers do; latency counts from the scheduled time
    (so a stalled server can't hide its queue: no coordinated omission)."""
    run = uuid.uuid4().hex[:8]
    total = int(rate * duration)
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(n: int, scheduled: float) -> None:
            nonlocal errors
            body, headers = signed_mention(secret, n, run)
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
            except aiohttp.ClientError:
                errors += 1
                return
            latencies.append(time.perf_counter() - scheduled)

        start = time.perf_counter() + 0.2
        tasks = []
        for n in range(total):
            scheduled = start + n / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(n, scheduled)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return {"sent": total, "errors": errors, "elapsed": elapsed, "latencies": latencies}


async def closed_loop(
    url: str, secret: str, concurrency: int, duration: float
) -> dict[str, object]:
    """As fast as the server answers, `concurrency` requests in flight: the sustained maximum."""
    run = uuid.uuid4().hex[:8]
    latencies: list[float] = []
    errors = 0
    counter = 0
    deadline = time.perf_counter() + duration
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            nonlocal errors, counter
            while time.perf_counter() < deadline:
                counter += 1
                body, headers = signed_mention(secret, counter, run)
                sent = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        if response.status != 200:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - sent)

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {"sent": counter, "errors": errors, "elapsed": elapsed, "latencies": latencies}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("secret")
    parser.add_argument("--mode", choices=["open", "closed"], default="open")
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--ts-file", help="message timestamps to mention, one per line")
    args = parser.parse_args()
    if args.ts_file:
        with open(args.ts_file) as handle:
            EXISTING_TS.extend(line.strip() for line in handle if line.strip())
    if args.mode == "open":
        result = asyncio.run(open_loop(args.url, args.secret, args.rate, args.duration))
    else:
        result = asyncio.run(closed_loop(args.url, args.secret, args.concurrency, args.duration))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
