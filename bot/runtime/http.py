"""The HTTP surface: POST /slack/events (HTTP mode), /healthz, /readyz and /metrics."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.runtime.metrics import Metrics

ReadinessCheck = Callable[[], Awaitable[dict[str, str]]]
Collect = Callable[[], Awaitable[None]]

log = structlog.get_logger("pmteam.http")

# Slack's event and interaction payloads are a few kilobytes; a view submission with long
# inputs stays well under this. Anything bigger is refused before it is read.
MAX_BODY_BYTES = 512 * 1024
SIGNATURE_MAX_AGE = 300  # seconds, as Slack documents: older requests may be replays
REFUSAL_LOG_EVERY = 10.0  # seconds between log lines about refused requests


def signature_valid(
    secret: str, body: bytes, timestamp: str | None, signature: str | None, *, now: float
) -> bool:
    """Slack's v0 request signature, checked before anything reads the body: a missing,
    non-numeric or stale timestamp is simply invalid."""
    if not timestamp or not signature or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    if abs(now - int(timestamp)) > SIGNATURE_MAX_AGE:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


@dataclass
class RefusalLog:
    """One short log line per `every` seconds about refused requests, with how many there
    were: a flood of forged requests must not turn the log into an amplifier."""

    every: float = REFUSAL_LOG_EVERY
    clock: Callable[[], float] = time.monotonic
    _last: float = float("-inf")
    _counts: dict[str, int] = field(default_factory=dict)

    def note(self, reason: str) -> None:
        self._counts[reason] = self._counts.get(reason, 0) + 1
        now = self.clock()
        if now - self._last < self.every:
            return
        self._last = now
        counts, self._counts = self._counts, {}
        log.warning("refused requests to /slack/events", **counts)


def build_http_app(
    *,
    bolt: AsyncApp | None,
    metrics: Metrics,
    readiness: ReadinessCheck,
    collect: Collect | None = None,
    signing_secret: str | None = None,
    refusals: RefusalLog | None = None,
    liveness: Callable[[], str | None] | None = None,
) -> web.Application:
    """`collect` sets the gauges just before /metrics renders them. With `signing_secret`,
    a request to /slack/events is verified before its body is parsed or logged. `liveness`
    says what is wrong enough to restart the process (e.g. a Socket Mode connection down too
    long), or None; /healthz fails with it."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    refused = refusals or RefusalLog()

    def refuse(problem: str, status: int = 400) -> web.StreamResponse:
        metrics.inc("pmteam_slack_requests_total", status=str(status))
        refused.note(problem.replace(" ", "_"))
        return web.json_response({"error": problem}, status=status)

    async def slack_events(request: web.Request) -> web.StreamResponse:
        assert bolt is not None
        started = time.perf_counter()
        # The size first, from the header, so an oversized body is never read.
        if (request.content_length or 0) > MAX_BODY_BYTES:
            # Closing the connection spares reading the rest of a body nobody wants.
            too_large = refuse("body too large", 413)
            too_large.force_close()
            return too_large
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return refuse("body too large", 413)
        if signing_secret is not None and not signature_valid(
            signing_secret,
            raw,
            request.headers.get("X-Slack-Request-Timestamp"),
            request.headers.get("X-Slack-Signature"),
            now=time.time(),
        ):
            return refuse("invalid signature", 401)
        if not raw:
            return refuse("empty body")
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            return refuse("body is not UTF-8")
        # Bolt parses the body once, here, and reads it as it goes: broken JSON raises a
        # ValueError, JSON nested past Python's recursion limit a RecursionError, and JSON
        # that isn't an object fails on the first lookup. Each is a body that isn't a Slack
        # request, not a 500.
        try:
            bolt_request = AsyncBoltRequest(
                body=body,
                query=request.query_string,
                headers=request.headers,  # type: ignore[arg-type]
            )
        except ValueError:
            return refuse("body is not valid JSON")
        except RecursionError:
            return refuse("body is nested too deeply")
        except (AttributeError, TypeError):
            return refuse("body is not a JSON object")
        try:
            response = await to_aiohttp_response(await bolt.async_dispatch(bolt_request))
        except RecursionError:
            return refuse("body is nested too deeply")
        metrics.inc("pmteam_slack_requests_total", status=str(response.status))
        metrics.observe("pmteam_ack_seconds", time.perf_counter() - started)
        return response

    async def healthz(_request: web.Request) -> web.StreamResponse:
        problem = liveness() if liveness is not None else None
        if problem is not None:
            return web.json_response({"status": "unhealthy", "problem": problem}, status=503)
        return web.json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.StreamResponse:
        checks = await readiness()
        ready = all(value == "ok" for value in checks.values())
        return web.json_response(
            {"status": "ok" if ready else "unavailable", "checks": checks},
            status=200 if ready else 503,
        )

    async def metrics_text(_request: web.Request) -> web.StreamResponse:
        if collect is not None:
            await collect()
        return web.Response(
            body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    if bolt is not None:
        app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_text)
    return app
