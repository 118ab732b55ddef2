"""The offline demo model: answers each request as pmteam's engineer, researcher, reporter or PM."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from sandbox.model import engineer, reporter, researcher, standup
from sandbox.model.ask import Ask
from sandbox.model.engineer import DISCLAIMER
from sandbox.model.patterns import Match, is_backend, match
from sandbox.model.prompt_cache import count_tokens
from sandbox.model.schema_instance import build_instance
from sandbox.model.script import Json, Reply, ToolUse, text_block

_MENTION = re.compile(r"<[@#!][^>]*>")
# A short line that introduces the request, e.g. "Task T-1 in <#C1>, from <@U1>:".
_INTRO_LINE = re.compile(r"\A[^\n]{1,200}:[ \t]*\n\s*\n")
# The date line that opens a request, e.g. "Today is Wednesday 2 December 2026."
_DATE_LINE = re.compile(r"\AToday is [^\n]{1,80}\n\s*\n")
# A channel's conventions ahead of the request: the block and the lines that introduce it.
_CONVENTIONS = re.compile(
    r"\A<channel_conventions[^>]*>.*?</channel_conventions>\n.*?\n\s*\n", re.S
)
# What follows the request in its message: attached files and the ones that couldn't be read.
_ATTACHMENT_TEXT = ("<attached_file", "[Attached file:", "Files shared with this request")
# The request inside a transcript the model is asked to report on.
_REQUEST_TAG = re.compile(r"<request>\s*(.*?)\s*</request>", re.S)


def _request_text(text: str) -> str:
    """What a person asked, without an introductory line and without mentions."""
    text = _CONVENTIONS.sub("", _DATE_LINE.sub("", text, count=1), count=1)
    text = _INTRO_LINE.sub("", text, count=1)
    # A thread message is rendered "<@U1>: text": without the mention, the colon goes too.
    return " ".join(_MENTION.sub("", text).split()).lstrip(":, ")


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
                text = _request_text(_block_text(_without_attachments(message.get("content"))))
                if text:
                    found.append((index, text))
        return found

    def _answered_after(self, index: int, before: int | None = None) -> bool:
        for message in self.messages[index + 1 : before]:
            if message.get("role") != "assistant" or _calls_a_tool(message):
                continue
            text = _block_text(message.get("content")).strip()
            if text and not text.startswith("{"):
                return True
        return False

    @property
    def last_user_text(self) -> str:
        """The last user message's text as sent (a transcript, standup data, a brief)."""
        users = [m for m in self.messages if m.get("role") == "user"]
        return _block_text(users[-1].get("content")) if users else ""

    @property
    def topic(self) -> Ask | None:
        """The backend request this turn is about: the latest ask, or, when it has no
        backend words of its own ("please try again"), the thread's latest one that has.
        None for a thank-you or greeting, or when nothing in the thread is backend work."""
        asks = [Ask(text) for _, text in self._user_texts()]
        if not asks or asks[-1].is_social:
            return None
        return next((ask for ask in reversed(asks) if is_backend(ask.words)), None)

    @property
    def answered_topic(self) -> Ask | None:
        """The thread's earlier backend request that already has an answer: set when this
        turn is a follow-up."""
        asks = self._user_texts()
        if len(asks) < 2:
            return None
        latest = asks[-1][0]
        for index, text in asks[:-1]:
            ask = Ask(text)
            if is_backend(ask.words) and self._answered_after(index, before=latest):
                return ask
        return None

    def needs_research(self) -> bool:
        """A first answer does; a follow-up only when it brings a new kind of problem."""
        topic, earlier = self.topic, self.answered_topic
        if topic is None:
            return False
        if earlier is None:
            return True
        own = match(topic)
        return own.specific and own.pattern is not match(earlier).pattern

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
        if reporter.is_completion_report(schema):
            instance = reporter.build_report(reporter.Transcript.read(conversation.last_user_text))
        else:
            instance = build_instance(schema, topic=conversation.task, seed=conversation.seed)
        return _limit(Json(instance).to_reply(), body)
    data = standup.standup_data(conversation.last_user_text)
    if data is not None:
        return _limit(Reply([text_block(standup.narrative(data))], "end_turn"), body)
    if researcher.is_research_request(conversation.last_user_text):
        if conversation.tools_allowed and conversation.offers_server_tool("web_search"):
            return researcher.web_search_reply(conversation.last_user_text)
        text = researcher.findings_without_web(conversation.last_user_text)
        return _limit(Reply([text_block(text)], "end_turn"), body)
    topic = conversation.topic
    if conversation.tools_allowed and topic is not None:
        tools_unused = not conversation.has_called_tools()
        if conversation.custom_tools and tools_unused and conversation.needs_research():
            return _tool_call(conversation, match(topic))
        if conversation.offers_server_tool("web_search"):
            return researcher.web_search_reply(conversation.task)
    return _limit(Reply([text_block(_answer(conversation))], "end_turn"), body)


def _calls_a_tool(message: dict[str, Any]) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(block, dict) and block.get("type") == "tool_use" for block in content
    )


def _tool_call(conversation: Conversation, found: Match) -> Reply:
    tools = conversation.custom_tools
    tool = next((t for t in tools if "research" in str(t.get("name", "")).lower()), tools[0])
    schema = tool["input_schema"] if isinstance(tool.get("input_schema"), dict) else {}
    built = build_instance(schema, topic=conversation.task, seed=conversation.seed)
    tool_input = built if isinstance(built, dict) else {}
    # Fields the engineer's own research tool has get a real brief instead of filler.
    properties = schema.get("properties") or {}
    for key, value in engineer.research_brief(found).items():
        expected = properties.get(key, {}).get("type") if isinstance(properties, dict) else None
        if expected == ("array" if isinstance(value, list) else "string"):
            tool_input[key] = value
    name = str(tool["name"])
    return ToolUse(
        name=name,
        input=tool_input,
        text_before=f"I'll use `{name}` to check the approach against current sources first.",
    ).to_reply()


def _answer(conversation: Conversation) -> str:
    # Said once per thread: an earlier answer in the conversation already carried it.
    disclaim = not any(
        DISCLAIMER in _block_text(m.get("content"))
        for m in conversation.messages
        if m.get("role") == "assistant"
    )
    latest = Ask(conversation.task)
    topic = conversation.topic
    if topic is None:
        return engineer.conversation_reply(latest, disclaim=disclaim)
    findings = engineer.Findings.read(_results(conversation))
    earlier = conversation.answered_topic
    if earlier is not None and findings is None:
        return engineer.follow_up_answer(latest, match(earlier), disclaim=disclaim)
    return engineer.answer(match(topic), findings=findings, disclaim=disclaim)


def _results(conversation: Conversation) -> list[tuple[str, bool]]:
    results: list[tuple[str, bool]] = []
    for block in conversation.tool_results:
        text = _block_text(block.get("content", ""))
        if text:
            results.append((text, bool(block.get("is_error"))))
    return results


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


__all__ = ["DISCLAIMER", "Conversation", "respond"]


def _without_attachments(content: Any) -> Any:
    """A request's content without the files attached to it (they are not what was asked)."""
    if not isinstance(content, list):
        return content
    return [
        b
        for b in content
        if not (
            isinstance(b, dict)
            and b.get("type") == "text"
            and str(b.get("text", "")).startswith(_ATTACHMENT_TEXT)
        )
    ]
