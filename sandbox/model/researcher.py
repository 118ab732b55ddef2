"""The demo researcher: a search for the request's key terms, answered from the local library."""

from __future__ import annotations

import re

from sandbox.model.ask import Ask
from sandbox.model.engineer import DISCLAIMER, REQUEST_IN_CONTEXT
from sandbox.model.patterns import Match, match
from sandbox.model.script import Reply, text_block, web_search_blocks, web_search_citation

_QUOTED_REQUEST = re.compile(re.escape(REQUEST_IN_CONTEXT) + r"“(.*)”$", re.M)
_OBJECTIVE = re.compile(r"^Objective:\s*\n(.+?)(?:\n\s*\n|\Z)", re.M | re.S)
_LIBRARY_NOTE = (
    "These sources come from the offline demo model's small local library of public "
    "documentation, matched to the question's terms; treat them as pointers, not as a "
    "researched answer."
)


def is_research_request(text: str) -> bool:
    """The researcher's request, as the research request template lays it out."""
    return bool(_OBJECTIVE.search(text)) and "\nOutput wanted:" in text


def topic(text: str) -> Match:
    """What to research: the request the engineer quoted, else the brief's objective, else
    the whole text (a question sent straight to the model)."""
    quoted = _QUOTED_REQUEST.search(text)
    if quoted:
        return match(Ask(quoted.group(1)))
    objective = _OBJECTIVE.search(text)
    return match(Ask(objective.group(1) if objective else text))


def search_query(found: Match) -> str:
    """The request's key terms: a few words, as a person would type them into a search box."""
    return " ".join(found.ask.key_terms()) or found.pattern.title.lower()


def web_search_reply(text: str) -> Reply:
    """One web search, its results (the pattern's references) and findings citing them."""
    found = topic(text)
    query = search_query(found)
    references = found.pattern.references
    content = [text_block(f"{DISCLAIMER}\n\nI searched the web for “{query}”.")]
    content.extend(
        web_search_blocks(query, [(r.url, r.title, r.snippet, r.page_age) for r in references])
    )
    for index, ref in enumerate(references):
        content.append(
            text_block(
                f"{ref.title}: {ref.snippet}",
                [web_search_citation(ref.url, ref.title, ref.snippet, index)],
            )
        )
    content.append(text_block(f"{_answer(found)}\n\n{_LIBRARY_NOTE}"))
    return Reply(content, "end_turn", web_search_requests=1)


def findings_without_web(text: str) -> str:
    """Findings when web access is off: said at the top, and nothing cited."""
    found = topic(text)
    known = "\n".join(f"- {r.title} — {r.url}" for r in found.pattern.references)
    return (
        f"{DISCLAIMER}\n\nNothing here was checked against live sources: web access is off "
        f"for this request.\n\n{_answer(found)}\n\nWhere to check it:\n{known}"
    )


def _answer(found: Match) -> str:
    return (
        f"**Answer.** For {found.slots['subject']}, the sources agree that {found.pattern.finding}."
    )
