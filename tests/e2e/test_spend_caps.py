"""Daily spend caps, read from the usage ledger: at a cap a turn makes no model call and the
thread is told when the budget starts over and who can raise it; at 80 % the PMs are told
once a day; `/pm usage` and the Home tab show today's spend against the caps."""

from __future__ import annotations

from sqlalchemy import update

from bot.app import Pmteam
from sandbox.model import FakeModel
from sandbox.slack import FakeSlack
from storage.intake import record_intake
from storage.models import LLMCall, Task, TaskStatus, Turn, TurnStatus
from storage.records import record_llm_call
from tests.e2e.conftest import (
    ALICE,
    BOB,
    COORDINATION,
    ENGINEERING,
    StartPmteam,
    bot_messages,
    mention,
    rows,
    wait_until_idle,
)
from tests.e2e.pm_support import ack_of, run_pm, settle, shown


async def spent(pmteam: Pmteam, usd: float, *, by: str | None = None) -> None:
    """Model calls that cost `usd` today: the workspace's, or made for one of `by`'s turns."""
    async with pmteam.deps.sessions.begin() as session:
        turn_id = None
        if by is not None:
            earlier = await record_intake(
                session=session,
                team_id="T0SANDBOX",
                channel_id=ENGINEERING,
                thread_ts="1700000000.000100",
                message_ts="1700000000.000100",
                user_id=by,
                text="an earlier task",
            )
            turn_id = earlier.turn.id
            await session.exec(
                update(Turn).where(Turn.id == turn_id).values(status=TurnStatus.DONE)  # type: ignore[arg-type]
            )
        await record_llm_call(
            session=session,
            call=LLMCall(
                agent="engineer", model="claude-sonnet-5-5", cost_usd=usd, turn_id=turn_id
            ),
        )


async def test_at_the_workspace_cap_a_turn_calls_no_model_and_says_when_it_resets(
    start_pmteam: StartPmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    pmteam = await start_pmteam(PMTEAM_DAILY_BUDGET_USD="5", PMTEAM_PM_USERS="U0BOB")
    await spent(pmteam, 5.25)

    asked = await mention(fake_slack, "design the orders API")
    [turn] = await wait_until_idle(pmteam, fake_slack, turns=1)
    await settle(pmteam, fake_slack)

    assert fake_model.requests == []
    assert turn.status == TurnStatus.FAILED
    [task] = await rows(pmteam, Task)
    assert task.status == TaskStatus.FAILED
    [reply] = bot_messages(fake_slack, ENGINEERING, asked.ts)
    assert "This workspace has used today's model budget ($5.25 of $5.00" in reply.text
    assert "starts over at 00:00 UTC" in reply.text
    assert f"<@{BOB}>" in reply.text and "`PMTEAM_DAILY_BUDGET_USD`" in reply.text
    assert "x" in fake_slack.workspace.message(ENGINEERING, asked.ts).reactions


async def test_a_persons_cap_stops_only_their_work(
    start_pmteam: StartPmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    pmteam = await start_pmteam(PMTEAM_USER_DAILY_BUDGET_USD="$1")
    await spent(pmteam, 1.2, by=ALICE)

    alices = await mention(fake_slack, "design the orders API", user=ALICE)
    await wait_until_idle(pmteam, fake_slack, turns=2)
    assert fake_model.requests == []
    [reply] = bot_messages(fake_slack, ENGINEERING, alices.ts)
    assert reply.text.startswith(":hourglass_flowing_sand: You have used today's model budget")
    assert "`PMTEAM_USER_DAILY_BUDGET_USD`" in reply.text

    bobs = await mention(fake_slack, "index the invoices table", user=BOB)
    turns = await wait_until_idle(pmteam, fake_slack, turns=3, timeout=30)
    assert turns[-1].status == TurnStatus.DONE
    assert fake_model.requests  # Bob's turn was worked
    assert any(":answer" in str(m.metadata) for m in bot_messages(fake_slack, ENGINEERING, bobs.ts))


async def test_at_80_percent_the_pms_are_told_once_and_usage_shows_the_caps(
    start_pmteam: StartPmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    pmteam = await start_pmteam(PMTEAM_DAILY_BUDGET_USD="5", PMTEAM_USER_DAILY_BUDGET_USD="100")
    await spent(pmteam, 4.0)

    await mention(fake_slack, "design the orders API")
    await wait_until_idle(pmteam, fake_slack, turns=1, timeout=30)
    await mention(fake_slack, "index the invoices table")
    turns = await wait_until_idle(pmteam, fake_slack, turns=2, timeout=30)
    await settle(pmteam, fake_slack)

    assert [t.status for t in turns] == [TurnStatus.DONE, TurnStatus.DONE]  # under the cap
    warnings = [m.text for m in bot_messages(fake_slack, COORDINATION) if ":warning:" in m.text]
    assert len(warnings) == 1
    assert warnings[0].startswith(":warning: Model spend today is $4.")
    assert "of the $5.00 daily budget (8" in warnings[0]

    usage = ack_of(await run_pm(fake_slack, "usage"))
    text = shown(usage)
    assert "Today's model spend: $4." in text and "of $5.00" in text and "for everyone" in text
    assert "yours $0." in text and "of $100.00" in text

    await fake_slack.open_app_home(ALICE)
    await settle(pmteam, fake_slack)
    [home] = [c for c in fake_slack.calls_to("views.publish") if c.ok][-1:]
    assert "Today's model spend: $4." in shown(home.params)
