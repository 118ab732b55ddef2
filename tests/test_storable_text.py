"""Text no database can keep (NUL, control characters, lone surrogates) is replaced at intake,
so a message with it becomes a task instead of a database error; any other text is kept as is."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.storable import REPLACEMENT, Cleaned, replaced_note, storable
from bot.services.intake import IntakeWriter
from bot.slack.events import parse_direct_message, parse_mention, stored_text
from storage.intake import IntakeMessage, record_intake, unstorable
from storage.models import Task, Turn

BOT = "U0PMTEAM"

# Every code point, surrogates and NUL included, with the troublesome ones made common.
any_text = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()),
        st.sampled_from(["\x00", "\x01", "\x1f", "\x7f", "\t", "\n", "\r", "\ud800", "\udfff"]),
        st.sampled_from(["😀", "\U0010ffff", "\ufffd", "\ufeff", "é", "&", "<"]),
    ),
    max_size=200,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Cleaned("", 0)),
        ("design the orders API", Cleaned("design the orders API", 0)),
        ("a\x00b", Cleaned("a\ufffdb", 1)),
        ("\x00\x00", Cleaned("\ufffd\ufffd", 2)),
        ("bell\x07 escape\x1b[0m", Cleaned("bell\ufffd escape\ufffd[0m", 2)),
        ("tab\tline\nreturn\r\n", Cleaned("tab\tline\nreturn\r\n", 0)),
        ("lone \ud800 high", Cleaned("lone \ufffd high", 1)),
        ("lone \udfff low", Cleaned("lone \ufffd low", 1)),
        ("reversed \udc00\ud800 pair", Cleaned("reversed \ufffd\ufffd pair", 2)),
        ("emoji 😀 and \U0010ffff", Cleaned("emoji 😀 and \U0010ffff", 0)),
        ("already \ufffd", Cleaned("already \ufffd", 0)),
        ("DEL \x7f and NEL \x85 are kept", Cleaned("DEL \x7f and NEL \x85 are kept", 0)),
    ],
)
def test_storable_replaces_only_what_no_database_keeps(text: str, expected: Cleaned) -> None:
    assert storable(text) == expected


def test_the_note_says_how_many_characters_in_plain_words() -> None:
    assert replaced_note(1) == f"(pmteam replaced 1 character it can't store with {REPLACEMENT}.)"
    assert replaced_note(2) == f"(pmteam replaced 2 characters it can't store with {REPLACEMENT}.)"


def test_intake_stores_the_cleaned_text_with_the_note() -> None:
    body = {
        "team_id": "T1",
        "event": {
            "type": "app_mention",
            "user": "U1",
            "channel": "C1",
            "ts": "1700000000.000100",
            "text": f"<@{BOT}> fix the \x00 parser &amp; the \ud800 lexer",
        },
    }
    message = parse_mention(body, BOT)

    assert message is not None
    assert message.text == (
        "fix the \ufffd parser & the \ufffd lexer\n\n"
        "(pmteam replaced 2 characters it can't store with \ufffd.)"
    )
    assert stored_text("plain &lt;text&gt;") == "plain <text>"  # nothing to say: no note


def test_a_dm_of_only_a_nul_is_still_a_request() -> None:
    body = {
        "event": {
            "type": "message",
            "channel_type": "im",
            "user": "U1",
            "channel": "D1",
            "ts": "1700000000.000100",
            "text": "\x00",
        }
    }
    message = parse_direct_message(body, BOT)

    assert message is not None
    assert message.text.startswith("\ufffd\n\n(pmteam replaced 1 character")


@given(any_text)
def test_storable_leaves_nothing_a_database_refuses_and_changes_nothing_else(text: str) -> None:
    cleaned = storable(text)

    assert len(cleaned.text) == len(text)
    cleaned.text.encode("utf-8")  # no lone surrogate left
    assert not any(ord(c) < 0x20 and c not in "\t\n\r" for c in cleaned.text)
    changed = [(a, b) for a, b in zip(text, cleaned.text, strict=True) if a != b]
    assert len(changed) == cleaned.replaced
    assert all(b == REPLACEMENT for _, b in changed)
    assert storable(cleaned.text) == Cleaned(cleaned.text, 0)


@settings(
    max_examples=50,
    deadline=None,
    # One database per test (the fixture), reused by every example: each has its own thread.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=any_text)
async def test_cleaned_text_round_trips_through_the_database(
    sessions: async_sessionmaker[AsyncSession], text: str
) -> None:
    expected = storable(text).text
    ts = f"1700000000.{next(_stamps):06d}"

    async with sessions.begin() as session:
        intake = await record_intake(
            session=session,
            team_id="T1",
            channel_id="C1",
            thread_ts=ts,
            message_ts=ts,
            user_id="U1",
            text=expected,
        )
        task_id, turn_id = intake.task.id, intake.turn.id

    async with sessions() as session:
        task = await session.get(Task, task_id)
        turn = await session.get(Turn, turn_id)
    assert task is not None and turn is not None
    assert turn.text == expected
    assert task.request_text == expected


async def test_a_message_no_database_can_encode_fails_alone_as_unstorable(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Text is cleaned at intake; an id isn't (it isn't free text). One with a lone
    surrogate fails its own write, as `unstorable`, and its batch is recorded without it."""

    def message(ts: str) -> IntakeMessage:
        return IntakeMessage(
            team_id="T1", channel_id="C1", user_id="U1", text="a task", message_ts=ts, thread_ts=ts
        )

    writer = IntakeWriter(database_url)
    try:
        first, bad, last = await asyncio.gather(
            writer.submit(message("1700000000.000001")),
            writer.submit(message("1700000000.00000\ud800")),
            writer.submit(message("1700000000.000003")),
            return_exceptions=True,
        )
    finally:
        await writer.close()

    assert isinstance(bad, UnicodeEncodeError) and unstorable(bad) == "encoding"
    assert not isinstance(first, BaseException) and first is not None and first.created
    assert not isinstance(last, BaseException) and last is not None and last.created
    async with sessions() as session:
        assert await session.get(Task, first.task_id) is not None


_stamps = itertools.count(1)
