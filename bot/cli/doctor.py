"""`pmteam doctor`: each check prints ok or fail, and a failure names its fix."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import anthropic
from slack_sdk.errors import SlackApiError
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.config import Settings
from bot.slack.client import build_slack_client, fetch_identity
from bot.slack.contract import BOT_SCOPES
from storage.db import create_engine
from storage.migrate import current_revision, head_revision


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


def display_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


async def check_database(settings: Settings) -> Check:
    shown = display_url(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error is a failed check, shown to the operator
        return Check(
            "database",
            False,
            f"{shown}: cannot connect ({exc.__class__.__name__}: {str(exc).splitlines()[0]})",
            "check PMTEAM_DATABASE_URL and that the server is running",
        )
    finally:
        await engine.dispose()
    current = await asyncio.to_thread(current_revision, settings.database_url)
    head = head_revision()
    if current != head:
        return Check(
            "database",
            False,
            f"{shown}: schema at revision {current or 'none'}, code expects {head}",
            "run `pmteam db upgrade` (`pmteam run` also upgrades on start)",
        )
    return Check("database", True, f"{shown}: reachable, schema at revision {head}")


async def check_slack(settings: Settings) -> list[Check]:
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
    client = build_slack_client(settings)
    try:
        identity = await fetch_identity(client)
    except SlackApiError as exc:
        return [
            Check(
                "slack",
                False,
                f"auth.test failed: {exc.response.get('error')}",
                "the bot token is wrong or revoked; reinstall the app and copy the new token",
            )
        ]
    except Exception as exc:  # network errors, wrong PMTEAM_SLACK_API_URL
        return [
            Check(
                "slack",
                False,
                f"cannot reach {settings.slack_api_url} ({exc.__class__.__name__})",
                "check the network and PMTEAM_SLACK_API_URL",
            )
        ]
    checks = [Check("slack", True, f"bot <@{identity.bot_user_id}> in team {identity.team_id}")]
    missing = sorted(BOT_SCOPES - identity.scopes)
    if missing:
        checks.append(
            Check(
                "scopes",
                False,
                f"missing: {', '.join(missing)}",
                "update the app from manifest.yml and reinstall it to the workspace",
            )
        )
    else:
        checks.append(Check("scopes", True, "every scope in manifest.yml is granted"))
    channel = settings.coordination_channel
    if not channel:
        checks.append(
            Check(
                "channel",
                False,
                "PMTEAM_COORDINATION_CHANNEL is not set: reports and standups have nowhere to go",
                "set it to the channel id (C…) of your PM channel",
            )
        )
        return checks
    try:
        info = await client.conversations_info(channel=channel)
        member = bool(info["channel"].get("is_member"))
        name = info["channel"].get("name", channel)
    except SlackApiError as exc:
        checks.append(
            Check(
                "channel",
                False,
                f"{channel}: {exc.response.get('error')}",
                "check the channel id in PMTEAM_COORDINATION_CHANNEL",
            )
        )
        return checks
    checks.append(
        Check("channel", True, f"#{name} ({channel}): pmteam is a member")
        if member
        else Check(
            "channel",
            False,
            f"#{name} ({channel}): pmteam is not a member",
            f"type `/invite @pmteam` in #{name}",
        )
    )
    return checks


async def check_model(settings: Settings) -> list[Check]:
    if settings.anthropic_api_key is None and not settings.anthropic_base_url:
        return [
            Check(
                "model",
                False,
                "ANTHROPIC_API_KEY is not set",
                "set ANTHROPIC_API_KEY (console.anthropic.com → API keys)",
            )
        ]
    client = anthropic.AsyncAnthropic(
        api_key=(
            settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else "unset"
        ),
        base_url=settings.anthropic_base_url,
        max_retries=1,
        timeout=15,
    )
    checks: list[Check] = []
    async with client:
        for role, model in (
            ("engineer", settings.engineer_model),
            ("researcher", settings.researcher_model),
        ):
            try:
                await client.models.retrieve(model)
                checks.append(Check("model", True, f"{role} model {model} is available"))
            except anthropic.AuthenticationError:
                checks.append(
                    Check("model", False, "the API key was refused", "check ANTHROPIC_API_KEY")
                )
                break
            except anthropic.NotFoundError:
                checks.append(
                    Check(
                        "model",
                        False,
                        f"{role} model {model} is not available to this key",
                        f"set PMTEAM_{role.upper()}_MODEL to a model your key can use",
                    )
                )
            except anthropic.APIError as exc:
                checks.append(
                    Check(
                        "model",
                        False,
                        f"cannot reach the Anthropic API ({exc.__class__.__name__})",
                        "check the network and ANTHROPIC_BASE_URL",
                    )
                )
                break
    return checks


async def run_checks(settings: Settings) -> list[Check]:
    checks = [await check_database(settings)]
    checks += await check_slack(settings)
    checks += await check_model(settings)
    return checks
