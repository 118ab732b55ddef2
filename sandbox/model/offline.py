"""The offline demo model: deterministic answers that drive a well-formed agent loop."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from sandbox.model import corpus
from sandbox.model.prompt_cache import count_tokens
from sandbox.model.schema_instance import build_instance
from sandbox.model.script import (
    Json,
    Reply,
    ToolUse,
    text_block,
    web_search_blocks,
    web_search_citation,
)

DISCLAIMER = "_(offline demo model — set ANTHROPIC_API_KEY for real answers)_"
_MENTION = re.compile(r"<[@#!][^>]*>")
# A short line that introduces the request, e.g. "Task T-1 in <#C1>, from <@U1>:".
_INTRO_LINE = re.compile(r"\A[^\n]{1,200}:[ \t]*\n\s*\n")
# The date line that opens a request, e.g. "Today is Wednesday 2 December 2026."
_DATE_LINE = re.compile(r"\AToday is [^\n]{1,80}\n\s*\n")
# The request inside a transcript the model is asked to report on.
_REQUEST_TAG = re.compile(r"<request>\s*(.*?)\s*</request>", re.S)
# A numbered source in research findings, e.g. "[2] PostgreSQL: Indexes — https://…".
_SOURCE_NUMBER = re.compile(r"^\[(\d{1,3})\] ", re.M)
# Markup wrapped around tool results, e.g. <research_findings live_sources="true">.
_MARKUP_TAG = re.compile(r"</?[a-z][a-z_]*(?:\s[^<>]*)?>")


def _request_text(text: str) -> str:
    """What a person asked, without an introductory line and without mentions."""
    text = _INTRO_LINE.sub("", _DATE_LINE.sub("", text, count=1), count=1)
    return " ".join(_MENTION.sub("", text).split())


def _block_text(content: Any) -> str:
    """The text of a message's or tool result's content: a string, or its text blocks."""
    if isinstance(content, str):
        return content
    blocks = content if isinstance(content, list) else []
    return "\n".join(
        b["text"]
        for b in blocks
        if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
    )


@dataclass(frozen=True)
class Conversation:
    """What the offline model looks at in a request."""

    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [m for m in self.body.get("messages") or [] if isinstance(m, dict)]

    @property
    def task(self) -> str:
        """The latest thing a person asked: the last user text that is not a tool result.

        A structured-output request that follows finished work (a report on it) is about that
        work: the topic is the last request the model already answered in prose."""
        asks = self._user_texts()
        if self.output_schema is not None:
            # A transcript to report on names its request between <request> tags.
            for message in self.messages:
                found = _REQUEST_TAG.search(_block_text(message.get("content")))
                if found:
                    return _request_text(found.group(1))
            answered = [text for index, text in asks if self._answered_after(index)]
            if answered:
                return answered[-1]
        return asks[-1][1] if asks else ""

    def _user_texts(self) -> list[tuple[int, str]]:
        found = []
        for index, message in enumerate(self.messages):
            if message.get("role") == "user":
                text = _request_text(_block_text(message.get("content")))
                if text:
                    found.append((index, text))
        return found

    def _answered_after(self, index: int) -> bool:
        for message in self.messages[index + 1 :]:
            if message.get("role") != "assistant":
                continue
            text = _block_text(message.get("content")).strip()
            if text and not text.startswith("{"):
                return True
        return False

    @property
    def seed(self) -> int:
        material = json.dumps([self.body.get("system"), self.messages], sort_keys=True, default=str)
        return int.from_bytes(hashlib.sha256(material.encode()).digest()[:8], "big")

    @property
    def tool_results(self) -> list[dict[str, Any]]:
        """tool_result blocks of the last message, when it answers a tool call."""
        if not self.messages or self.messages[-1].get("role") != "user":
            return []
        content = self.messages[-1].get("content")
        return (
            [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
            if isinstance(content, list)
            else []
        )

    def has_called_tools(self) -> bool:
        return any(
            isinstance(block, dict) and block.get("type") == "tool_use"
            for message in self.messages
            if message.get("role") == "assistant" and isinstance(message.get("content"), list)
            for block in message["content"]
        )

    @property
    def tools(self) -> list[dict[str, Any]]:
        return [t for t in self.body.get("tools") or [] if isinstance(t, dict)]

    @property
    def custom_tools(self) -> list[dict[str, Any]]:
        return [t for t in self.tools if t.get("type") in (None, "custom") and "input_schema" in t]

    def offers_server_tool(self, name: str) -> bool:
        return any(
            t.get("name") == name and str(t.get("type", "")).startswith(name) for t in self.tools
        )

    @property
    def tools_allowed(self) -> bool:
        choice = self.body.get("tool_choice")
        return not (isinstance(choice, dict) and choice.get("type") == "none")

    @property
    def output_schema(self) -> dict[str, Any] | None:
        config = self.body.get("output_config")
        fmt = config.get("format") if isinstance(config, dict) else None
        if (
            isinstance(fmt, dict)
            and fmt.get("type") == "json_schema"
            and isinstance(fmt.get("schema"), dict)
        ):
            schema: dict[str, Any] = fmt["schema"]
            return schema
        return None


def respond(body: dict[str, Any]) -> Reply:
    """The offline model's reply to a validated request."""
    conversation = Conversation(body)
    if body.get("max_tokens") == 0:
        # max_tokens 0 only warms the prompt cache.
        return Reply([], "max_tokens")
    schema = conversation.output_schema
    if schema is not None:
        # Structured output ends the turn at once, even when tools are offered too.
        instance = build_instance(schema, topic=conversation.task, seed=conversation.seed)
        return _limit(Json(instance).to_reply(), body)
    if conversation.tools_allowed:
        if conversation.custom_tools and not conversation.has_called_tools():
            return _tool_call(conversation)
        if conversation.offers_server_tool("web_search"):
            return _web_search(conversation)
    return _limit(Reply([text_block(_markdown_answer(conversation))], "end_turn"), body)


def _tool_call(conversation: Conversation) -> Reply:
    tools = conversation.custom_tools
    tool = next((t for t in tools if "research" in str(t.get("name", "")).lower()), tools[0])
    schema = tool["input_schema"] if isinstance(tool.get("input_schema"), dict) else {}
    tool_input = build_instance(schema, topic=conversation.task, seed=conversation.seed)
    name = str(tool["name"])
    return ToolUse(
        name=name,
        input=tool_input if isinstance(tool_input, dict) else {},
        text_before=f"I'll use `{name}` to gather context before answering.",
    ).to_reply()


def _search_query(task: str) -> str:
    return " ".join(corpus.words(task)[:10]) or "software engineering best practices"


def _web_search(conversation: Conversation) -> Reply:
    query = _search_query(conversation.task)
    references = corpus.search(query)
    content = [text_block(f"{DISCLAIMER}\n\nI searched the web for “{query}”.")]
    content.extend(
        web_search_blocks(query, [(r.url, r.title, r.snippet, r.page_age) for r in references])
    )
    for index, ref in enumerate(references):
        content.append(
            text_block(
                f"{ref.title}: {ref.snippet}",
                [web_search_citation(ref.url, ref.title, ref.snippet, index)],
            )
        )
    content.append(
        text_block(
            "These sources come from the offline model's small local library, chosen by keyword "
            "overlap with the question; treat them as pointers, not as a researched answer."
        )
    )
    return Reply(content, "end_turn", web_search_requests=1)


def _markdown_answer(conversation: Conversation) -> str:
    task = conversation.task or "your request"
    short = task if len(task) <= 160 else task[:159].rstrip() + "…"
    sample = corpus.code_sample(task + " " + " ".join(_result_texts(conversation)))
    # Said once per thread: an earlier answer in the conversation already carried it.
    said_before = any(
        DISCLAIMER in _block_text(m.get("content"))
        for m in conversation.messages
        if m.get("role") == "assistant"
    )
    sections = [
        *([] if said_before else [DISCLAIMER]),
        f"**The task.** You asked: “{short}”. Here is a plan an engineer could start from — a "
        "sketch to react to, not a reviewed design.",
        "**Approach**\n"
        "1. Pin down the contract first: inputs, outputs and the failure modes that matter.\n"
        "2. Build the smallest end-to-end slice, keyed by an idempotency key so retries are safe.\n"
        "3. Add tests at the network edge, then measure before optimising.",
    ]
    findings = _result_texts(conversation)
    if findings:
        plain = _MARKUP_TAG.sub(" ", " ".join(findings)).replace(DISCLAIMER, " ")
        excerpt = " ".join(plain.split())
        excerpt = excerpt if len(excerpt) <= 400 else excerpt[:399].rstrip() + "…"
        sections.append(f"**What the tools returned.** {excerpt}")
        numbers = list(dict.fromkeys(_SOURCE_NUMBER.findall("\n".join(findings))))[:3]
        if numbers:
            cites = ", ".join(numbers)
            sections.append(f"**Sources relied on.** The research's references [{cites}].")
    sections.append(f"```{sample.language}\n{sample.code}\n```")
    if not said_before:
        sections.append(
            "**Risks.** This answer was not written by Claude: it is assembled from templates by "
            "the offline demo model, so check it before acting on it."
        )
    return "\n\n".join(sections)


def _result_texts(conversation: Conversation) -> list[str]:
    texts: list[str] = []
    for block in conversation.tool_results:
        text = _block_text(block.get("content", ""))
        if text:
            texts.append(f"(error) {text}" if block.get("is_error") else text)
    return texts


def _limit(reply: Reply, body: dict[str, Any]) -> Reply:
    """Apply stop_sequences and max_tokens to a reply of one text block, as generation would."""
    if len(reply.content) != 1 or reply.content[0].get("type") != "text":
        return reply
    text: str = reply.content[0]["text"]
    stops = [s for s in body.get("stop_sequences") or [] if isinstance(s, str) and s]
    found = [(text.find(s), s) for s in stops if s in text]
    if found:
        position, sequence = min(found)
        return Reply([text_block(text[:position])], "stop_sequence", stop_sequence=sequence)
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, int) and count_tokens(text) > max_tokens:
        return Reply([text_block(text[: max_tokens * 4])], "max_tokens")
    return reply
