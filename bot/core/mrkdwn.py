"""Model text made safe and sized for Slack: no mass pings, and long answers split readably."""

from __future__ import annotations

import re

# Slack's special mentions, in mrkdwn (<!channel>, <!here|here>, <!subteam^S123|@team>) and as
# typed text (@channel, @here, @everyone). Model output must never ping a whole channel.
_SPECIAL_MENTION = re.compile(r"<!(channel|here|everyone)(\|[^>]*)?>", re.IGNORECASE)
_SUBTEAM_MENTION = re.compile(r"<!subteam\^([A-Z0-9]+)(?:\|([^>]*))?>", re.IGNORECASE)
_PLAIN_MENTION = re.compile(r"(?<![\w`])@(channel|here|everyone)\b", re.IGNORECASE)
_ZERO_WIDTH_JOINER = "\u2060"  # a word joiner: shows "@channel" but Slack won't treat it as one

SLACK_MARKDOWN_LIMIT = 12_000  # a markdown block / streamed message
DEFAULT_PART_LIMIT = 11_000  # leave room for a "(continued)" note


def neutralise_mentions(text: str) -> str:
    """Turn channel-wide and group mentions into plain, non-pinging text."""
    text = _SPECIAL_MENTION.sub(lambda m: f"@{_ZERO_WIDTH_JOINER}{m.group(1).lower()}", text)
    text = _SUBTEAM_MENTION.sub(
        lambda m: f"@{_ZERO_WIDTH_JOINER}{(m.group(2) or 'group').lstrip('@')}", text
    )
    return _PLAIN_MENTION.sub(lambda m: f"@{_ZERO_WIDTH_JOINER}{m.group(1)}", text)


def escape_mrkdwn(text: str) -> str:
    """Model or user text inside mrkdwn: no control characters for links and mentions, and no
    mass pings."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return neutralise_mentions(text)


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, with an ellipsis where it was cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def one_line(text: str, limit: int) -> str:
    """`text` on one line (runs of white space become one space), then clipped: for a title
    or a note quoted inside a list line."""
    return clip(" ".join(text.split()), limit)


def fence_open_after(text: str, open_fence: str | None) -> str | None:
    """Which code fence (```lang) is still open after `text`, given the one open before it."""
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith("```"):
            open_fence = None if open_fence is not None else stripped
    return open_fence


def split_markdown(text: str, limit: int = DEFAULT_PART_LIMIT) -> list[str]:
    """Split at paragraph breaks outside code blocks; a code block longer than `limit` is
    closed and reopened (with its language) so every part renders on its own."""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    open_fence: str | None = None
    for paragraph in _paragraphs(text):
        candidate = current + paragraph
        if len(candidate) <= limit:
            current = candidate
            open_fence = fence_open_after(paragraph, open_fence)
            continue
        if current and open_fence is None:
            parts.append(current.rstrip("\n"))
            current = ""
        # Place the paragraph line by line, closing and reopening a fence at a part boundary.
        for line in paragraph.splitlines(keepends=True):
            for piece in _hard_wrap(line, limit // 2):
                closing = "\n```" if open_fence else ""
                if len(current) + len(piece) + len(closing) > limit and current.strip():
                    parts.append((current.rstrip("\n") + closing).rstrip())
                    current = open_fence + "\n" if open_fence else ""
                current += piece
                open_fence = fence_open_after(piece, open_fence)
    if current.strip():
        parts.append(current.rstrip("\n"))
    return parts


def _paragraphs(text: str) -> list[str]:
    """Blocks separated by blank lines, each keeping its trailing newlines; a blank line
    inside a code fence does not end the paragraph."""
    blocks: list[str] = []
    current = ""
    open_fence: str | None = None
    for line in text.splitlines(keepends=True):
        current += line
        open_fence = fence_open_after(line, open_fence)
        if open_fence is None and line.strip() == "":
            blocks.append(current)
            current = ""
    if current:
        blocks.append(current)
    return blocks


def _hard_wrap(line: str, width: int) -> list[str]:
    """A single line longer than `width` (rare: minified JSON) is cut at spaces if it can be."""
    if len(line) <= width:
        return [line]
    pieces: list[str] = []
    while len(line) > width:
        cut = line.rfind(" ", 0, width)
        cut = cut + 1 if cut > width // 2 else width
        pieces.append(line[:cut])
        line = line[cut:]
    pieces.append(line)
    return pieces
