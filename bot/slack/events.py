"""Slack event payloads read into the messages intake records: pure, no Web API calls."""

from __future__ import annotations

import re
from typing import Any

import structlog

from bot.core.mrkdwn import decode_slack_text
from bot.core.storable import replaced_note, storable
from storage.intake import IntakeMessage

log = structlog.get_logger("pmteam.intake")

# Messages pmteam never acts on: edits, deletions, joins, topic changes, bot posts, and so on.
# A file share with text is still a request; one without text is skipped below.
_ACTIONABLE_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})


def strip_bot_mention(text: str, bot_user_id: str) -> str:
    cleaned = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", "", text)
    return re.sub(r"[ \t]{2,}", " ", cleaned).strip()


def is_private_channel(channel_id: str, channel_type: str | None = None) -> bool:
    """A DM, a group DM or a private channel, as far as the event alone tells (a private
    channel made since 2021 has a C id like a public one; the turn asks Slack about those)."""
    return channel_type in ("im", "mpim", "group") or channel_id.startswith(("D", "G"))


def stored_text(text: str, *, ts: str = "") -> str:
    """Slack's text as intake stores it: decoded (stored as typed, escaped once when shown
    again), with what no database can keep (NUL, other control characters, lone surrogates)
    replaced by U+FFFD and a note saying so, so the request isn't lost with a database error."""
    cleaned = storable(decode_slack_text(text))
    if not cleaned.replaced:
        return cleaned.text
    log.warning("unstorable characters replaced", replaced=cleaned.replaced, ts=ts)
    return f"{cleaned.text}\n\n{replaced_note(cleaned.replaced)}"


def _intake_message(
    body: dict[str, Any], event: dict[str, Any], text: str, *, source: str
) -> IntakeMessage:
    ts = str(event["ts"])
    return IntakeMessage(
        team_id=str(event.get("team") or body.get("team_id") or ""),
        channel_id=str(event["channel"]),
        user_id=str(event["user"]),
        text=stored_text(text, ts=ts),
        message_ts=ts,
        # The thread the task lives in: the message's own ts when it starts one.
        thread_ts=str(event.get("thread_ts") or ts),
        source=source,
        private=source in ("dm", "assistant")
        or is_private_channel(str(event["channel"]), event.get("channel_type")),
        files=shared_files(event),
    )


# What of a shared file intake keeps: enough to download it later and to name it.
_FILE_FIELDS = ("id", "name", "title", "mimetype", "filetype", "size", "mode")
MAX_FILES = 10


def shared_files(event: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """The files shared with a message (at most MAX_FILES), as `turn.files` keeps them."""
    files = event.get("files")
    if not isinstance(files, list):
        return ()
    kept: list[dict[str, Any]] = []
    for file in files[:MAX_FILES]:
        if not isinstance(file, dict) or not file.get("id"):
            continue
        entry = {key: file[key] for key in _FILE_FIELDS if file.get(key) is not None}
        url = file.get("url_private_download") or file.get("url_private")
        if url:
            entry["url"] = str(url)
        kept.append(entry)
    return tuple(kept)


def parse_mention(body: dict[str, Any], bot_user_id: str) -> IntakeMessage | None:
    event = body.get("event") or {}
    if event.get("bot_id") or event.get("subtype") or not event.get("user"):
        return None
    # A bare mention keeps its empty text: it is answered with what pmteam does.
    text = strip_bot_mention(str(event.get("text") or ""), bot_user_id)
    return _intake_message(body, event, text, source="mention")


def parse_direct_message(body: dict[str, Any], bot_user_id: str) -> IntakeMessage | None:
    """A person's message in a DM or assistant thread with pmteam; None for everything to ignore."""
    event = body.get("event") or {}
    if event.get("channel_type") != "im":
        return None  # channel messages reach pmteam as app_mention
    if event.get("subtype") not in _ACTIONABLE_SUBTYPES:
        return None
    if event.get("bot_id") or event.get("app_id") or not event.get("user"):
        return None
    if event.get("user") == bot_user_id:
        return None
    text = strip_bot_mention(str(event.get("text") or ""), bot_user_id)
    if not text:
        return None  # a file shared with no words: nothing to work on
    source = "assistant" if event.get("thread_ts") else "dm"
    return _intake_message(body, event, text, source=source)


def parse_thread_reply(body: dict[str, Any], bot_user_id: str) -> IntakeMessage | None:
    """A person's reply in a channel thread (`message.channels` / `message.groups`): a
    follow-up if the thread is a task. Top-level messages, bots (pmteam too), edits and
    deletions are None."""
    event = body.get("event") or {}
    if event.get("channel_type") not in ("channel", "group"):
        return None
    if event.get("subtype") not in _ACTIONABLE_SUBTYPES:
        return None
    if event.get("bot_id") or event.get("app_id") or not event.get("user"):
        return None
    if event.get("user") == bot_user_id:
        return None
    thread_ts = event.get("thread_ts")
    if not thread_ts or thread_ts == event.get("ts"):
        return None  # top-level: pmteam answers those only when mentioned
    text = strip_bot_mention(str(event.get("text") or ""), bot_user_id)
    if not text:
        return None
    return _intake_message(body, event, text, source="thread")
