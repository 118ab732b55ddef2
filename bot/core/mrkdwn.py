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


# --- links ------------------------------------------------------------------------------------
# Model text (which may carry a prompt injection from a fetched page) must never show a link
# under words of its choosing: Slack's markdown renders `[text](url)` and `<url|text>` as text
# that hides where it goes. Every such link is rewritten to show its URL, and whatever might
# still form one (a `](` or `<url|` left over from a cut or odd nesting) is defused. Code is
# shown literally, so it is left alone; what counts as code is read narrowly on purpose: a
# misjudgement must only ever leave *more* text treated (and made safe) as prose.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)?")
_FENCE_OPEN = re.compile(r"`{3,}[^`]*")  # a whole line, at column 0: no container can hold it
_FENCE_CLOSE = re.compile(r" {0,3}`{3,}[ \t]*")  # closes any fence, whatever its length
_BACKTICKS = re.compile(r"`+")
_NOT_A_BREAK = re.compile(r"[^\r\n]")
_CODE = "\x00"  # code, masked out: matches none of the link patterns below
_LINK = re.compile(
    r"\[(?P<label>[^\[\]]*)\]\((?P<target>(?:[^()]|\([^()]*\))*)\)"
    r"|<(?P<slack_target>[^\s<>|][^<>|]*)(?:\|(?P<slack_label>[^<>]*))?>"
)
# A markdown link's destination (bare or <angled>) and optional title, as CommonMark reads it.
_TARGET = re.compile(
    r"\s*(?:<(?P<angled>[^<>\n]*)>|(?P<bare>[^\s<]\S*))?"
    r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^()]*\)))?\s*",
    re.DOTALL,
)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_SCHEME_PREFIX = re.compile(r"^[a-z][a-z0-9+.\-]*:(?://)?")
_KEPT_SPECIAL = re.compile(r"!(?:channel|here|everyone|subteam\^)", re.IGNORECASE)
_SPECIAL_URL = re.compile(r"\^([A-Za-z][A-Za-z0-9+.\-]*:[^\^]*)")  # <!date^…^url|…>
_COMPLETE_TOKEN = re.compile(r"<[^<>]*>")
_LEFT_OVER = re.compile(r"\](?=[(:])|<(?=[A-Za-z][A-Za-z0-9+.\-]*:|[^\s<>|]+\|)")
_DEFINITION_PREFIX = re.compile(r"[ \t>*+\-\d.)]*")  # what may precede `[label]:` on a line
_BLANK_LINE = re.compile(r"\n[ \t]*(?:\r?\n|\r)")
_LINK_PASSES = 32  # nested links unwrap one level a pass; past this, defuse without unwrapping


def unmask_links(text: str, *, context: str = "") -> str:
    """`text` with every link shown as its URL: `[text](url)` and `<url|text>` become
    `text (url)`, or just the URL when the text already is it; `<url>` becomes the URL.
    Code spans and fenced code are left as written.

    `context` is the text already shown before `text` in the same message (a stream sends a
    message in pieces): it decides what is code, and is not itself returned or changed."""
    start = len(context)
    full = context + text
    for _ in range(_LINK_PASSES):
        masked = _mask_code(full)
        changed = _show_links(full, masked, start)
        if changed == full:
            changed = _defuse(full, masked, start)
            if changed == full:
                return full[start:]
        full = changed
    return _defuse(full, full, start)[start:]  # pathological nesting: treat it all as prose


def safe_model_markdown(text: str, *, context: str = "") -> str:
    """Model markdown as pmteam may post it: no masked link, and no channel-wide ping."""
    return neutralise_mentions(unmask_links(text, context=context))


def unfinished_link_start(text: str, *, context: str = "", reach: int = 600) -> int | None:
    """Where in `text` a link begins that more text could still complete (an open `[`, a `]`
    or `](` whose target is still to come, a `<` not yet closed), or None. A stream cuts
    before it, so a link never arrives in two halves, each made safe alone and shown as
    broken markup. Only the last `reach` characters count: an opening that old is no link."""
    full = context + text
    masked = _mask_code(full)
    end = len(full)
    found = end
    opened: list[int] = []
    at = max(len(context), end - reach)
    while at < end:
        char = masked[at]
        if char == "\n" and _BLANK_LINE.match(masked, at):
            opened.clear()  # nothing links across a paragraph break
        elif char == "[":
            opened.append(at)
        elif char == "]":
            begun = opened.pop() if opened else at
            if at + 1 == end:
                found = min(found, begun)
            elif masked[at + 1] == "(":
                close = _closing_paren(masked, at + 1)
                if close is None:
                    found = min(found, begun)
                else:
                    at = close
        elif char == "<" and (at + 1 == end or not masked[at + 1].isspace()):
            rest = masked[at + 1 :]
            if "<" not in rest and ">" not in rest and not _BLANK_LINE.search(rest):
                found = min(found, at)
        at += 1
    if opened:
        found = min(found, opened[0])
    return None if found == end else found - len(context)


def _closing_paren(masked: str, at: int) -> int | None:
    """The `)` that closes the `(` at `at`, within its paragraph, or None if none has come."""
    depth = 0
    for index in range(at, len(masked)):
        char = masked[index]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
        elif char == "\n" and _BLANK_LINE.match(masked, index):
            return index  # not a link: the paragraph ended first
    return None


def _show_links(text: str, masked: str, start: int) -> str:
    """One pass: each link starting at or after `start` outside code, shown as its URL."""
    pieces = [text[:start]]
    done = at = start
    while match := _LINK.search(masked, at):
        shown = _shown(text, match)
        if shown is None:  # kept (a mention) or not a link: look inside it too
            at = match.start() + 1
            continue
        pieces += [text[done : match.start()], shown]
        done = at = match.end()
    pieces.append(text[done:])
    return "".join(pieces)


def _shown(text: str, match: re.Match[str]) -> str | None:
    """What the link `match` shows instead, or None to leave it as it is."""

    def group(name: str) -> str | None:
        begin, end = match.span(name)
        return None if begin < 0 else text[begin:end]

    label, target = group("label"), group("target")
    if label is not None and target is not None:
        destination = _TARGET.fullmatch(target)
        if destination is None:
            return None  # not a link as markdown reads it; a left-over `](` is defused
        url = destination.group("angled") or destination.group("bare") or ""
        return _open_link(label, url)
    slack_target, slack_label = group("slack_target") or "", group("slack_label")
    if slack_target.startswith(("@", "#")):
        return None  # a person or a channel
    if slack_target.startswith("!"):
        if _KEPT_SPECIAL.match(slack_target):
            return None  # a channel-wide or group mention: neutralise_mentions' job
        url_in = _SPECIAL_URL.search(slack_target)  # <!date^…^url|fallback> links its text
        if url_in is None:
            return None
        return _open_link(slack_label or "", url_in.group(1))
    if slack_label is None:
        return _open_link("", slack_target) if _SCHEME.match(slack_target) else None
    return _open_link(slack_label, slack_target)


def _open_link(label: str, url: str) -> str:
    """`label (url)`, or only the URL (a mail address without `mailto:`) when the label says
    no more than the URL does."""
    url = url.strip()
    label = label.strip()
    if not url:
        return label
    plain = url.lower().rstrip("/")
    if label.lower().rstrip("/") in ("", plain, _SCHEME_PREFIX.sub("", plain)):
        return url[len("mailto:") :] if plain.startswith("mailto:") else url
    return f"{label} ({url})"


def _defuse(text: str, masked: str, start: int) -> str:
    """What could still make a masked link once more text follows (or precedes it) is broken
    up: a word joiner between `]` and `(` (or the `:` of a reference definition), and a `<`
    that opens an unfinished `<url|…` dropped. Nothing visible changes but the stray `<`."""
    pieces = [text[:start]]
    done = start
    for match in _LEFT_OVER.finditer(masked, max(start - 1, 0)):
        at = match.start()
        if masked[at] == "]":
            if masked[at + 1] == ":" and not _defines_reference(masked, at):
                continue
            pieces += [text[done : at + 1], _ZERO_WIDTH_JOINER]
            done = at + 1
        elif at >= start and not _COMPLETE_TOKEN.match(masked, at):
            pieces.append(text[done:at])
            done = at + 1
    pieces.append(text[done:])
    return "".join(pieces)


def _defines_reference(masked: str, close: int) -> bool:
    """Whether the `]:` at `close` may end a reference definition (`[label]: url`), which
    would make a `[text][label]` elsewhere a masked link: its `[` starts a line."""
    opening = masked.rfind("[", 0, close)
    line_start = max(masked.rfind("\n", 0, opening), masked.rfind("\r", 0, opening)) + 1
    return opening >= 0 and _DEFINITION_PREFIX.fullmatch(masked, line_start, opening) is not None


def _mask_code(text: str) -> str:
    """`text` with its code (see `_code_spans`) replaced by a character no link pattern
    matches; line breaks kept, so positions and paragraphs stay where they were."""
    pieces: list[str] = []
    done = 0
    for begin, end in _code_spans(text):
        pieces += [text[done:begin], _NOT_A_BREAK.sub(_CODE, text[begin:end])]
        done = end
    pieces.append(text[done:])
    return "".join(pieces)


def _code_spans(text: str) -> list[tuple[int, int]]:
    """Where `text` is surely code, as (start, end) ranges in order.

    A fence counts only when it opens at column 0 on a finished line (nothing can hold it
    then, and a later character can't turn it into a paragraph) and ends at the first line
    that could close any fence. A code span counts only within one line whose backticks all
    pair up, in a paragraph where no earlier line left one unpaired (CommonMark would pair it
    across lines), no `<` or `>` was seen (an HTML tag or autolink takes its backticks first),
    no backslash escapes one, and the line has no `|` (a table cell would split it)."""
    spans: list[tuple[int, int]] = []
    fence: int | None = None
    unsure = angled = False
    for line in _LINE.finditer(text):
        begin, end = line.span()
        if begin == end:
            break
        body = line.group().rstrip("\r\n")
        if fence is not None:
            if _FENCE_CLOSE.fullmatch(body):
                spans.append((fence, end))
                fence = None
            continue
        if len(body) < end - begin and _FENCE_OPEN.fullmatch(body):
            fence, unsure, angled = begin, False, False
            continue
        if not body.strip():
            unsure = angled = False
            continue
        angled = angled or "<" in body or ">" in body
        if "`" not in body:
            continue
        pairs = _paired_backticks(body)
        if pairs is None or angled or "\\" in body:
            unsure = True
        elif not unsure and "|" not in body:
            spans += [(begin + a, begin + b) for a, b in pairs]
    if fence is not None:
        spans.append((fence, len(text)))
    return spans


def _paired_backticks(line: str) -> list[tuple[int, int]] | None:
    """The code spans of one line as CommonMark pairs backtick runs (each with the next run
    of the same length), or None if a run is left unpaired."""
    runs = [run.span() for run in _BACKTICKS.finditer(line)]
    spans: list[tuple[int, int]] = []
    index = 0
    while index < len(runs):
        begin, end = runs[index]
        partner = next(
            (k for k in range(index + 1, len(runs)) if runs[k][1] - runs[k][0] == end - begin),
            None,
        )
        if partner is None:
            return None
        spans.append((begin, runs[partner][1]))
        index = partner + 1
    return spans


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
