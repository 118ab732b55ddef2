"""Model text made safe and sized for Slack: no mass pings, no masked links, and long answers
split readably."""

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
_FENCE_OPEN = re.compile(r"( {0,3})(`{3,}|~{3,})")
_FENCE_CLOSE = re.compile(r" {0,3}(`{3,}|~{3,})[ \t]*")
_BACKTICKS = re.compile(r"`+")
_NOT_A_BREAK = re.compile(r"[^\r\n]")
_NOT_LINK_SYNTAX = re.compile(r"[^\r\n\[\]():]")
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
_HTML_START = re.compile(r" {0,3}<(?:[!?]|/?[A-Za-z][A-Za-z0-9-]*(?:[\s/>]|$))")
# <T>, <https://x>, <@U123|Ann Lee>: ends at its `>`; not so a comment (<!--), <![CDATA[ or <?.
_SHORT_TOKEN = re.compile(r"<(?!!-|!\[|\?)(?:[^<>`\s]+|@[^<>`]*)>")
_LINK_PASSES = 32  # nested links unwrap one level a pass; past this, defuse without unwrapping


def unmask_links(text: str, *, context: str = "", partial: bool = False) -> str:
    """`text` with every link shown as its URL: `[text](url)` and `<url|text>` become
    `text (url)`, or just the URL when the text already is it; `<url>` becomes the URL.
    Code spans and fenced code are left as written.

    `context` is the text already shown before `text` in the same message (a stream sends a
    message in pieces): it decides what is code, and is not itself returned or changed.
    `partial` says more text may follow on the last line, so what ends it is not final."""
    start = len(context)
    full = context + text
    for _ in range(_LINK_PASSES):
        masked, defusable = _mask_code(full, partial=partial)
        changed = _show_links(full, masked, start)
        if changed == full:
            changed = _defuse(full, defusable, start)
            if changed == full:
                return full[start:]
        full = changed
    # Pathological nesting: treat it all as prose, and break up even complete links.
    return _defuse(full, full, start, everywhere=True)[start:]


def safe_model_markdown(text: str, *, context: str = "", partial: bool = False) -> str:
    """Model markdown as pmteam may post it: no masked link, and no channel-wide ping.

    Each can undo the other: showing a link can make a mention (`@[here](…)`), and taking a
    mention out can finish a link (`<url|a <!here> b>`); so both, until neither changes."""
    for _ in range(_LINK_PASSES):
        shown = neutralise_mentions(unmask_links(text, context=context, partial=partial))
        if shown == text:
            break
        text = shown
    return text


def unfinished_link_start(text: str, *, context: str = "", reach: int = 600) -> int | None:
    """Where in `text` a link begins that more text could still complete (an open `[`, a `]`
    or `](` whose target is still to come, a `<` not yet closed), or None. A stream cuts
    before it, so a link never arrives in two halves, each made safe alone and shown as
    broken markup. Only the last `reach` characters count: an opening that old is no link."""
    full = context + text
    masked, _ = _mask_code(full, partial=True)
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


def _defuse(text: str, masked: str, start: int, *, everywhere: bool = False) -> str:
    """What could still make a masked link once more text follows (or precedes it) is broken
    up: a word joiner between `]` and `(` (or the `:` of a reference definition), and a `<`
    that opens an unfinished `<url|…` dropped, or else (the `<` was shown already) the `>`
    that would finish it. Nothing visible changes but a stray `<` or `>`."""
    joins: set[int] = set()  # a word joiner goes after each of these
    drops: set[int] = set()
    for match in _LEFT_OVER.finditer(masked, max(start - 1, 0)):
        at = match.start()
        if masked[at] == "]":
            if masked[at + 1] == "(" or _defines_reference(masked, at):
                joins.add(at)
        elif at >= start and (everywhere or not _COMPLETE_TOKEN.match(masked, at)):
            drops.add(at)
    spanning = _slack_link_into(text, masked, start)
    if spanning is not None:
        drops.add(spanning)
    if not joins and not drops:
        return text
    pieces = [text[:start]]
    done = start
    for at in sorted(joins | drops):
        if at in drops:
            pieces.append(text[done:at])
            done = at + 1
        else:
            pieces += [text[done : at + 1], _ZERO_WIDTH_JOINER]
            done = at + 1
    pieces.append(text[done:])
    return "".join(pieces)


def _slack_link_into(text: str, masked: str, start: int) -> int | None:
    """Where the `>` is that would close a `<url|…` begun before `start` (already shown, so
    its `<` can't be dropped), making it a masked link; None if there is none."""
    opening = masked.rfind("<", 0, start)
    if opening < 0 or ">" in masked[opening:start]:
        return None
    match = _LINK.match(masked, opening)
    if match is None or match.start("slack_target") < 0 or _shown(text, match) is None:
        return None
    return match.end() - 1


def _defines_reference(masked: str, close: int) -> bool:
    """Whether the `]:` at `close` may end a reference definition (`[label]: url`), which
    would make a `[text][label]` elsewhere a masked link: its `[` starts a line."""
    opening = masked.rfind("[", 0, close)
    line_start = max(masked.rfind("\n", 0, opening), masked.rfind("\r", 0, opening)) + 1
    return opening >= 0 and _DEFINITION_PREFIX.fullmatch(masked, line_start, opening) is not None


def _mask_code(text: str, *, partial: bool) -> tuple[str, str]:
    """`text` with its code (see `_code_spans`) replaced by a character no link pattern
    matches, line breaks kept so positions and paragraphs stay put: once for finding links,
    and once for defusing them, where code that is only probably code keeps its `[`, `]`, `(`
    and `:` (an invisible word joiner there changes nothing shown, should it be code)."""
    masked: list[str] = []
    defusable: list[str] = []
    done = 0
    for begin, end, sure in _code_spans(text, partial=partial):
        prose, code = text[done:begin], text[begin:end]
        masked += [prose, _NOT_A_BREAK.sub(_CODE, code)]
        defusable += [prose, (_NOT_A_BREAK if sure else _NOT_LINK_SYNTAX).sub(_CODE, code)]
        done = end
    masked.append(text[done:])
    defusable.append(text[done:])
    return "".join(masked), "".join(defusable)


def _code_spans(text: str, *, partial: bool) -> list[tuple[int, int, bool]]:
    """Where `text` is code, as (start, end, sure) in order; read narrowly on purpose.

    Fences open and close as CommonMark's do, but only one of backticks opened at column 0
    on a finished line counts as code: nothing but an HTML block can hold it (so none counts
    once a line may have begun one), and no later character can turn it into a paragraph.
    Other fences (indented ones may end with a list item, Slack may not know `~~~`) are
    followed only so a line that closes one isn't taken for an opening. Code spans are read
    one line at a time (see `_line_spans`); a paragraph in which a line left a backtick
    unpaired (CommonMark may pair it with one on a later line) or an `<` opened what may be an
    HTML tag or an autolink (which may hold a backtick) has no more code spans. The spans of
    a line where one holds a `|` are not sure: were the paragraph a table, its cells would
    split them. In `partial` text, a backtick run that ends the text may yet grow."""
    spans: list[tuple[int, int, bool]] = []
    fence: tuple[str, int, int, bool] | None = None  # its character, length, start, counted
    unsure = False  # this paragraph's backticks can no longer be paired for certain
    html = False  # an HTML block may have begun: a ``` line may be inside it
    for line in _LINE.finditer(text):
        begin, end = line.span()
        if begin == end:
            break
        body = line.group().rstrip("\r\n")
        finished = len(body) < end - begin
        if fence is None or not fence[3]:
            html = html or _HTML_START.match(body) is not None
        if fence is not None:
            char, length, start, counted = fence
            closing = _FENCE_CLOSE.fullmatch(body)
            if closing and closing.group(1)[0] == char and len(closing.group(1)) >= length:
                if counted:
                    spans.append((start, end, True))
                    unsure = False
                fence = None
                continue
            if counted:
                continue
        else:
            opening = _FENCE_OPEN.match(body) if finished else None
            if opening and not (opening.group(2)[0] == "`" and "`" in body[opening.end() :]):
                run = opening.group(2)
                counted = opening.group(1) == "" and run[0] == "`" and not html
                fence = (run[0], len(run), begin, counted)
                if counted:
                    unsure = False
                    continue
        if not body.strip():
            unsure = False
            continue
        if unsure:
            continue
        found = _line_spans(body)
        if partial and not finished and end == len(text) and body.endswith("`"):
            found = None  # the line goes on in text still to come: its last run may grow
        if found is None:
            unsure = True
            continue
        sure = not any("|" in body[a:b] for a, b in found)
        spans += [(begin + a, begin + b, sure) for a, b in found]
    if fence is not None and fence[3]:
        spans.append((fence[2], len(text), True))
    return spans


def _line_spans(line: str) -> list[tuple[int, int]] | None:
    """The code spans of one line, pairing each backtick run with the next run of the same
    length as CommonMark does; None when that can't be done for certain: a run left
    unpaired, a backslash that may escape one, or a backtick after an `<` that may open an
    HTML tag or autolink (whichever starts first wins)."""
    if "`" not in line:
        return [] if _opens_angle(line, 0) is None else None
    if "\\" in line:
        return None
    spans: list[tuple[int, int]] = []
    at = 0
    while (run := _BACKTICKS.search(line, at)) is not None:
        if _opens_angle(line, at, run.start()) is not None:
            return None
        closing = next(
            (r for r in _BACKTICKS.finditer(line, run.end()) if len(r.group()) == len(run.group())),
            None,
        )
        if closing is None:
            return None
        spans.append((run.start(), closing.end()))
        at = closing.end()
    return spans if _opens_angle(line, at) is None else None


def _opens_angle(line: str, begin: int, end: int | None = None) -> int | None:
    """Where in `line[begin:end]` an `<` opens something that may run on past it (a tag, an
    autolink), or None; `<` then a space, or a short token closed on the spot, opens
    nothing."""
    stop = len(line) if end is None else end
    at = line.find("<", begin, stop)
    while at >= 0:
        token = _SHORT_TOKEN.match(line, at)
        if token is None and at + 1 < len(line) and not line[at + 1].isspace():
            return at
        at = line.find("<", token.end() if token else at + 1, stop)
    return None


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


def escape_literal(text: str) -> str:
    """Text shown exactly as it is written, with no markup of its own (a tool's arguments):
    every `<`, `>` and `&` escaped, so no person, channel or link is formed, and nothing
    pings."""
    return neutralise_mentions(_escape_all(text))


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
