"""The team's own tools (MCP servers) as the engineer sees them: named `<server>__<tool>`, their
results fenced as data; the bot connects to the servers and runs each call."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from agents.llm import Wire
from agents.researcher import trim_findings
from agents.templates import fill
from agents.tools import ToolOutcome

# Tool names the Messages API accepts.
_NAME_LIMIT = 64
_NOT_IN_NAME = re.compile(r"[^a-zA-Z0-9_-]")
# What the engineer reads of one result: every token of it is billed again on each later call
# of the turn, and a follow-up reads it back with the rest of the thread.
RESULT_TO_ENGINEER = 8_000  # characters, about 2,000 tokens
DESCRIPTION_LIMIT = 1_500
READ_ONLY = "read-only"
WRITES = "writes: asks the requester first"


@dataclass(frozen=True)
class McpTool:
    """A tool of one of the team's MCP servers, offered to the engineer."""

    server: str
    name: str  # as the server names it
    description: str
    input_schema: Wire
    writes: bool  # PMTEAM_MCP_WRITE_TOOLS lists it: each call waits for the requester's yes

    @property
    def label(self) -> str:
        """How people see it: `github.create_issue`."""
        return f"{self.server}.{self.name}"


def model_name(server: str, tool: str) -> str:
    """`<server>__<tool>` as the API allows tool names (`^[a-zA-Z0-9_-]{1,64}$`): other
    characters become `_`, and a name too long keeps its start and a hash of the whole."""
    name = _NOT_IN_NAME.sub("_", f"{server}__{tool}")
    if len(name) <= _NAME_LIMIT:
        return name
    return _hashed(name, f"{server}__{tool}")


def _hashed(name: str, whole: str) -> str:
    digest = hashlib.sha256(whole.encode()).hexdigest()[:8]
    return f"{name[: _NAME_LIMIT - 9]}_{digest}"


@dataclass(frozen=True)
class McpResult:
    """How a call ended: the server's own words (`output`, untrusted), or, when the tool
    didn't run or didn't answer, pmteam's (`note`)."""

    output: str | None = None
    is_error: bool = False
    note: str | None = None

    @classmethod
    def answered(cls, output: str, *, is_error: bool = False) -> McpResult:
        return cls(output=output, is_error=is_error)

    @classmethod
    def not_run(cls, note: str) -> McpResult:
        return cls(note=note, is_error=True)


# (tool, input) -> how the call ended. The bot implements it: approval for a write tool, the
# call itself with its deadline, and the record of it.
RunMcpTool = Callable[[McpTool, Wire], Awaitable[McpResult]]


@dataclass(frozen=True)
class McpTools:
    """The team's tools for one turn, and how to run one."""

    tools: tuple[McpTool, ...]
    run: RunMcpTool
    _by_name: dict[str, McpTool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Named in a fixed order, so a name that two tools share after cleaning gets the same
        # hashed form on every call: the cached prefix stays byte-identical.
        by_name: dict[str, McpTool] = {}
        for tool in sorted(self.tools, key=lambda t: (t.server, t.name)):
            name = model_name(tool.server, tool.name)
            if name in by_name:
                name = _hashed(name, f"{tool.server}__{tool.name}")
            by_name[name] = tool
        object.__setattr__(self, "_by_name", dict(sorted(by_name.items())))

    def find(self, name: str) -> McpTool | None:
        return self._by_name.get(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def specs(self) -> tuple[Wire, ...]:
        """The tools as the API takes them, by name: the same bytes for the same tools."""
        return tuple(spec(tool, name) for name, tool in self._by_name.items())


def spec(tool: McpTool, name: str) -> Wire:
    description = " ".join(tool.description.split()) or "(no description)"
    if len(description) > DESCRIPTION_LIMIT:
        description = description[: DESCRIPTION_LIMIT - 1] + "…"
    return {
        "name": name,
        "description": fill(
            "tools/mcp_tool",
            server=tool.server,
            access=WRITES if tool.writes else READ_ONLY,
            description=description,
        ),
        "input_schema": tool.input_schema,
    }


def outcome(tool: McpTool, result: McpResult) -> ToolOutcome:
    """The tool_result the engineer reads: the server's words fenced and labelled as data,
    trimmed to RESULT_TO_ENGINEER characters; pmteam's own note as it is."""
    if result.output is None:
        return ToolOutcome(result.note or "The tool did not run.", is_error=True)
    text = trim_findings(result.output, RESULT_TO_ENGINEER) or "(no output)"
    return ToolOutcome(
        fill(
            "mcp_result_template",
            server=tool.server,
            tool=tool.name.replace('"', "'"),
            reported_error="true" if result.is_error else "false",
            # A result must not be able to close the fence and speak outside it.
            output=_defuse(text),
        ),
        is_error=result.is_error,
    )


def _defuse(text: str) -> str:
    return re.sub(r"<(/?)tool_output", r"&lt;\1tool_output", text, flags=re.IGNORECASE)


# --- pmteam's notes when a call didn't run or didn't answer ------------------------------------


def declined(tool: McpTool, by: str) -> str:
    return (
        f"The requester ({by}) declined this call of {tool.label}; it did not run. Do not try "
        "it again in this turn: say in your answer what it would have done, so they can do it "
        "themselves or ask you again."
    )


def not_approved_in_time(tool: McpTool, minutes: float) -> str:
    return (
        f"The requester did not approve this call of {tool.label} within {minutes:g} minutes, "
        "so it did not run. Do not try it again in this turn: say what it would have done."
    )


def unavailable(tool: McpTool, reason: str) -> str:
    return (
        f"The {tool.server} server is unavailable ({reason}); the call did not complete. Carry "
        "on without it, and say in your answer what you could not check."
    )


def timed_out(tool: McpTool, seconds: float) -> str:
    return (
        f"The {tool.server} server did not answer {tool.name} within {seconds:g} seconds. Carry "
        "on without it, and say in your answer what you could not check."
    )


def failed(tool: McpTool, reason: str) -> str:
    return f"The call of {tool.label} failed ({reason}). Carry on without it."


def listed(names: Sequence[str]) -> str:
    """`a, b and c`."""
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"
