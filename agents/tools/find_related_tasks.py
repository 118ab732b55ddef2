"""The `find_related_tasks` tool: read-only search of the team's past tasks, via a callable."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from agents.llm import Wire
from agents.templates import load_prompt
from agents.tools import ToolOutcome

log = structlog.get_logger(__name__)

NAME = "find_related_tasks"
MAX_RESULTS = 10


@dataclass(frozen=True)
class RelatedTask:
    """A past task as the engineer sees it."""

    ref: str  # "T-42"
    title: str
    status: str
    summary: str | None = None  # its last report in one line; None before its first


# (query, limit) -> matching tasks, best first (most keywords matched, then newest). The bot
# implements it over storage.
FindRelatedTasks = Callable[[str, int], Awaitable[Sequence[RelatedTask]]]


def spec() -> Wire:
    return {
        "name": NAME,
        "description": load_prompt("tools/find_related_tasks"),
        "input_schema": {
            "type": "object",
            "properties": {
                "query": {
                    "type": "string",
                    "description": "Keywords: service, table, API or topic names.",
                },
                "limit": {
                    "type": "integer",
                    "description": f"How many tasks to return, 1 to {MAX_RESULTS} (default 5).",
                },
            },
            "required": ["query"],
        },
    }


def parse_input(tool_input: Wire) -> tuple[str, int]:
    query = tool_input.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ValueError("`query` must be a non-empty string of keywords")
    limit: Any = tool_input.get("limit", 5)
    if not isinstance(limit, int) or isinstance(limit, bool):
        limit = 5
    return query.strip(), max(1, min(MAX_RESULTS, limit))


async def run(tool_input: Wire, find: FindRelatedTasks) -> tuple[ToolOutcome, int]:
    """The tool result and how many tasks were found."""
    try:
        query, limit = parse_input(tool_input)
    except ValueError as exc:
        return ToolOutcome(f"Invalid input: {exc}.", is_error=True), 0
    try:
        tasks = list(await find(query, limit))[:limit]
    except Exception as exc:
        log.exception("engineer.find_related_tasks_failed", query=query)
        return (
            ToolOutcome(
                f"The task search failed ({type(exc).__name__}); carry on without it.",
                is_error=True,
            ),
            0,
        )
    if not tasks:
        return ToolOutcome(f"No past tasks matched “{query}”."), 0
    return ToolOutcome("\n".join(map(task_line, tasks))), len(tasks)


def task_line(task: RelatedTask) -> str:
    """'T-12 [completed] Orders API — last report: COMPLETED: …'."""
    line = f"{task.ref} [{task.status}] {task.title}"
    return f"{line} — last report: {task.summary}" if task.summary else line
