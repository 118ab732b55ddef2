"""The PM's channel as a team lives with it: one card per task kept current, reports only for
backend work, private work kept private until shared, Stop, and 👍/👎 on answers."""

from __future__ import annotations

from typing import Any

import pytest

from bot.app import Pmteam
from bot.slack.blocks.report import (
    ACTION_DETAILS,
    ACTION_FEEDBACK,
    ACTION_SHARE,
    ACTION_STOP,
)
from sandbox.model import Delay, FakeModel, Json, Text, ToolUse
from sandbox.slack import FakeSlack
from sandbox.slack.workspace import Message
from storage.models import Feedback, Report, Task, TaskStatus, Turn, TurnStatus, Visibility
from tests.e2e.conftest import (
    ALICE,
    BOB,
    COORDINATION,
    ENGINEERING,
    bot_messages,
    mention,
    report_json,
    rows,
    wait_until_idle,
)
from tests.e2e.pm_support import last_ephemeral, run_pm, settle, shown

RESEARCH_INPUT = {
    "objective": "Find proven designs for idempotent payment APIs",
    "context": "PostgreSQL 16, card payments",
    "specific_questions": ["Where do idempotency keys live?"],
    "constraints": ["No new datastore"],
    "output_wanted": "A recommendation with sources",
}


def top_level(fake_slack: FakeSlack, channel: str) -> list[Message]:
    return [m for m in bot_messages(fake_slack, channel) if m.thread_ts in (None, m.ts)]


def thread_lines(fake_slack: FakeSlack, card: Message) -> list[str]:
    return [m.text for m in bot_messages(fake_slack, COORDINATION, card.ts) if m.ts != card.ts]


def buttons(message: Message) -> list[str]:
    return [
        str(e.get("action_id"))
        for b in message.blocks or []
        if b.get("type") in ("actions", "section")
        for e in [*(b.get("elements") or []), b.get("accessory") or {}]
        if e.get("action_id")
    ]


def scripted(answer: str, **report: Any) -> tuple[Text, Json]:
    return Text(answer), Json(report_json(**report))


async def test_one_card_per_task_updated_in_place_with_a_line_per_turn(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    fake_model.script(
        *scripted(
            "A first design.",
            status="IN_PROGRESS",
            estimated_time="3 days",
            task="Design the payments API",
            key_deliverables=[{"kind": "system", "description": "Payments API outline"}],
            pm_scores={
                "system_architecture_design": 5,
                "scalability_performance": 7,
                "integration_reliability": 7,
            },
            red_flags=[
                {
                    "axis": "system_architecture_design",
                    "explanation": "Retries are not designed yet",
                    "mitigation": "Design the idempotency-key table",
                }
            ],
        ),
        *scripted(
            "The idempotency design.",
            status="IN_PROGRESS",
            estimated_time="1 day",
            task="Design the idempotency keys",
            key_deliverables=[
                {"kind": "system", "description": "Payments API outline"},
                {"kind": "data_storage", "description": "idempotency_key table"},
            ],
        ),
        *scripted(
            "The rollout plan.",
            task="Plan the rollout",
            key_deliverables=[
                {"kind": "system", "description": "Payments API outline"},
                {"kind": "data_storage", "description": "idempotency_key table"},
                {"kind": "api_integration", "description": "POST /payments"},
                {"kind": "system", "description": "Rollout runbook"},
            ],
        ),
    )
    first = await mention(fake_slack, "design the payments API")
    await wait_until_idle(pmteam, fake_slack, turns=1)
    [card] = top_level(fake_slack, COORDINATION)
    assert "⏳ IN PROGRESS" in shown(card.blocks)

    await fake_slack.post_as_user(ALICE, ENGINEERING, "and idempotent retries?", first.ts)
    await wait_until_idle(pmteam, fake_slack, turns=2)
    await fake_slack.post_as_user(BOB, ENGINEERING, "how do we roll it out?", first.ts)
    await wait_until_idle(pmteam, fake_slack, turns=3)
    await settle(pmteam, fake_slack)

    # Still one card, updated in place, now COMPLETED, still named as first reported.
    [updated] = top_level(fake_slack, COORDINATION)
    assert updated.ts == card.ts and updated.edited is not None
    blocks = shown(updated.blocks)
    assert "✅ COMPLETED" in blocks and "IN PROGRESS" not in blocks
    assert "*Task:*\\nDesign the payments API" in blocks
    assert "Rollout runbook" in blocks
    assert [u.params["ts"] for u in fake_slack.calls_to("chat.update")] == [card.ts, card.ts]
    # The history reads in the card's thread: one line per later turn.
    assert thread_lines(fake_slack, card) == [
        "T-1: ⏳ IN PROGRESS · 1 new deliverable · red flag cleared · estimate 1 day"
        " · asked: “and idempotent retries?”",
        "T-1: ⏳ IN PROGRESS → ✅ COMPLETED · 2 new deliverables · asked: “how do we roll it out?”",
    ]
    assert len(await rows(pmteam, Report)) == 3


async def test_a_conversational_turn_answers_without_a_report(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    fake_model.script(
        *scripted("Here is the design."),
        *scripted("You're welcome!", turn_kind="conversation"),
    )
    first = await mention(fake_slack, "design the refunds API")
    await wait_until_idle(pmteam, fake_slack, turns=1)
    await fake_slack.post_as_user(ALICE, ENGINEERING, "thanks, that's great", first.ts)
    turns = await wait_until_idle(pmteam, fake_slack, turns=2)
    await settle(pmteam, fake_slack)

    assert [t.status for t in turns] == [TurnStatus.DONE, TurnStatus.DONE]
    # The thanks got its answer (with 👍/👎) and nothing else: no summary, no card change.
    thread = bot_messages(fake_slack, ENGINEERING, first.ts)
    assert [m.text.startswith("Self-assessment") for m in thread] == [False, True, False]
    assert "You're welcome!" in thread[-1].text
    assert '"feedback_buttons"' in shown(thread[-1].blocks)
    [card] = top_level(fake_slack, COORDINATION)
    assert thread_lines(fake_slack, card) == []
    assert fake_slack.calls_to("chat.update") == []
    # The turn's report is kept, and /pm status says why it made none.
    kinds = [r.kind for r in await rows(pmteam, Report)]
    assert kinds == ["backend_work", "conversation"]
    await run_pm(fake_slack, "status T-1", user=BOB)
    assert "a conversational reply, so no report" in shown(last_ephemeral(fake_slack, BOB).blocks)


@pytest.mark.reliability("Someone else reads a task asked in a DM", kind="attack")
async def test_a_dm_task_is_private_until_its_requester_shares_it(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    fake_model.script(*scripted("The audit log design."))
    dm = fake_slack.dm_channel(ALICE)
    asked = await fake_slack.post_as_user(ALICE, dm, "design an audit log for the admin panel")
    await wait_until_idle(pmteam, fake_slack, turns=1)
    await settle(pmteam, fake_slack)

    [task] = await rows(pmteam, Task)
    assert task.visibility == Visibility.PRIVATE
    assert top_level(fake_slack, COORDINATION) == []
    # Nobody else sees it listed or in detail.
    await run_pm(fake_slack, "list", user=BOB)
    assert "audit log" not in shown(last_ephemeral(fake_slack, BOB).blocks)
    await run_pm(fake_slack, "status T-1", user=BOB)
    assert "was asked privately" in shown(last_ephemeral(fake_slack, BOB).blocks)
    await run_pm(fake_slack, "report T-1", user=BOB)
    assert "Share with PM" in shown(last_ephemeral(fake_slack, BOB).blocks)
    await run_pm(fake_slack, "status T-1", user=ALICE)
    assert "audit log" in shown(last_ephemeral(fake_slack, ALICE).blocks)

    [_, summary] = bot_messages(fake_slack, dm, asked.ts)
    assert "only you can see this task" in summary.text
    assert buttons(summary) == [ACTION_DETAILS, ACTION_SHARE]
    await fake_slack.click_button(ALICE, dm, summary.ts, ACTION_SHARE, str(task.id))
    await settle(pmteam, fake_slack)

    [card] = top_level(fake_slack, COORDINATION)
    footer = shown(card.blocks)
    assert f"asked privately by <@{ALICE}>" in footer
    assert dm not in footer and "<#D" not in footer and "View the thread" not in footer
    [shared] = await rows(pmteam, Task)
    assert shared.visibility == Visibility.SHARED
    # The summary no longer offers to share, and says where the report went.
    [_, redrawn] = bot_messages(fake_slack, dm, asked.ts)
    assert buttons(redrawn) == [ACTION_DETAILS]
    assert redrawn.text.endswith(f"report in <#{COORDINATION}>")
    assert "Shared T-1 with the PM" in " ".join(
        e.text for e in fake_slack.workspace.ephemerals(dm, ALICE)
    )
    await run_pm(fake_slack, "status T-1", user=BOB)
    assert "audit log" in shown(last_ephemeral(fake_slack, BOB).blocks)


@pytest.mark.reliability("Stop pressed mid-research, and by someone who didn't ask", kind="fault")
async def test_stop_ends_the_answer_where_it_is_without_a_report(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    # The engineer says a first sentence and consults the researcher, who takes a long time.
    fake_model.script(
        ToolUse("consult_researcher", RESEARCH_INPUT, text_before="Let me check proven designs."),
        Delay(60),
    )
    asked = await mention(fake_slack, "design an idempotent payments API")
    await fake_slack.wait_for(
        lambda: any(
            ACTION_STOP in buttons(m) for m in bot_messages(fake_slack, ENGINEERING, asked.ts)
        )
    )
    [working] = [
        m for m in bot_messages(fake_slack, ENGINEERING, asked.ts) if ACTION_STOP in buttons(m)
    ]
    await fake_slack.wait_for(
        lambda: any(
            "Let me check" in m.text for m in bot_messages(fake_slack, ENGINEERING, asked.ts)
        )
    )
    [turn] = await rows(pmteam, Turn)

    # Only the person who asked may stop it.
    await fake_slack.click_button(BOB, ENGINEERING, working.ts, ACTION_STOP, str(turn.id))
    await settle(pmteam, fake_slack)
    assert [e.text for e in fake_slack.workspace.ephemerals(ENGINEERING, BOB)] == [
        f"Only <@{ALICE}>, who asked, can stop this answer."
    ]
    await fake_slack.click_button(ALICE, ENGINEERING, working.ts, ACTION_STOP, str(turn.id))
    [turn] = await wait_until_idle(pmteam, fake_slack, turns=1, timeout=10)
    await settle(pmteam, fake_slack)

    assert turn.status == TurnStatus.DONE and turn.stop_requested_by == ALICE
    assert turn.answer_text is not None and "Let me check proven designs." in turn.answer_text
    # The partial answer stays, marked stopped; the Stop line is gone; no report anywhere.
    [answer] = bot_messages(fake_slack, ENGINEERING, asked.ts)
    assert answer.stream is not None and answer.stream.state == "completed"
    assert "Let me check proven designs." in answer.text
    assert f"Stopped by <@{ALICE}>" in answer.text
    assert await rows(pmteam, Report) == []
    assert top_level(fake_slack, COORDINATION) == []
    [task] = await rows(pmteam, Task)
    assert task.status == TaskStatus.IN_PROGRESS  # still open
    assert "black_square_for_stop" in fake_slack.workspace.reactions(ENGINEERING, asked.ts)
    await run_pm(fake_slack, "status T-1", user=ALICE)
    assert f"stopped by <@{ALICE}>, so no report" in shown(last_ephemeral(fake_slack, ALICE).blocks)


async def test_feedback_on_an_answer_is_stored_per_person_and_shown(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    fake_model.script(*scripted("Use an idempotency-key table."))
    asked = await mention(fake_slack, "design an idempotent payments API")
    [turn] = await wait_until_idle(pmteam, fake_slack, turns=1)
    [answer, _] = bot_messages(fake_slack, ENGINEERING, asked.ts)

    await fake_slack.click_button(ALICE, ENGINEERING, answer.ts, ACTION_FEEDBACK, "good")
    await fake_slack.click_button(BOB, ENGINEERING, answer.ts, ACTION_FEEDBACK, "good")
    await fake_slack.click_button(BOB, ENGINEERING, answer.ts, ACTION_FEEDBACK, "bad")  # rethinks
    await settle(pmteam, fake_slack)

    stored = {(f.turn_id, f.user_id, f.rating) for f in await rows(pmteam, Feedback)}
    assert stored == {(turn.id, ALICE, "good"), (turn.id, BOB, "bad")}
    await run_pm(fake_slack, "status T-1", user=ALICE)
    assert "answers rated: 1 👍 1 👎" in shown(last_ephemeral(fake_slack, ALICE).blocks)
    await run_pm(fake_slack, "usage", user=ALICE)
    assert "Answers rated: 1 👍 1 👎" in shown(last_ephemeral(fake_slack, ALICE).blocks)
