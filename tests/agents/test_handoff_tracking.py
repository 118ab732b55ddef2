"""A stored report's handoffs become tracked rows once, with owners read from their mentions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from agents.ledger import StorageLedger
from agents.reports import CompletionReport, ReportOutcome, handoff_owner
from storage.handoffs import claim_handoff_nudges, open_handoffs
from storage.models import HandoffItem
from storage.types import utcnow
from tests.e2e.conftest import report_json
from tests.storage.support import ask


@pytest.mark.parametrize(
    ("owner", "expected"),
    [
        ("<@U123ABC>", ("user", "U123ABC")),
        ("<@W42XYZ|dana>", ("user", "W42XYZ")),
        ("<!subteam^S0PLATFORM>", ("group", "S0PLATFORM")),
        ("<!subteam^S0PLATFORM|@platform>", ("group", "S0PLATFORM")),
        ("  <@U123ABC>  ", ("user", "U123ABC")),
        (None, ("unassigned", None)),
        ("", ("unassigned", None)),
        ("@dana", ("unassigned", None)),
        ("the platform team", ("unassigned", None)),
        ("<!here>", ("unassigned", None)),
        ("<@U1> and <@U2>", ("unassigned", None)),
        ("<#C123>", ("unassigned", None)),
    ],
)
def test_an_owner_is_a_person_or_a_user_group_or_nobody(
    owner: str | None, expected: tuple[str, str | None]
) -> None:
    assert handoff_owner(owner) == expected


def test_a_report_stored_before_owners_reads_with_none() -> None:
    data = report_json(
        dependencies_handoffs=[{"kind": "needed_from_others", "description": "Review it"}]
    )
    [item] = CompletionReport.model_validate(data).dependencies_handoffs
    assert item.owner is None


def outcome(*handoffs: dict[str, Any]) -> ReportOutcome:
    data = report_json(
        status="IN_PROGRESS", estimated_time="2 days", dependencies_handoffs=list(handoffs)
    )
    return ReportOutcome(report=CompletionReport.model_validate(data), gaps=())


async def tracked(sessions: async_sessionmaker[AsyncSession]) -> list[HandoffItem]:
    async with sessions() as session:
        found = await session.exec(select(HandoffItem).order_by(col(HandoffItem.id)))
        return list(found.all())


async def test_handoffs_are_tracked_once_per_report_and_not_again_by_a_later_one(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        first = await ask(session)
        follow_up = await ask(session, ts="1700000000.000200", text="and the refunds?")
    assert first.task.id is not None and first.turn.id is not None
    assert follow_up.turn.id is not None
    ledger = StorageLedger(sessions)
    report = outcome(
        {
            "kind": "needed_from_others",
            "description": "Create the Kafka topics",
            "owner": "<@U0DANA>",
        },
        {"kind": "integration_endpoint_ready", "description": "POST /orders", "owner": None},
        {
            "kind": "infrastructure_blocker",
            "description": "A staging DB",
            "owner": "<!subteam^S0PLAT>",
        },
    )
    for _ in range(2):  # a retried turn saves its report again
        await ledger.save_report(report, task_id=first.task.id, turn_id=first.turn.id)

    rows = await tracked(sessions)
    assert [(h.position, h.kind, h.owner_kind, h.owner_id, h.status) for h in rows] == [
        (0, "needed_from_others", "user", "U0DANA", "open"),
        (2, "infrastructure_blocker", "group", "S0PLAT", "open"),
    ]

    # The follow-up repeats one (in other spacing and case), drops one, adds one.
    later = outcome(
        {"kind": "needed_from_others", "description": "create the  KAFKA topics", "owner": None},
        {"kind": "needed_from_others", "description": "Sign off the schema", "owner": None},
    )
    await ledger.save_report(later, task_id=first.task.id, turn_id=follow_up.turn.id)

    rows = await tracked(sessions)
    assert [(h.description, h.status, h.owner_kind) for h in rows] == [
        ("Create the Kafka topics", "open", "user"),
        ("A staging DB", "open", "group"),  # no longer listed: left as it is
        ("Sign off the schema", "open", "unassigned"),
    ]


async def test_an_old_handoff_is_claimed_for_a_reminder_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        intake = await ask(session)
    assert intake.task.id is not None and intake.turn.id is not None
    await StorageLedger(sessions).save_report(
        outcome(
            {"kind": "needed_from_others", "description": "Topics", "owner": "<@U0DANA>"},
            {"kind": "needed_from_others", "description": "Unowned", "owner": None},
        ),
        task_id=intake.task.id,
        turn_id=intake.turn.id,
    )
    later = utcnow() + timedelta(days=4)
    async with sessions.begin() as session:
        soon = await claim_handoff_nudges(
            session=session, older_than=timedelta(days=3), now=utcnow() + timedelta(days=1)
        )
    async with sessions.begin() as session:
        first = await claim_handoff_nudges(session=session, older_than=timedelta(days=3), now=later)
    async with sessions.begin() as session:
        again = await claim_handoff_nudges(session=session, older_than=timedelta(days=3), now=later)

    assert soon == []
    assert [h.description for h, _task in first] == ["Topics"]  # a person's only
    assert again == []
    async with sessions() as session:
        assert [
            h.description for h, _ in await open_handoffs(session=session, owner_id="U0DANA")
        ] == ["Topics"]
