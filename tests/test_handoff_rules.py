"""Who may decide, assign and resume handoffs, and how a card line names their owners."""

from __future__ import annotations

from bot.core.handoff_rules import assign_refusal, decide_refusal, resume_refusal
from bot.slack.blocks.handoffs import ACTION_HANDOFF_ASSIGN, build_card_handoff_blocks
from storage.models import HandoffItem, HandoffOwner, HandoffStatus, Task, TaskStatus


def item(owner_kind: HandoffOwner, owner_id: str | None, **extra: object) -> HandoffItem:
    return HandoffItem(
        id=7,
        task_id=1,
        report_id=1,
        turn_id=1,
        position=0,
        kind="needed_from_others",
        description="Create the Kafka topics",
        owner_kind=owner_kind,
        owner_id=owner_id,
        **extra,
    )


def test_a_persons_handoff_is_theirs_or_a_named_pms_to_decide() -> None:
    dana = item(HandoffOwner.USER, "U0DANA")
    assert decide_refusal(handoff=dana, user_id="U0DANA", pm_users=[]) is None
    assert decide_refusal(handoff=dana, user_id="U0PM", pm_users=["U0PM"]) is None
    # With no PMs named everyone counts as one elsewhere, but not to act for a named owner.
    assert "Only <@U0DANA>" in (decide_refusal(handoff=dana, user_id="U0EVE", pm_users=[]) or "")
    done = item(HandoffOwner.USER, "U0DANA", status=HandoffStatus.DONE)
    assert decide_refusal(handoff=done, user_id="U0DANA", pm_users=[]) == (
        "That handoff was already done."
    )


def test_a_groups_or_nobodys_handoff_is_the_pms_and_only_pms_assign() -> None:
    group = item(HandoffOwner.GROUP, "S0PLAT")
    assert decide_refusal(handoff=group, user_id="U0PM", pm_users=["U0PM"]) is None
    assert decide_refusal(handoff=group, user_id="U0EVE", pm_users=["U0PM"]) is not None
    nobody = item(HandoffOwner.UNASSIGNED, None)
    assert assign_refusal(handoff=nobody, user_id="U0PM", pm_users=["U0PM"]) is None
    assert assign_refusal(handoff=nobody, user_id="U0EVE", pm_users=["U0PM"]) is not None
    assert assign_refusal(handoff=nobody, user_id="U0EVE", pm_users=[]) is None


def test_only_the_requester_or_a_pm_resumes() -> None:
    task = Task(
        id=3,
        team_id="T1",
        channel_id="C1",
        thread_ts="1.0",
        requester_id="U0ALICE",
        title="t",
        request_text="t",
        status=TaskStatus.IN_PROGRESS,
    )
    assert resume_refusal(task=task, user_id="U0ALICE", pm_users=["U0PM"]) is None
    assert resume_refusal(task=task, user_id="U0PM", pm_users=["U0PM"]) is None
    assert "Only <@U0ALICE>" in (
        resume_refusal(task=task, user_id="U0EVE", pm_users=["U0PM"]) or ""
    )


def test_the_card_names_each_owner_and_state_and_offers_assign_while_open() -> None:
    blocks = build_card_handoff_blocks(
        [
            item(HandoffOwner.GROUP, "S0PLAT"),
            item(HandoffOwner.UNASSIGNED, None),
            item(
                HandoffOwner.USER,
                "U0DANA",
                status=HandoffStatus.DECLINED,
                decided_by="U0DANA",
                reason="not ours",
            ),
        ]
    )
    texts = [b["text"]["text"] for b in blocks]
    assert "user group `S0PLAT` (no DM: assign a person to notify)" in texts[0]
    assert "<!subteam" not in "".join(texts)  # a card never pings a whole group
    assert "no owner yet · :hourglass_flowing_sand: open" in texts[1]
    assert "declined by <@U0DANA>: not ours" in texts[2]
    assert [b.get("accessory", {}).get("action_id") for b in blocks] == [
        ACTION_HANDOFF_ASSIGN,
        ACTION_HANDOFF_ASSIGN,
        None,
    ]
