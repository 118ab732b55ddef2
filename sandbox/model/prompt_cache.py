"""Token counting (characters / 4 of canonical JSON) and a prompt-cache simulation with TTLs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
# The real API looks for earlier cache entries up to 20 blocks before each breakpoint, which is
# what lets an agent loop that moves its breakpoint forward each turn still read the old prefix.
LOOKBACK_BLOCKS = 20


def canonical(value: Any) -> str:
    """The JSON form tokens are counted on: sorted keys, no spaces, no `cache_control`."""
    return json.dumps(
        _without_cache_control(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def _without_cache_control(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_without_cache_control(v) for v in value]
    return value


def count_tokens(text: str) -> int:
    return max(1, -(-len(text) // 4))


@dataclass(frozen=True)
class Segment:
    """One cacheable unit of the prompt (a tool, a system block, a message block)."""

    canonical: str
    tokens: int
    ttl: str | None  # set when the block carries a cache_control breakpoint


@dataclass(frozen=True)
class InputUsage:
    input_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    ephemeral_5m_input_tokens: int = 0
    ephemeral_1h_input_tokens: int = 0


def _ttl(block: Any) -> str | None:
    if isinstance(block, dict) and isinstance(block.get("cache_control"), dict):
        ttl = block["cache_control"].get("ttl", "5m")
        return ttl if ttl in TTL_SECONDS else "5m"
    return None


def _segment(value: Any, ttl: str | None) -> Segment:
    text = canonical(value)
    return Segment(text, count_tokens(text), ttl)


def output_format(body: dict[str, Any]) -> Any:
    """The request's `output_config.format`, or None."""
    config = body.get("output_config")
    return config.get("format") if isinstance(config, dict) else None


def segments(body: dict[str, Any]) -> list[Segment]:
    """The prompt in cache order: tools, then system, then messages, block by block.

    A request with `output_config.format` gets a system prompt of its own describing the
    format, ahead of the caller's: as documented for the real API, changing the format
    invalidates the cached system prompt and conversation (the tools before it still match),
    and the added prompt is billed as input.
    """
    out: list[Segment] = []
    for tool in body.get("tools") or []:
        out.append(_segment(["tool", tool], _ttl(tool)))
    fmt = output_format(body)
    if fmt is not None:
        out.append(_segment(["system", {"type": "output_format", "format": fmt}], None))
    system = body.get("system")
    if isinstance(system, str) and system:
        out.append(_segment(["system", {"type": "text", "text": system}], None))
    elif isinstance(system, list):
        out.extend(_segment(["system", block], _ttl(block)) for block in system)
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        role, content = message.get("role"), message.get("content")
        if isinstance(content, str):
            out.append(_segment([role, {"type": "text", "text": content}], None))
        elif isinstance(content, list):
            out.extend(_segment([role, block], _ttl(block)) for block in content)
    top_level = body.get("cache_control")
    if isinstance(top_level, dict) and out and out[-1].ttl is None:
        # Top-level cache_control puts a breakpoint on the last cacheable block.
        ttl = top_level.get("ttl", "5m")
        last = out[-1]
        out[-1] = Segment(last.canonical, last.tokens, ttl if ttl in TTL_SECONDS else "5m")
    return out


def count_input_tokens(body: dict[str, Any]) -> int:
    return sum(segment.tokens for segment in segments(body))


@dataclass
class _Entry:
    expires_at: float
    ttl_seconds: float


class PromptCache:
    """Remembers prompt prefixes written at breakpoints, for 5 minutes or 1 hour after last use."""

    def __init__(self, clock: Callable[[], float], *, min_tokens: int = 0) -> None:
        self._clock = clock
        self._min_tokens = min_tokens
        self._entries: dict[str, _Entry] = {}

    def clear(self) -> None:
        self._entries.clear()

    def account(self, body: dict[str, Any]) -> InputUsage:
        """Usage for a request: read the longest cached prefix, write up to the last breakpoint."""
        parts = segments(body)
        cumulative: list[int] = []
        running = 0
        for part in parts:
            running += part.tokens
            cumulative.append(running)
        total = running
        # Prefixes shorter than the minimum are silently not cached, as in the real API.
        breakpoints = [
            (i, ttl)
            for i, part in enumerate(parts)
            if (ttl := part.ttl) is not None and cumulative[i] >= self._min_tokens
        ]
        if not breakpoints:
            return InputUsage(input_tokens=total)

        now = self._clock()
        self._entries = {k: e for k, e in self._entries.items() if e.expires_at > now}
        keys = _prefix_keys(str(body.get("model", "")), parts)
        candidates = {
            position
            for index, _ in breakpoints
            for position in range(max(0, index - LOOKBACK_BLOCKS + 1), index + 1)
        }
        hits = [position for position in candidates if keys[position] in self._entries]
        hit = max(hits, default=-1)
        read = cumulative[hit] if hit >= 0 else 0
        if hit >= 0:
            entry = self._entries[keys[hit]]
            entry.expires_at = now + entry.ttl_seconds

        written = {"5m": 0, "1h": 0}
        previous = read
        for index, ttl in breakpoints:
            if index <= hit:
                continue
            written[ttl] += cumulative[index] - previous
            previous = cumulative[index]
            self._entries[keys[index]] = _Entry(now + TTL_SECONDS[ttl], TTL_SECONDS[ttl])
        creation = written["5m"] + written["1h"]
        return InputUsage(
            input_tokens=total - read - creation,
            cache_creation_input_tokens=creation,
            cache_read_input_tokens=read,
            ephemeral_5m_input_tokens=written["5m"],
            ephemeral_1h_input_tokens=written["1h"],
        )


def _prefix_keys(model: str, parts: list[Segment]) -> list[str]:
    # Caches are per model, as in the real API.
    digest = hashlib.sha256(model.encode())
    keys: list[str] = []
    for part in parts:
        digest.update(part.canonical.encode())
        digest.update(b"\x1e")
        keys.append(digest.copy().hexdigest())
    return keys


def diagnose(previous: dict[str, Any] | None, body: dict[str, Any]) -> dict[str, Any] | None:
    """The `diagnostics` of a request that named `previous` (its body, or None when the API
    has no record of it), as the API reports them: None when the prefix of the previous
    request carries over whole, else why not and about how many tokens that cost."""
    if previous is None:
        return {"cache_miss_reason": {"type": "previous_message_not_found"}}
    before, now = segments(previous), segments(body)
    common = 0
    for old, new in zip(before, now, strict=False):
        if old.canonical != new.canonical:
            break
        common += 1
    if previous.get("model") == body.get("model") and common == len(before):
        return None  # only appended to: nothing to diagnose
    missed = sum(part.tokens for part in before[common:])
    if previous.get("model") != body.get("model"):
        kind, missed = "model_changed", sum(part.tokens for part in before)
    else:
        kinds = [_part_kind(part) for part in before]
        kind = {"tool": "tools_changed", "system": "system_changed"}.get(
            kinds[common] if common < len(kinds) else "", "messages_changed"
        )
    return {"cache_miss_reason": {"type": kind, "cache_missed_input_tokens": missed}}


def _part_kind(part: Segment) -> str:
    # A segment's canonical form opens with its kind: ["tool", …], ["system", …] or a role.
    return str(json.loads(part.canonical)[0])
