"""The `/pm` parser understands the DESIGN §4 grammar and answers anything else without raising."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.pm_grammar import (
    MAX_TASK_ID,
    EditConventions,
    ListTasks,
    Period,
    PmCommand,
    RepostReport,
    ShowCalibration,
    ShowConventions,
    ShowHandoffs,
    ShowHelp,
    ShowStatus,
    ShowUsage,
    Standup,
    Unrecognised,
    parse_pm_command,
)
from storage.queries import ListKind


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("help", ShowHelp()),
        ("", ShowHelp()),
        ("   ", ShowHelp()),
        ("status", ShowStatus()),
        ("STATUS", ShowStatus()),
        ("status T-42", ShowStatus(42)),
        ("status t-42", ShowStatus(42)),
        ("status 42", ShowStatus(42)),
        ("T-7", ShowStatus(7)),
        ("list", ListTasks(ListKind.OPEN)),
        ("list open", ListTasks(ListKind.OPEN)),
        ("list blocked", ListTasks(ListKind.BLOCKED)),
        ("list done", ListTasks(ListKind.DONE)),
        ("list mine", ListTasks(ListKind.MINE)),
        ("list <@U0ALICE|alice>", ListTasks(ListKind.USER, user_id="U0ALICE")),
        ("list <@W123ABC>", ListTasks(ListKind.USER, user_id="W123ABC")),
        ("list <#C0ENG|engineering>", ListTasks(ListKind.CHANNEL, channel_id="C0ENG")),
        ("list <#C0ENG>", ListTasks(ListKind.CHANNEL, channel_id="C0ENG")),
        ("standup", Standup(post=False)),
        ("standup preview", Standup(post=False)),
        ("standup post", Standup(post=True)),
        ("report T-42", RepostReport(42)),
        ("usage", ShowUsage(Period.WEEK)),
        ("usage week", ShowUsage(Period.WEEK)),
        ("usage month", ShowUsage(Period.MONTH)),
        ("  status \t T-3  ", ShowStatus(3)),
        ("conventions", ShowConventions()),
        ("calibration", ShowCalibration()),
        ("Conventions SET", EditConventions()),
        ("conventions edit", EditConventions()),
        ("handoffs", ShowHandoffs()),
        ("handoffs mine", ShowHandoffs()),
        ("handoffs all", ShowHandoffs(everyone=True)),
        ("Handoffs ALL", ShowHandoffs(everyone=True)),
        ("handoffs <@U0DANA|dana>", ShowHandoffs(user_id="U0DANA")),
    ],
)
def test_the_grammar(text: str, expected: PmCommand) -> None:
    assert parse_pm_command(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("frobnicate", "I don't know the command `frobnicate`"),
        ("status T-0", "There is no task T-0"),
        ("status T-99999999999999999999", "There is no task"),
        ("status T-999999999999999999999999", "is not a task id"),
        (f"status T-{MAX_TASK_ID + 1}", "There is no task"),
        ("status T-١٢", "is not a task id"),  # Arabic-Indic digits are not task ids
        ("status T-abc", "is not a task id"),
        ("status T-1 T-2", "takes nothing after it"),
        ("list <@U123|name> extra", "takes one filter"),
        ("list @alice", "pick one from Slack's autocomplete"),
        ("list #eng", "pick one from Slack's autocomplete"),
        ("list everything", "is not a list filter"),
        ("report", "needs one task id"),
        ("report T-0", "There is no task T-0"),
        ("usage year", "`usage` takes `week`"),
        ("standup later", "`standup post` posts it now"),
        ("<@U123|name>", "I don't know the command `<@U123|name>`"),
        ("<#C1|chan>", "I don't know the command `<#C1|chan>`"),
        ("help me", "takes nothing after it"),
        ("conventions delete", "`conventions set` edits them"),
        ("calibration week", "takes nothing after it"),
        ("handoffs @dana", "`handoffs all`"),
        ("handoffs all <@U1>", "`handoffs @person`"),
    ],
)
def test_malformed_input_says_what_was_wrong(text: str, says: str) -> None:
    command = parse_pm_command(text)

    assert isinstance(command, Unrecognised)
    assert says in command.problem


def test_a_5000_character_command_is_quoted_short() -> None:
    command = parse_pm_command("x" * 5000)

    assert isinstance(command, Unrecognised)
    assert len(command.problem) < 120


def test_a_5000_digit_task_id_is_refused_without_converting_it() -> None:
    # int() of a number this long raises in Python 3.11+ (the digit limit); the parser must not.
    command = parse_pm_command("status T-" + "9" * 5000)

    assert isinstance(command, Unrecognised)
    assert "is not a task id" in command.problem


def test_quotes_are_one_line_without_backticks() -> None:
    command = parse_pm_command("list `evil`\ncode")

    assert isinstance(command, Unrecognised)
    assert "\n" not in command.problem and "`evil`" not in command.problem


COMMAND_WORDS = st.sampled_from(
    ["status", "list", "standup", "report", "usage", "help", "post", "T-1", "T-0", "mine"]
)
TOKENS = st.one_of(
    COMMAND_WORDS,
    st.text(max_size=30),
    st.from_regex(r"[tT]-?[0-9]{0,25}", fullmatch=True),
    st.from_regex(r"<[@#][A-Z0-9]{0,12}(\|[^>]{0,10})?>", fullmatch=True),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(TOKENS, max_size=6).map(" ".join))
def test_command_like_input_never_raises(text: str) -> None:
    command = parse_pm_command(text)

    _check_result(command)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=5000))
def test_arbitrary_unicode_never_raises(text: str) -> None:
    _check_result(parse_pm_command(text))


def _check_result(command: PmCommand) -> None:
    assert isinstance(
        command,
        ShowHelp | ShowStatus | ListTasks | Standup | RepostReport | ShowUsage | Unrecognised,
    )
    if isinstance(command, ShowStatus | RepostReport) and command.task_id is not None:
        assert 1 <= command.task_id <= MAX_TASK_ID
    if isinstance(command, Unrecognised):
        assert command.problem and len(command.problem) < 200
