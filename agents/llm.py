"""One place for model calls: cache breakpoints, retries, stop reasons, prices and the ledger."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal, Protocol, cast

import anthropic
import httpx2
import structlog
from anthropic import AsyncAnthropic
from anthropic.types import Message, MessageParam, TextBlockParam, ToolUnionParam, Usage

from agents.config import AgentSettings
from agents.errors import (
    AgentError,
    ContextTooLong,
    ModelRefused,
    ModelRejected,
    ModelUnavailable,
    StreamStalled,
    TurnIncomplete,
)
from agents.templates import fill, load_prompt

log = structlog.get_logger(__name__)

# A message, tool or content block in the API's JSON form. Conversations are kept as plain
# dicts (not SDK models) so that what we resend is byte-for-byte what we sent before: any
# difference in the prefix is a prompt-cache miss.
Wire = dict[str, Any]

Agent = Literal["engineer", "researcher", "reporter", "pm"]
CacheTTL = Literal["5m", "1h"]

# ---------------------------------------------------------------------------------------------
# Prices


@dataclass(frozen=True)
class ModelPrice:
    """Base prices in US dollars per million tokens."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal


# Source: Anthropic's published API prices (https://platform.claude.com/docs/en/about-claude/pricing)
# as adopted for pmteam in issue 4. Update here only; nothing else in the code knows a price.
PRICES: dict[str, ModelPrice] = {
    "claude-opus-5-5": ModelPrice(Decimal("4"), Decimal("20")),
    "claude-sonnet-5-5": ModelPrice(Decimal("2"), Decimal("10")),
    "claude-haiku-5-5": ModelPrice(Decimal("0.10"), Decimal("0.50")),
}
# Prompt caching, as multiples of the model's base input price.
CACHE_WRITE_5M_MULTIPLIER = Decimal("1.25")
CACHE_WRITE_1H_MULTIPLIER = Decimal("2")
CACHE_READ_MULTIPLIER = Decimal("0.1")
# Server tools: web search is $10 per 1,000 searches; web fetch costs only the tokens it adds.
WEB_SEARCH_USD = Decimal("10") / Decimal("1000")
_MTOK = Decimal("1000000")


def price_for(model: str) -> ModelPrice:
    """The price of `model`; a dated snapshot (`claude-sonnet-5-5-20260101`) costs its alias."""
    if model in PRICES:
        return PRICES[model]
    for alias, price in PRICES.items():
        if model.startswith(alias):
            return price
    for family in ("opus", "sonnet", "haiku"):
        if family in model:
            return next(p for alias, p in PRICES.items() if family in alias)
    # Over-reporting beats a silent $0 in the ledger: an unknown model costs as the dearest.
    log.warning("llm.unpriced_model", model=model)
    return max(PRICES.values(), key=lambda p: p.output_per_mtok)


@dataclass(frozen=True)
class TokenCounts:
    """The billable quantities of one call, as the API reports them in `usage`."""

    input_tokens: int = 0  # uncached input only; the API counts cache reads/writes apart
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    web_searches: int = 0
    web_fetches: int = 0

    @property
    def cache_write_tokens(self) -> int:
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    @property
    def prompt_tokens(self) -> int:
        """All input the model read: uncached, written to the cache, and read from it."""
        return self.input_tokens + self.cache_write_tokens + self.cache_read_tokens

    @classmethod
    def from_usage(cls, usage: Usage) -> TokenCounts:
        written = usage.cache_creation_input_tokens or 0
        if usage.cache_creation is not None:
            write_5m = usage.cache_creation.ephemeral_5m_input_tokens
            write_1h = usage.cache_creation.ephemeral_1h_input_tokens
        else:
            write_5m, write_1h = written, 0  # without the breakdown: the API's default TTL
        server = usage.server_tool_use
        return cls(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_input_tokens or 0,
            cache_write_5m_tokens=write_5m,
            cache_write_1h_tokens=write_1h,
            web_searches=server.web_search_requests if server else 0,
            web_fetches=server.web_fetch_requests if server else 0,
        )


def cost_usd(model: str, counts: TokenCounts) -> Decimal:
    """What one call costs in dollars (exact; round only for display or storage)."""
    price = price_for(model)
    base_in = price.input_per_mtok
    input_cost = (
        counts.input_tokens * base_in
        + counts.cache_write_5m_tokens * base_in * CACHE_WRITE_5M_MULTIPLIER
        + counts.cache_write_1h_tokens * base_in * CACHE_WRITE_1H_MULTIPLIER
        + counts.cache_read_tokens * base_in * CACHE_READ_MULTIPLIER
    )
    output_cost = counts.output_tokens * price.output_per_mtok
    return (input_cost + output_cost) / _MTOK + counts.web_searches * WEB_SEARCH_USD


# ---------------------------------------------------------------------------------------------
# The ledger


@dataclass(frozen=True)
class TurnRef:
    """Which task and turn a call works for, so the ledger can attribute it (None: neither)."""

    task_id: int | None = None
    turn_id: int | None = None


@dataclass(frozen=True)
class LLMUsage:
    """One model call, as the usage ledger records it."""

    agent: str
    model: str
    counts: TokenCounts
    cost_usd: float
    latency_ms: int
    stop_reason: str | None
    request_id: str | None
    ref: TurnRef = field(default_factory=TurnRef)
    first_token_ms: int | None = None  # a streamed call: when its first text arrived
    # Why the API could not reuse the cached prefix of the previous call of the same agent in
    # the same turn (its `diagnostics.cache_miss_reason` type), when it said so.
    cache_miss_reason: str | None = None
    cache_missed_tokens: int | None = None


class UsageSink(Protocol):
    """Where every call's usage goes (the storage adapter is `agents.ledger.StorageLedger`)."""

    async def record(self, call: LLMUsage) -> None: ...


@dataclass
class UsageTotals:
    """Usage summed over the calls of a turn (or any group of calls)."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    web_searches: int = 0
    cost_usd: float = 0.0

    def add(self, call: LLMUsage) -> None:
        self.calls += 1
        self.input_tokens += call.counts.input_tokens
        self.output_tokens += call.counts.output_tokens
        self.cache_read_tokens += call.counts.cache_read_tokens
        self.cache_write_tokens += call.counts.cache_write_tokens
        self.web_searches += call.counts.web_searches
        self.cost_usd += call.cost_usd

    def merge(self, other: UsageTotals) -> None:
        self.calls += other.calls
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.web_searches += other.web_searches
        self.cost_usd += other.cost_usd

    @classmethod
    def of(cls, calls: Sequence[LLMUsage]) -> UsageTotals:
        totals = cls()
        for call in calls:
            totals.add(call)
        return totals

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def cache_share(self) -> float:
        """The share of prompt tokens that were served from the cache."""
        return self.cache_read_tokens / self.prompt_tokens if self.prompt_tokens else 0.0


# ---------------------------------------------------------------------------------------------
# Requests


@dataclass(frozen=True)
class PromptPrefix:
    """The part of a request that repeats: tools, then the system prompt (the cache order).

    With a `ttl`, a breakpoint goes on the last tool and on the system prompt, so the same
    prefix is read from the cache by every call that sends it unchanged, within a task and
    across tasks. Nothing that varies per task may go in here.
    """

    system: str
    tools: tuple[Wire, ...] = ()
    ttl: CacheTTL | None = None

    def system_param(self) -> list[Wire]:
        block: Wire = {"type": "text", "text": self.system}
        if self.ttl is not None:
            block["cache_control"] = _cache_control(self.ttl)
        return [block]

    def tools_param(self) -> list[Wire]:
        tools = [dict(tool) for tool in self.tools]
        if tools and self.ttl is not None:
            tools[-1]["cache_control"] = _cache_control(self.ttl)
        return tools

    @property
    def tool_names(self) -> tuple[str, ...]:
        return tuple(str(tool["name"]) for tool in self.tools)


def _cache_control(ttl: CacheTTL) -> Wire:
    # The 5-minute TTL is the API default; spelling it out would change nothing but bytes.
    return {"type": "ephemeral", "ttl": "1h"} if ttl == "1h" else {"type": "ephemeral"}


class TextStream(Protocol):
    """Receives the answer as it is generated."""

    async def block_started(self) -> None:
        """A new text block begins (the receiver decides whether it needs a separator)."""

    async def delta(self, text: str) -> None: ...


@dataclass(frozen=True)
class Completion:
    """The outcome of one logical model turn, after any pause/continue round trips."""

    conversation: list[Wire]  # the messages as last sent, plus the final assistant message
    content: list[Wire]  # every block generated, in order (across continuations)
    final_content: list[Wire]  # the blocks of the final assistant message
    stop_reason: str
    truncated: bool
    trimmed: int  # how many older history messages were left out to fit the context window
    trimmable: int  # how many leading messages of `conversation` are still older history
    calls: list[LLMUsage]

    @property
    def text(self) -> str:
        return join_text(self.content)

    @property
    def tool_uses(self) -> list[Wire]:
        """The custom tool calls to answer (none when the turn ended for another reason)."""
        if self.stop_reason != "tool_use":
            return []
        return [block for block in self.final_content if block.get("type") == "tool_use"]

    @property
    def usage(self) -> UsageTotals:
        return UsageTotals.of(self.calls)


def join_text(blocks: Sequence[Wire]) -> str:
    """The text of `blocks`. The API splits one passage into blocks at each citation, so they
    join without separators, except where one sentence ends and the next block starts."""
    out = ""
    for block in blocks:
        if block.get("type") != "text":
            continue
        piece = str(block.get("text", ""))
        joins_sentences = out and piece and out[-1] in ".!?:" and not piece[0].isspace()
        if joins_sentences:
            out += "\n"
        out += piece
    return out


def block_to_wire(block: Any) -> Wire:
    """A response content block as a request block (drops SDK-only fields and nulls)."""
    data: Wire = block.model_dump(mode="json", exclude_none=True)
    data.pop("parsed_output", None)  # the SDK's parse helper adds it; the API would refuse it
    return data


class _PromptTooLong(Exception):
    """The request's input does not fit the model's context window."""


class ModelClient:
    """Every model call of the agents goes through here, on an injected `AsyncAnthropic`."""

    def __init__(
        self,
        client: AsyncAnthropic,
        *,
        usage_sink: UsageSink | None = None,
        max_retries: int = 2,
        timeout_s: float = 300.0,
        stall_s: float = 60.0,
        before_call: Callable[[], None] | None = None,
    ) -> None:
        # Asked before every request; it raises to stop the work (the bot's fence: a turn whose
        # lease ran out makes no more model calls, so it spends nothing for an answer nobody
        # will see).
        self._before_call = before_call
        # The SDK retries 408/409/429/5xx/529 and dropped connections, honouring retry-after.
        self._client = client.with_options(max_retries=max_retries, timeout=timeout_s)
        self._sink = usage_sink
        self._max_retries = max_retries
        self._timeout_s = timeout_s
        self._stall_s = stall_s
        # The last message id per (agent, turn), for the API's cache diagnostics.
        self._previous: dict[tuple[str, int | None], str] = {}

    @classmethod
    def from_settings(
        cls,
        client: AsyncAnthropic,
        settings: AgentSettings,
        *,
        usage_sink: UsageSink | None = None,
        before_call: Callable[[], None] | None = None,
    ) -> ModelClient:
        return cls(
            client,
            usage_sink=usage_sink,
            before_call=before_call,
            max_retries=settings.max_retries,
            timeout_s=settings.request_timeout_s,
            stall_s=settings.stream_stall_s,
        )

    async def complete(
        self,
        *,
        agent: Agent,
        model: str,
        prefix: PromptPrefix,
        messages: Sequence[Wire],
        max_tokens: int,
        ref: TurnRef,
        text: TextStream | None = None,
        output_schema: Wire | None = None,
        trimmable: int = 0,
        continue_on_max_tokens: bool = True,
        max_pause_continuations: int = 3,
        timeout_s: float | None = None,
    ) -> Completion:
        """Run one assistant turn to a natural stop, handling the stop reasons:

        - `pause_turn` (long server-tool work): the paused turn is sent back as is, up to
          `max_pause_continuations` times, then `TurnIncomplete`;
        - `max_tokens`: asked to continue once, then returned with `truncated` set;
        - `refusal`: `ModelRefused`;
        - `model_context_window_exceeded` (or a prompt that is too long): the oldest half of
          the first `trimmable` messages (older thread history) is left out and the turn
          continues; with nothing left to trim, `ContextTooLong`.
        """
        conversation = list(messages)
        generated: list[Wire] = []
        paused: list[Wire] = []  # content of an assistant turn that paused, to send back
        calls: list[LLMUsage] = []
        pauses = 0
        continued = False
        join_next = False  # the next text continues a cut-off one: no separator
        trimmed = 0
        while True:
            outgoing = conversation + ([_assistant(_strip_trailing(paused))] if paused else [])
            try:
                message, usage = await self._call(
                    agent=agent,
                    model=model,
                    prefix=prefix,
                    messages=outgoing,
                    max_tokens=max_tokens,
                    ref=ref,
                    text=text,
                    join_first_text=join_next,
                    output_schema=output_schema,
                    timeout_s=timeout_s,
                )
            except _PromptTooLong:
                conversation, trimmable, dropped = self._trim(conversation, trimmable, agent, model)
                trimmed += dropped
                continue
            calls.append(usage)
            join_next = False
            blocks = [block_to_wire(b) for b in message.content]
            generated.extend(blocks)
            stop = message.stop_reason or "end_turn"
            if stop == "pause_turn":
                pauses += 1
                if pauses > max_pause_continuations:
                    raise TurnIncomplete(
                        f"Claude paused its work {max_pause_continuations + 1} times without "
                        "finishing (usually long web research). Mention me again with a "
                        "narrower question.",
                        agent=agent,
                        model=model,
                        request_id=usage.request_id,
                    )
                paused = paused + blocks
                continue
            if stop == "refusal":
                raise _refusal(message, agent, model, usage.request_id)
            turn_content = paused + blocks
            paused = []
            if stop == "model_context_window_exceeded":
                conversation, trimmable, dropped = self._trim(conversation, trimmable, agent, model)
                trimmed += dropped
                conversation += _continuation(turn_content)
                join_next = True
                continue
            if stop == "max_tokens" and continue_on_max_tokens and not continued:
                continued = True
                conversation += _continuation(turn_content)
                join_next = True
                continue
            final = _without_cut_tool_call(turn_content) if stop == "max_tokens" else turn_content
            if final:
                conversation.append(_assistant(final))
            return Completion(
                conversation=conversation,
                content=generated,
                final_content=final,
                stop_reason=stop,
                truncated=stop == "max_tokens",
                trimmed=trimmed,
                trimmable=trimmable,
                calls=calls,
            )

    def _trim(
        self, conversation: list[Wire], trimmable: int, agent: str, model: str
    ) -> tuple[list[Wire], int, int]:
        if trimmable <= 0:
            raise ContextTooLong(
                "This thread is now too long for the model, even with older messages left "
                "out. Start a new thread for the next step and link this one for context.",
                agent=agent,
                model=model,
            )
        trimmed, left, dropped = trim_history(conversation, trimmable)
        log.info("llm.history_trimmed", agent=agent, model=model, dropped=dropped)
        return trimmed, left, dropped

    async def _call(
        self,
        *,
        agent: str,
        model: str,
        prefix: PromptPrefix,
        messages: list[Wire],
        max_tokens: int,
        ref: TurnRef,
        text: TextStream | None,
        join_first_text: bool,
        output_schema: Wire | None,
        timeout_s: float | None,
    ) -> tuple[Message, LLMUsage]:
        kwargs: dict[str, Any] = {
            "model": model,
            "max_tokens": max_tokens,
            "system": cast("list[TextBlockParam]", prefix.system_param()),
            "messages": cast("list[MessageParam]", messages),
            # The whole call may take the request timeout; no byte for the stall bound is a
            # stall (the API pings an open stream every few seconds).
            "timeout": httpx2.Timeout(
                timeout_s or self._timeout_s, read=min(self._stall_s, timeout_s or self._timeout_s)
            ),
        }
        if prefix.tools:
            kwargs["tools"] = cast("list[ToolUnionParam]", prefix.tools_param())
        if prefix.ttl is not None:
            # The moving breakpoint: the API puts it on the last block, so each call of a tool
            # loop reads everything the previous call wrote.
            kwargs["cache_control"] = {"type": "ephemeral"}
        if output_schema is not None:
            kwargs["output_config"] = {"format": {"type": "json_schema", "schema": output_schema}}
        # Ask the API why the cache missed, against this agent's previous call in the turn.
        chain = (agent, ref.turn_id)
        kwargs["diagnostics"] = {"previous_message_id": self._previous.get(chain)}

        if self._before_call is not None:
            self._before_call()
        started = time.monotonic()
        request_id: str | None = None
        start_usage: Usage | None = None
        first_token: float | None = None
        streaming = False
        try:
            async with self._client.messages.stream(**kwargs) as stream:
                streaming = True
                request_id = stream.request_id
                first_text = True
                async for event in stream:
                    if first_token is None and event.type == "content_block_delta":
                        first_token = time.monotonic()
                    if event.type == "message_start":
                        start_usage = event.message.usage
                    elif event.type == "content_block_start" and text is not None:
                        if event.content_block.type == "text":
                            if not (first_text and join_first_text):
                                await text.block_started()
                            first_text = False
                    elif event.type == "text" and text is not None:
                        await text.delta(event.text)
                message = await stream.get_final_message()
        except anthropic.APIStatusError as exc:
            request_id = exc.request_id or request_id
            # After the stream opened, this is an SSE `error` event (e.g. overloaded_error):
            # the SDK does not retry it, and re-running would repeat what already streamed.
            label = f"stream_error:{exc.type or 'unknown'}" if streaming else None
            await self._record_failure(
                agent,
                model,
                ref,
                started,
                request_id,
                start_usage,
                label or f"error:{exc.status_code}",
            )
            if streaming:
                raise self._dropped(agent, model, request_id, exc.type) from exc
            if _is_prompt_too_long(exc):
                raise _PromptTooLong() from exc
            raise self._status_error(exc, agent, model) from exc
        except anthropic.APIConnectionError as exc:
            timed_out = isinstance(exc, anthropic.APITimeoutError)
            await self._record_failure(
                agent,
                model,
                ref,
                started,
                request_id,
                start_usage,
                "error:timeout" if timed_out else "error:connection",
            )
            if streaming and timed_out:
                raise self._stalled(agent, model, request_id) from exc
            if streaming:
                raise self._dropped(agent, model, request_id) from exc
            raise self._connection_error(exc, agent, model, timed_out) from exc
        except httpx2.TransportError as exc:
            # The SDK wraps transport errors only while connecting; a body cut mid-stream
            # surfaces as the transport's own error.
            stalled = isinstance(exc, httpx2.TimeoutException)
            await self._record_failure(
                agent,
                model,
                ref,
                started,
                request_id,
                start_usage,
                "stream_stalled" if stalled else "stream_cut",
            )
            if stalled:
                raise self._stalled(agent, model, request_id) from exc
            raise self._dropped(agent, model, request_id) from exc

        if message.stop_reason is None:
            # The stream ended cleanly but before the model said why it stopped.
            await self._record_failure(
                agent, model, ref, started, request_id, message.usage, "stream_cut"
            )
            raise self._dropped(agent, model, request_id)
        usage = self._usage(
            agent=agent,
            model=message.model or model,
            counts=TokenCounts.from_usage(message.usage),
            started=started,
            stop_reason=message.stop_reason,
            request_id=request_id,
            ref=ref,
            first_token=first_token,
        )
        self._previous[chain] = message.id
        while len(self._previous) > 1_000:
            del self._previous[next(iter(self._previous))]
        miss = message.diagnostics.cache_miss_reason if message.diagnostics else None
        if miss is not None:
            usage = replace(
                usage,
                cache_miss_reason=miss.type,
                cache_missed_tokens=getattr(miss, "cache_missed_input_tokens", None),
            )
        await self._record(usage)
        return message, usage

    def _usage(
        self,
        *,
        agent: str,
        model: str,
        counts: TokenCounts,
        started: float,
        stop_reason: str | None,
        request_id: str | None,
        ref: TurnRef,
        first_token: float | None = None,
    ) -> LLMUsage:
        return LLMUsage(
            agent=agent,
            model=model,
            counts=counts,
            cost_usd=float(round(cost_usd(model, counts), 8)),
            latency_ms=int((time.monotonic() - started) * 1000),
            stop_reason=stop_reason,
            request_id=request_id,
            ref=ref,
            first_token_ms=int((first_token - started) * 1000) if first_token else None,
        )

    async def _record_failure(
        self,
        agent: str,
        model: str,
        ref: TurnRef,
        started: float,
        request_id: str | None,
        start_usage: Usage | None,
        stop_reason: str,
    ) -> None:
        # A call that failed after the model began is still billed for its input.
        counts = TokenCounts.from_usage(start_usage) if start_usage else TokenCounts()
        await self._record(
            self._usage(
                agent=agent,
                model=model,
                counts=counts,
                started=started,
                stop_reason=stop_reason,
                request_id=request_id,
                ref=ref,
            )
        )

    async def _record(self, usage: LLMUsage) -> None:
        c = usage.counts
        log.info(
            "llm.call",
            agent=usage.agent,
            model=usage.model,
            stop_reason=usage.stop_reason,
            input_tokens=c.input_tokens,
            output_tokens=c.output_tokens,
            cache_read_tokens=c.cache_read_tokens,
            cache_write_tokens=c.cache_write_tokens,
            web_searches=c.web_searches,
            cost_usd=usage.cost_usd,
            latency_ms=usage.latency_ms,
            request_id=usage.request_id,
            cache_miss_reason=usage.cache_miss_reason,
            cache_missed_tokens=usage.cache_missed_tokens,
        )
        if self._sink is None:
            return
        try:
            await self._sink.record(usage)
        except Exception:
            # A ledger outage must not cost the person their answer; the log line above keeps
            # the figures.
            log.exception("llm.ledger_write_failed", agent=usage.agent, request_id=usage.request_id)

    def _stalled(self, agent: str, model: str, request_id: str | None) -> StreamStalled:
        return StreamStalled(
            f"Claude stopped sending for {self._stall_s:.0f} s in the middle of the answer, so "
            "what you see is incomplete. Mention me again to retry this request.",
            agent=agent,
            model=model,
            request_id=request_id,
        )

    def _dropped(
        self, agent: str, model: str, request_id: str | None, error_type: str | None = None
    ) -> TurnIncomplete:
        what = (
            f"Claude stopped in the middle of the answer ({error_type})"
            if error_type
            else "The connection to Claude dropped in the middle of the answer"
        )
        return TurnIncomplete(
            f"{what}, so what you see is incomplete. Mention me again to retry this request.",
            agent=agent,
            model=model,
            request_id=request_id,
        )

    def _status_error(self, exc: anthropic.APIStatusError, agent: str, model: str) -> AgentError:
        status = exc.status_code
        # The API's own words stay in the log (redacted there); the thread gets ours.
        log.warning(
            "anthropic.error",
            agent=agent,
            model=model,
            status=status,
            error_type=exc.type,
            detail=str(exc.api_message or exc.message)[:500],
            request_id=exc.request_id,
        )
        retries = self._max_retries
        kind: type[AgentError]
        if status == 529 or exc.type == "overloaded_error":
            kind = ModelUnavailable
            message = (
                f"Claude is overloaded right now (HTTP 529), and still was after {retries} "
                "retries. Nothing is lost: mention me again in a few minutes."
            )
        elif status == 429:
            kind = ModelUnavailable
            message = (
                f"pmteam hit its Anthropic rate limit (HTTP 429) and it did not clear after "
                f"{retries} retries. Try again in a minute; if it keeps happening, an admin can "
                "raise the limit in the Anthropic console."
            )
        elif status >= 500:
            kind = ModelUnavailable
            message = (
                f"The Anthropic API failed with HTTP {status} on every one of {retries + 1} "
                "tries. Mention me again in a few minutes; status.anthropic.com shows outages."
            )
        elif status == 401:
            kind = ModelRejected
            message = (
                "The Anthropic API key was rejected (HTTP 401). An admin needs to set a valid "
                "ANTHROPIC_API_KEY; `pmteam doctor` checks it."
            )
        elif status == 403:
            kind = ModelRejected
            message = (
                f"The Anthropic API key may not use {model} (HTTP 403). An admin "
                "should check the key's workspace and permissions (`pmteam doctor`)."
            )
        elif status == 404:
            kind = ModelRejected
            message = (
                f"The model {model} was not found (HTTP 404). An admin should check "
                "PMTEAM_ENGINEER_MODEL and PMTEAM_RESEARCHER_MODEL; `pmteam doctor` lists the "
                "models this key can use."
            )
        else:
            kind = ModelRejected
            message = (
                f"The Anthropic API refused pmteam's request (HTTP {status}). That "
                f"is most likely a pmteam bug: please report it with request id "
                f"{exc.request_id or 'unknown'}."
            )
        return kind(message, agent=agent, model=model, request_id=exc.request_id)

    def _connection_error(
        self, exc: anthropic.APIConnectionError, agent: str, model: str, timed_out: bool
    ) -> ModelUnavailable:
        if timed_out:
            message = (
                f"Claude did not answer within {self._timeout_s:.0f} s, even after "
                f"{self._max_retries} retries. Mention me again to retry; a narrower request "
                "is quicker."
            )
        else:
            log.warning("anthropic.unreachable", agent=agent, model=model, detail=exc.message)
            message = (
                f"pmteam could not reach the Anthropic API after {self._max_retries} retries. "
                "An admin should check the network and ANTHROPIC_BASE_URL; then mention me "
                "again."
            )
        return ModelUnavailable(message, agent=agent, model=model)


def _refusal(message: Message, agent: str, model: str, request_id: str | None) -> ModelRefused:
    details = message.stop_details
    why = f" ({details.explanation})" if details is not None and details.explanation else ""
    return ModelRefused(
        f"Claude declined to help with this request{why}. Rephrase it or split out the part it "
        "declined, then mention me again.",
        agent=agent,
        model=model,
        request_id=request_id,
    )


def _is_prompt_too_long(exc: anthropic.APIStatusError) -> bool:
    if exc.status_code == 413:
        return True
    text = f"{exc.error_code or ''} {exc.api_message or ''}".lower()
    return exc.status_code == 400 and (
        "prompt is too long" in text or "prompt_too_long" in text or "context window" in text
    )


def _assistant(content: list[Wire]) -> Wire:
    return {"role": "assistant", "content": content}


def _strip_trailing(content: list[Wire]) -> list[Wire]:
    # The API refuses a final assistant message that ends in whitespace.
    if content and content[-1].get("type") == "text":
        last = dict(content[-1])
        last["text"] = str(last.get("text", "")).rstrip()
        return [*content[:-1], last]
    return content


def _without_cut_tool_call(content: list[Wire]) -> list[Wire]:
    """Content cut off by max_tokens, minus a trailing tool call whose input is incomplete."""
    if content and content[-1].get("type") in ("tool_use", "server_tool_use"):
        return content[:-1]
    return content


def _continuation(content: list[Wire]) -> list[Wire]:
    """The messages that ask the model to go on from where its output was cut off.

    A user message rather than an assistant prefill: current models refuse prefills.
    """
    kept = _strip_trailing(_without_cut_tool_call(content))
    note: Wire = {"role": "user", "content": [{"type": "text", "text": load_prompt("continue")}]}
    return [_assistant(kept), note] if kept else [note]


def trim_history(conversation: list[Wire], trimmable: int) -> tuple[list[Wire], int, int]:
    """Leave out the older half of the first `trimmable` messages (thread history).

    Returns the new conversation, how many of its leading messages are still trimmable, and
    how many were dropped. A short note takes the dropped messages' place so the model knows.
    """
    dropped = max(1, (trimmable + 1) // 2)
    # Never keep a tool result whose tool call was left out: the API refuses that.
    while dropped < trimmable and _has_tool_results(conversation[dropped]):
        dropped += 1
    kept = [dict(m) for m in conversation[dropped:]]
    note: Wire = {"type": "text", "text": fill("history_trimmed", count=str(dropped))}
    if kept and kept[0].get("role") == "user":
        content = kept[0]["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        kept[0]["content"] = [note, *blocks]
    else:
        kept.insert(0, {"role": "user", "content": [note]})
    return kept, trimmable - dropped, dropped


def _has_tool_results(message: Wire) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(block, dict) and block.get("type") == "tool_result" for block in content
    )
