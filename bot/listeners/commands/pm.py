"""`/pm`: status, lists, standups, report reposts and usage, answered ephemerally in the ack."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError

from bot.core.access import posting_refusal, private_refusal, read_refusal
from bot.core.pm_grammar import (
    EditConventions,
    ListTasks,
    PmCommand,
    RepostReport,
    ShowCalibration,
    ShowConventions,
    ShowHandoffs,
    ShowHelp,
    ShowStatus,
    ShowUsage,
    Standup,
    Unrecognised,
    parse_pm_command,
)
from bot.services.budgets import todays_spend
from bot.services.calibration import WINDOW as CALIBRATION_WINDOW
from bot.services.calibration import team_calibration
from bot.services.deps import Deps, log
from bot.services.handoffs import handoffs_answer
from bot.services.standups import StandupRunner, post_standup_now, standup_preview
from bot.services.status import (
    load_task_detail,
    report_for_repost,
    status_overview,
    task_page,
    usage_report,
)
from bot.services.task_moves import report_card, thread_permalink, viewer_moves
from bot.slack.blocks.calibration import build_calibration_blocks
from bot.slack.blocks.common import Block, plain_fallback, stored_report
from bot.slack.blocks.conventions import build_conventions_blocks, build_conventions_modal
from bot.slack.blocks.pm import (
    build_help_blocks,
    build_notice_blocks,
    build_status_blocks,
    build_task_detail_blocks,
    build_task_list_blocks,
    build_unrecognised_blocks,
    build_usage_blocks,
)
from storage.conventions import channel_conventions
from storage.models import Visibility
from storage.queries import TaskFilter, may_read


def register(app: AsyncApp, deps: Deps, *, standups: StandupRunner) -> None:
    async def handle_pm_command(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        command = parse_pm_command(str(body.get("text") or ""))
        user_id = str(body.get("user_id") or "")
        channel_id = str(body.get("channel_id") or "") or None
        team_id = str(body.get("team_id") or "") or deps.identity.team_id
        try:
            refusal = read_refusal(
                user_id=user_id,
                channel_id=channel_id,
                allowed_channels=deps.settings.allowed_channels,
                allowed_users=deps.settings.allowed_users,
                coordination_channel=deps.settings.coordination_channel,
            )
            if refusal is not None:
                blocks = build_notice_blocks(refusal)
            elif isinstance(command, EditConventions):
                # A modal must open while the trigger is fresh, before the ack.
                notice = await _open_conventions(
                    deps, channel_id=channel_id, team_id=team_id, trigger_id=body.get("trigger_id")
                )
                if notice is None:
                    deps.metrics.inc("pmteam_commands_total", command=type(command).__name__)
                    await ack()
                    return
                blocks = build_notice_blocks(notice)
            elif isinstance(command, ShowConventions):
                blocks = await _show_conventions(deps, channel_id=channel_id, team_id=team_id)
            else:
                blocks = await answer(
                    deps,
                    command,
                    user_id=user_id,
                    channel_id=channel_id,
                    respond=respond,
                    standups=standups,
                )
        except Exception:
            # Never a stack trace (or Slack's "dispatch_failed") for the person typing.
            log.exception("/pm failed", command=type(command).__name__)
            blocks = build_notice_blocks(
                ":warning: Sorry, something went wrong on my side; the details are in my logs."
            )
        deps.metrics.inc("pmteam_commands_total", command=type(command).__name__)
        await ack(text=plain_fallback(blocks), blocks=blocks, response_type="ephemeral")

    app.command("/pm")(handle_pm_command)


async def answer(
    deps: Deps,
    command: PmCommand,
    *,
    user_id: str,
    channel_id: str | None,
    respond: AsyncRespond,
    standups: StandupRunner,
) -> list[Block]:
    """The ephemeral answer to one `/pm` command; slow work goes on after the ack."""
    sessions = deps.sessions
    match command:
        case ShowHelp():
            return build_help_blocks()
        case ShowCalibration():
            calibration = await team_calibration(deps)
            return build_calibration_blocks(calibration, days=CALIBRATION_WINDOW.days)
        case Unrecognised(problem=problem):
            return build_unrecognised_blocks(problem)
        case ShowHandoffs(user_id=owner_id, everyone=everyone):
            return await handoffs_answer(deps, viewer=user_id, owner_id=owner_id, everyone=everyone)
        case ShowStatus(task_id=None):
            overview = await status_overview(sessions=sessions, user_id=user_id)
            return build_status_blocks(overview.counts, overview.mine)
        case ShowStatus(task_id=int(task_id)):
            detail = await load_task_detail(sessions=sessions, task_id=task_id)
            if detail is None:
                return build_notice_blocks(f"There is no task T-{task_id}.")
            task = detail.task
            hidden = private_refusal(
                user_id=user_id,
                requester_id=task.requester_id,
                visibility=task.visibility,
                ref=task.ref,
            )
            if hidden is not None:
                return build_notice_blocks(hidden)
            if not may_read(task, await deps.reader(user_id)):
                return build_notice_blocks(
                    f"{task.ref} was asked in <#{task.channel_id}>, which you're not in: only "
                    "its members, the person who asked and the project managers can read it."
                )
            permalink = await thread_permalink(deps, detail.task)
            moves = await viewer_moves(deps, task=task, user_id=user_id)
            return build_task_detail_blocks(detail, permalink, moves)
        case ListTasks(kind=kind, user_id=listed_user, channel_id=listed_channel):
            task_filter = TaskFilter(
                kind=kind, user_id=listed_user or user_id, channel_id=listed_channel
            )
            page = await task_page(
                sessions=sessions, task_filter=task_filter, reader=await deps.reader(user_id)
            )
            return build_task_list_blocks(
                task_filter, page.tasks, next_before_id=page.next_before_id
            )
        case ShowUsage(period=period):
            usage = await usage_report(
                sessions=sessions, period=period, timezone=deps.settings.timezone
            )
            today = await todays_spend(deps, user_id=user_id)
            return build_usage_blocks(
                usage.usage,
                period=usage.period,
                since=usage.since,
                today=today if today.capped else None,
            )
        case RepostReport(task_id=task_id):
            refused = posting_refusal(
                user_id=user_id, pm_users=deps.settings.pm_users, what="repost a report"
            )
            if refused is not None:
                return build_notice_blocks(refused)
            return await _repost(deps, task_id=task_id, respond=respond)
        case Standup(post=True) if (
            refused := posting_refusal(
                user_id=user_id, pm_users=deps.settings.pm_users, what="post the standup"
            )
        ) is not None:
            return build_notice_blocks(refused)
        case Standup(post=post):
            deps.spawn(
                _standup(standups, post=post, channel_id=channel_id, respond=respond),
                name="pmteam-pm-standup",
            )
            doing = "Posting the standup now" if post else "Preparing a standup preview"
            return build_notice_blocks(f":hourglass_flowing_sand: {doing}…")
    return build_help_blocks()


def _conventions_channel(channel_id: str | None) -> str | None:
    """The channel `/pm conventions` is about, or None where conventions make no sense."""
    return channel_id if channel_id and channel_id.startswith(("C", "G")) else None


async def _show_conventions(deps: Deps, *, channel_id: str | None, team_id: str) -> list[Block]:
    channel = _conventions_channel(channel_id)
    if channel is None:
        return build_notice_blocks(NOT_A_CHANNEL)
    async with deps.sessions() as session:
        found = await channel_conventions(session=session, team_id=team_id, channel_id=channel)
    return build_conventions_blocks(channel, found)


async def _open_conventions(
    deps: Deps, *, channel_id: str | None, team_id: str, trigger_id: Any
) -> str | None:
    """Open the conventions modal; the sentence to answer with instead when it can't open."""
    channel = _conventions_channel(channel_id)
    if channel is None:
        return NOT_A_CHANNEL
    if not trigger_id:
        return "Slack sent no trigger for a modal; run `/pm conventions set` again."
    async with deps.sessions() as session:
        found = await channel_conventions(session=session, team_id=team_id, channel_id=channel)
    try:
        await deps.client.views_open(
            trigger_id=str(trigger_id),
            view=build_conventions_modal(channel, found.text if found else ""),
        )
    except SlackApiError as exc:
        error = exc.response.get("error")
        log.warning("could not open the conventions modal", error=error)
        return f":warning: I couldn't open the conventions editor ({error}); try again."
    return None


NOT_A_CHANNEL = (
    "Conventions belong to a channel: run `/pm conventions` in the channel whose tasks they "
    "are for."
)


async def _repost(deps: Deps, *, task_id: int, respond: AsyncRespond) -> list[Block]:
    channel = deps.settings.coordination_channel
    if not channel:
        return build_notice_blocks(
            "There is no coordination channel to post to (PMTEAM_COORDINATION_CHANNEL is unset)."
        )
    found = await report_for_repost(sessions=deps.sessions, task_id=task_id)
    if found is None:
        return build_notice_blocks(f"There is no task T-{task_id}.")
    task, report = found
    if task.visibility == Visibility.PRIVATE:
        return build_notice_blocks(
            f"{task.ref} was asked privately, so it goes to <#{channel}> only when the person "
            "who asked presses *Share with PM* under its answer."
        )
    if report is None or stored_report(report) is None:
        return build_notice_blocks(f"{task.ref} has no report yet.")
    deps.spawn(
        _post_report(deps, task_id=task_id, channel=channel, respond=respond),
        name="pmteam-pm-report",
    )
    return build_notice_blocks(f"Posting {task.ref}'s last report to <#{channel}>…")


async def _post_report(deps: Deps, *, task_id: int, channel: str, respond: AsyncRespond) -> None:
    card = await report_card(deps, task_id=task_id)
    if card is None:
        await _say(respond, f":warning: T-{task_id}'s report could not be read.")
        return
    try:
        response = await deps.client.chat_postMessage(
            channel=channel, text=card.text, blocks=card.blocks, unfurl_links=False
        )
    except SlackApiError as exc:
        error = exc.response.get("error")
        log.warning("could not repost a report", error=error)
        await _say(respond, f":warning: I couldn't post {card.task.ref}'s report ({error}).")
        return
    await _say(respond, f"Posted {card.task.ref}'s last report to <#{response['channel']}>.")


async def _standup(
    standups: StandupRunner, *, post: bool, channel_id: str | None, respond: AsyncRespond
) -> None:
    try:
        if post:
            confirmation = await post_standup_now(standups, channel_id=channel_id)
            await _say(respond, confirmation)
        else:
            text, blocks = await standup_preview(standups, channel_id=channel_id)
            await respond(text=text, blocks=blocks, response_type="ephemeral")
    except Exception:
        log.exception("standup from /pm failed", post=post, channel=channel_id)
        await _say(respond, ":warning: I couldn't prepare the standup; the details are in my logs.")


async def _say(respond: AsyncRespond, text: str) -> None:
    try:
        await respond(text=text, response_type="ephemeral")
    except Exception:  # the response_url expired or Slack is unreachable: nothing to tell
        log.warning("could not answer through the response_url")
