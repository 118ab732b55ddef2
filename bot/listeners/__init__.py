"""The Slack surface: the Bolt app, and its listeners, one module per surface."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult

from bot.listeners.actions import (
    answer_buttons,
    handoff_buttons,
    list_pages,
    task_buttons,
    tool_approvals,
)
from bot.listeners.commands import pm
from bot.listeners.events import assistant, catch_all, home, mentions, messages
from bot.listeners.shortcuts import make_task
from bot.listeners.views import conventions, reasons
from bot.listeners.views import handoffs as handoff_modals
from bot.services.deps import Deps
from bot.services.intake import Intake
from bot.services.standups import StandupRunner


def register(app: AsyncApp, deps: Deps, *, intake: Intake, standups: StandupRunner) -> None:
    mentions.register(app, intake)
    messages.register(app, intake)
    assistant.register(app, deps)
    home.register(app, deps)
    pm.register(app, deps, standups=standups)
    task_buttons.register(app, deps, wake_worker=intake.wake)
    list_pages.register(app, deps)
    answer_buttons.register(app, deps)
    tool_approvals.register(app, deps)
    reasons.register(app, deps, wake_worker=intake.wake)
    conventions.register(app, deps)
    make_task.register(app, deps, intake=intake)
    handoff_buttons.register(app, deps, wake_worker=intake.wake)
    handoff_modals.register(app, deps)
    # Last: every other event the app receives is acknowledged with 200, never Bolt's 404.
    catch_all.register(app, deps)


def build_bolt_app(deps: Deps, *, intake: Intake, standups: StandupRunner) -> AsyncApp:
    settings = deps.settings
    identity = deps.identity
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""

    # Bolt's default single-workspace authorisation calls auth.test on the first event; ours
    # answers from the identity fetched at start, so no Web API call sits on the ack path.
    async def authorize(**_kwargs: object) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=None,
            team_id=identity.team_id,
            bot_token=token,
            bot_id=identity.bot_id,
            bot_user_id=identity.bot_user_id,
        )

    http_mode = settings.mode == "http"
    app = AsyncApp(
        client=deps.client,
        authorize=authorize,
        signing_secret=(
            settings.slack_signing_secret.get_secret_value()
            if settings.slack_signing_secret
            else None
        ),
        request_verification_enabled=http_mode,
        # Commit first, then ack: the listener finishes before Slack gets its response.
        process_before_response=True,
        logger=logging.getLogger("slack_bolt"),
    )
    register(app, deps, intake=intake, standups=standups)
    return app
