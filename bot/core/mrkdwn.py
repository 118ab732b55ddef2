"""Model text made safe and sized for Slack: no mass pings, and long answers split readably."""

from __future__ import annotations

import re

# Slack's special mentions, in mrkdwn (<!channel>, <!here|here>, <!subteam^S123|@team>) and as
# typed text (@channel, @here, @everyone). Model output must never ping a whole channel.
_SPECIAL_MENTION = re.compile(r"<!(channel|here|everyone)(\|[^>]*)?>", re.IGNORECASE)
_SUBTEAM_MENTION = re.compile(r"<!subteam\^([A-Z0-9]+)(?:\|([^>]*))?>", re.IGNORECASE)
_PLAIN_MENTION = re.compile(r"(?<![\w`])@(channel|here|everyone)\b", re.IGNORECASE)
# Slack markup that stays live when a person's text is shown again: a user (<@U123>) or a
# channel (<#C123|name>). A link stays text: a label must not disguise where it goes.
_KEPT_TOKEN = re.compile(r"<(?:@[UW][A-Z0-9]+|#C[A-Z0-9]+)(?:\|[^<>]*)?>")
# What a cut must not land inside: an entity, or anything between angle brackets.
_UNCUTTABLE = re.compile(r"&(?:amp|lt|gt);|<[^<>\n]{0,300}>")
_LONGEST_UNIT = 302
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


def decode_slack_text(text: str) -> str:
    """A message's text as its author typed it: Slack sends `&`, `<` and `>` as `&amp;`,
    `&lt;` and `&gt;`. Decoded once at intake; the database keeps plain text."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def escape_mrkdwn(text: str) -> str:
    """Plain text (a person's or the model's) inside mrkdwn, escaped once: what Slack shows is
    the same characters. A person or a channel written in Slack's own markup stays one; a link
    shows as text, and a channel-wide or group mention never pings."""
    parts: list[str] = []
    done = 0
    for token in _KEPT_TOKEN.finditer(text):
        parts.append(_escape_all(text[done : token.start()]))
        parts.append(token.group(0).replace("&", "&amp;"))
        done = token.end()
    parts.append(_escape_all(text[done:]))
    return neutralise_mentions("".join(parts))


def _escape_all(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, with an ellipsis where it was cut; never
    inside an entity (`&gt;`) or a Slack token (`<@U123>`), which would show as garbage."""
    if len(text) <= limit:
        return text
    cut = limit - 1
    for unit in _UNCUTTABLE.finditer(text, max(0, cut - _LONGEST_UNIT), cut + _LONGEST_UNIT):
        if unit.start() < cut < unit.end():
            cut = unit.start()
            break
    return text[:cut].rstrip() + "…"


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
