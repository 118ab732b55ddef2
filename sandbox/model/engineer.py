"""The demo engineer's words: its research request, its answers and its conversational replies."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sandbox.model.ask import Ask, clip, word_set
from sandbox.model.corpus import Reference
from sandbox.model.patterns import GENERIC, PATTERNS, Match, choose

DISCLAIMER = "_(offline demo model — set ANTHROPIC_API_KEY for real answers)_"
RISKS = (
    "**Risks.** This answer was not written by Claude: the offline demo model assembled it "
    "from a small library of backend patterns matched to your request, so check it before "
    "acting on it."
)
# How the research request quotes the request, so the demo researcher can read it back.
REQUEST_IN_CONTEXT = "The request: "

_REFERENCES: dict[str, Reference] = {
    ref.url: ref for pattern in (*PATTERNS, GENERIC) for ref in pattern.references
}
# A numbered source in the findings the engineer is shown: "[2] PostgreSQL: Indexes — https://…".
_SOURCE_LINE = re.compile(r"^\[(\d{1,3})\] (.+?) — (\S+)\s*$", re.M)
_MARKUP_TAG = re.compile(r"</?[a-z][a-z_]*(?:\s[^<>]*)?>")
_SCALE_WORDS = word_set("scale scaling grow grew grows growth traffic load 10x ten times peak")
_QUESTION_NOISE = word_set(
    """
    and how what why when which who should would could can does do did the a an to of in on for
    with is are be it its their our we you they this that there then also about
    """
)


@dataclass(frozen=True)
class CitedSource:
    number: int
    title: str
    url: str


@dataclass(frozen=True)
class Findings:
    """What the research tool returned to the engineer, read back."""

    text: str  # the findings' prose, without markup and the source list
    sources: tuple[CitedSource, ...]
    live: bool
    failed: bool

    @classmethod
    def read(cls, results: Sequence[tuple[str, bool]]) -> Findings | None:
        """From the turn's tool results, as (text, is_error); None when there were none."""
        if not results:
            return None
        joined = "\n".join(text for text, _ in results)
        sources = tuple(
            CitedSource(int(number), title.strip(), url)
            for number, title, url in _SOURCE_LINE.findall(joined)
        )
        prose = joined.split("\nSources:\n", 1)[0]
        prose = prose.split("The text inside <research_findings>", 1)[0]
        prose = _MARKUP_TAG.sub(" ", prose).replace(DISCLAIMER, " ")
        return cls(
            text=" ".join(prose.split()),
            sources=sources,
            live='live_sources="false"' not in joined and "[no live sources" not in joined,
            failed=all(is_error for _, is_error in results),
        )


def research_brief(found: Match) -> dict[str, Any]:
    """The engineer's `consult_researcher` input: the request's own objective, its context
    and the pattern's questions."""
    ask = found.ask
    context = f"{REQUEST_IN_CONTEXT}“{clip(ask.prose, 1_500)}”"
    named = _named(ask)
    if named:
        context += f"\nNamed in it: {named}."
    constraints = [
        f"The stack named in the request: {', '.join(ask.technologies)}."
        if ask.technologies
        else "No stack is named: assume PostgreSQL behind a Python service, and say where "
        "that matters.",
        "Prefer official documentation and well-known engineering sources.",
    ]
    missing = ask.missing()
    if missing:
        constraints.append(f"The work waits on {missing}: cover what can be built before it.")
    return {
        "objective": found.fill(found.pattern.research_objective),
        "context": context,
        "specific_questions": [found.fill(q) for q in found.pattern.research_questions],
        "constraints": constraints,
        "output_wanted": "Two or three proven approaches compared, with their failure modes, "
        "numbers where teams report them, and sources.",
    }


def answer(found: Match, *, findings: Findings | None, disclaim: bool) -> str:
    """A first answer to a backend request: the pattern's approach for the request's nouns."""
    pattern = found.pattern
    sections = [
        *([DISCLAIMER] if disclaim else []),
        f"> {found.ask.headline}",
        f"**{pattern.title}.** {found.fill(pattern.lead)}",
        "**Approach**\n"
        + "\n".join(f"{n}. {found.fill(step)}" for n, step in enumerate(pattern.approach, 1)),
    ]
    research = _research_section(findings)
    if research:
        sections.append(research)
    sections += [
        "**Trade-offs**\n" + "\n".join(f"- {found.fill(t)}" for t in pattern.tradeoffs),
        f"```{pattern.language}\n{found.code}\n```",
        _what_i_took(found.ask),
    ]
    status = _status_note(found)
    if status:
        sections.append(status)
    if disclaim:
        sections.append(RISKS)
    return "\n\n".join(sections)


def follow_up_answer(question: Ask, earlier: Match, *, disclaim: bool) -> str:
    """An answer to a later question in a thread: the new question's own pattern when it has
    one, else the part of the earlier design that answers it."""
    own = choose(question.words)
    if own is not None and own is not earlier.pattern:
        # A new kind of problem: answered on its own terms.
        return answer(Match(own, question, specific=True), findings=None, disclaim=disclaim)
    # More about the same design: the thread's nouns still apply ("and how do workers renew
    # their claim?" is about the same queue).
    combined = Ask(f"{question.text}\n\n{earlier.ask.text}")
    found = Match(earlier.pattern, combined, specific=earlier.specific)
    pattern = found.pattern
    wanted = {w for w in question.words if w not in _QUESTION_NOISE}
    if wanted & _SCALE_WORDS:
        points = [found.fill(pattern.at_scale)]
    else:
        candidates = [found.fill(text) for text in (*pattern.approach, *pattern.tradeoffs)]
        ranked = sorted(candidates, key=lambda text: -len(wanted & set(Ask(text).words)))
        points = [text for text in ranked[:2] if wanted & set(Ask(text).words)]
        points = points or [found.fill(pattern.at_scale)]
    sections = [
        *([DISCLAIMER] if disclaim else []),
        f"> {question.headline}",
        f"**Building on the design above ({pattern.title}).**\n"
        + "\n".join(f"- {point}" for point in points),
        "**Next step.** Tell me which part to work out in full — the code, the rollout or the "
        "tests — and I'll take it from there.",
    ]
    if disclaim:
        sections.append(RISKS)
    return "\n\n".join(sections)


def conversation_reply(ask: Ask, *, disclaim: bool) -> str:
    """A reply to a thank-you, a greeting or a question outside backend work."""
    if ask.is_social and re.match(r"(?i)(thanks|thank you|thx|ty|cheers)", ask.prose):
        text = "You're welcome! Mention me in this thread if anything else comes up."
    elif ask.is_social:
        text = (
            "Hi! I'm the team's backend engineer: mention me with a design, an API, a slow "
            "query, a queue or a migration and I'll work through it."
        )
    else:
        text = (
            f"> {ask.headline}\n\n"
            "That's outside what I can help with: I'm the team's backend engineer, so I'd only "
            "be guessing. Mention me with anything backend — an API, a database, a queue or a "
            "slow query — and I'll work through it."
        )
    return f"{DISCLAIMER}\n\n{text}" if disclaim else text


def _research_section(findings: Findings | None) -> str | None:
    if findings is None:
        return None
    if findings.failed:
        return (
            "**Research.** The research step failed, so this design was not validated against "
            "current sources."
        )
    unchecked = "" if findings.live else " (no live sources: not checked against current material)"
    if findings.sources:
        lines = []
        for source in findings.sources[:3]:
            reference = _REFERENCES.get(source.url)
            claim = clip(reference.snippet, 320) if reference else f"See {source.title}."
            lines.append(f"- {claim} [{source.number}]")
        return f"**What the research confirmed{unchecked}**\n" + "\n".join(lines)
    if findings.text:
        return f"**What the research returned{unchecked}.** {clip(findings.text, 400)}"
    return None


def _named(ask: Ask) -> str:
    """What the request names, e.g. "stack: MySQL and PostgreSQL; table `orders`"."""
    parts = []
    if ask.technologies:
        parts.append("stack: " + _and(ask.technologies))
    if ask.tables:
        tables = ask.tables[:3]
        parts.append(
            ("table " if len(tables) == 1 else "tables ") + _and([f"`{t}`" for t in tables])
        )
    if ask.columns:
        columns = ask.columns
        parts.append(
            ("column " if len(columns) == 1 else "columns ") + _and([f"`{c}`" for c in columns])
        )
    return "; ".join(parts)


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _what_i_took(ask: Ask) -> str:
    named = _named(ask)
    if named:
        return (
            f"**What I took from the request.** {named[:1].upper()}{named[1:]}. Tell me if any "
            "of that is wrong, or if the stack differs."
        )
    return (
        "**Assumptions.** The request names no stack, so this assumes PostgreSQL behind a "
        "Python service; tell me if yours differs."
    )


def _status_note(found: Match) -> str | None:
    missing = found.ask.missing()
    if missing:
        return (
            f"**Blocked on {missing}.** Everything before that can be built and tested now "
            "(against a sandbox or test mode where there is one); the last step waits for it, "
            "so I'm marking the task blocked."
        )
    if found.ask.asks_for_something_large:
        return (
            f"**Scope.** This is the plan; carrying it out is roughly {found.pattern.estimate} "
            "of work, so the task stays in progress."
        )
    return None


__all__ = [
    "DISCLAIMER",
    "Findings",
    "answer",
    "conversation_reply",
    "follow_up_answer",
    "research_brief",
]
