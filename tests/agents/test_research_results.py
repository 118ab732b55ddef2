"""What the engineer reads of research (trimmed findings, sources numbered across a turn) and
which sources an answer cites."""

from __future__ import annotations

from agents.llm import trim_history
from agents.researcher import (
    FINDINGS_TO_ENGINEER,
    Research,
    ResearchBrief,
    Source,
    cited_sources,
    trim_findings,
)


def research(*urls: str, findings: str = "Findings.") -> Research:
    return Research(
        brief=ResearchBrief(objective="o"),
        findings=findings,
        sources=tuple(Source(url=u, title=f"Title of {u}", cited_text="") for u in urls),
        live_sources=True,
        web_searches=1,
        web_fetches=0,
    )


def test_sources_are_numbered_across_the_research_requests_of_a_turn() -> None:
    first = research("https://a.example/1", "https://a.example/2")
    second = research("https://b.example/1")
    assert "[1] Title of https://a.example/1" in first.as_tool_result()
    # The second request's list continues the numbering, as the engineer is told.
    assert "[3] Title of https://b.example/1" in second.as_tool_result(first=3)
    cited = cited_sources("Use the outbox [3].", [first, second])
    assert [(n, s.url) for n, s in cited] == [(3, "https://b.example/1")]


def test_citations_by_list_range_address_and_title_are_recognised() -> None:
    found = research(*(f"https://x.example/{n}" for n in range(1, 8)))
    answer = (
        "Keys [1, 2] and backoff [4-5]; see https://x.example/7 and "
        "the article Title of https://x.example/6."
    )
    assert [n for n, _ in cited_sources(answer, [found])] == [1, 2, 4, 5, 6, 7]
    assert cited_sources("Nothing cited; a list [a] is not a citation.", [found]) == []


def test_long_findings_are_trimmed_at_a_line_end_and_say_so() -> None:
    paragraph = "A finding about retries and idempotency keys. " * 20
    findings = "\n\n".join([paragraph] * 20)
    trimmed = trim_findings(findings)
    assert len(trimmed) <= FINDINGS_TO_ENGINEER + 100
    assert trimmed.endswith(f"of {len(findings):,} characters.]")
    assert trimmed.split("\n\n[Trimmed")[0].endswith("keys.")
    assert trim_findings("short") == "short"
    result = research("https://a.example/1", findings=findings).as_tool_result()
    assert "[Trimmed: the first" in result and len(result) < FINDINGS_TO_ENGINEER + 1_000


def test_trimming_history_never_keeps_a_tool_result_without_its_call() -> None:
    def text(role: str, value: str) -> dict[str, object]:
        return {"role": role, "content": [{"type": "text", "text": value}]}

    call = {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "consult_researcher"}],
    }
    result = {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "findings"}],
    }
    # An earlier turn rendered from its exchange: request, tool call, tool result, answer.
    history = [text("user", "turn 1"), call, result, text("assistant", "answer 1")]
    conversation = [*history, text("user", "turn 2")]
    # Half of four is two, which would start the kept messages at the orphaned result.
    kept, left, dropped = trim_history(conversation, len(history))
    assert dropped == 3 and left == 1
    assert not any(
        block.get("type") == "tool_result"
        for message in kept
        for block in message["content"]
        if isinstance(block, dict)
    )
    assert kept[0]["role"] == "user" and "left out" in str(kept[0]["content"][0]).lower()
