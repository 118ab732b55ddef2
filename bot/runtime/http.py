"""The HTTP surface: POST /slack/events (HTTP mode), /healthz, /readyz and /metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.runtime.metrics import Metrics

ReadinessCheck = Callable[[], Awaitable[dict[str, str]]]
Collect = Callable[[], Awaitable[None]]


def build_http_app(
    *,
    bolt: AsyncApp | None,
    metrics: Metrics,
    readiness: ReadinessCheck,
    collect: Collect | None = None,
) -> web.Application:
    """`collect` sets the gauges just before /metrics renders them."""
    app = web.Application(client_max_size=2 * 1024 * 1024)

    def refuse(problem: str) -> web.StreamResponse:
        metrics.inc("pmteam_slack_requests_total", status="400")
        return web.json_response({"error": problem}, status=400)

    async def slack_events(request: web.Request) -> web.StreamResponse:
        assert bolt is not None
        started = time.perf_counter()
        body = await request.text()
        if not body:
            return refuse("empty body")
        # Bolt parses the body once, here, and reads it as it goes: broken JSON raises a
        # ValueError, and JSON that isn't an object fails on the first lookup. Either is a
        # body that isn't a Slack request, not a 500.
        try:
            bolt_request = AsyncBoltRequest(
                body=body,
                query=request.query_string,
                headers=request.headers,  # type: ignore[arg-type]
            )
        except ValueError:
            return refuse("body is not valid JSON")
        except (AttributeError, TypeError):
            return refuse("body is not a JSON object")
        response = await to_aiohttp_response(await bolt.async_dispatch(bolt_request))
        metrics.inc("pmteam_slack_requests_total", status=str(response.status))
        metrics.inc("pmteam_ack_seconds_sum", time.perf_counter() - started)
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
        if collect is not None:
            await collect()
        return web.Response(text=metrics.render(), content_type="text/plain")

    if bolt is not None:
        app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_text)
    return app
