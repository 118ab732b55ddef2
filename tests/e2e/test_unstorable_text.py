"""A mention with text no database can keep (NUL, a lone surrogate) is acked on its first
delivery, stored with U+FFFD and a note saying so, and answered; an event pmteam still can't
store is acked, dropped and counted, never failed into Slack's retries."""

from __future__ import annotations

import json

import pytest

from bot.app import Pmteam
from sandbox.slack import FakeSlack
from storage.models import Task, Turn, TurnStatus
from tests.e2e.conftest import (
    ALICE,
    BOT_USER,
    ENGINEERING,
    ON_EACH_DATABASE,
    app_mention_delivery,
    bot_messages,
    mention,
    rows,
    wait_until_idle,
)

pytestmark = ON_EACH_DATABASE

NOTE = "(pmteam replaced 1 character it can't store with \ufffd.)"


@pytest.mark.reliability("A mention with a NUL character", kind="attack")
async def test_a_mention_with_a_nul_is_stored_with_a_replacement_and_answered(
    pmteam: Pmteam, fake_slack: FakeSlack
) -> None:
    posted = await mention(fake_slack, "why does the CSV import stop at \x00 bytes?")

    assert app_mention_delivery(posted).status_codes == [200]
    [turn] = await wait_until_idle(pmteam, fake_slack, turns=1)
    assert turn.status == TurnStatus.DONE
    [task] = await rows(pmteam, Task)
    expected = f"why does the CSV import stop at \ufffd bytes?\n\n{NOTE}"
    assert (task.request_text, turn.text) == (expected, expected)
    assert task.title == "why does the CSV import stop at \ufffd bytes?"
    assert bot_messages(fake_slack, ENGINEERING, posted.ts)  # answered in the thread


@pytest.mark.reliability("A mention with a lone surrogate", kind="attack")
async def test_a_mention_with_a_lone_surrogate_is_stored_with_a_replacement_and_answered(
    pmteam: Pmteam, fake_slack: FakeSlack
) -> None:
    # Slack sends the surrogate escaped in its JSON (`"\ud800"`, as `json.dumps` does): the
    # body is valid UTF-8, and the app's JSON decoder gives it back as a lone surrogate, which
    # UTF-8 can't encode.
    posted = await mention(fake_slack, "tokenize \ud800 in the lexer")
    delivery = app_mention_delivery(posted)
    assert "\\ud800" in json.dumps(delivery.payload)

    assert delivery.status_codes == [200]
    [turn] = await wait_until_idle(pmteam, fake_slack, turns=1)
    assert turn.status == TurnStatus.DONE
    [task] = await rows(pmteam, Task)
    expected = f"tokenize \ufffd in the lexer\n\n{NOTE}"
    assert (task.request_text, turn.text) == (expected, expected)
    assert bot_messages(fake_slack, ENGINEERING, posted.ts)  # answered in the thread


@pytest.mark.reliability("An event no database can store", kind="attack")
@pytest.mark.parametrize("bad_ts", ["1700000000.0001\ud800", "1700000000." + "1" * 40])
async def test_an_event_that_still_cant_be_stored_is_acked_dropped_and_counted(
    pmteam: Pmteam, fake_slack: FakeSlack, bad_ts: str
) -> None:
    """Ids aren't free text and aren't cleaned: one no database takes (a lone surrogate; on
    PostgreSQL, too long for its column) fails every time it is stored, so it is dropped with
    a 200, not failed with a 500 that Slack would retry into the same failure."""
    delivery = await fake_slack.deliver_event(
        {
            "type": "app_mention",
            "user": ALICE,
            "channel": ENGINEERING,
            "ts": bad_ts,
            "text": f"<@{BOT_USER}> design the orders API",
        }
    )

    assert delivery.status_codes == [200]
    await pmteam.deps.drain()
    dropped = {
        dict(labels)["reason"]: count
        for (name, labels), count in pmteam.deps.metrics.counters.items()
        if name == "pmteam_intake_dropped_total"
    }
    on_postgres = pmteam.deps.settings.database_url.startswith("postgresql")
    if "\ud800" in bad_ts:
        assert dropped == {"encoding": 1}
    elif on_postgres:
        assert dropped == {"invalid_value": 1}
    else:  # SQLite doesn't enforce VARCHAR lengths: that one is a task like any other
        assert dropped == {}
        await wait_until_idle(pmteam, fake_slack, turns=1)
        return
    assert await rows(pmteam, Turn) == []
    assert await rows(pmteam, Task) == []
