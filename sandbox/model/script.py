"""Scripted responses for the fake Messages API, and the reply they turn into."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from sandbox.model.ids import new_id

StopReason: TypeAlias = Literal[
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
]


@dataclass
class Reply:
    """What the model says: content blocks in wire form, and why it stopped."""

    content: list[dict[str, Any]]
    stop_reason: StopReason
    stop_sequence: str | None = None
    web_search_requests: int = 0
    web_fetch_requests: int = 0

    @property
    def stop_details(self) -> dict[str, Any] | None:
        if self.stop_reason == "refusal":
            return {"type": "refusal", "category": None, "explanation": None}
        return None


@dataclass(frozen=True)
class Text:
    """A text answer; `citations` are wire-form citations (e.g. web_search_result_location)."""

    text: str
    stop_reason: StopReason = "end_turn"
    citations: Sequence[Mapping[str, Any]] | None = None

    def to_reply(self) -> Reply:
        return Reply([text_block(self.text, self.citations)], self.stop_reason)


@dataclass(frozen=True)
class ToolUse:
    """A call to a custom tool, optionally preceded by some text."""

    name: str
    input: Mapping[str, Any]
    text_before: str | None = None
    id: str | None = None

    def to_reply(self) -> Reply:
        content = [text_block(self.text_before)] if self.text_before else []
        content.append(
            {
                "type": "tool_use",
                "id": self.id or new_id("toolu"),
                "name": self.name,
                "input": dict(self.input),
            }
        )
        return Reply(content, "tool_use")


@dataclass(frozen=True)
class WebSearch:
    """One server-side web search: the call, its results, and an answer citing every result.

    `results` are `(url, title, snippet)`; each snippet is what the answer's citation quotes.
    """

    query: str
    results: Sequence[tuple[str, str, str]] = ()
    answer_text: str = ""
    text_before: str | None = None
    page_age: str | None = None
    stop_reason: StopReason = "end_turn"

    def to_reply(self) -> Reply:
        content = [text_block(self.text_before)] if self.text_before else []
        content.extend(
            web_search_blocks(
                self.query,
                [(url, title, snippet, self.page_age) for url, title, snippet in self.results],
            )
        )
        if self.answer_text:
            citations = [
                web_search_citation(url, title, snippet, index)
                for index, (url, title, snippet) in enumerate(self.results)
            ]
            content.append(text_block(self.answer_text, citations or None))
        return Reply(content, self.stop_reason, web_search_requests=1)


@dataclass(frozen=True)
class Json:
    """A text block holding `obj` as JSON: what the API returns for an `output_config.format`."""

    obj: Any
    stop_reason: StopReason = "end_turn"

    def to_reply(self) -> Reply:
        return Reply([text_block(json.dumps(self.obj, ensure_ascii=False))], self.stop_reason)


@dataclass(frozen=True)
class Blocks:
    """Any content blocks in wire form, for replies the other items do not cover."""

    content: Sequence[Mapping[str, Any]]
    stop_reason: StopReason = "end_turn"

    def to_reply(self) -> Reply:
        searches = sum(
            1
            for b in self.content
            if b.get("type") == "server_tool_use" and b.get("name") == "web_search"
        )
        fetches = sum(
            1
            for b in self.content
            if b.get("type") == "server_tool_use" and b.get("name") == "web_fetch"
        )
        return Reply(
            [dict(b) for b in self.content],
            self.stop_reason,
            web_search_requests=searches,
            web_fetch_requests=fetches,
        )


_DEFAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request"),
    401: ("authentication_error", "invalid x-api-key"),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "Not found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


@dataclass(frozen=True)
class ApiError:
    """An HTTP error with the API's error body; `type` and `message` default from `status`."""

    status: int
    type: str | None = None
    message: str | None = None
    retry_after_ms: int | None = None
    # The SDK obeys `x-should-retry` over its status-code rules when the header is present.
    should_retry: bool | None = None

    @property
    def error_type(self) -> str:
        return self.type or _DEFAULT_ERRORS.get(self.status, ("api_error", ""))[0]

    @property
    def error_message(self) -> str:
        return self.message or _DEFAULT_ERRORS.get(self.status, ("", "Error"))[1]


@dataclass(frozen=True)
class Delay:
    """Wait `seconds` before answering with `then` (the offline model when None)."""

    seconds: float
    then: ScriptItem | None = None


@dataclass(frozen=True)
class CutStream:
    """Answer with `item` (the offline model when None) but break off midway.

    With `stream: true` the server sends `after_events` SSE events, then closes the socket
    without ending the chunked body; with `error` set it instead sends that error as an SSE
    `error` event and ends the stream, as the API does when it overloads mid-answer.
    A non-streamed request gets no response at all.
    """

    item: ScriptItem | None = None
    after_events: int = 3
    error: ApiError | None = None
    # Hold the connection open this long, sending nothing, before dropping it: a stall.
    stall_seconds: float = 0.0


ScriptItem: TypeAlias = Text | ToolUse | WebSearch | Json | Blocks | ApiError | Delay | CutStream
ReplyItem: TypeAlias = Text | ToolUse | WebSearch | Json | Blocks


def text_block(text: str, citations: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if citations:
        block["citations"] = [dict(c) for c in citations]
    return block


def _opaque(*parts: object) -> str:
    # Real encrypted fields are opaque base64; ours are reversible, which nothing relies on.
    return base64.b64encode(json.dumps(parts, ensure_ascii=False).encode()).decode()


def web_search_blocks(
    query: str, results: Sequence[tuple[str, str, str, str | None]]
) -> list[dict[str, Any]]:
    """A `server_tool_use` block and its `web_search_tool_result`.

    `results` are (url, title, snippet, page_age).
    """
    tool_use_id = new_id("srvtoolu")
    return [
        {
            "type": "server_tool_use",
            "id": tool_use_id,
            "name": "web_search",
            "input": {"query": query},
        },
        {
            "type": "web_search_tool_result",
            "tool_use_id": tool_use_id,
            "content": [
                {
                    "type": "web_search_result",
                    "url": url,
                    "title": title,
                    "encrypted_content": _opaque(url, snippet),
                    "page_age": page_age,
                }
                for url, title, snippet, page_age in results
            ],
        },
    ]


def web_search_citation(url: str, title: str, cited_text: str, index: int) -> dict[str, Any]:
    return {
        "type": "web_search_result_location",
        "url": url,
        "title": title,
        "encrypted_index": _opaque(url, index),
        "cited_text": cited_text,
    }


__all__ = [
    "ApiError",
    "Blocks",
    "CutStream",
    "Delay",
    "Json",
    "Reply",
    "ReplyItem",
    "ScriptItem",
    "StopReason",
    "Text",
    "ToolUse",
    "WebSearch",
]
