"""The Web API client pmteam uses, who it is in the workspace, and lookups every surface shares."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.config import Settings
from bot.core.fence import ensure_held

# Calls that make something new in Slack: after a reset or a 5xx, Slack may have done it and
# lost the answer, so a blind retry could post twice. The poster looks for its key instead.
NOT_REPEATABLE = ("chat.postMessage", "chat.startStream", "chat.postEphemeral")


def _repeatable(request: HttpRequest) -> bool:
    return not request.url.rstrip("/").endswith(NOT_REPEATABLE)


class _ConnectionErrorRetry(AsyncConnectionErrorRetryHandler):
    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return _repeatable(request) and await super()._can_retry_async(
            state=state, request=request, response=response, error=error
        )


class _ServerErrorRetry(AsyncServerErrorRetryHandler):
    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return _repeatable(request) and await super()._can_retry_async(
            state=state, request=request, response=response, error=error
        )


# Calls that change what people see. Within a turn's work they are fenced: a process whose
# lease on the turn ran out (it was paused, or cut off from the database) makes none of them,
# wherever in the code they come from.
WRITE_PREFIXES = ("chat.", "reactions.", "assistant.threads.", "pins.")
READ_METHODS = frozenset({"chat.getPermalink", "chat.scheduledMessages.list"})


def is_write(api_method: str) -> bool:
    return api_method.startswith(WRITE_PREFIXES) and api_method not in READ_METHODS


class FencedWebClient(AsyncWebClient):
    """The Web API client, refusing writes (`Fenced`) from work whose hold has lapsed."""

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        if is_write(api_method):
            ensure_held()
        return await super().api_call(api_method, **kwargs)


@dataclass(frozen=True)
class BotIdentity:
    team_id: str
    bot_user_id: str
    bot_id: str
    scopes: frozenset[str] = frozenset()


def build_slack_client(
    settings: Settings, token: str | None = None, *, session: aiohttp.ClientSession | None = None
) -> AsyncWebClient:
    """A Web API client that retries Slack's 429s (honouring Retry-After), and 5xx and resets
    of calls that are safe to repeat (see NOT_REPEATABLE).

    Pass a long-lived `session` in a long-running process: without one, slack_sdk opens a new
    HTTP session (and connection) for every call."""
    bot_token = token or (
        settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    )
    return FencedWebClient(
        token=bot_token,
        base_url=settings.slack_api_url,
        session=session,
        retry_handlers=[
            _ConnectionErrorRetry(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            _ServerErrorRetry(max_retry_count=2),
        ],
    )


async def fetch_identity(client: AsyncWebClient) -> BotIdentity:
    response = await client.auth_test()
    scopes = response.headers.get("x-oauth-scopes", "") if response.headers else ""
    return BotIdentity(
        team_id=str(response["team_id"]),
        bot_user_id=str(response["user_id"]),
        bot_id=str(response.get("bot_id") or ""),
        scopes=frozenset(s.strip() for s in scopes.split(",") if s.strip()),
    )


async def permalink(
    client: AsyncWebClient, *, channel: str, ts: str, timeout: float | None = None
) -> str | None:
    """A message's link, or None when Slack refuses (or, with `timeout`, is slow): every
    surface that shows one still works without it."""
    try:
        response = await asyncio.wait_for(
            client.chat_getPermalink(channel=channel, message_ts=ts), timeout=timeout
        )
    except (SlackApiError, TimeoutError):
        return None
    return str(response.get("permalink") or "") or None


def slack_error(exc: SlackApiError) -> str:
    """Slack's error code, or the HTTP status when it answered without one (a 500)."""
    response = exc.response
    return str(response.get("error") or f"HTTP {response.status_code}")


def error_name(exc: BaseException) -> str:
    """What to log (and act on) for a failed Slack call: Slack's error, or the exception's
    kind for a reset or a timeout."""
    return slack_error(exc) if isinstance(exc, SlackApiError) else type(exc).__name__
