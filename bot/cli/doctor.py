"""`pmteam doctor`: each check prints ok or fail, and a failure names its fix. It changes nothing:
no database file, no migration, no message; every check has a deadline, and they run at once."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.cli.database import NEW_DATABASE, Migrations, probe_database
from bot.config import Settings
from bot.slack.client import fetch_identity
from bot.slack.contract import BOT_SCOPES

DEFAULT_TIMEOUT = 2.0  # seconds each check may take: Slack, Anthropic and the database
ANTHROPIC_API_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
WAIT_LONGER = "(`pmteam doctor --timeout 10` waits longer)"
MORE = "\n" + " " * 19  # a check's next line, under its detail


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None

    def render(self) -> str:
        line = f"{'ok  ' if self.ok else 'FAIL'}  {self.name:<12} {self.detail}"
        if not self.ok and self.fix:
            line += f"\n      {'':<12} fix: {self.fix}"
        return line


def check_mode(settings: Settings) -> Check:
    """What `pmteam run` would listen on, and whether the mode has what it needs."""
    problems = settings.mode_problems()
    if problems:
        return Check("mode", False, problems[0])
    where = f"{settings.host}:{settings.port}"
    if settings.mode == "socket":
        return Check("mode", True, f"Socket Mode; health and metrics on {where}")
    if settings.host in ("127.0.0.1", "localhost", "::1"):
        where += " (this machine only: behind a proxy here, or `pmteam run --host 0.0.0.0`)"
    return Check("mode", True, f"HTTP mode: Slack's requests go to /slack/events on {where}")


async def check_database(
    settings: Settings, *, timeout: float, migrations: Callable[[], Migrations]
) -> Check:
    state = await probe_database(settings.database_url, timeout=timeout)
    if state.problem is not None:
        return Check("database", False, f"{state.shown}: {state.problem}")
    if state.new:
        return Check("database", True, f"{state.shown}: new; {NEW_DATABASE}")
    known = await asyncio.to_thread(migrations)
    problem = state.schema_problem(known)
    if problem is not None:
        return Check("database", False, f"{state.shown}: {problem}")
    if state.up_to_date(known):
        return Check("database", True, f"{state.shown}: reachable, schema at revision {known.head}")
    return Check(
        "database",
        True,
        f"{state.shown}: schema at revision {state.revision}; `pmteam run` migrates it to "
        f"{known.head} on start (or run `pmteam db upgrade`)",
    )


def _slack_client(settings: Settings, token: str, *, timeout: float) -> AsyncWebClient:
    # No retries: the doctor reports what Slack says the first time, within its deadline.
    return AsyncWebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=max(1, math.ceil(timeout)),
        retry_handlers=[],
    )


def _unreachable(name: str, url: str, exc: BaseException, *, timeout: float, setting: str) -> Check:
    if isinstance(exc, TimeoutError):
        what = f"no answer from {url} within {timeout:g} s"
    else:
        what = f"cannot reach {url} ({exc.__class__.__name__})"
    return Check(name, False, what, f"check the network and {setting} {WAIT_LONGER}")


async def check_slack(settings: Settings, *, timeout: float) -> list[Check]:
    if settings.slack_bot_token is None:
        return [
            Check(
                "slack",
                False,
                "SLACK_BOT_TOKEN is not set",
                "create the app from manifest.yml and copy its Bot User OAuth Token (xoxb-…); "
                "or try `pmteam sandbox` first",
            )
        ]
    client = _slack_client(settings, settings.slack_bot_token.get_secret_value(), timeout=timeout)
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        async with asyncio.timeout_at(deadline):
            identity = await fetch_identity(client)
    except SlackApiError as exc:
        if not exc.response.get("error"):
            return [_not_slack("slack", settings, exc)]
        return [
            Check(
                "slack",
                False,
                f"auth.test failed: {exc.response.get('error')}",
                "the bot token is wrong or revoked; reinstall the app and copy the new token",
            )
        ]
    except Exception as exc:  # network errors, wrong PMTEAM_SLACK_API_URL, no answer in time
        return [_slack_unreachable("slack", settings, exc, timeout=timeout)]
    missing = sorted(BOT_SCOPES - identity.scopes)
    checks = [
        Check("slack", True, f"bot <@{identity.bot_user_id}> in team {identity.team_id}"),
        Check(
            "scopes",
            False,
            f"missing: {', '.join(missing)}",
            "update the app from manifest.yml and reinstall it to the workspace",
        )
        if missing
        else Check("scopes", True, "every scope in manifest.yml is granted"),
    ]
    try:
        async with asyncio.timeout_at(deadline):
            checks.append(await _check_channel(client, settings.coordination_channel))
    except Exception as exc:
        checks.append(_slack_unreachable("channel", settings, exc, timeout=timeout))
    return checks


def _slack_unreachable(
    name: str, settings: Settings, exc: BaseException, *, timeout: float
) -> Check:
    return _unreachable(
        name, settings.slack_api_url, exc, timeout=timeout, setting="PMTEAM_SLACK_API_URL"
    )


def _not_slack(name: str, settings: Settings, exc: SlackApiError) -> Check:
    status = getattr(exc.response, "status_code", None)
    return Check(
        name,
        False,
        f"{settings.slack_api_url} answered HTTP {status}, but not as Slack's Web API",
        "check PMTEAM_SLACK_API_URL (the default is https://slack.com/api/)",
    )


async def _check_channel(client: AsyncWebClient, channel: str | None) -> Check:
    if not channel:
        return Check(
            "channel",
            False,
            "PMTEAM_COORDINATION_CHANNEL is not set: reports and standups have nowhere to go",
            "set it to the channel id (C…) of your PM channel",
        )
    try:
        info = await client.conversations_info(channel=channel)
    except SlackApiError as exc:
        return Check(
            "channel",
            False,
            f"{channel}: {exc.response.get('error')}",
            "check the channel id in PMTEAM_COORDINATION_CHANNEL",
        )
    name = info["channel"].get("name", channel)
    if info["channel"].get("is_member"):
        return Check("channel", True, f"#{name} ({channel}): pmteam is a member")
    return Check(
        "channel",
        False,
        f"#{name} ({channel}): pmteam is not a member",
        f"type `/invite @pmteam` in #{name}",
    )


async def check_socket_mode(settings: Settings, *, timeout: float) -> list[Check]:
    """In Socket Mode: the app-level token may open a connection (asked for, not opened)."""
    if settings.mode != "socket" or settings.slack_app_token is None:
        return []
    app_token = settings.slack_app_token.get_secret_value()
    client = _slack_client(settings, app_token, timeout=timeout)
    try:
        async with asyncio.timeout(timeout):
            await client.apps_connections_open(app_token=app_token)
    except SlackApiError as exc:
        if not exc.response.get("error"):
            return [_not_slack("socket", settings, exc)]
        return [
            Check(
                "socket",
                False,
                f"apps.connections.open failed: {exc.response.get('error')}",
                "SLACK_APP_TOKEN is wrong or revoked, or lacks connections:write; make a new "
                "one under 'Basic Information' → App-Level Tokens",
            )
        ]
    except Exception as exc:
        return [_slack_unreachable("socket", settings, exc, timeout=timeout)]
    return [Check("socket", True, "SLACK_APP_TOKEN may open Socket Mode connections")]


async def check_model(settings: Settings, *, timeout: float) -> list[Check]:
    """Each model is asked for by id (GET /v1/models/{id}), which costs no tokens."""
    if settings.anthropic_api_key is None and not settings.anthropic_base_url:
        return [
            Check(
                "model",
                False,
                "ANTHROPIC_API_KEY is not set",
                "set ANTHROPIC_API_KEY (console.anthropic.com → API keys)",
            )
        ]
    base = (settings.anthropic_base_url or ANTHROPIC_API_URL).rstrip("/")
    headers = {"anthropic-version": ANTHROPIC_VERSION}
    if settings.anthropic_api_key is not None:
        headers["x-api-key"] = settings.anthropic_api_key.get_secret_value()
    roles = (("engineer", settings.engineer_model), ("researcher", settings.researcher_model))
    try:
        async with (
            asyncio.timeout(timeout),
            aiohttp.ClientSession(headers=headers) as http,
        ):
            answers = await asyncio.gather(
                *(
                    _model_answer(http, f"{base}/v1/models/{quote(model, safe='')}")
                    for _, model in roles
                )
            )
    except Exception as exc:  # network errors, no answer in time
        return [_unreachable("model", base, exc, timeout=timeout, setting="ANTHROPIC_BASE_URL")]
    if any(status in (401, 403) for status, _ in answers):
        return [Check("model", False, "the API key was refused", "check ANTHROPIC_API_KEY")]
    checks = []
    for (role, model), (status, error) in zip(roles, answers, strict=True):
        if status == 200:
            checks.append(Check("model", True, f"{role} model {model} is available"))
        elif error == "not_found_error":
            checks.append(
                Check(
                    "model",
                    False,
                    f"{role} model {model} is not available to this key",
                    f"set PMTEAM_{role.upper()}_MODEL to a model your key can use",
                )
            )
        elif error is None:
            checks.append(
                Check(
                    "model",
                    False,
                    f"{base} answered HTTP {status}, but not as the Anthropic API",
                    "check ANTHROPIC_BASE_URL, or unset it for the real API",
                )
            )
        else:
            checks.append(
                Check(
                    "model",
                    False,
                    f"the Anthropic API answered {error} (HTTP {status}) for {role} model {model}",
                    "try again later; see status.anthropic.com",
                )
            )
    return checks


async def _model_answer(http: aiohttp.ClientSession, url: str) -> tuple[int, str | None]:
    """The HTTP status and, when the API said why, its error type (`not_found_error`, …)."""
    async with http.get(url) as response:
        body = await response.read()
    if response.status == 200:
        return 200, None
    try:
        error = json.loads(body)["error"]["type"]
    except (ValueError, KeyError, TypeError):
        return response.status, None
    return response.status, str(error)


async def run_checks(
    settings: Settings,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    migrations: Callable[[], Migrations],
    report: Callable[[Check], None] = lambda _check: None,
    mcp: Callable[[Settings], Awaitable[list[Check]]] | None = None,
) -> list[Check]:
    """Every check, started at once; `report` gets each result in a fixed order, as soon as
    it and those before it are in."""
    first = check_mode(settings)
    report(first)
    groups: list[Awaitable[Any]] = [
        check_database(settings, timeout=timeout, migrations=migrations),
        check_slack(settings, timeout=timeout),
        check_socket_mode(settings, timeout=timeout),
        check_model(settings, timeout=timeout),
    ]
    if mcp is not None:
        # The MCP servers' check (bot/cli/doctor_mcp.py), when there are servers to check.
        groups.append(mcp(settings))
    tasks = [asyncio.ensure_future(group) for group in groups]
    checks = [first]
    for task in tasks:
        result: Check | Sequence[Check] = await task
        for check in [result] if isinstance(result, Check) else result:
            report(check)
            checks.append(check)
    return checks
