"""The `/pm` grammar: a pure parser from the command text to what was asked (never raises)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from storage.queries import ListKind

# Task ids are INTEGER columns: anything above this can't exist (and would overflow Postgres).
MAX_TASK_ID = 2_147_483_647
_QUOTE_LIMIT = 40

_TASK_ID = re.compile(r"(?:t-?|#)?([0-9]{1,20})", re.IGNORECASE | re.ASCII)
# With "Escape channels, users, and links" on (manifest: should_escape), Slack sends
# mentions as <@U123|name> and channels as <#C123|name>.
_USER = re.compile(r"<@([UW][A-Z0-9]{2,30})(?:\|[^>]*)?>", re.ASCII)
_CHANNEL = re.compile(r"<#([CGD][A-Z0-9]{2,30})(?:\|[^>]*)?>", re.ASCII)


class Period(StrEnum):
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True)
class ShowHelp:
    pass


@dataclass(frozen=True)
class ShowStatus:
    task_id: int | None = None  # None: counts and your tasks


@dataclass(frozen=True)
class ListTasks:
    kind: ListKind = ListKind.OPEN
    user_id: str | None = None
    channel_id: str | None = None


@dataclass(frozen=True)
class Standup:
    post: bool = False  # False: a preview only you see


@dataclass(frozen=True)
class RepostReport:
    task_id: int


@dataclass(frozen=True)
class ShowUsage:
    period: Period = Period.WEEK


@dataclass(frozen=True)
class ShowCalibration:
    """How the self-scores and estimates compared with what happened."""


@dataclass(frozen=True)
class ShowConventions:
    """This channel's standing context for the engineer."""


@dataclass(frozen=True)
class EditConventions:
    """Open the modal that edits this channel's standing context."""


@dataclass(frozen=True)
class ShowHandoffs:
    """Open handoffs: the caller's (no one named), a person's, or `everyone`'s."""

    user_id: str | None = None
    everyone: bool = False


@dataclass(frozen=True)
class Unrecognised:
    """Input that isn't a `/pm` command; `problem` says what was wrong, in a sentence."""

    problem: str


PmCommand = (
    ShowHelp
    | ShowStatus
    | ListTasks
    | Standup
    | RepostReport
    | ShowUsage
    | ShowConventions
    | EditConventions
    | ShowHandoffs
    | ShowCalibration
    | Unrecognised
)

_LIST_WORDS: dict[str, ListKind] = {
    "open": ListKind.OPEN,
    "blocked": ListKind.BLOCKED,
    "done": ListKind.DONE,
    "completed": ListKind.DONE,
    "mine": ListKind.MINE,
}


def quote(text: str) -> str:
    """A short, single-line excerpt of what someone typed, for an error message."""
    line = " ".join(text.split()).replace("`", "'")
    return line if len(line) <= _QUOTE_LIMIT else line[: _QUOTE_LIMIT - 1] + "…"


def parse_task_id(token: str) -> int | str:
    """`T-42` (or `t42`, `#42`, `42`) → 42; otherwise the sentence saying why not."""
    match = _TASK_ID.fullmatch(token)
    if match is None:
        return f"`{quote(token)}` is not a task id; task ids look like T-42."
    number = int(match.group(1))  # at most 20 ASCII digits: int() is cheap and safe
    if not 1 <= number <= MAX_TASK_ID:
        return f"There is no task {quote(token)}; task ids start at T-1."
    return number


def parse_pm_command(text: str) -> PmCommand:
    """What `/pm <text>` asks for. Total: every input gives a command, never an exception."""
    words = text.split()
    if not words:
        return ShowHelp()
    verb, args = words[0].lower(), words[1:]
    match verb:
        case "help" | "?" | "-h" | "--help":
            return ShowHelp() if not args else _extra(verb, args)
        case "status":
            return _status(args)
        case "list" | "ls":
            return _list(args)
        case "standup":
            return _standup(args)
        case "report":
            return _report(args)
        case "usage" | "cost":
            return _usage(args)
        case "handoffs" | "handoff":
            return _handoffs(args)
        case "conventions" | "convention":
            return _conventions(args)
        case "calibration":
            return ShowCalibration() if not args else _extra(verb, args)
    if len(words) == 1 and isinstance(parse_task_id(words[0]), int):
        return _status(words)  # `/pm T-42` is the same as `/pm status T-42`
    return Unrecognised(f"I don't know the command `{quote(words[0])}`.")


def _extra(verb: str, args: list[str]) -> Unrecognised:
    return Unrecognised(f"`{verb}` takes nothing after it (I got `{quote(' '.join(args))}`).")


def _status(args: list[str]) -> PmCommand:
    if not args:
        return ShowStatus()
    if len(args) > 1:
        return _extra("status T-42", args[1:])
    task_id = parse_task_id(args[0])
    return ShowStatus(task_id) if isinstance(task_id, int) else Unrecognised(task_id)


def _list(args: list[str]) -> PmCommand:
    if not args:
        return ListTasks()
    if len(args) > 1:
        return Unrecognised(
            "`list` takes one filter: open, blocked, done, mine, @person or #channel."
        )
    word = args[0]
    kind = _LIST_WORDS.get(word.lower())
    if kind is not None:
        return ListTasks(kind=kind)
    user = _USER.fullmatch(word)
    if user is not None:
        return ListTasks(kind=ListKind.USER, user_id=user.group(1))
    channel = _CHANNEL.fullmatch(word)
    if channel is not None:
        return ListTasks(kind=ListKind.CHANNEL, channel_id=channel.group(1))
    if word.startswith(("@", "#")):
        return Unrecognised(
            f"I can't tell who or which channel `{quote(word)}` is; pick one from Slack's "
            "autocomplete so it arrives as a mention."
        )
    return Unrecognised(
        f"`{quote(word)}` is not a list filter: use open, blocked, done, mine, @person or #channel."
    )


def _standup(args: list[str]) -> PmCommand:
    if not args or (len(args) == 1 and args[0].lower() == "preview"):
        return Standup(post=False)
    if len(args) == 1 and args[0].lower() in ("post", "now"):
        return Standup(post=True)
    return Unrecognised("`standup` previews the standup; `standup post` posts it now.")


def _report(args: list[str]) -> PmCommand:
    if len(args) != 1:
        return Unrecognised("`report` needs one task id, like `report T-42`.")
    task_id = parse_task_id(args[0])
    return RepostReport(task_id) if isinstance(task_id, int) else Unrecognised(task_id)


def _usage(args: list[str]) -> PmCommand:
    if not args:
        return ShowUsage()
    if len(args) == 1:
        word = args[0].lower()
        for period in Period:
            if word in (period.value, f"this-{period.value}", f"{period.value}s"):
                return ShowUsage(period)
    return Unrecognised("`usage` takes `week` (the default) or `month`.")


def _conventions(args: list[str]) -> PmCommand:
    if not args:
        return ShowConventions()
    if len(args) == 1 and args[0].lower() in ("set", "edit"):
        return EditConventions()
    return Unrecognised(
        "`conventions` shows this channel's conventions; `conventions set` edits them."
    )


def _handoffs(args: list[str]) -> PmCommand:
    if not args:
        return ShowHandoffs()
    if len(args) == 1:
        word = args[0]
        if word.lower() in ("all", "everyone"):
            return ShowHandoffs(everyone=True)
        if word.lower() in ("mine", "me"):
            return ShowHandoffs()
        user = _USER.fullmatch(word)
        if user is not None:
            return ShowHandoffs(user_id=user.group(1))
    return Unrecognised("`handoffs` lists yours; `handoffs @person` someone's; `handoffs all`.")
