"""Model text never reaches Slack as a masked link: a prompt injection in a research result
must not be able to put a phishing URL under innocent words. Every `[text](url)` and
`<url|text>` is shown as `text (url)`, whole or streamed a word at a time; code stays as
written."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.mrkdwn import (
    neutralise_mentions,
    safe_model_markdown,
    unfinished_link_start,
    unmask_links,
)
from bot.slack.streaming import AnswerStream
from sandbox.slack import FakeSlack

JOINER = "\u2060"
MARKDOWN_LINK = re.compile(r"\[[^\]]+\]\([^)]+\)")
SLACK_LINK = re.compile(r"<http[^|>]*\|")
# Where a `<` went out in an earlier piece, only a closing `>` could still make it a link.
FINISHED_SLACK_LINK = re.compile(r"<http[^<>|]*\|[^<>]*>")
FENCED = re.compile(r"^```[^`\n]*\n.*?^```[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]+`")


def masked_links(shown: str) -> list[str]:
    """Masked links in what Slack would render, leaving out code (shown literally)."""
    prose = INLINE_CODE.sub("", FENCED.sub("", shown))
    return MARKDOWN_LINK.findall(prose) + SLACK_LINK.findall(shown)


# --- unmask_links -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Read [the guide](https://evil.example/p).", "Read the guide (https://evil.example/p)."),
        ("Read <https://evil.example/q|the docs>.", "Read the docs (https://evil.example/q)."),
        ("[https://x.example/a](https://x.example/a)", "https://x.example/a"),
        ("[x.example/a](https://x.example/a)", "https://x.example/a"),
        ("<https://x.example/a|x.example/a>", "https://x.example/a"),
        ("<https://x.example/a>", "https://x.example/a"),
        (
            "[https://bank.example](https://evil.example)",
            "https://bank.example (https://evil.example)",
        ),
        ("<mailto:a@b.example|a@b.example>", "a@b.example"),
        ("<mailto:a@b.example>", "a@b.example"),
        ("[a@b.example](mailto:a@b.example)", "a@b.example"),
        ("<mailto:x@evil.example|boss@corp.example>", "boss@corp.example (mailto:x@evil.example)"),
        ('[t](https://x.example/p "A title")', "t (https://x.example/p)"),
        ("[t](<https://x.example/a b>)", "t (https://x.example/a b)"),
        ("[wiki](https://w.example/Foo_(bar))", "wiki (https://w.example/Foo_(bar))"),
        ("[click\nhere](https://evil.example)", "click\nhere (https://evil.example)"),
        ("[](https://evil.example)", "https://evil.example"),
        ("[a **b**](https://x.example)", "a **b** (https://x.example)"),
    ],
)
def test_links_show_their_urls(text: str, shown: str) -> None:
    assert unmask_links(text) == shown


def test_several_links_in_one_text() -> None:
    text = "See [one](https://a.example), <https://b.example|two> and [three](https://c.example)."
    assert unmask_links(text) == (
        "See one (https://a.example), two (https://b.example) and three (https://c.example)."
    )


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "[a [b](https://b.example) c](https://c.example)",
            "a b (https://b.example) c (https://c.example)",
        ),
        (
            "[[a](https://b.example)](https://c.example)",
            "a (https://b.example) (https://c.example)",
        ),
        ("[<https://b.example|b>](https://c.example)", "b (https://b.example) (https://c.example)"),
        ("<https://c.example|[a](https://b.example)>", "a (https://b.example) (https://c.example)"),
    ],
)
def test_nested_links_unwrap_all_the_way(text: str, shown: str) -> None:
    assert unmask_links(text) == shown


def test_bare_urls_mentions_and_plain_brackets_stay() -> None:
    text = (
        "Go to https://x.example/a?b=(c) now; ask <@U0ALICE> in <#C0ENG|engineering>; "
        "a < b | c > d; [x] done; f(a)[0]; <T>"
    )
    assert unmask_links(text) == text


def test_code_is_shown_as_written() -> None:
    text = (
        "Write `[label](https://x.example)` in markdown,\n"
        "or `<https://x.example|label>` in Slack's own syntax:\n"
        "```markdown\n[label](https://x.example)\n<https://x.example|label>\n```\n"
        "and then [this](https://y.example) is a link again."
    )
    assert unmask_links(text) == text.replace(
        "[this](https://y.example)", "this (https://y.example)"
    )


def test_code_that_a_table_could_split_is_only_defused_invisibly() -> None:
    # Were this line a table row, its cells would split the span at the `|` and the link
    # would be live; shown as written either way, with a word joiner breaking the link.
    text = "`a | [x](https://evil.example)` b"
    assert unmask_links(text) == text.replace("](", f"]{JOINER}(")


def test_code_beside_tags_and_mentions_is_shown_as_written() -> None:
    text = "Use `Vec<T>` with <@U0ALICE>, then `[a](https://x.example)`"
    assert unmask_links(text) == text


def test_a_piece_ending_in_a_backtick_is_not_taken_for_code() -> None:
    # The next piece may make the run longer (``` instead of `), and the span then ends
    # elsewhere: in a stream, code that ends a piece is not trusted to be code.
    text = "see `[a](https://evil.example)`"
    assert unmask_links(text) == text
    assert unmask_links(text, partial=True) == "see `a (https://evil.example)`"


def test_an_unclosed_fence_keeps_its_code_to_the_end() -> None:
    text = "Start\n```\n[a](https://x.example)\n"
    assert unmask_links(text) == text


@pytest.mark.parametrize(
    "text",
    [
        # A lone backtick is no code span: the link after it is live in Slack.
        "a ` b [x](https://evil.example)",
        # Backticks paired across lines, but a heading ends its line: no span in CommonMark.
        "# a ` [x](https://evil.example)\nb `",
        # Not a fence: a backtick in the info string makes this an inline code span.
        "```a```\n[x](https://evil.example)\n",
        # The fence was closed (a longer closing line will do) before the link.
        "```\ncode\n`````\n[x](https://evil.example)\n",
        # An escaped backtick opens nothing.
        "\\`[x](https://evil.example)`",
    ],
)
def test_what_only_looks_like_code_is_made_safe(text: str) -> None:
    assert "x (https://evil.example)" in unmask_links(text)


@pytest.mark.parametrize(
    "text",
    [
        # An indented fence (which a list item could hold) closed by a line at column 0.
        "   ```\n```\n[x](https://evil.example)\n",
        # Inside a `~~~` fence a ``` line is only text, and `~~~` closes it.
        "~~~\n```\n~~~\n[x](https://evil.example)\n",
        # A ``` line inside an HTML block is no fence.
        "<!--\n```\n-->\n[x](https://evil.example)\n",
        # A fence of four backticks isn't closed by three.
        "````\n```\n```\n````\n[x](https://evil.example)\n",
    ],
)
def test_fences_are_read_as_commonmark_reads_them(text: str) -> None:
    assert "x (https://evil.example)" in unmask_links(text)


def test_leftover_link_syntax_is_defused_invisibly() -> None:
    # Half a link (the other half went in another piece) and an unknown reference.
    assert unmask_links("guide](https://evil.example) ") == f"guide]{JOINER}(https://evil.example) "
    assert unmask_links("[1]: https://evil.example") == f"[1]{JOINER}: https://evil.example"
    assert unmask_links("[a](not a link)") == f"[a]{JOINER}(not a link)"
    # An unfinished <url|… loses its `<`, so the `>` of a later piece can't complete it.
    assert unmask_links("see <https://evil.example|the docs") == "see https://evil.example|the docs"


def test_context_decides_what_is_code_and_is_not_returned() -> None:
    link = "[x](https://evil.example) "
    assert unmask_links(link, context="```\n") == link
    assert unmask_links(link, context="```\ncode\n```\n") == "x (https://evil.example) "
    assert (
        unmask_links("x](https://evil.example)", context="[") == f"x]{JOINER}(https://evil.example)"
    )
    assert (
        unmask_links("(https://evil.example)", context="[x]") == f"{JOINER}(https://evil.example)"
    )


def test_a_link_finished_by_a_later_piece_is_left_unfinished() -> None:
    # The `<` went out with the piece before (its scheme not yet written): the `>` is dropped.
    shown = safe_model_markdown("ps://evil.example|the docs> now", context="see <htt", partial=True)
    assert shown == "ps://evil.example|the docs now"


def test_taking_out_a_mention_does_not_finish_a_link() -> None:
    for context, text in [
        ("", "<https://evil.example|a <!here> b>"),
        ("<htt", "ps://e.example|<!here>>"),
    ]:
        shown = context + safe_model_markdown(text, context=context, partial=True)
        assert not FINISHED_SLACK_LINK.search(shown), shown
        assert "<!here>" not in shown


def test_pathological_nesting_is_still_defused() -> None:
    text = "[" * 40 + "a" + "](https://evil.example)" * 40 + " <https://evil.example|x>"
    shown = safe_model_markdown(text)
    assert not MARKDOWN_LINK.search(shown) and not SLACK_LINK.search(shown)


def test_special_tokens_with_a_url_show_it() -> None:
    shown = safe_model_markdown("<!date^1392734382^{date}^https://evil.example|today>")
    assert shown == "today (https://evil.example)"


def test_safe_model_markdown_also_neutralises_mentions() -> None:
    shown = safe_model_markdown("<!channel> [@here](https://evil.example) <!subteam^S1|@devs>")
    assert shown == "@\u2060channel @\u2060here (https://evil.example) @\u2060devs"
    # neutralise_mentions itself is unchanged: links are not its business.
    assert neutralise_mentions("[a](https://b.example)") == "[a](https://b.example)"


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_is_handled(text: str) -> None:
    assert isinstance(safe_model_markdown(text), str)
    assert isinstance(unmask_links(text[1:], context=text[:1]), str)
    unfinished_link_start(text)


# --- properties: no masked link survives ----------------------------------------------------

URLS = ["https://evil.example/x", "http://a.example", "mailto:a@b.example", "www.c.example"]
link_text = st.lists(
    st.one_of(
        st.sampled_from(["click", "here", "the docs", " ", "  ", "\n", "@here", "!", ":"]),
        st.sampled_from(["[", "]", "(", ")", "<", ">", "|", "]("]),
        st.sampled_from(URLS),
    ),
    max_size=40,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(link_text)
def test_no_masked_link_survives(text: str) -> None:
    shown = safe_model_markdown(text)
    assert not MARKDOWN_LINK.search(shown), shown
    assert not SLACK_LINK.search(shown), shown


@settings(max_examples=300, deadline=None)
@given(link_text, st.lists(st.integers(min_value=0, max_value=200), max_size=6))
def test_no_masked_link_survives_in_pieces(text: str, cuts: list[int]) -> None:
    """A stream makes each piece safe after the ones before it; Slack shows them joined."""
    shown = ""
    done = 0
    for cut in sorted({min(c, len(text)) for c in cuts} | {len(text)}):
        shown += safe_model_markdown(text[done:cut], context=shown, partial=True)
        done = cut
    assert not MARKDOWN_LINK.search(shown), shown
    assert not FINISHED_SLACK_LINK.search(shown), shown


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="[]<>")))
def test_text_without_link_syntax_is_unchanged(text: str) -> None:
    assert unmask_links(text) == text


# --- holding back an unfinished link --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ("See [the ", 4),
        ("See [the guide]", 4),
        ("See [the guide](https://evil.example/p", 4),
        ("See <https://evil.example/q|the ", 4),
        ("See <", 4),
        ("x [a [b](https://b.example) c ", 2),
    ],
)
def test_an_unfinished_link_is_found(text: str, start: int) -> None:
    assert unfinished_link_start(text) == start


@pytest.mark.parametrize(
    "text",
    [
        "See [the guide](https://evil.example/p) and ",
        "a < b and [x] done ",
        "[an unclosed bracket\n\nin an earlier paragraph ",
        "`[in code` ",
        "See [" + "word " * 200,  # older than the reach: no link
    ],
)
def test_finished_or_no_links_hold_nothing_back(text: str) -> None:
    assert unfinished_link_start(text, reach=600) is None


def test_a_late_bracket_closing_an_old_one_is_held_from_there() -> None:
    text = "[" + "word " * 200 + "end](https://evil"
    assert unfinished_link_start(text, reach=600) == text.index("](")


# --- AnswerStream against the fake Slack, over HTTP -----------------------------------------

CHANNEL = "C0ENG"
INJECTED = "See [the guide](https://evil.example/p) and <https://evil.example/q|the docs> now."


def markdown_shown(fake_slack: FakeSlack, ts: str) -> str:
    """What Slack renders of a message: its markdown block if it has one, else its text."""
    message = fake_slack.workspace.message(CHANNEL, ts)
    assert message is not None
    blocks = [b for b in message.blocks or [] if b.get("type") == "markdown"]
    return str(blocks[0]["text"]) if blocks else message.text


async def stream_of(fake_slack: FakeSlack, **options: object) -> AnswerStream:
    parent = await fake_slack.post_as_user("U0ALICE", CHANNEL, "what do the docs say?")
    return AnswerStream(
        client=AsyncWebClient(token="xoxb-1-2-e2e", base_url=fake_slack.api_url),
        channel=CHANNEL,
        thread_ts=parent.ts,
        team_id=fake_slack.workspace.team.id,
        user_id="U0ALICE",
        flush_interval=0.0,  # every write flushes what it can
        update_interval=0.0,
        **options,  # type: ignore[arg-type]
    )


def word_deltas(text: str) -> list[str]:
    """`text` as a model might stream it: split at every space."""
    return re.findall(r"[^ ]*(?: |$)", text)[:-1]


@pytest.mark.reliability(
    "Masked links in model output, split across streamed chunks", kind="attack"
)
@pytest.mark.parametrize("streaming", [True, False], ids=["streamed", "posted-and-updated"])
async def test_a_streamed_answer_shows_every_link_as_its_url(
    fake_slack: FakeSlack, streaming: bool
) -> None:
    if not streaming:
        fake_slack.inject("chat.startStream", error="unknown_method", times=None)
    stream = await stream_of(fake_slack)
    deltas = word_deltas(INJECTED)
    assert "".join(deltas) == INJECTED and len(deltas) == 7
    for delta in deltas:
        await stream.write(delta)
    [ts] = await stream.finish()

    shown = markdown_shown(fake_slack, ts)
    assert "the guide (https://evil.example/p)" in shown
    assert "the docs (https://evil.example/q)" in shown
    assert masked_links(shown) == []
    assert JOINER not in shown  # each link went out whole, not defused in halves
    assert stream.text == INJECTED  # what the model wrote is kept as written
    if streaming:
        assert len(fake_slack.calls_to("chat.appendStream")) >= 3  # it did stream in pieces


async def test_a_long_streamed_answer_with_links_and_code_rolls_over_safely(
    fake_slack: FakeSlack,
) -> None:
    paragraphs = [
        f"Step {n}: read [the part {n} guide](https://evil.example/{n}) and "
        f"<https://evil.example/q{n}|the part {n} docs> before you start."
        for n in range(12)
    ]
    code = "```markdown\n[kept as written](https://x.example)\n```"
    answer = "\n\n".join([*paragraphs[:6], code, *paragraphs[6:]])
    stream = await stream_of(fake_slack, part_limit=400)
    for delta in word_deltas(answer):
        await stream.write(delta)
    parts = await stream.finish()

    assert len(parts) >= 3
    shown = [markdown_shown(fake_slack, ts) for ts in parts]
    for text in shown:
        assert masked_links(text) == [], text
        assert len(text) <= 400
    joined = "\n".join(shown)
    for n in range(12):
        assert f"the part {n} guide (https://evil.example/{n})" in joined
        assert f"the part {n} docs (https://evil.example/q{n})" in joined
    assert code in joined
