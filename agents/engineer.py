"""The backend engineer: answers a task in its thread, streaming, with a bounded tool loop."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Literal

import structlog

from agents.config import AgentSettings
from agents.llm import ModelClient, PromptPrefix, TurnRef, UsageTotals, Wire
from agents.researcher import Research, ResearchSink
from agents.templates import fill, load_prompt, spoken_date, utc_today
from agents.tools import ToolOutcome
from agents.tools import consult_researcher as research_tool
from agents.tools import find_related_tasks as lookup_tool
from agents.tools import mcp as mcp_tool
from agents.tools.find_related_tasks import FindRelatedTasks, RelatedTask
from agents.tools.mcp import McpResult, McpTool, McpTools

log = structlog.get_logger(__name__)

ProgressKind = Literal[
    "research_started",
    "research_finished",
    "research_failed",
    "lookup_started",
    "lookup_finished",
    "tool_started",
    "tool_finished",
    "tool_failed",
    "limit_reached",
]


@dataclass(frozen=True)
class Progress:
    """Something the engineer is doing between bits of answer, in words fit to show."""

    kind: ProgressKind
    message: str


OnText = Callable[[str], Awaitable[None]]
OnProgress = Callable[[Progress], Awaitable[None]]


@dataclass(frozen=True)
class TaskBrief:
    """The request of this turn, and where it came from."""

    ref: str  # "T-42"
    request: str
    requester: str  # how to name the person, e.g. "<@U123>"
    channel: str  # e.g. "<#C123>"
    turn: TurnRef = field(default_factory=TurnRef)
    # The team's date: in the request, not the cached system prompt, which stays the same
    # from one day to the next.
    today: date = field(default_factory=utc_today)
    # The channel's standing context (`/pm conventions set`), sent with every task from there.
    conventions: str = ""
    # How the team's past self-scores and estimates compared with what happened, in a line
    # (`/pm calibration`), so the engineer can correct itself; "" while the sample is small.
    calibration: str = ""
    # Files shared with the request, as content blocks (text, document, image), and a line
    # for each file that could not be read.
    attachments: tuple[Wire, ...] = ()
    unread_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class ThreadMessage:
    """An earlier message of the task's thread."""

    author: str
    text: str
    from_engineer: bool = False  # our own earlier answers become assistant turns
    # An earlier request of ours with what the engineer was sent for it (its request message,
    # tool calls and tool results, as stored): rendered as those messages, byte for byte, so
    # a follow-up keeps the research and reads that part of the prompt from the cache.
    exchange: tuple[Wire, ...] = ()


@dataclass(frozen=True)
class ToolCall:
    name: str
    input: Wire
    is_error: bool


@dataclass
class EngineerResult:
    """The answer and everything the report call and the ledger need from the turn."""

    answer: str
    truncated: bool
    stopped_early: str | None  # "tool_limit" | "token_budget" when a cap ended the turn
    research: list[Research]
    tool_calls: list[ToolCall]
    conversation: list[Wire]
    # This turn's messages from its request to the last tool result, as sent: what a follow-up
    # renders the turn from (ThreadMessage.exchange).
    exchange: list[Wire]
    prefix: PromptPrefix
    usage: UsageTotals
    stream_failed: bool  # on_text raised: the caller should post `answer` another way
    trimmed: int


@cache
def _read_prompt_file(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip()


def engineer_prefix(settings: AgentSettings, team_tools: Sequence[Wire] = ()) -> PromptPrefix:
    """The engineer's system prompt and tools with a 1-hour cache TTL: the same bytes for every
    call of every task, so each task after the first reads them from the cache. The team's own
    tools (`McpTools.specs`, in their fixed order) follow pmteam's, so the prefix stays the
    same for as long as the team's servers offer the same tools."""
    system = (
        _read_prompt_file(settings.engineer_prompt_file)
        if settings.engineer_prompt_file is not None
        else load_prompt("backend_engineer")
    )
    own = (research_tool.spec(), lookup_tool.spec())
    return PromptPrefix(system=system, tools=(*own, *team_tools), ttl="1h")


def build_messages(task: TaskBrief, history: Sequence[ThreadMessage]) -> tuple[list[Wire], int]:
    """The thread as messages, then this turn's request; and how many are older history."""
    messages: list[Wire] = []
    for item in history:
        if item.exchange:
            messages.extend(dict(message) for message in item.exchange)
        elif item.from_engineer:
            messages.append(_text_message("assistant", item.text))
        else:
            messages.append(_text_message("user", f"{item.author}: {item.text}"))
    if messages and messages[0]["role"] == "assistant":
        # The API wants a conversation to open with the user.
        messages.insert(0, _text_message("user", "(The thread opens with your message below.)"))
    trimmable = len(messages)
    request = fill(
        "engineer_turn",
        ref=task.ref,
        channel=task.channel,
        requester=task.requester,
        request=task.request,
        today=spoken_date(task.today),
        conventions=fill(
            "channel_conventions", channel=task.channel, conventions=task.conventions.strip()
        )
        + "\n\n"
        if task.conventions.strip()
        else "",
        calibration=f"Calibration from this team's finished tasks: {task.calibration}.\n\n"
        if task.calibration
        else "",
    )
    message = _text_message("user", request)
    message["content"].extend(dict(block) for block in task.attachments)
    if task.unread_files:
        unread = "\n".join(f"- {line}" for line in task.unread_files)
        message["content"].append(
            {
                "type": "text",
                "text": f"Files shared with this request that I could not read:\n{unread}",
            }
        )
    messages.append(message)
    return messages, trimmable


def _text_message(role: str, text: str) -> Wire:
    return {"role": role, "content": [{"type": "text", "text": text}]}


class _AnswerStream:
    """Collects the answer and forwards it to `on_text`, with a blank line between blocks."""

    def __init__(self, on_text: OnText | None) -> None:
        self._on_text = on_text
        self.text = ""
        self._separate = False
        self.failed = False
        self._planned = 0  # how much of `text` was written before a tool call

    def tool_call_followed(self) -> None:
        """What was written so far led up to a tool call ("Let me check how others do it"):
        it was streamed, but it is planning, not part of the answer that is kept."""
        self._planned = len(self.text)

    @property
    def answer(self) -> str:
        """The answer to keep: what came after the last tool call (all of it when nothing did,
        e.g. a turn stopped at its tool limit)."""
        return self.text[self._planned :].strip() or self.text.strip()

    async def block_started(self) -> None:
        self._separate = bool(self.text.strip())

    async def delta(self, text: str) -> None:
        if self._separate:
            self._separate = False
            if not self.text.endswith("\n\n"):
                text = ("\n" if self.text.endswith("\n") else "\n\n") + text.lstrip("\n")
        self.text += text
        if self._on_text is None or self.failed:
            return
        try:
            await self._on_text(text)
        except Exception:
            # Slack trouble must not cost the answer: stop streaming, keep collecting.
            self.failed = True
            log.exception("engineer.stream_callback_failed")


class _Turn:
    """The state of one engineer turn's tool loop."""

    def __init__(
        self,
        *,
        model: ModelClient,
        settings: AgentSettings,
        task: TaskBrief,
        find_related_tasks: FindRelatedTasks,
        research_sink: ResearchSink | None,
        on_progress: OnProgress | None,
        team_tools: McpTools | None,
        tool_names: Sequence[str],
    ) -> None:
        self.model = model
        self.settings = settings
        self.task = task
        self.find_related_tasks = find_related_tasks
        self.on_progress = on_progress
        self.team_tools = team_tools
        self.tool_names = tool_names
        self.research_deps = research_tool.ResearchDeps(
            model=model, settings=settings, ref=task.turn, sink=research_sink, today=task.today
        )
        self.research: list[Research] = []
        self.tool_calls: list[ToolCall] = []
        self.research_calls = 0

    async def progress(self, kind: ProgressKind, message: str) -> None:
        if self.on_progress is None:
            return
        try:
            await self.on_progress(Progress(kind=kind, message=message))
        except Exception:
            log.exception("engineer.progress_callback_failed", kind=kind)

    async def answer_tool(self, tool_use: Wire) -> tuple[Wire, bool]:
        """The tool_result for one call, and whether it was refused for a limit."""
        name = str(tool_use.get("name"))
        tool_input = tool_use.get("input")
        tool_input = tool_input if isinstance(tool_input, dict) else {}
        limited = False
        if len(self.tool_calls) >= self.settings.max_tool_calls:
            outcome = ToolOutcome(
                fill("tool_limit", limit=str(self.settings.max_tool_calls)), is_error=True
            )
            limited = True
        elif name == research_tool.NAME:
            outcome, limited = await self._research(tool_input)
        elif name == lookup_tool.NAME:
            query = str(tool_input.get("query", "")).strip()
            await self.progress("lookup_started", f"Looking through past tasks for “{query}”…")
            outcome, found = await lookup_tool.run(tool_input, self.find_related_tasks)
            await self.progress("lookup_finished", f"Found {found} related past task(s).")
        elif self.team_tools is not None and (team_tool := self.team_tools.find(name)):
            outcome = await self._team_tool(self.team_tools, team_tool, tool_input)
        else:
            # Whatever the model was talked into, it has only the tools it was given.
            log.warning("engineer.unknown_tool", tool=name)
            outcome = ToolOutcome(
                fill("unknown_tool", name=name[:100], tools=mcp_tool.listed(self.tool_names)),
                is_error=True,
            )
        self.tool_calls.append(ToolCall(name=name, input=tool_input, is_error=outcome.is_error))
        result: Wire = {
            "type": "tool_result",
            "tool_use_id": tool_use["id"],
            "content": outcome.content,
        }
        if outcome.is_error:
            result["is_error"] = True
        return result, limited

    async def _team_tool(self, tools: McpTools, tool: McpTool, tool_input: Wire) -> ToolOutcome:
        await self.progress("tool_started", f"Asking {tool.server} ({tool.name})…")
        try:
            result = await tools.run(tool, tool_input)
        except Exception as exc:
            # The bot's runner answers every way a call can end; this is only a last guard.
            log.exception("engineer.team_tool_failed", tool=tool.label)
            result = McpResult.not_run(mcp_tool.failed(tool, type(exc).__name__))
        if result.output is None or result.is_error:
            await self.progress("tool_failed", f"{tool.label} gave no answer; going on.")
        else:
            await self.progress("tool_finished", f"{tool.server} answered.")
        return mcp_tool.outcome(tool, result)

    async def _research(self, tool_input: Wire) -> tuple[ToolOutcome, bool]:
        if self.research_calls >= self.settings.max_research_calls:
            limit = str(self.settings.max_research_calls)
            return ToolOutcome(fill("research_limit", limit=limit), is_error=True), True
        try:
            brief = research_tool.parse_input(tool_input)
        except ValueError as exc:
            return ToolOutcome(f"Invalid research request: {exc}.", is_error=True), False
        self.research_calls += 1
        await self.progress("research_started", f"Consulting the researcher: {brief.objective}")
        numbered = sum(len(earlier.sources) for earlier in self.research)
        outcome, research = await research_tool.run(
            brief, self.research_deps, first_source=numbered + 1
        )
        if research is None:
            await self.progress("research_failed", "The researcher could not answer; going on.")
            return outcome, False
        self.research.append(research)
        found = f"{len(research.sources)} source(s)"
        if not research.live_sources:
            found += ", no live sources"
        await self.progress("research_finished", f"Research done: {found}.")
        return outcome, False


async def run_engineer(
    *,
    model: ModelClient,
    settings: AgentSettings,
    task: TaskBrief,
    history: Sequence[ThreadMessage] = (),
    find_related_tasks: FindRelatedTasks,
    research_sink: ResearchSink | None = None,
    on_text: OnText | None = None,
    on_progress: OnProgress | None = None,
    team_tools: McpTools | None = None,
) -> EngineerResult:
    """Work one turn of a task: stream the answer, consult the researcher, past tasks and the
    team's own tools as the model asks, within the configured caps. Raises `AgentError`
    subclasses on failure."""
    started = time.monotonic()
    prefix = engineer_prefix(settings, team_tools.specs() if team_tools is not None else ())
    stream = _AnswerStream(on_text)
    turn = _Turn(
        model=model,
        settings=settings,
        task=task,
        find_related_tasks=find_related_tasks,
        research_sink=research_sink,
        on_progress=on_progress,
        team_tools=team_tools,
        tool_names=prefix.tool_names,
    )
    conversation, trimmable = build_messages(task, history)
    exchange: list[Wire] = [conversation[-1]]
    usage = UsageTotals()
    truncated = False
    trimmed = 0
    stopped_early: str | None = None
    limited_rounds = 0
    outcome = "answered"
    try:
        while True:
            remaining = settings.max_turn_output_tokens - usage.output_tokens
            if remaining <= 0:
                stopped_early = "token_budget"
                await turn.progress("limit_reached", "Stopped: this turn's token budget is used.")
                break
            completion = await model.complete(
                agent="engineer",
                model=settings.engineer_model,
                prefix=prefix,
                messages=conversation,
                max_tokens=min(settings.engineer_max_tokens, remaining),
                ref=task.turn,
                text=stream,
                trimmable=trimmable,
                max_pause_continuations=settings.max_pause_continuations,
            )
            for call in completion.calls:
                usage.add(call)
            conversation = completion.conversation
            trimmable = completion.trimmable
            trimmed += completion.trimmed
            truncated = truncated or completion.truncated
            tool_uses = completion.tool_uses
            if not tool_uses:
                break
            stream.tool_call_followed()
            results: list[Wire] = []
            all_limited = True
            for tool_use in tool_uses:
                result, limited = await turn.answer_tool(tool_use)
                results.append(result)
                all_limited = all_limited and limited
            conversation.append({"role": "user", "content": results})
            exchange += conversation[-2:]
            limited_rounds += 1 if all_limited else 0
            if limited_rounds >= 2:
                # Told once that the tools are used up, it asked again: end the turn here.
                stopped_early = "tool_limit"
                await turn.progress("limit_reached", "Stopped: this turn's tool calls are used.")
                break
    except Exception as exc:
        outcome = type(exc).__name__
        raise
    finally:
        for research in turn.research:
            usage.merge(research.usage)
        log.info(
            "engineer.run",
            task=task.ref,
            model=settings.engineer_model,
            outcome=outcome,
            calls=usage.calls,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            web_searches=usage.web_searches,
            cost_usd=round(usage.cost_usd, 6),
            tool_calls=[c.name for c in turn.tool_calls],
            latency_ms=int((time.monotonic() - started) * 1000),
        )
    return EngineerResult(
        answer=stream.answer,
        truncated=truncated,
        stopped_early=stopped_early,
        research=turn.research,
        tool_calls=turn.tool_calls,
        conversation=conversation,
        exchange=exchange,
        prefix=prefix,
        usage=usage,
        stream_failed=stream.failed,
        trimmed=trimmed,
    )


__all__ = [
    "EngineerResult",
    "FindRelatedTasks",
    "McpTools",
    "OnProgress",
    "OnText",
    "Progress",
    "RelatedTask",
    "TaskBrief",
    "ThreadMessage",
    "ToolCall",
    "build_messages",
    "engineer_prefix",
    "run_engineer",
]
