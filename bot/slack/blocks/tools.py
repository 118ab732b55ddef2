"""Block Kit for the team's tools: the approval a write asks for, and a call's line (pure)."""

from __future__ import annotations

import json
import re
from typing import Any

from bot.core.mrkdwn import escape_literal, one_line
from bot.slack.blocks.common import Block, button, context, section
from storage.models import Approval, ToolCall

ACTION_TOOL_APPROVE = "tool_call_approve"
ACTION_TOOL_DENY = "tool_call_deny"
ARGUMENTS_SHOWN = 2_500  # characters of an approval's arguments
ARGUMENTS_IN_LINE = 100  # ... and of a call's line under /pm status
MASKED = "•••"
# Argument names whose values are not shown: a model may pass along a key it was given.
_SECRET_NAME = re.compile(r"token|secret|passw|authori[sz]ation|api[_-]?key|credential", re.I)


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: MASKED if _SECRET_NAME.search(str(key)) else _masked(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


def shown_arguments(arguments: dict[str, Any], *, limit: int, pretty: bool) -> str:
    """The arguments as JSON, secret-looking values masked, cut to `limit` characters; as
    typed text (escaped: nothing in them links, mentions or pings)."""
    text = json.dumps(
        _masked(arguments),
        ensure_ascii=False,
        sort_keys=True,
        indent=2 if pretty else None,
        separators=None if pretty else (", ", ": "),
    )
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    # Three backticks would close the code block the arguments are shown in.
    return escape_literal(text.replace("```", "`\u200b``"))


def _decision(call: ToolCall, approval_minutes: float) -> str:
    who = f"<@{call.decided_by}>" if call.decided_by else "someone"
    return {
        Approval.APPROVED: f":white_check_mark: Approved by {who}.",
        Approval.DENIED: f":no_entry_sign: Denied by {who}; it did not run.",
        Approval.TIMED_OUT: (
            f":hourglass: Not approved within {approval_minutes:g} minutes; it did not run."
        ),
        Approval.WITHDRAWN: (
            ":black_square_for_stop: No longer needed: the answer ended before anyone approved "
            "it. It did not run."
        ),
    }.get(Approval(call.approval or Approval.PENDING), "")


def tool_call_text(call: ToolCall, *, ref: str, requester: str) -> str:
    """The notification text of an approval message."""
    tool = escape_literal(f"{call.server}.{call.tool}")
    if call.approval == Approval.PENDING:
        return f"<@{requester}>, {ref} asks to run {tool}, which makes changes. Approve it?"
    return f"{ref}: {tool} — {call.approval}"


def build_tool_call_blocks(
    call: ToolCall, *, ref: str, requester: str, approval_minutes: float
) -> list[Block]:
    """The approval message of a call that writes: the tool and its arguments, and while it
    waits, Approve and Deny for its requester; once answered, who answered and how."""
    assert call.id is not None
    tool = escape_literal(f"{call.server}.{call.tool}")
    arguments = shown_arguments(call.arguments, limit=ARGUMENTS_SHOWN, pretty=True)
    blocks: list[Block] = [
        section(
            f":raised_hand: <@{requester}>, {ref} asks to run `{tool}`, which makes changes. "
            f"It runs only if you approve it.\n```{arguments}```"
        )
    ]
    if call.approval == Approval.PENDING:
        blocks.append(
            {
                "type": "actions",
                "block_id": f"tool_call:{call.id}",
                "elements": [
                    button("Approve", ACTION_TOOL_APPROVE, str(call.id), style="primary"),
                    button("Deny", ACTION_TOOL_DENY, str(call.id), style="danger"),
                ],
            }
        )
        blocks.append(
            context(
                f"Only <@{requester}> can answer. Without an answer within "
                f"{approval_minutes:g} minutes, it won't run."
            )
        )
    else:
        blocks.append(context(_decision(call, approval_minutes)))
    return blocks


def tool_call_line(call: ToolCall) -> str:
    """One call under `/pm status T-n`: the tool, how it ended, how long it took, who
    approved it, and its arguments (clipped, secrets masked)."""
    who = f" by <@{call.decided_by}>" if call.decided_by else ""
    tool = escape_literal(f"{call.server}.{call.tool}".replace("`", "'"))
    if call.approval == Approval.PENDING:
        ended = "waiting for approval"
    elif call.approval == Approval.DENIED:
        ended = f"denied{who}"
    else:
        ended = escape_literal(one_line(call.outcome, 120)) if call.outcome else "running"
    parts = [f"`{tool}`", ended]
    if call.duration_ms is not None:
        parts.append(f"{call.duration_ms:,} ms")
    if call.approval == Approval.APPROVED:
        parts.append(f"approved{who}")
    shown = shown_arguments(call.arguments, limit=ARGUMENTS_IN_LINE, pretty=False)
    return " · ".join(parts) + f" · `{shown.replace('`', chr(39))}`"
