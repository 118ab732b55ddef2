"""Turns that finish in a burst share one App Home refresh per viewer, and the last refresh
still shows every one of them."""

from __future__ import annotations

from bot.app import Pmteam
from sandbox.slack import FakeSlack
from tests.e2e.conftest import ALICE, mention, wait_until_idle
from tests.e2e.pm_support import home_blocks, settle, texts


async def test_a_burst_of_finished_turns_refreshes_a_live_home_once_or_twice(
    pmteam: Pmteam, fake_slack: FakeSlack
) -> None:
    delivery = await fake_slack.open_app_home(ALICE)
    assert delivery.acked
    await settle(pmteam, fake_slack)
    opened = len(fake_slack.calls_to("views.publish"))
    # Publishing is slow, so the other turns finish while the first refresh is going.
    fake_slack.inject("views.publish", delay=2.0, times=None)

    for n in range(4):
        await mention(fake_slack, f"task {n}: add an index to the orders table")
    await wait_until_idle(pmteam, fake_slack, turns=4)
    await settle(pmteam, fake_slack)

    refreshes = len(fake_slack.calls_to("views.publish")) - opened
    assert 1 <= refreshes <= 2  # one per finished turn would be 4
    board = texts(home_blocks(fake_slack, ALICE))
    assert all(f"T-{n}" in board for n in range(1, 5))
