"""The baseline for bench/ack_latency.py: a bare Bolt AsyncApp with a no-op app_mention listener,
served the same way pmteam serves /slack/events (aiohttp + Bolt's adapter).

    python bench/bare_app.py PORT SECRET
"""

from __future__ import annotations

import sys

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult


def build(secret: str) -> web.Application:
    async def authorize(**_kwargs: object) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=None,
            team_id="T0SANDBOX",
            bot_token="xoxb-bench",
            bot_id="B0PMTEAM",
            bot_user_id="U0PMTEAM",
        )

    bolt = AsyncApp(signing_secret=secret, authorize=authorize, process_before_response=True)

    @bolt.event("app_mention")
    async def handle_app_mention() -> None:
        return None

    async def events(request: web.Request) -> web.StreamResponse:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    app = web.Application()
    app.router.add_post("/slack/events", events)
    return app


if __name__ == "__main__":
    web.run_app(build(sys.argv[2]), host="127.0.0.1", port=int(sys.argv[1]), access_log=None)
