"""The team's tools in a turn: which are offered, each call recorded, a write asking its
requester first (Approve / Deny in the thread), and the answer to that question."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from slack_sdk.errors import SlackApiError

from agents.llm import Wire
from agents.tools import mcp as team_tool
from agents.tools.mcp import McpResult, McpTool, McpTools
from bot.core.mrkdwn import one_line
from bot.runtime.mcp import CallFailed, CallTimedOut, McpServers, ServerTool, ServerUnavailable
from bot.services.deps import Deps, log
from bot.slack.blocks.tools import build_tool_call_blocks, tool_call_text
from bot.slack.posting import Poster, post_key
from storage.models import Approval, Task, ToolCall, Turn
from storage.records import find_post
from storage.tool_calls import (
    close_approval,
    decide_tool_call,
    finish_tool_call,
    mark_tool_call_started,
    start_tool_call,
)

APPROVAL_POLL_SECONDS = 1.0  # how often a waiting call looks for an answer given on another replica

Access = Literal["read", "write", "withheld"]


def approval_kind(call_id: int) -> str:
    """The post kind of a call's approval message (its key is `<turn>:<kind>`)."""
    return f"tool-approval-{call_id}"


def tool_access(tool: ServerTool, write_tools: Sequence[str]) -> Access:
    """How pmteam offers a server's tool: as read-only, as a write that asks the requester
    first (listed in PMTEAM_MCP_WRITE_TOOLS), or not at all: a tool its server says changes
    things, unlisted, is withheld rather than run unasked."""
    if f"{tool.server}.{tool.name}" in write_tools:
        return "write"
    return "withheld" if tool.read_only_hint is False else "read"


def offered_tools(servers: McpServers, write_tools: Sequence[str]) -> list[McpTool]:
    offered = []
    for tool in servers.tools():
        access = tool_access(tool, write_tools)
        if access != "withheld":
            offered.append(
                McpTool(
                    server=tool.server,
                    name=tool.name,
                    description=tool.description,
                    input_schema=tool.input_schema,
                    writes=access == "write",
                )
            )
    return offered


@dataclass
class TurnTools:
    """The team's tools for one turn: runs each call the engineer makes, records it, and
    asks the requester before a write."""

    deps: Deps
    servers: McpServers
    poster: Poster
    turn: Turn
    task: Task

    def for_engineer(self) -> McpTools | None:
        tools = offered_tools(self.servers, self.deps.settings.mcp_write_tools)
        return McpTools(tools=tuple(tools), run=self.run) if tools else None

    async def run(self, tool: McpTool, arguments: Wire) -> McpResult:
        assert self.turn.id is not None and self.task.id is not None
        async with self.deps.sessions.begin() as session:
            call = await start_tool_call(
                session=session,
                task_id=self.task.id,
                turn_id=self.turn.id,
                server=tool.server,
                tool=tool.name,
                arguments=dict(arguments),
                writes=tool.writes,
            )
        assert call.id is not None
        call_id = call.id
        try:
            if tool.writes:
                refused = await self._approval(call, tool)
                if refused is not None:
                    return refused
            return await self._call(call_id, tool, arguments)
        except asyncio.CancelledError:
            # The turn was stopped or lost mid-call: say so on the record and in the thread,
            # after the cancellation, which must not wait for either.
            self.deps.spawn(self._withdrawn(call), name="pmteam-tool-call-withdrawn")
            raise

    async def _call(self, call_id: int, tool: McpTool, arguments: Wire) -> McpResult:
        async with self.deps.sessions.begin() as session:
            await mark_tool_call_started(session=session, call_id=call_id)
        started = time.monotonic()
        try:
            reply = await self.servers.call(tool.server, tool.name, dict(arguments))
        except CallTimedOut:
            outcome = "timed out"
            result = McpResult.not_run(team_tool.timed_out(tool, self.servers_timeout))
        except ServerUnavailable as exc:
            outcome = f"error: server unavailable ({exc.reason})"
            result = McpResult.not_run(team_tool.unavailable(tool, exc.reason))
        except CallFailed as exc:
            outcome = f"error: {exc.reason}"
            result = McpResult.not_run(team_tool.failed(tool, exc.reason))
        else:
            outcome = f"error: {one_line(reply.text, 200)}" if reply.is_error else "ok"
            result = McpResult.answered(reply.text, is_error=reply.is_error)
        duration_ms = int((time.monotonic() - started) * 1000)
        async with self.deps.sessions.begin() as session:
            await finish_tool_call(
                session=session, call_id=call_id, outcome=outcome, duration_ms=duration_ms
            )
        log.info(
            "team tool called",
            server=tool.server,
            tool=tool.name,
            writes=tool.writes,
            outcome=outcome.partition(":")[0],
            duration_ms=duration_ms,
        )
        return result

    @property
    def servers_timeout(self) -> float:
        return self.deps.settings.mcp_timeout_seconds

    # -- approval ---------------------------------------------------------------------------

    async def _approval(self, call: ToolCall, tool: McpTool) -> McpResult | None:
        """Ask the requester in the thread and wait for the answer; None once approved, else
        the result that says why the tool did not run."""
        assert call.id is not None and self.turn.id is not None
        call_id = call.id
        minutes = self.deps.settings.mcp_approval_minutes
        ts = await self.poster.post_once(
            turn_id=self.turn.id,
            kind=approval_kind(call_id),
            channel=self.turn.channel_id,
            thread_ts=self.task.thread_ts,
            text=tool_call_text(call, ref=self.task.ref, requester=self.turn.user_id),
            blocks=build_tool_call_blocks(
                call, ref=self.task.ref, requester=self.turn.user_id, approval_minutes=minutes
            ),
        )
        log.info("team tool waiting for approval", server=tool.server, tool=tool.name)
        decided = await self._decision(call_id, minutes * 60)
        if decided.approval == Approval.APPROVED:
            return None
        if decided.approval == Approval.TIMED_OUT:
            outcome = "not approved in time"
            result = McpResult.not_run(team_tool.not_approved_in_time(tool, minutes))
            await self._redraw(decided, ts)  # a click says so itself; a timeout has no click
        else:
            outcome = "denied"
            by = f"<@{decided.decided_by}>" if decided.decided_by else "someone"
            result = McpResult.not_run(team_tool.declined(tool, by))
        async with self.deps.sessions.begin() as session:
            await finish_tool_call(
                session=session, call_id=call_id, outcome=outcome, duration_ms=None
            )
        log.info("team tool not run", server=tool.server, tool=tool.name, outcome=outcome)
        return result

    async def _decision(self, call_id: int, wait_seconds: float) -> ToolCall:
        """The call once answered (approved or denied), or given up on after `wait_seconds`:
        at once when the press reaches this replica, else within a poll of the database."""
        pressed = self.deps.tool_decisions.register(call_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        try:
            while True:
                call = await self._load(call_id)
                if call.approval != Approval.PENDING:
                    return call
                left = deadline - loop.time()
                if left <= 0:
                    async with self.deps.sessions.begin() as session:
                        await close_approval(
                            session=session, call_id=call_id, approval=Approval.TIMED_OUT
                        )
                    continue  # timed out now, or answered just before: read which
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(pressed.wait(), min(APPROVAL_POLL_SECONDS, left))
        finally:
            self.deps.tool_decisions.discard(call_id)

    async def _load(self, call_id: int) -> ToolCall:
        async with self.deps.sessions() as session:
            call = await session.get(ToolCall, call_id, populate_existing=True)
        assert call is not None
        return call

    async def _withdrawn(self, call: ToolCall) -> None:
        assert call.id is not None and self.turn.id is not None
        try:
            async with self.deps.sessions.begin() as session:
                withdrawn = await close_approval(
                    session=session, call_id=call.id, approval=Approval.WITHDRAWN
                )
                await finish_tool_call(
                    session=session, call_id=call.id, outcome="stopped", duration_ms=None
                )
                post = await find_post(
                    session=session, key=post_key(self.turn.id, approval_kind(call.id))
                )
            if withdrawn and post is not None:
                await self._redraw(await self._load(call.id), post.ts)
        except Exception as exc:  # the turn has ended; this is only its record
            log.warning("could not record a withdrawn tool call", error=type(exc).__name__)

    async def _redraw(self, call: ToolCall, ts: str | None) -> None:
        if not ts:
            return
        await redraw_tool_call(
            self.deps,
            call=call,
            task=self.task,
            turn=self.turn,
            channel=self.turn.channel_id,
            ts=ts,
        )


# --- the requester's answer (the Approve / Deny buttons) ---------------------------------------


@dataclass(frozen=True)
class Refused:
    """What to tell the person who pressed, when the press does nothing."""

    text: str


async def answer_tool_call(
    deps: Deps, *, call_id: int, user_id: str, approved: bool, channel: str | None, ts: str | None
) -> Refused | None:
    """The requester approves or denies a waiting call: recorded once (the first answer
    counts), the worker waiting on it told, and the approval message redrawn to say who
    answered. Anyone else is refused, and so is an answer that comes too late."""
    async with deps.sessions() as session:
        call = await session.get(ToolCall, call_id)
        turn = await session.get(Turn, call.turn_id) if call is not None else None
        task = await session.get(Task, call.task_id) if call is not None else None
    if call is None or turn is None or task is None:
        return Refused("That request is no longer on record.")
    if user_id != turn.user_id:
        return Refused(f"Only <@{turn.user_id}>, who asked for this, can approve or deny it.")
    async with deps.sessions.begin() as session:
        decided = await decide_tool_call(
            session=session, call_id=call_id, approved=approved, user_id=user_id
        )
    async with deps.sessions() as session:
        call = await session.get(ToolCall, call_id, populate_existing=True)
    assert call is not None
    if channel and ts:
        await redraw_tool_call(deps, call=call, task=task, turn=turn, channel=channel, ts=ts)
    if not decided:
        return Refused("That request was already answered, or its answer has ended.")
    deps.tool_decisions.signal(call_id)  # at once when this replica waits on it; others poll
    log.info(
        "team tool call answered",
        task=task.ref,
        tool=f"{call.server}.{call.tool}",
        approved=approved,
        user=user_id,
    )
    return None


async def redraw_tool_call(
    deps: Deps, *, call: ToolCall, task: Task, turn: Turn, channel: str, ts: str
) -> None:
    """Show the approval message as the call stands now (best effort)."""
    minutes = deps.settings.mcp_approval_minutes
    try:
        await deps.client.chat_update(
            channel=channel,
            ts=ts,
            text=tool_call_text(call, ref=task.ref, requester=turn.user_id),
            blocks=build_tool_call_blocks(
                call, ref=task.ref, requester=turn.user_id, approval_minutes=minutes
            ),
        )
    except SlackApiError as exc:
        log.warning("could not redraw a tool approval", error=exc.response.get("error"))
