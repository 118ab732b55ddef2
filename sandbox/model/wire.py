"""The Messages API wire format: the message object, its SSE event sequence, and error bodies."""

from __future__ import annotations

import json
import re
from typing import Any

from sandbox.model.prompt_cache import InputUsage, canonical, count_tokens
from sandbox.model.script import Reply

Event = tuple[str, dict[str, Any]]

_TEXT_CHUNK = re.compile(r"\S*\s*")


def output_tokens(reply: Reply) -> int:
    total = 0
    for block in reply.content:
        if block.get("type") == "text":
            total += count_tokens(block.get("text", ""))
        elif block.get("type") in ("tool_use", "server_tool_use"):
            total += count_tokens(canonical(block.get("input", {})))
        elif block.get("type") == "thinking":
            total += count_tokens(block.get("thinking", ""))
    return total


# What one search result is billed as when it is read back: a result carries the page text
# the model sees (encrypted on the wire), far more than its title and address. The fake's own
# results are a few words, so each is billed at this size instead; an assumption, stated
# in bench/README.md, that `FakeModel(search_result_tokens=...)` can change.
SEARCH_RESULT_TOKENS = 800
_SERVER_RESULTS = ("web_search_tool_result", "web_fetch_tool_result")


def server_tool_input_tokens(reply: Reply, result_tokens: int = SEARCH_RESULT_TOKENS) -> int:
    """Input tokens a reply's server-tool steps add: after each search or fetch the model
    samples again, reading everything the reply holds so far (its own text, its tool calls
    and every result returned), so a result is billed once for each later step of the call."""
    added = 0
    so_far = 0
    for block in reply.content:
        kind = block.get("type")
        if kind == "web_search_tool_result":
            results = block.get("content")
            count = len(results) if isinstance(results, list) else 0
            so_far += max(count_tokens(canonical(block)), count * result_tokens)
        elif kind in _SERVER_RESULTS:
            so_far += count_tokens(canonical(block))
        elif kind == "text":
            so_far += count_tokens(block.get("text", ""))
        elif kind == "server_tool_use":
            so_far += count_tokens(canonical(block.get("input", {})))
        if kind in _SERVER_RESULTS:
            added += so_far
    return added


def usage_json(
    usage: InputUsage, reply: Reply, *, result_tokens: int = SEARCH_RESULT_TOKENS
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "input_tokens": usage.input_tokens + server_tool_input_tokens(reply, result_tokens),
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": usage.ephemeral_5m_input_tokens,
            "ephemeral_1h_input_tokens": usage.ephemeral_1h_input_tokens,
        },
        "output_tokens": output_tokens(reply),
        "service_tier": "standard",
    }
    if reply.web_search_requests or reply.web_fetch_requests:
        out["server_tool_use"] = {
            "web_search_requests": reply.web_search_requests,
            "web_fetch_requests": reply.web_fetch_requests,
        }
    return out


def message_json(
    reply: Reply, *, message_id: str, model: str, usage: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": reply.content,
        "stop_reason": reply.stop_reason,
        "stop_sequence": reply.stop_sequence,
        "stop_details": reply.stop_details,
        "usage": usage,
    }


def _text_chunks(text: str, size: int = 24) -> list[str]:
    """Word-aligned pieces of about `size` characters, the way text deltas arrive."""
    chunks: list[str] = []
    current = ""
    for word in _TEXT_CHUNK.findall(text):
        if current and len(current) + len(word) > size:
            chunks.append(current)
            current = ""
        current += word
    if current:
        chunks.append(current)
    return chunks


def _json_chunks(value: Any, size: int = 16) -> list[str]:
    text = json.dumps(value, ensure_ascii=False)
    # The API opens every tool input with an empty partial_json delta.
    return ["", *(text[i : i + size] for i in range(0, len(text), size))]


def _block_events(index: int, block: dict[str, Any]) -> list[Event]:
    kind = block.get("type")
    events: list[Event] = []

    def delta(payload: dict[str, Any]) -> None:
        events.append(
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": payload},
            )
        )

    def start(content_block: dict[str, Any]) -> None:
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": content_block},
            )
        )

    if kind == "text":
        start({"type": "text", "text": ""})
        for citation in block.get("citations") or []:
            delta({"type": "citations_delta", "citation": citation})
        for chunk in _text_chunks(block.get("text", "")):
            delta({"type": "text_delta", "text": chunk})
    elif kind in ("tool_use", "server_tool_use"):
        start({**block, "input": {}})
        for chunk in _json_chunks(block.get("input", {})):
            delta({"type": "input_json_delta", "partial_json": chunk})
    elif kind == "thinking":
        start({"type": "thinking", "thinking": "", "signature": ""})
        for chunk in _text_chunks(block.get("thinking", "")):
            delta({"type": "thinking_delta", "thinking": chunk})
        delta({"type": "signature_delta", "signature": block.get("signature", "")})
    else:
        # Result blocks (web_search_tool_result, …) arrive whole in their start event.
        start(block)
    events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


def stream_events(
    reply: Reply,
    *,
    message_id: str,
    model: str,
    usage: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> list[Event]:
    """The SSE events for `reply`, in the API's order; they accumulate to `message_json`
    (plus `extra` fields of the message, such as `diagnostics`, sent with message_start)."""
    start_usage = {k: v for k, v in usage.items() if k != "server_tool_use"}
    start_usage["output_tokens"] = min(1, usage["output_tokens"])
    start_message = {
        **message_json(
            Reply([], reply.stop_reason), message_id=message_id, model=model, usage=start_usage
        ),
        "stop_reason": None,
        "stop_sequence": None,
        "stop_details": None,
        **(extra or {}),
    }
    events: list[Event] = [
        ("message_start", {"type": "message_start", "message": start_message}),
        ("ping", {"type": "ping"}),
    ]
    for index, block in enumerate(reply.content):
        events.extend(_block_events(index, block))
    delta_usage = {
        k: usage[k]
        for k in (
            "input_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "output_tokens",
        )
    }
    if "server_tool_use" in usage:
        delta_usage["server_tool_use"] = usage["server_tool_use"]
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": reply.stop_reason,
                    "stop_sequence": reply.stop_sequence,
                    "stop_details": reply.stop_details,
                },
                "usage": delta_usage,
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def error_json(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    }
