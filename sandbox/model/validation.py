"""Request checks the real Messages API makes, with its error types and wording."""

from __future__ import annotations

import re
from typing import Any

from sandbox.model.prompt_cache import TTL_SECONDS

_CREATE_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "cache_control",
        "container",
        "context_management",
        "diagnostics",
        "inference_geo",
        "mcp_servers",
        "metadata",
        "output_config",
        "service_tier",
        "speed",
        "stop_sequences",
        "stream",
        "system",
        "temperature",
        "thinking",
        "tool_choice",
        "tools",
        "top_k",
        "top_p",
    }
)
_COUNT_FIELDS = _CREATE_FIELDS - {
    "max_tokens",
    "stream",
    "metadata",
    "stop_sequences",
    "service_tier",
}
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_SERVER_TOOL_TYPE = re.compile(r"^[a-z][a-z0-9_]*_\d{8}$")
_MAX_BREAKPOINTS = 4


class RequestRejected(Exception):
    """The request is refused with `status` and an API error of `error_type`."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        error_type: str = "invalid_request_error",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_type = error_type
        self.headers = headers or {}


def validate(body: Any, *, count_tokens: bool = False, allow_extra: bool = False) -> None:
    """Raise RequestRejected for what the API would refuse; `allow_extra` for beta requests."""
    if not isinstance(body, dict):
        raise RequestRejected("Request body must be a JSON object")
    required = ("model", "messages") if count_tokens else ("model", "max_tokens", "messages")
    for name in required:
        if name not in body:
            raise RequestRejected(f"{name}: Field required")
    if not allow_extra:
        allowed = _COUNT_FIELDS if count_tokens else _CREATE_FIELDS
        for name in body:
            if name not in allowed:
                raise RequestRejected(f"{name}: Extra inputs are not permitted")
    if not isinstance(body["model"], str) or not body["model"]:
        raise RequestRejected("model: Input should be a valid string")
    if not count_tokens:
        max_tokens = body["max_tokens"]
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
            raise RequestRejected(
                "max_tokens: Input should be a valid integer greater than or equal to 0"
            )
        if "stream" in body and not isinstance(body["stream"], bool):
            raise RequestRejected("stream: Input should be a valid boolean")
    _check_system(body.get("system"))
    _check_messages(body["messages"])
    _check_tools(body.get("tools"))
    _check_tool_choice(body.get("tool_choice"), body.get("tools"))
    _check_output_config(body.get("output_config"))
    _check_thinking(body.get("thinking"), body.get("max_tokens"))
    _check_sampling(body)
    _check_cache_control(body)


def _check_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise RequestRejected("system: Input should be a valid string or list of text blocks")
    for i, block in enumerate(system):
        if (
            not isinstance(block, dict)
            or block.get("type") != "text"
            or not isinstance(block.get("text"), str)
        ):
            raise RequestRejected(f"system.{i}: Input should be a text block")


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list):
        raise RequestRejected("messages: Input should be a valid list")
    if not messages:
        raise RequestRejected("messages: at least one message is required")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise RequestRejected(f"messages.{i}: Input should be a valid dictionary")
        if message.get("role") not in ("user", "assistant"):
            raise RequestRejected(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise RequestRejected(f"messages.{i}.content: Input should be a valid string or list")
        for j, block in enumerate(content):
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                raise RequestRejected(f"messages.{i}.content.{j}: Input should be a content block")
    _check_tool_pairing(messages)


def _ids(content: Any, block_type: str, key: str) -> list[str]:
    if not isinstance(content, list):
        return []
    return [str(b.get(key)) for b in content if b.get("type") == block_type]


def _check_tool_pairing(messages: list[dict[str, Any]]) -> None:
    # Every tool_use must be answered by a tool_result in the very next (user) message.
    for i, message in enumerate(messages):
        if message["role"] == "user":
            results = _ids(message.get("content"), "tool_result", "tool_use_id")
            previous = messages[i - 1] if i > 0 else None
            called = _ids(previous.get("content"), "tool_use", "id") if previous else []
            unexpected = [r for r in results if r not in called]
            if unexpected:
                raise RequestRejected(
                    f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` "
                    f"blocks: {unexpected[0]}. Each `tool_result` block must have a corresponding "
                    "`tool_use` block in the previous message."
                )
            continue
        calls = _ids(message.get("content"), "tool_use", "id")
        if not calls:
            continue
        following = messages[i + 1] if i + 1 < len(messages) else None
        answered = _ids(following.get("content"), "tool_result", "tool_use_id") if following else []
        missing = [c for c in calls if c not in answered]
        if missing:
            raise RequestRejected(
                f"messages.{i + 1 if following else i}: `tool_use` ids were found without "
                f"`tool_result` blocks immediately after: {', '.join(missing)}. Each `tool_use` "
                "block must have a corresponding `tool_result` block in the next message."
            )


def _check_tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise RequestRejected("tools: Input should be a valid list")
    names: set[str] = set()
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise RequestRejected(f"tools.{i}: Input should be a valid dictionary")
        kind = tool.get("type")
        name = tool.get("name")
        if kind in (None, "custom"):
            if not isinstance(name, str) or not _TOOL_NAME.match(name):
                raise RequestRejected(
                    f"tools.{i}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
                )
            schema = tool.get("input_schema")
            if not isinstance(schema, dict):
                raise RequestRejected(f"tools.{i}.custom.input_schema: Field required")
            if schema.get("type") != "object":
                raise RequestRejected(
                    f"tools.{i}.custom.input_schema.type: Input should be 'object'"
                )
        elif not isinstance(kind, str) or not _SERVER_TOOL_TYPE.match(kind):
            raise RequestRejected(
                f"tools.{i}: Input tag '{kind}' found using 'type' does not match any of the "
                "expected tags"
            )
        elif not isinstance(name, str):
            raise RequestRejected(f"tools.{i}.{kind}.name: Field required")
        elif kind.startswith(("web_search_", "web_fetch_")) and not kind.startswith(name):
            raise RequestRejected(
                f"tools.{i}.{kind}.name: Input should be '{kind.rsplit('_', 1)[0]}'"
            )
        max_uses = tool.get("max_uses")
        if max_uses is not None and (not isinstance(max_uses, int) or max_uses < 1):
            raise RequestRejected(f"tools.{i}.{kind}.max_uses: Input should be greater than 0")
        if name in names:
            raise RequestRejected("tools: Tool names must be unique.")
        names.add(str(name))


def _check_tool_choice(choice: Any, tools: Any) -> None:
    if choice is None:
        return
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        raise RequestRejected(
            "tool_choice: Input should be one of the types 'auto', 'any', 'tool', 'none'"
        )
    if choice["type"] in ("any", "tool"):
        # Current Claude models refuse to be forced onto a tool; structured output replaces it.
        raise RequestRejected(
            f"tool_choice: forcing tool use (type '{choice['type']}') is not supported by this "
            "model. Use tool_choice {'type': 'auto'}, or output_config.format for structured "
            "output."
        )


def _check_output_config(config: Any) -> None:
    if config is None:
        return
    if not isinstance(config, dict):
        raise RequestRejected("output_config: Input should be a valid dictionary")
    effort = config.get("effort")
    if effort is not None and effort not in ("low", "medium", "high", "xhigh", "max"):
        raise RequestRejected(
            "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'"
        )
    fmt = config.get("format")
    if fmt is None:
        return
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise RequestRejected("output_config.format.type: Input should be 'json_schema'")
    if not isinstance(fmt.get("schema"), dict):
        raise RequestRejected("output_config.format.schema: Field required")


def _check_thinking(thinking: Any, max_tokens: Any) -> None:
    if thinking is None:
        return
    if not isinstance(thinking, dict) or thinking.get("type") not in (
        "enabled",
        "adaptive",
        "disabled",
    ):
        raise RequestRejected(
            "thinking: Input should be of type 'enabled', 'adaptive' or 'disabled'"
        )
    if thinking["type"] == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            raise RequestRejected(
                "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
            )
        if isinstance(max_tokens, int) and budget >= max_tokens:
            raise RequestRejected("`max_tokens` must be greater than `thinking.budget_tokens`.")


def _check_sampling(body: dict[str, Any]) -> None:
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None and (not isinstance(value, int | float) or not 0 <= value <= 1):
            raise RequestRejected(f"{name}: Input should be less than or equal to 1")
    stops = body.get("stop_sequences")
    if stops is not None and (
        not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)
    ):
        raise RequestRejected("stop_sequences: Input should be a valid list of strings")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise RequestRejected("metadata: Input should be a valid dictionary")


def _breakpoints(value: Any) -> list[Any]:
    found: list[Any] = []
    if isinstance(value, dict):
        if "cache_control" in value and value["cache_control"] is not None:
            found.append(value["cache_control"])
        for key, child in value.items():
            if key != "cache_control":
                found.extend(_breakpoints(child))
    elif isinstance(value, list):
        for child in value:
            found.extend(_breakpoints(child))
    return found


def _check_cache_control(body: dict[str, Any]) -> None:
    markers = _breakpoints({k: body.get(k) for k in ("tools", "system", "messages")})
    top_level = body.get("cache_control")
    for marker in [*markers, *([top_level] if top_level is not None else [])]:
        if not isinstance(marker, dict) or marker.get("type") != "ephemeral":
            raise RequestRejected("cache_control.type: Input should be 'ephemeral'")
        if "ttl" in marker and marker["ttl"] not in TTL_SECONDS:
            raise RequestRejected("cache_control.ttl: Input should be '5m' or '1h'")
    if len(markers) > _MAX_BREAKPOINTS:
        raise RequestRejected(
            f"A maximum of {_MAX_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {len(markers)}."
        )
