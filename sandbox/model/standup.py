"""The demo PM's standup narrative: a few plain sentences from the standup data it is sent."""

from __future__ import annotations

import json
import re
from typing import Any

from sandbox.model.ask import clip

_LISTS = ("completed", "in_progress", "blocked", "red_flags", "handoffs")
_NAMED_PER_LIST = 2
_READS_ON = re.compile(r"(?:Waiting|Blocked|Needed|Open|Estimate|Overdue)\b")


def standup_data(text: str) -> dict[str, Any] | None:
    """The standup data in a user message (agents.pm.StandupData as JSON), or None."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if isinstance(data, dict) and "period" in data and any(key in data for key in _LISTS):
        return data
    return None


def narrative(data: dict[str, Any]) -> str:
    """Two to four sentences: the counts, then the tasks that matter by ref and title."""
    lists = {key: _tasks(data.get(key)) for key in _LISTS}
    period = str(data.get("period") or "in this period").strip()
    completed, in_progress, blocked = lists["completed"], lists["in_progress"], lists["blocked"]
    if not (completed or in_progress or blocked or lists["red_flags"] or lists["handoffs"]):
        return f"A quiet period {period}: no task was completed, started or blocked."
    sentences = [
        f"{period[:1].upper()}{period[1:]}: {_count(len(completed), 'completed')}, "
        f"{len(in_progress)} in progress and {len(blocked)} blocked."
    ]
    moving = [f"{_name(t)} was completed" for t in completed[:_NAMED_PER_LIST]]
    moving += [
        f"{_name(t)} is in progress{_detail(t, ' (', ')')}" for t in in_progress[:_NAMED_PER_LIST]
    ]
    if moving:
        sentences.append(_sentence(moving, len(completed) + len(in_progress) - len(moving)))
    if blocked:
        stuck = [f"{_name(t)} is blocked{_detail(t, ': ')}" for t in blocked[:_NAMED_PER_LIST]]
        sentences.append(_sentence(stuck, len(blocked) - len(stuck)))
    # A blocked task's handoff is what it waits for, said already.
    blocked_refs = {t.get("ref") for t in blocked}
    handoffs = [t for t in lists["handoffs"] if t.get("ref") not in blocked_refs]
    attention = [f"red flags on {_name(t)}{_detail(t, ': ')}" for t in lists["red_flags"][:1]]
    attention += [f"a handoff waiting on {_name(t)}{_detail(t, ': ')}" for t in handoffs[:1]]
    if attention:
        line = "Needs attention: " + "; ".join(attention)
        more = len(lists["red_flags"]) + len(handoffs) - len(attention)
        sentences.append(line + (f"; and {more} more." if more else "."))
    return " ".join(sentences)


def _tasks(value: Any) -> list[dict[str, Any]]:
    return [t for t in value if isinstance(t, dict)] if isinstance(value, list) else []


def _count(number: int, state: str) -> str:
    return f"{number} task{'' if number == 1 else 's'} {state}"


def _name(task: dict[str, Any]) -> str:
    ref = str(task.get("ref") or "a task")
    title = clip(str(task.get("title") or ""), 80)
    return f"{ref} ({title})" if title else ref


def _detail(task: dict[str, Any], before: str, after: str = "") -> str:
    detail = clip(str(task.get("detail") or ""), 120).rstrip(".")
    if not detail:
        return ""
    if _READS_ON.match(detail):  # "Waiting for …" reads on after a colon; "Risk 5/9" stays
        detail = detail[:1].lower() + detail[1:]
    return f"{before}{detail}{after}"


def _sentence(parts: list[str], more: int) -> str:
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + (f"; and {more} more." if more else ".")
