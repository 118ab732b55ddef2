"""One turn, end to end: thread history, the engineer's streamed answer, the report, the finish."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import structlog
from slack_sdk.errors import SlackApiError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from agents.config import AgentSettings
from agents.engineer import (
    EngineerResult,
    Progress,
    TaskBrief,
    ThreadMessage,
    run_engineer,
)
from agents.errors import AgentError, StreamStalled
from agents.ledger import StorageLedger
from agents.llm import ModelClient, TurnRef
from agents.reports import (
    WAITING_KINDS,
    CompletionReport,
    ReportInput,
    ReportOutcome,
    ReportStatus,
    ResearchNote,
    stored_outcome,
    write_report,
)
from agents.researcher import cited_sources
from agents.templates import spoken_date
from agents.tools.find_related_tasks import RelatedTask
from bot.core.attachments import (
    TEXT_BUDGET_CHARS,
    TOTAL_TEXT_BUDGET_CHARS,
    SharedFile,
    content_blocks,
    without_binary,
)
from bot.core.budget import cap_reached_text, day_start, near_cap_text
from bot.core.estimates import parse_estimate
from bot.core.fence import Fenced, held
from bot.core.mrkdwn import one_line, safe_model_markdown, split_markdown
from bot.core.task_rules import state_moves
from bot.runtime.coalesce import Coalesced
from bot.runtime.mcp import McpServers
from bot.runtime.worker import TurnLease
from bot.services.budgets import todays_spend
from bot.services.calibration import team_calibration
from bot.services.deps import Deps, retry_db, transient_db_error
from bot.services.handoffs import notify_report_handoffs
from bot.services.tool_calls import TurnTools
from bot.slack.blocks.report import (
    build_card_line,
    build_failure_text,
    build_report_blocks,
    build_sources_blocks,
    build_summary_blocks,
    build_working_blocks,
    feedback_block,
    report_fallback_text,
    research_line,
    summary_text,
)
from bot.slack.client import error_name, permalink, slack_error
from bot.slack.files import DownloadRefused, download
from bot.slack.posting import Poster, card_key, carries_key, messages, post_key
from bot.slack.reactions import SEEN_REACTION
from bot.slack.streaming import AnswerStream
from storage.conventions import channel_conventions
from storage.handoffs import task_handoffs
from storage.models import Report, ReportKind, SlackPost, Task, TaskStatus, Turn, Visibility
from storage.queries import first_reported_task, research_done, search_tasks, turn_research
from storage.queue import LeaseLost, complete_turn, fail_turn, release_turn, retry_turn
from storage.records import find_post, forget_post, save_answer, stop_requested_by
from storage.tasks import keep_private, mark_report_posted, mark_report_unposted
from storage.types import utcnow

log = structlog.get_logger("pmteam.pipeline")

FINISH_REACTION: dict[str, str] = {
    ReportStatus.COMPLETED: "white_check_mark",
    ReportStatus.IN_PROGRESS: "hourglass_flowing_sand",
    ReportStatus.BLOCKED: "x",
}
FAILED_REACTION = "x"
STOPPED_REACTION = "black_square_for_stop"
# Progress shown as a line in the streamed answer, with its icon.
PROGRESS_NOTES: dict[str, str] = {
    "research_started": ":mag:",
    "research_failed": ":warning:",
    "tool_started": ":electric_plug:",
    "tool_failed": ":warning:",
    "limit_reached": ":warning:",
}
STOP_POLL_SECONDS = 2.0  # how often a running turn looks for a Stop pressed on another replica
TASK_STATUS_FOR: dict[str, TaskStatus] = {
    ReportStatus.COMPLETED: TaskStatus.COMPLETED,
    ReportStatus.IN_PROGRESS: TaskStatus.IN_PROGRESS,
    ReportStatus.BLOCKED: TaskStatus.BLOCKED,
}


CALIBRATION_TTL = 600.0  # seconds the calibration line is reused


@dataclass(frozen=True)
class Answered:
    text: str
    report_input: ReportInput | None  # what the report is written from; None when stopped
    from_earlier_attempt: bool = False
    stopped_by: str | None = None  # the person who pressed Stop: no report follows


class TurnFailed(Exception):
    """A failure whose message is written for the person in the thread."""


async def _despite_db(post: Callable[[bool], Awaitable[Any]], *, retried: bool, what: str) -> Any:
    """Run `post`, and again after a transient database error (a lookup or the record of what
    was posted). Every try after the first looks in Slack before posting: the failed one may
    have posted and then lost its record."""
    tries = iter([retried])
    return await retry_db(lambda: post(next(tries, True)), what=what)


@dataclass
class TurnPipeline:
    deps: Deps
    model: ModelClient
    agent_settings: AgentSettings
    ledger: StorageLedger
    poster: Poster
    # Boards of recent visitors, refreshed after a turn; finishes in a burst share one refresh.
    home_refresh: Coalesced
    # The team's MCP servers (PMTEAM_MCP_SERVERS), whose tools the engineer may call.
    team_servers: McpServers | None = None
    # Channels Slack says are private (a private channel can have a C id like a public one).
    _private_channels: dict[str, bool] = field(default_factory=dict)
    # (when, line): the calibration line, kept CALIBRATION_TTL seconds.
    _calibration: tuple[float, str] | None = None

    async def process(self, turn: Turn, lease: TurnLease) -> None:
        assert turn.id is not None
        async with self.deps.sessions() as session:
            task = await session.get(Task, turn.task_id)
        assert task is not None and task.id is not None
        metrics = self.deps.metrics
        metrics.observe_since("pmteam_queue_wait_seconds", turn.created_at)
        # The permalink is fetched while the model works, not after it.
        link = asyncio.create_task(
            permalink(self.deps.client, channel=turn.channel_id, ts=task.thread_ts),
            name=f"pmteam-permalink-{turn.id}",
        )
        stop = self.deps.stops.register(turn.id)
        try:
            if await self._over_budget(turn, task, lease):
                return
            answered = await self._answer(turn, task, lease, stop)
            if lease.lost.is_set():
                raise LeaseLost("lease lost while answering")
            if answered.stopped_by is not None:
                await self._finish_stopped(turn, lease, answered)
                self._ended(turn, "stopped")
                return
            outcome = await self._report(turn, task, lease, answered, link)
            await self._finish(turn, lease, outcome, answered.text)
            self._ended(turn, outcome.report.status.value.lower())
            await self._warn_near_cap(turn)
        except (LeaseLost, Fenced):
            log.warning("turn taken over by another worker; stopping here")
            self._ended(turn, "lease_lost")
        except StreamStalled as exc:
            metrics.inc("pmteam_errors_total", type=type(exc).__name__)
            if turn.attempts == 0:
                # The partial answer was closed in the thread; one more try, on any worker.
                log.warning("the model stalled mid-answer; trying the turn once more")
                self._ended(turn, "stalled")
                await self._retry_once(turn, lease)
            else:
                await self._fail(turn, task, lease, str(exc))
        except (AgentError, TurnFailed) as exc:
            metrics.inc("pmteam_errors_total", type=type(exc).__name__)
            await self._fail(turn, task, lease, str(exc))
        except SlackApiError as exc:
            metrics.inc("pmteam_errors_total", type=type(exc).__name__)
            error = slack_error(exc)
            error_id = new_error_id()
            log.exception("Slack refused a call", error=error, error_id=error_id)
            await self._fail(
                turn, task, lease, f"Slack refused a call ({error}).", error_id=error_id
            )
        except Exception as exc:
            metrics.inc("pmteam_errors_total", type=type(exc).__name__)
            if transient_db_error(exc):
                log.warning("the database stayed unavailable; handing the turn back")
                await self._hand_back(turn, lease)
                return
            error_id = new_error_id()
            log.exception("turn failed unexpectedly", error_id=error_id)
            await self._fail(
                turn, task, lease, "something went wrong on my side.", error_id=error_id
            )
        finally:
            self.deps.stops.discard(turn.id)
            # A turn that ends early (a failure, a lost lease) leaves nothing running behind it.
            await _cancelled(link)
            await self._clear_working(turn.id)

    # -- the answer -------------------------------------------------------------------------

    async def _answer(
        self, turn: Turn, task: Task, lease: TurnLease, stop: asyncio.Event
    ) -> Answered:
        assert turn.id is not None and task.id is not None
        turn_id = turn.id
        # Checked on every attempt, not only after a crash: a turn handed back at shutdown
        # keeps attempts at 0 but may have answered already.
        key = post_key(turn.id, "answer")
        posted = await self._post(turn.id, "answer")
        started = await self._post(turn.id, "stream")
        if posted is None and (turn.answer_text or started is not None):
            # An earlier attempt may have finished its answer without recording it (the
            # stream ends with the key in its metadata): find it, and its text if unsaved.
            found = await self._keyed_in_thread(key, turn, task)
            if found is not None:
                if not turn.answer_text:
                    turn.answer_text = str(found.get("text") or "").strip() or "(answer)"
                    text = turn.answer_text
                    await self._write(
                        "the answer found again",
                        lambda session: save_answer(
                            session=session, turn_id=turn_id, owner=lease.owner, answer_text=text
                        ),
                    )
                await self.poster.record(
                    key=key,
                    kind="answer",
                    channel=turn.channel_id,
                    ts=str(found["ts"]),
                    turn_id=turn.id,
                )
                posted = await self._post(turn.id, "answer")
            elif started is not None:
                # Its stream never ended: take it down, so the thread shows one answer.
                await self._retire_earlier_stream(turn, started)
        if posted is not None and turn.answer_text:
            log.info("answer already posted by an earlier attempt; going to the report")
            # Its Stop line is still up if that attempt died right after the answer ended: take
            # it down now, not only once the turn is done.
            await self._clear_working(turn.id)
            history = await self._history(turn, task)
            async with self.deps.sessions() as session:
                rows = await turn_research(session=session, turn_id=turn_id)
            notes = [
                ResearchNote(
                    objective=row.objective,
                    findings=row.findings,
                    sources=len(row.sources),
                    live_sources=row.live_sources,
                    web_searches=row.web_searches,
                )
                for row in rows
            ]
            brief = await self._brief(turn, task)
            report_input = _report_input(brief, history, turn.answer_text, notes)
            return Answered(
                text=turn.answer_text, report_input=report_input, from_earlier_attempt=True
            )

        history = await self._history(turn, task)
        brief = await self._brief(turn, task)
        attachments, unread = await self._attachments(turn)
        brief = replace(brief, attachments=tuple(attachments), unread_files=tuple(unread))
        await self._show_working(turn, task)
        if turn.source == "assistant" and turn.seq == 1:
            await self._assistant_title(turn, task)
        stream = AnswerStream(
            client=self.deps.client,
            channel=turn.channel_id,
            thread_ts=task.thread_ts,
            team_id=turn.team_id,
            user_id=turn.user_id,
            on_started=lambda ts: self._record_stream(turn, ts),
        )

        async def on_progress(progress: Progress) -> None:
            if progress.kind in PROGRESS_NOTES:
                await stream.note(f"{PROGRESS_NOTES[progress.kind]} {progress.message}")
            if turn.source == "assistant":
                await self._assistant_status(turn, task, progress.message)

        async def find_related(query: str, limit: int) -> list[RelatedTask]:
            async with self.deps.sessions() as session:
                found = await search_tasks(
                    session=session,
                    query=query,
                    limit=limit,
                    exclude_task_id=task.id,
                    viewer=task.requester_id,
                )
            return [
                RelatedTask(
                    ref=row.task.ref,
                    title=row.task.title,
                    status=row.task.status,
                    summary=row.summary,
                )
                for row in found
            ]

        team_tools = (
            TurnTools(
                deps=self.deps, servers=self.team_servers, poster=self.poster, turn=turn, task=task
            ).for_engineer()
            if self.team_servers
            else None
        )
        engineer = asyncio.create_task(
            run_engineer(
                model=self.model,
                settings=self.agent_settings,
                task=brief,
                history=history,
                find_related_tasks=find_related,
                research_sink=self.ledger,
                on_text=stream.write,
                on_progress=on_progress,
                team_tools=team_tools,
            ),
            name=f"pmteam-engineer-{turn.id}",
        )
        watcher = asyncio.create_task(self._watch_stop(turn.id, stop), name="pmteam-stop-watch")
        try:
            await asyncio.wait({engineer, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if not engineer.done():
                await _cancelled(engineer)
                return await self._stopped(turn, lease, stream, stopped_by=watcher.result())
            result = engineer.result()
        except BaseException:
            if stream.message_ts:
                # Close what was streamed so it doesn't sit "typing" in the thread forever.
                await stream.write("\n\n_(stopped before the answer was finished)_")
                await stream.finish()
            raise
        finally:
            await _cancelled(engineer)
            await _cancelled(watcher)
        blocks = (
            build_sources_blocks(
                [
                    (n, src.url, src.title)
                    for n, src in cited_sources(result.answer, result.research)
                ],
                consulted=len({src.url for r in result.research for src in r.sources}),
                live=all(r.live_sources for r in result.research),
                web=self.agent_settings.research_web,
            )
            if result.research
            else []
        )
        if unread:
            blocks.append(
                {
                    "type": "context",
                    "elements": [
                        {"type": "mrkdwn", "text": ":paperclip: Not read: " + "; ".join(unread)}
                    ],
                }
            )
        if result.truncated:
            blocks.append(
                {
                    "type": "context",
                    "elements": [
                        {
                            "type": "mrkdwn",
                            "text": ":scissors: This answer hit the length limit and was cut "
                            "short. Ask me to continue in this thread.",
                        }
                    ],
                }
            )
        blocks.append(feedback_block(turn.id))
        key = post_key(turn.id, "answer")
        if result.stream_failed or stream.broken:
            await stream.abandon()
            ts = await self._post_answer_parts(turn, task, result, blocks)
        else:
            try:
                await stream.finish(blocks=blocks or None, metadata=self.poster.metadata(key))
                ts = stream.message_ts[0] if stream.message_ts else None
            except SlackApiError as exc:
                # The answer streamed but the stream won't end: post it whole instead, and
                # take the unfinished message down (or point it at the full answer).
                log.warning("the streamed answer could not be ended", error=slack_error(exc))
                await self._retire_stream(turn, stream)
                ts = await self._post_answer_parts(turn, task, result, blocks)
            self.deps.metrics.inc("pmteam_slack_calls_total", stream.api_calls, kind="answer")
        # The text first, then the post record: a retry that finds the record has the text.
        # The answer is delivered: these writes outlast a lock or a lost connection.
        await self._write(
            "the answer",
            lambda session: save_answer(
                session=session,
                turn_id=turn_id,
                owner=lease.owner,
                answer_text=result.answer,
                exchange=without_binary(result.exchange),
            ),
        )
        await retry_db(
            lambda: self.poster.record(
                key=key, kind="answer", channel=turn.channel_id, ts=ts, turn_id=turn.id
            ),
            what="the answer's post",
        )
        await self._clear_working(turn.id)  # the answer has ended: nothing left to stop
        report_input = _report_input(
            brief,
            history,
            result.answer,
            [ResearchNote.of(research) for research in result.research],
            stopped_early=result.stopped_early,
            truncated=result.truncated,
        )
        return Answered(text=result.answer, report_input=report_input)

    async def _keyed_in_thread(self, key: str, turn: Turn, task: Task) -> dict[str, Any] | None:
        """The message in the task's thread whose metadata carries `key` (every page)."""
        try:
            async for message in messages(
                self.deps.client,
                channel=turn.channel_id,
                thread_ts=task.thread_ts,
                with_metadata=True,
            ):
                if carries_key(message, key, installation=self.poster.installation):
                    return message
        except SlackApiError as exc:
            log.warning("could not look for an earlier answer", error=slack_error(exc))
        return None

    async def _record_stream(self, turn: Turn, ts: str) -> None:
        """The stream's message, recorded as soon as Slack names it: if this process dies
        mid-answer, the next attempt finds it and takes it down."""
        assert turn.id is not None
        try:
            await self.poster.record(
                key=post_key(turn.id, "stream"),
                kind="stream",
                channel=turn.channel_id,
                ts=ts,
                turn_id=turn.id,
            )
        except Exception as exc:  # the answer goes on; only a crash now would leave it stuck
            log.warning("could not record the stream's message", error=type(exc).__name__)

    async def _retire_earlier_stream(self, turn: Turn, started: SlackPost) -> None:
        log.info("an earlier attempt's answer never ended; taking it down")
        if started.ts:
            try:
                await self.deps.client.chat_delete(channel=started.channel_id, ts=started.ts)
            except SlackApiError:
                with contextlib.suppress(SlackApiError):
                    await self.deps.client.chat_stopStream(
                        channel=started.channel_id,
                        ts=started.ts,
                        markdown_text="\n\n_(this attempt broke off; the answer follows)_",
                    )
        async with self.deps.sessions.begin() as session:
            await forget_post(session=session, key=started.key)

    # -- Stop -------------------------------------------------------------------------------

    async def _show_working(self, turn: Turn, task: Task) -> None:
        """A line with Stop while the turn runs (Slack's streaming messages take no buttons
        until they end); removed when the turn ends."""
        assert turn.id is not None
        try:
            await self.poster.post_once(
                turn_id=turn.id,
                kind="working",
                channel=turn.channel_id,
                thread_ts=task.thread_ts,
                text="Working on it…",
                blocks=build_working_blocks(turn.id),
            )
        except SlackApiError as exc:  # the answer matters more than its Stop button
            log.warning("could not show the Stop button", error=exc.response.get("error"))

    async def _clear_working(self, turn_id: int | None) -> None:
        """Take the Stop line down once the answer has ended (or the turn has)."""
        if turn_id is None or not held():
            return  # work taken over elsewhere: the new holder takes it down
        post = await self._post(turn_id, "working")
        if post is None:
            return
        if post.ts:
            try:
                await self.deps.client.chat_delete(channel=post.channel_id, ts=post.ts)
            except SlackApiError as exc:
                if exc.response.get("error") != "message_not_found":
                    log.warning("could not remove the Stop line", error=exc.response.get("error"))
                    return
        async with self.deps.sessions.begin() as session:
            await forget_post(session=session, key=post.key)

    async def _watch_stop(self, turn_id: int, stop: asyncio.Event) -> str:
        """Who pressed Stop, once someone has: at once on this replica, else within a poll."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STOP_POLL_SECONDS)
            async with self.deps.sessions() as session:
                who = await stop_requested_by(session=session, turn_id=turn_id)
            if who is not None:
                return who

    async def _stopped(
        self, turn: Turn, lease: TurnLease, stream: AnswerStream, *, stopped_by: str
    ) -> Answered:
        """Keep what was written, marked stopped; no report follows."""
        assert turn.id is not None
        turn_id = turn.id
        log.info("turn stopped", by=stopped_by)
        key = post_key(turn.id, "answer")
        await stream.write(f"\n\n_:black_square_for_stop: Stopped by <@{stopped_by}>._")
        await stream.finish(metadata=self.poster.metadata(key))
        text = stream.text.strip()
        await self._write(
            "the stopped answer",
            lambda session: save_answer(
                session=session, turn_id=turn_id, owner=lease.owner, answer_text=text
            ),
        )
        ts = stream.message_ts[0] if stream.message_ts else None
        await retry_db(
            lambda: self.poster.record(
                key=key, kind="answer", channel=turn.channel_id, ts=ts, turn_id=turn.id
            ),
            what="the answer's post",
        )
        await self._clear_working(turn.id)
        return Answered(text=text, report_input=None, stopped_by=stopped_by)

    async def _finish_stopped(self, turn: Turn, lease: TurnLease, answered: Answered) -> None:
        assert turn.id is not None
        turn_id = turn.id
        await self._write(
            "the turn's end",
            lambda session: complete_turn(
                session=session,
                turn_id=turn_id,
                owner=lease.owner,
                answer_text=answered.text,
                task_status=TaskStatus.IN_PROGRESS,  # still open: it wasn't finished
                status_note=f"stopped by <@{answered.stopped_by}>",
            ),
        )
        self.deps.spawn(self._swap_reaction(turn, STOPPED_REACTION), name="pmteam-reaction")
        self.home_refresh.request()

    # -- daily spend caps -----------------------------------------------------------------

    async def _over_budget(self, turn: Turn, task: Task, lease: TurnLease) -> bool:
        """At a daily cap (the workspace's or the requester's), the turn ends before any model
        call, and the thread is told when the budget starts over and who can raise it."""
        assert turn.id is not None
        settings = self.deps.settings
        if settings.daily_budget_usd is None and settings.user_daily_budget_usd is None:
            return False
        now = utcnow()
        spend = await todays_spend(self.deps, user_id=turn.user_id, now=now)
        text = cap_reached_text(
            workspace=spend.workspace,
            person=spend.person,
            now=now,
            timezone=settings.timezone,
            pm_users=settings.pm_users,
        )
        if text is None:
            return False
        log.warning(
            "a daily budget is used up; the turn was not started",
            workspace=spend.workspace.phrase(),
            person=spend.person.phrase(),
        )
        self._ended(turn, "over_budget")
        try:
            async with self.deps.sessions.begin() as session:
                await fail_turn(
                    session=session,
                    turn_id=turn.id,
                    owner=lease.owner,
                    reason="today's model budget was used up before this was started",
                )
        except LeaseLost:
            return True  # another worker holds it now and will speak for it
        await self.poster.post_once(
            turn_id=turn.id,
            kind="budget",
            channel=turn.channel_id,
            thread_ts=task.thread_ts,
            text=text,
            retried=True,
        )
        await self._swap_reaction(turn, FAILED_REACTION)
        return True

    async def _warn_near_cap(self, turn: Turn) -> None:
        """Once a day per cap, a line in the PM's channel when spend passes 80 % of it."""
        settings = self.deps.settings
        coordination = settings.coordination_channel
        if not coordination or (
            settings.daily_budget_usd is None and settings.user_daily_budget_usd is None
        ):
            return
        try:
            now = utcnow()
            spend = await todays_spend(self.deps, user_id=turn.user_id, now=now)
            day = day_start(now, settings.timezone).astimezone(ZoneInfo(settings.timezone))
            for budget, user_id in ((spend.workspace, None), (spend.person, turn.user_id)):
                if not budget.near:
                    continue
                await self.poster.post_keyed(
                    key=f"budget:{day:%Y-%m-%d}" + (f":{user_id}" if user_id else ""),
                    kind="budget-warning",
                    turn_id=None,
                    channel=coordination,
                    text=near_cap_text(budget=budget, user_id=user_id, timezone=settings.timezone),
                )
        except Exception as exc:  # the turn is done; a missed warning must not undo it
            log.warning("could not warn about the daily budget", error=error_name(exc))

    def _ended(self, turn: Turn, outcome: str) -> None:
        """Count how a turn ended, and how long it ran."""
        self.deps.metrics.inc("pmteam_turns_total", outcome=outcome)
        self.deps.metrics.observe_since("pmteam_turn_seconds", turn.started_at, outcome=outcome)

    async def _write(self, what: str, write: Callable[[AsyncSession], Awaitable[object]]) -> None:
        """One write transaction, tried again through lock timeouts and lost connections."""

        async def once() -> None:
            async with self.deps.sessions.begin() as session:
                await write(session)

        await retry_db(once, what=what)

    async def _retry_once(self, turn: Turn, lease: TurnLease) -> None:
        assert turn.id is not None
        turn_id = turn.id
        try:
            await self._write(
                "the retry",
                lambda session: retry_turn(
                    session=session, turn_id=turn_id, owner=lease.owner, note="the model stalled"
                ),
            )
        except LeaseLost:
            return

    async def _hand_back(self, turn: Turn, lease: TurnLease) -> None:
        """The database stayed unwritable: give the turn back rather than fail it. Its posts
        are keyed and its answer recorded as far as it got, so the next try goes on from
        there; if even this fails, the lease runs out and the sweeper hands it back."""
        assert turn.id is not None
        self._ended(turn, "handed_back")
        try:
            async with self.deps.sessions.begin() as session:
                await release_turn(session=session, turn_id=turn.id, owner=lease.owner)
        except Exception as exc:
            log.warning("could not hand the turn back; its lease will", error=type(exc).__name__)

    async def _stored_report(self, turn_id: int) -> Report | None:
        async with self.deps.sessions() as session:
            found = await session.exec(select(Report).where(col(Report.turn_id) == turn_id))
            return found.first()

    async def _post(self, turn_id: int, kind: str) -> SlackPost | None:
        async with self.deps.sessions() as session:
            return await find_post(session=session, key=post_key(turn_id, kind))

    async def _brief(self, turn: Turn, task: Task) -> TaskBrief:
        async with self.deps.sessions() as session:
            conventions = await channel_conventions(
                session=session, team_id=turn.team_id, channel_id=turn.channel_id
            )
        return TaskBrief(
            conventions=conventions.text if conventions else "",
            calibration=await self._calibration_line(),
            ref=task.ref,
            request=turn.text,
            requester=f"<@{turn.user_id}>",
            channel=f"<#{turn.channel_id}>",
            turn=TurnRef(task_id=task.id, turn_id=turn.id),
            today=datetime.now(ZoneInfo(self.deps.settings.timezone)).date(),
        )

    async def _retire_stream(self, turn: Turn, stream: AnswerStream) -> None:
        """A streamed message that can't be stopped: delete it, or else say where the full
        answer is (best effort; the full answer follows either way)."""
        for ts in stream.message_ts:
            try:
                await self.deps.client.chat_delete(channel=turn.channel_id, ts=ts)
                continue
            except SlackApiError:
                pass
            with contextlib.suppress(SlackApiError):
                await self.deps.client.chat_update(
                    channel=turn.channel_id,
                    ts=ts,
                    text="(this answer broke off; the full answer follows)",
                )

    async def _post_answer_parts(
        self, turn: Turn, task: Task, result: EngineerResult, blocks: list[dict[str, Any]]
    ) -> str | None:
        """The stream broke: post the whole answer as ordinary messages instead."""
        assert turn.id is not None
        # Each part is its own message: made safe (links shown, no mass pings) on its own.
        parts = [safe_model_markdown(part) for part in split_markdown(result.answer)]
        first: str | None = None
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            ts = await self.poster.post_once(
                turn_id=turn.id,
                kind="answer-part" if index == 0 else f"answer-part-{index + 1}",
                channel=turn.channel_id,
                thread_ts=task.thread_ts,
                text=part[:3000],
                blocks=[{"type": "markdown", "text": part}, *(blocks if last else [])],
                retried=True,
            )
            first = first or ts
        return first

    async def _history(self, turn: Turn, task: Task) -> list[ThreadMessage]:
        """Earlier turns from the DB, plus what people said in between (conversations.replies)."""
        async with self.deps.sessions() as session:
            rows = await session.exec(
                select(Turn).where(col(Turn.task_id) == task.id, col(Turn.seq) < turn.seq)
            )
            earlier = sorted(rows.all(), key=lambda t: t.seq)
        timeline: list[tuple[float, ThreadMessage]] = []
        for past in earlier:
            at = float(past.message_ts)
            timeline.append(
                (
                    at,
                    ThreadMessage(
                        author=f"<@{past.user_id}>",
                        text=past.text,
                        # Rendered as it was sent, research included, when the answer came
                        # from it (an answer without its exchange would misplace it).
                        exchange=tuple(past.exchange) if past.exchange and past.answer_text else (),
                    ),
                )
            )
            if past.answer_text:
                timeline.append(
                    (at + 1e-6, ThreadMessage("pmteam", past.answer_text, from_engineer=True))
                )
        if turn.seq > 1 or task.thread_ts != turn.message_ts:
            known = {past.message_ts for past in earlier} | {turn.message_ts}
            for message in await self._thread_messages(turn, task):
                ts = str(message.get("ts"))
                if ts in known or message.get("bot_id") or not message.get("user"):
                    continue
                if float(ts) >= float(turn.message_ts):
                    continue
                text = str(message.get("text") or "").strip()
                if text:
                    timeline.append(
                        (float(ts), ThreadMessage(author=f"<@{message['user']}>", text=text))
                    )
        timeline.sort(key=lambda item: item[0])
        return [message for _, message in timeline]

    async def _thread_messages(self, turn: Turn, task: Task) -> list[dict[str, Any]]:
        try:
            return [
                message
                async for message in messages(
                    self.deps.client, channel=turn.channel_id, thread_ts=task.thread_ts
                )
            ]
        except SlackApiError as exc:
            log.warning("could not read the thread", error=exc.response.get("error"))
            return []

    async def _assistant_status(self, turn: Turn, task: Task, status: str) -> None:
        try:
            await self.deps.client.assistant_threads_setStatus(
                channel_id=turn.channel_id, thread_ts=task.thread_ts, status=status[:100]
            )
        except SlackApiError as exc:
            log.debug("assistant status not set", error=exc.response.get("error"))

    async def _calibration_line(self) -> str:
        """The calibration line for the engineer's request, recomputed every 10 minutes (it
        changes only as tasks finish); "" when the sample is too small or it can't be read."""
        now = time.monotonic()
        if self._calibration is not None and now - self._calibration[0] < CALIBRATION_TTL:
            return self._calibration[1]
        try:
            line = (await team_calibration(self.deps)).request_line()
        except Exception as exc:  # a figure for the prompt is never worth failing a turn
            log.warning("calibration not read", error=type(exc).__name__)
            line = ""
        self._calibration = (now, line)
        return line

    async def _attachments(self, turn: Turn) -> tuple[list[dict[str, Any]], list[str]]:
        """The files shared with the request, as content blocks, and a line for each one that
        could not be read (its name and why)."""
        blocks: list[dict[str, Any]] = []
        unread: list[str] = []
        if not turn.files:
            return blocks, unread
        max_bytes = int(self.deps.settings.file_max_mb * 1024 * 1024)
        token = self.deps.client.token or ""
        budget = TOTAL_TEXT_BUDGET_CHARS
        session = self.deps.client.session
        own = session is None
        http = session or aiohttp.ClientSession()
        try:
            for stored in turn.files:
                file = SharedFile.from_stored(stored)
                refusal = file.refusal(max_bytes)
                if refusal is None:
                    try:
                        data = await download(http, file, token=token, max_bytes=max_bytes)
                    except DownloadRefused as exc:
                        refusal = str(exc)
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        refusal = f"the download failed ({type(exc).__name__}); share it again"
                if refusal is not None:
                    unread.append(f"{file.name}: {refusal}")
                    continue
                share = min(TEXT_BUDGET_CHARS, budget)
                added = content_blocks(file, data, budget=max(share, 2_000))
                budget -= sum(len(str(b.get("text", ""))) for b in added)
                blocks.extend(added)
        finally:
            if own:
                await http.close()
        log.info("attachments read", read=len(turn.files) - len(unread), unread=len(unread))
        return blocks, unread

    async def _assistant_title(self, turn: Turn, task: Task) -> None:
        """Name the assistant thread after its first request, as its history list shows it."""
        try:
            await self.deps.client.assistant_threads_setTitle(
                channel_id=turn.channel_id,
                thread_ts=task.thread_ts,
                title=one_line(turn.text, 60),
            )
        except SlackApiError as exc:
            log.debug("assistant title not set", error=exc.response.get("error"))

    # -- the report -------------------------------------------------------------------------

    async def _report(
        self,
        turn: Turn,
        task: Task,
        lease: TurnLease,
        answered: Answered,
        link: asyncio.Task[str | None],
    ) -> ReportOutcome:
        assert turn.id is not None and task.id is not None
        turn_id = turn.id
        task_id = task.id
        stored = await self._stored_report(turn.id)
        if stored is not None:
            # An earlier attempt wrote (and may have posted) this report: a new one could
            # disagree with what the PM was already shown.
            outcome = stored_outcome(stored.data, stored.gaps)
        else:
            assert answered.report_input is not None  # only a stopped turn has none
            written = await write_report(
                model=self.model,
                settings=self.agent_settings,
                turn=answered.report_input,
                ref=TurnRef(task_id=task.id, turn_id=turn.id),
            )
            outcome = written
            stored = await retry_db(
                lambda: self.ledger.save_report(
                    written, task_id=task_id, turn_id=turn_id, owner=lease.owner
                ),
                what="the report",
            )
        report_id = stored.id
        assert report_id is not None
        report = outcome.report
        if not report.reportable:
            log.info("a conversational turn: no report to post")
            return outcome
        # Look in Slack before posting when an earlier attempt (or a run handed back at
        # shutdown) may have posted already.
        retried = turn.attempts > 0 or answered.from_earlier_attempt
        gaps = list(outcome.gaps)
        task = await self._visibility(turn, task)
        coordination = self.deps.settings.coordination_channel
        summary = summary_text(
            report,
            coordination=coordination,
            private=task.visibility == Visibility.PRIVATE,
            gaps=gaps,
        )
        summary_blocks = build_summary_blocks(
            report, task=task, turn_id=turn.id, coordination=coordination, gaps=gaps
        )
        posts: dict[str, Coroutine[Any, Any, Any]] = {
            "the summary line": _despite_db(
                lambda again: self.poster.post_once(
                    turn_id=turn_id,
                    kind="summary",
                    channel=turn.channel_id,
                    thread_ts=task.thread_ts,
                    text=summary,
                    blocks=summary_blocks,
                    retried=again,
                ),
                retried=retried,
                what="the summary line",
            )
        }
        if not coordination:
            log.warning("PMTEAM_COORDINATION_CHANNEL is not set; the PM report was not posted")
        elif task.visibility != Visibility.PRIVATE:
            posts["the report's card"] = _despite_db(
                lambda again: self._card_or_later(turn, task, outcome, coordination, link, again),
                retried=retried,
                what="the report's card",
            )
        if task.visibility != Visibility.PRIVATE:
            # Each new handoff to its owner, once (a retry finds the DM it sent).
            posts["the handoff DMs"] = notify_report_handoffs(
                self.deps,
                task=task,
                report_id=report_id,
                permalink=await link,
                poster=self.poster,
                retried=retried,
            )
        # The thread, the coordination channel and the DMs are different channels: post at
        # once. The answer is delivered by now: no post can fail the turn.
        results = await asyncio.gather(*posts.values(), return_exceptions=True)
        for what, failed in zip(posts, results, strict=True):
            if isinstance(failed, BaseException) and not isinstance(failed, Exception):
                raise failed  # a cancellation
            if isinstance(failed, Exception):
                log.warning("a post of the report failed", post=what, error=error_name(failed))
        return outcome

    async def _card_or_later(
        self,
        turn: Turn,
        task: Task,
        outcome: ReportOutcome,
        coordination: str,
        link: asyncio.Task[str | None],
        retried: bool,
    ) -> None:
        """Post or update the card; when Slack won't have it, keep it for housekeeping to
        post later and say so once in the task's thread."""
        assert task.id is not None
        try:
            await self._update_card(turn, task, outcome, coordination, link, retried=retried)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            error = error_name(exc)
            log.warning("the report was not posted; it will be tried again", error=error)
            async with self.deps.sessions.begin() as session:
                await mark_report_unposted(session=session, task_id=task.id, error=error)
            await self._say_unposted(task, coordination, error)
            return
        if task.report_error:
            async with self.deps.sessions.begin() as session:
                await mark_report_posted(session=session, task_id=task.id)

    async def _say_unposted(self, task: Task, coordination: str, error: str) -> None:
        """Once per task: its report is waiting, why, and what would fix it."""
        assert task.id is not None
        fix = UNPOSTED_FIXES.get(error, "I'll keep trying.")
        text = (
            f":warning: Your answer is above, but I couldn't post {task.ref}'s report to "
            f"<#{coordination}> (Slack said `{error}`). {fix} `/pm status {task.ref}` shows "
            "whether it has gone out."
        )
        try:
            await self.poster.post_keyed(
                key=f"task:{task.id}:report-unposted",
                kind="report-unposted",
                turn_id=None,
                channel=task.channel_id,
                thread_ts=task.thread_ts,
                text=text,
                retried=True,
            )
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("could not say the report is waiting", error=error_name(exc))

    async def _visibility(self, turn: Turn, task: Task) -> Task:
        """The task, kept private if Slack says its channel is private."""
        assert task.id is not None
        if task.visibility != Visibility.CHANNEL:
            return task
        private = self._private_channels.get(turn.channel_id)
        if private is None:
            try:
                info = await self.deps.client.conversations_info(channel=turn.channel_id)
            except SlackApiError as exc:
                log.warning(
                    "could not tell whether the channel is private", error=exc.response.get("error")
                )
                return task
            channel = info.get("channel") or {}
            private = bool(
                channel.get("is_private") or channel.get("is_im") or channel.get("is_mpim")
            )
            self._private_channels[turn.channel_id] = private
        if not private:
            return task
        async with self.deps.sessions.begin() as session:
            await keep_private(session=session, task_id=task.id)
        task.visibility = Visibility.PRIVATE
        return task

    async def _update_card(
        self,
        turn: Turn,
        task: Task,
        outcome: ReportOutcome,
        coordination: str,
        link: asyncio.Task[str | None],
        *,
        retried: bool,
    ) -> None:
        """The first report posts the task's card; a later one updates it in place and says
        what changed in the card's thread, so followers are told and the history reads."""
        assert turn.id is not None and task.id is not None
        report, gaps = outcome.report, list(outcome.gaps)
        async with self.deps.sessions() as session:
            named = await first_reported_task(session=session, task_id=task.id)
        if named:  # the card keeps the task's first name, whatever a follow-up asked
            report = report.model_copy(update={"task": named})
        # The card shows the status this turn is about to set, with the buttons it allows.
        shown = Task.model_validate(task.model_dump())
        shown.status = TASK_STATUS_FOR[report.status]
        assert turn.id is not None
        async with self.deps.sessions() as session:
            requests, live_sources = await research_done(session=session, turn_id=turn.id)
            handoffs = await task_handoffs(session=session, task_id=task.id)
        blocks = build_report_blocks(
            report,
            shown,
            await link,
            gaps=gaps,
            status=report.status,
            moves=state_moves(shown, has_report=True, acknowledged=False),
            research=research_line(requests, live_sources),
            handoffs=handoffs,
        )
        text = report_fallback_text(report, task, gaps)
        key = card_key(task.id)
        # Looked for in Slack (back to when the task began) when this turn was tried before.
        card = await self.poster.already_posted(
            key=key,
            kind="card",
            turn_id=turn.id,
            channel=coordination,
            thread_ts=None,
            look_in_slack=retried,
            since=task.created_at,
        )
        if card is None or not card.ts:
            await self.poster.post_keyed(
                key=key,
                kind="card",
                turn_id=turn.id,
                channel=coordination,
                text=text,
                blocks=blocks,
                since=task.created_at,
            )
            return
        await self.deps.client.chat_update(
            channel=coordination, ts=card.ts, text=text, blocks=blocks
        )
        if not card.recorded:
            # Only an earlier attempt of this turn can have posted the card without recording
            # it (a later turn's retry finds it recorded): this turn made the card, so it gets
            # no "changed" line under it.
            return
        previous = await self._previous_report(task.id, turn.id)
        line = build_card_line(task, previous, report, asked=turn.text)
        await self.poster.post_once(
            turn_id=turn.id,
            kind="card-line",
            channel=coordination,
            thread_ts=card.ts,
            text=line,
            retried=retried,
        )

    async def _previous_report(self, task_id: int, turn_id: int) -> CompletionReport | None:
        """The report the card showed before this turn's."""
        async with self.deps.sessions() as session:
            found = await session.exec(
                select(Report)
                .where(
                    col(Report.task_id) == task_id,
                    col(Report.turn_id) != turn_id,
                    col(Report.kind) == ReportKind.BACKEND_WORK,
                )
                .order_by(col(Report.id).desc())
                .limit(1)
            )
            previous = found.first()
        return stored_outcome(previous.data, previous.gaps).report if previous else None

    # -- finishing --------------------------------------------------------------------------

    async def _finish(
        self, turn: Turn, lease: TurnLease, outcome: ReportOutcome, answer: str
    ) -> None:
        assert turn.id is not None
        turn_id = turn.id
        report = outcome.report
        note: str | None = None
        if report.status is ReportStatus.BLOCKED:
            blockers = [
                h.description for h in report.dependencies_handoffs if h.kind in WAITING_KINDS
            ]
            note = "; ".join(blockers)[:500] or "blocked (see the report)"
        estimate = parse_estimate(report.estimated_time)
        await self._write(
            "the turn's end",
            lambda session: complete_turn(
                session=session,
                turn_id=turn_id,
                owner=lease.owner,
                answer_text=answer,
                task_status=TASK_STATUS_FOR[report.status],
                status_note=note,
                estimated_time=report.estimated_time,
                estimate_due_at=utcnow() + estimate if estimate else None,
            ),
        )
        # The turn is done and recorded; the reaction swap needn't hold up the next claim.
        self.deps.spawn(
            self._swap_reaction(turn, FINISH_REACTION[report.status]), name="pmteam-reaction"
        )
        self.home_refresh.request()
        log.info(
            "turn done",
            status=report.status.value,
            min_score=report.min_score,
            red_flags=report.red_flag_count,
            gaps=len(outcome.gaps),
        )

    async def _swap_reaction(self, turn: Turn, name: str) -> None:
        if turn.source == "reopen":
            return  # a Reopen button press: there is no Slack message of its own to mark
        # A 👀 still on its way would land after the swap: drop it, or let it land first.
        await self.deps.seen.settle(turn.channel_id, turn.message_ts)
        client = self.deps.client
        for call, kwargs in (
            (client.reactions_remove, {"name": SEEN_REACTION}),
            (client.reactions_add, {"name": name}),
        ):
            try:
                await call(channel=turn.channel_id, timestamp=turn.message_ts, **kwargs)
            except SlackApiError as exc:
                if exc.response.get("error") not in ("no_reaction", "already_reacted"):
                    log.warning("reaction not changed", error=exc.response.get("error"))

    async def _fail(
        self, turn: Turn, task: Task, lease: TurnLease, reason: str, *, error_id: str | None = None
    ) -> None:
        """The turn failed: said in the thread in pmteam's own words, with an error id that
        finds the details in the log."""
        assert turn.id is not None
        error_id = error_id or new_error_id()
        log.warning("turn failed", reason=reason, error_id=error_id)
        reason = f"{reason} (error id `{error_id}`)"
        self._ended(turn, "failed")
        try:
            async with self.deps.sessions.begin() as session:
                await fail_turn(session=session, turn_id=turn.id, owner=lease.owner, reason=reason)
        except LeaseLost:
            return  # another worker holds it now and will speak for it
        await self._say_failure(turn, task, reason)

    async def _say_failure(self, turn: Turn, task: Task, reason: str) -> None:
        assert turn.id is not None
        try:
            await self.poster.post_once(
                turn_id=turn.id,
                kind="failure",
                channel=turn.channel_id,
                thread_ts=task.thread_ts,
                text=build_failure_text(reason),
                retried=True,
            )
        except SlackApiError as exc:
            log.error("could not tell the thread about a failure", error=exc.response.get("error"))
        await self._swap_reaction(turn, FAILED_REACTION)

    async def on_failed(self, failed: Sequence[Turn]) -> None:
        """Turns that ran out of attempts are said to have failed, in their threads."""
        for turn in failed:
            async with self.deps.sessions() as session:
                task = await session.get(Task, turn.task_id)
            if task is not None:
                await self._say_failure(turn, task, turn.failure_reason or "it kept stopping.")


# What a person can do about a coordination channel that refused the card.
UNPOSTED_FIXES: dict[str, str] = {
    "not_in_channel": "Invite me there (`/invite @pmteam`) and I'll post it within minutes.",
    "channel_not_found": (
        "An admin should check PMTEAM_COORDINATION_CHANNEL (`pmteam doctor`); I'll keep trying."
    ),
    "is_archived": "That channel is archived; an admin should point PMTEAM_COORDINATION_CHANNEL "
    "at a live one. I'll keep trying.",
}


def new_error_id() -> str:
    """A short id for one failure: in the thread's message and on the log lines about it."""
    return secrets.token_hex(4)


def _report_input(
    brief: TaskBrief,
    history: Sequence[ThreadMessage],
    answer: str,
    research: Sequence[ResearchNote],
    *,
    stopped_early: str | None = None,
    truncated: bool = False,
) -> ReportInput:
    return ReportInput(
        ref=brief.ref,
        channel=brief.channel,
        requester=brief.requester,
        request=brief.request,
        answer=answer,
        today=spoken_date(brief.today),
        thread=[
            f"{'pmteam (earlier answer)' if item.from_engineer else item.author}: {item.text}"
            for item in history
        ],
        research=research,
        stopped_early=stopped_early,
        truncated=truncated,
    )


async def _cancelled(task: asyncio.Task[Any]) -> None:
    if not task.done():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
