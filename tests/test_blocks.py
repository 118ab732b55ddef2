"""The shared text helpers and Block Kit pieces: the same rendering on every surface."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agents.reports import CompletionReport, render_pm_report
from bot.core.mrkdwn import clip, escape_mrkdwn, fence_open_after, one_line, split_markdown
from bot.slack.blocks.common import HEADER_LIMIT, SECTION_LIMIT, header, score_tree, section
from bot.slack.blocks.pm import build_report_summary_blocks
from bot.slack.blocks.report import build_matrix_blocks, build_report_blocks
from storage.models import Report, TaskStatus
from tests.e2e.conftest import report_json
from tests.test_pm_status import task

NOW = datetime(2026, 11, 26, 19, 0, tzinfo=UTC)


def completion_report(**overrides: Any) -> CompletionReport:
    return CompletionReport.model_validate(report_json(**overrides), context={"gaps": []})


def all_text(blocks: list[dict[str, Any]]) -> str:
    parts: list[str] = []
    for block in blocks:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [field["text"] for field in block.get("fields", [])]
        parts += [element.get("text", "") for element in block.get("elements", [])]
    return "\n".join(str(part) for part in parts)


def test_clip_keeps_the_text_as_it_is_and_one_line_folds_white_space() -> None:
    text = "first line\n\n  second   line"
    assert clip(text, 100) == text
    assert one_line(text, 100) == "first line second line"
    assert clip("abcdefghij", 5) == "abcd…"
    assert one_line("ab  \n cdefghij", 5) == "ab c…"


def test_escaped_text_can_neither_link_nor_ping() -> None:
    escaped = escape_mrkdwn("<https://evil.example|click> & <!channel> @here")
    assert "<" not in escaped and ">" not in escaped
    assert escaped.startswith("&lt;https://evil.example|click&gt; &amp; ")
    assert "@channel" not in escaped and "@here" not in escaped


def test_the_fence_tracker_opens_and_closes_with_its_language() -> None:
    assert fence_open_after("text\n```python\ncode", None) == "```python"
    assert fence_open_after("more code\n```\nafter", "```python") is None
    assert fence_open_after("```\n```", None) is None


def test_a_long_code_block_is_reopened_with_its_language_in_each_part() -> None:
    code = "\n".join(f"line {n} " + "x" * 40 for n in range(200))
    parts = split_markdown(f"Intro\n\n```python\n{code}\n```\n", limit=2000)
    assert len(parts) > 2
    for part in parts[1:-1]:
        assert part.startswith("```python\n") and part.endswith("\n```")


def test_blocks_stay_within_slack_limits() -> None:
    assert len(section("x" * 5000)["text"]["text"]) == SECTION_LIMIT
    assert len(header("x" * 500)["text"]["text"]) == HEADER_LIMIT


def test_the_score_tree_marks_red_flag_scores() -> None:
    tree = score_tree([("Risk", 4), ("Scale", 7), ("Reliability", 8)])
    assert tree.splitlines() == [
        "`├──` Risk: *4/9* :warning:",
        "`├──` Scale: 7/9",
        "`└──` Reliability: 8/9",
    ]


def test_the_card_the_matrix_and_the_status_summary_draw_the_same_tree() -> None:
    data = report_json(
        pm_scores={
            "system_architecture_design": 8,
            "scalability_performance": 4,
            "integration_reliability": 8,
        },
        red_flags=[
            {
                "axis": "scalability_performance",
                "explanation": "No load test yet",
                "mitigation": "Run one before launch",
            }
        ],
    )
    report = CompletionReport.model_validate(data, context={"gaps": []})
    card = all_text(build_report_blocks(report, task(TaskStatus.COMPLETED), None))
    stored = Report(task_id=7, turn_id=1, status="COMPLETED", data=data, created_at=NOW)
    summary = all_text(build_report_summary_blocks(stored))
    line = "`├──` Scalability &amp; Performance: *4/9* :warning:"
    assert line in card and line in summary
    assert "`└──` Alignment &amp; Value: 9/9" in all_text(build_matrix_blocks(report))


def test_the_card_names_each_kind_as_the_plain_text_report_does() -> None:
    report = completion_report(
        key_deliverables=[{"kind": "api_integration", "description": "Stripe webhooks"}],
        dependencies_handoffs=[
            {"kind": "integration_endpoint_ready", "description": "POST /payments is live"}
        ],
    )
    card = all_text(build_report_blocks(report, task(TaskStatus.COMPLETED), None))
    plain = render_pm_report(report)
    for line in ("API integrations: Stripe webhooks", "Integration endpoint ready: POST /payments"):
        assert line in card and line in plain
