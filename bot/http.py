"""The HTTP surface: POST /slack/events (HTTP mode), /healthz, /readyz and /metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot.metrics import Metrics

ReadinessCheck = Callable[[], Awaitable[dict[str, str]]]


def _malformed(body: str, content_type: str) -> str | None:
    """Why a body can't be a Slack request, or None. Bolt would answer these with a 500."""
    if not body:
        return "empty body"
    if content_type.startswith("application/json"):
        try:
            parsed = json.loads(body)
        except ValueError:
            return "body is not valid JSON"
        return None if isinstance(parsed, dict) else "JSON body is not an object"
    if "payload=" in body:
        payload = parse_qs(body).get("payload", [""])[0]
        try:
            json.loads(payload)
        except ValueError:
            return "payload is not valid JSON"
    return None


def build_http_app(
    *,
    bolt: AsyncApp | None,
    metrics: Metrics,
    readiness: ReadinessCheck,
) -> web.Application:
    app = web.Application(client_max_size=2 * 1024 * 1024)

    async def slack_events(request: web.Request) -> web.StreamResponse:
        assert bolt is not None
        started = time.perf_counter()
        body = await request.text()
        problem = _malformed(body, request.headers.get("Content-Type", ""))
        if problem:
            metrics.inc("pmteam_slack_requests_total", status="400")
            return web.json_response({"error": problem}, status=400)
        bolt_request = await to_bolt_request(request)
        response = await to_aiohttp_response(await bolt.async_dispatch(bolt_request))
        metrics.inc("pmteam_slack_requests_total", status=str(response.status))
        metrics.inc("pmteam_ack_milliseconds_sum", (time.perf_counter() - started) * 1000)
        return response

    async def healthz(_request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.StreamResponse:
        checks = await readiness()
        ready = all(value == "ok" for value in checks.values())
        return web.json_response(
            {"status": "ok" if ready else "unavailable", "checks": checks},
            status=200 if ready else 503,
        )

    async def metrics_text(_request: web.Request) -> web.StreamResponse:
        return web.Response(text=metrics.render(), content_type="text/plain")

    if bolt is not None:
        app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_text)
    return app
