"""The researcher: answers the engineer's research request with web search and cited sources."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any, Protocol

import structlog
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from agents.config import AgentSettings
from agents.llm import ModelClient, PromptPrefix, TurnRef, UsageTotals, Wire
from agents.templates import fill, load_prompt, spoken_date, utc_today

log = structlog.get_logger(__name__)

# The newest server-tool versions in the installed SDK (anthropic 2.14).
WEB_SEARCH_TOOL = "web_search_20260318"
WEB_FETCH_TOOL = "web_fetch_20260318"


def _as_list(value: Any) -> Any:
    # Models now and then send one question as a bare string instead of a list of one.
    if isinstance(value, str):
        return [value] if value.strip() else []
    return value


TextList = Annotated[list[str], BeforeValidator(_as_list)]

# What the engineer reads of one research request: every token of it is billed again on each
# later call of the turn, and a follow-up reads it back with the rest of the thread.
FINDINGS_TO_ENGINEER = 6_000  # characters, about 1,500 tokens
SOURCES_TO_ENGINEER = 10


def trim_findings(findings: str, limit: int = FINDINGS_TO_ENGINEER) -> str:
    """`findings` cut at a paragraph (or line) end within `limit` characters, said so."""
    if len(findings) <= limit:
        return findings
    cut = findings[:limit]
    end = max(cut.rfind("\n\n"), cut.rfind("\n"))
    kept = (cut[:end] if end > limit // 2 else cut).rstrip()
    return kept + f"\n\n[Trimmed: the first {len(kept):,} of {len(findings):,} characters.]"


class ResearchBrief(BaseModel):
    """The engineer's research request: the input of its `consult_researcher` tool."""

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    objective: str = Field(min_length=1, max_length=2_000)
    context: str = Field(default="", max_length=8_000)
    specific_questions: TextList = Field(default_factory=list, max_length=12)
    constraints: TextList = Field(default_factory=list, max_length=12)
    output_wanted: str = Field(default="", max_length=2_000)


@dataclass(frozen=True)
class Source:
    url: str
    title: str
    cited_text: str  # empty when the page was consulted but no passage was cited

    def as_dict(self) -> dict[str, str]:
        return {"url": self.url, "title": self.title, "cited_text": self.cited_text}


@dataclass(frozen=True)
class Research:
    """What the researcher found for one request."""

    brief: ResearchBrief
    findings: str
    sources: tuple[Source, ...]
    live_sources: bool
    web_searches: int
    web_fetches: int
    usage: UsageTotals = field(default_factory=UsageTotals)

    def as_tool_result(self, first: int = 1) -> str:
        """The findings as the engineer reads them: fenced and labelled as untrusted data, the
        sources numbered from `first` for the answer to cite, and the findings trimmed to
        FINDINGS_TO_ENGINEER characters (the full text is stored with the task)."""
        listed = "\n".join(
            f"[{n}] {s.title or s.url} — {s.url}"
            for n, s in enumerate(self.sources[:SOURCES_TO_ENGINEER], first)
        )
        findings = trim_findings(self.findings)
        if not self.live_sources:
            findings = "[no live sources: from the researcher's own knowledge only]\n\n" + findings
        return fill(
            "research_result_template",
            live_sources="true" if self.live_sources else "false",
            web_searches=str(self.web_searches),
            # A page must not be able to close the fence and speak outside it.
            findings=_defuse(findings),
            sources=_defuse(listed) or "(none)",
        )


class ResearchSink(Protocol):
    """Where each finished research request is kept (`agents.ledger.StorageLedger`)."""

    async def save_research(self, research: Research, ref: TurnRef) -> None: ...


def researcher_prefix(settings: AgentSettings) -> PromptPrefix:
    """System prompt and web tools; identical for every request, so it caches across tasks."""
    tools: tuple[Wire, ...] = ()
    if settings.research_web:
        tools = (
            {
                "type": WEB_SEARCH_TOOL,
                "name": "web_search",
                "max_uses": settings.web_search_max_uses,
            },
            {
                "type": WEB_FETCH_TOOL,
                "name": "web_fetch",
                "max_uses": settings.web_fetch_max_uses,
                "max_content_tokens": settings.web_fetch_max_content_tokens,
                "citations": {"enabled": True},
            },
        )
    return PromptPrefix(system=load_prompt("researcher"), tools=tools, ttl="5m")


def research_request_text(brief: ResearchBrief, *, web: bool, today: date | None = None) -> str:
    return fill(
        "research_request_template",
        today=spoken_date(today or utc_today()),
        objective=brief.objective,
        context=brief.context or "(none given)",
        questions=_bullets(brief.specific_questions),
        constraints=_bullets(brief.constraints),
        output_wanted=brief.output_wanted or "A short, sourced answer to the objective.",
        web_note=""
        if web
        else "Web access is off for this request: answer from what you know, say so at the "
        "top, and mark what needs checking.",
    ).strip()


async def consult_researcher(
    *,
    model: ModelClient,
    settings: AgentSettings,
    brief: ResearchBrief,
    ref: TurnRef,
    sink: ResearchSink | None = None,
    today: date | None = None,
) -> Research:
    """Run one research request; raises `AgentError` subclasses when the model fails."""
    text = research_request_text(brief, web=settings.research_web, today=today)
    completion = await model.complete(
        agent="researcher",
        model=settings.researcher_model,
        prefix=researcher_prefix(settings),
        messages=[{"role": "user", "content": [{"type": "text", "text": text}]}],
        max_tokens=settings.researcher_max_tokens,
        ref=ref,
        max_pause_continuations=settings.max_pause_continuations,
    )
    searches = sum(call.counts.web_searches for call in completion.calls)
    fetches = sum(call.counts.web_fetches for call in completion.calls)
    findings = completion.text.strip()
    if completion.truncated:
        findings += "\n\n[The findings were cut off at the researcher's output limit.]"
    research = Research(
        brief=brief,
        findings=findings or "(The researcher returned no findings.)",
        sources=collect_sources(completion.content),
        live_sources=settings.research_web and (searches + fetches) > 0,
        web_searches=searches,
        web_fetches=fetches,
        usage=completion.usage,
    )
    if sink is not None:
        try:
            await sink.save_research(research, ref)
        except Exception:
            # The engineer can still use the findings; the row is what we lose.
            log.exception("researcher.save_failed", objective=brief.objective[:80])
    return research


_CITE_MARK = re.compile(r"\[(\d{1,3}(?:\s*[,–-]\s*\d{1,3})*)\]")


def cited_sources(answer: str, research: Sequence[Research]) -> list[tuple[int, Source]]:
    """The sources the answer cites, with the numbers the engineer was shown: by their number
    ("[2]", "[1, 3]", "[2-4]"), their address, or their title. Sources the researcher used but
    the answer never refers to are left out."""
    numbered: list[tuple[int, Source]] = []
    first = 1
    for request in research:
        shown = request.sources[:SOURCES_TO_ENGINEER]
        numbered.extend(enumerate(shown, first))
        first += len(request.sources)
    marks: set[int] = set()
    for group in _CITE_MARK.findall(answer):
        for part in re.split(r"\s*,\s*", group):
            ends = [int(n) for n in re.split(r"\s*[–-]\s*", part) if n]
            if len(ends) == 2 and 0 < ends[1] - ends[0] <= 20:
                marks.update(range(ends[0], ends[1] + 1))
            else:
                marks.update(ends)
    lowered = answer.lower()
    cited: list[tuple[int, Source]] = []
    seen: set[str] = set()
    for number, source in numbered:
        title = source.title.strip().lower()
        if (
            number in marks
            or (source.url and source.url in answer)
            or (len(title) >= 16 and title in lowered)
        ) and source.url not in seen:
            seen.add(source.url)
            cited.append((number, source))
    return cited


def collect_sources(content: Sequence[Wire]) -> tuple[Source, ...]:
    """The sources behind the findings: every cited passage, in order, without repeats.

    When nothing was cited, the pages the searches returned, so the reader still sees what
    the findings rest on.
    """
    fetched = [
        (str(result.get("url", "")), _fetched_title(result))
        for block in content
        if block.get("type") == "web_fetch_tool_result"
        and isinstance(result := block.get("content"), dict)
        and result.get("type") == "web_fetch_result"
    ]
    cited: list[Source] = []
    for block in content:
        if block.get("type") != "text":
            continue
        for citation in block.get("citations") or []:
            source = _citation_source(citation, fetched)
            if source is not None and source not in cited:
                cited.append(source)
    if cited:
        return tuple(cited)
    consulted: dict[str, Source] = {}
    for block in content:
        results = block.get("content") if block.get("type") == "web_search_tool_result" else None
        for result in results if isinstance(results, list) else []:
            url = str(result.get("url", ""))
            if url and url not in consulted:
                consulted[url] = Source(url=url, title=str(result.get("title", "")), cited_text="")
    for url, title in fetched:
        if url and url not in consulted:
            consulted[url] = Source(url=url, title=title, cited_text="")
    return tuple(consulted.values())


def _citation_source(citation: Wire, fetched: list[tuple[str, str]]) -> Source | None:
    cited_text = str(citation.get("cited_text", ""))
    if citation.get("type") == "web_search_result_location":
        return Source(
            url=str(citation.get("url", "")),
            title=str(citation.get("title") or ""),
            cited_text=cited_text,
        )
    # Citations into fetched pages point at the document by its position among the fetches.
    index = citation.get("document_index")
    if isinstance(index, int) and 0 <= index < len(fetched):
        url, title = fetched[index]
        return Source(
            url=url, title=str(citation.get("document_title") or title), cited_text=cited_text
        )
    return None


def _fetched_title(result: Wire) -> str:
    document = result.get("content")
    return str(document.get("title") or "") if isinstance(document, dict) else ""


def _bullets(items: Sequence[str]) -> str:
    return "\n".join(f"- {item}" for item in items) if items else "(none given)"


def _defuse(text: str) -> str:
    return text.replace("</research_findings", "&lt;/research_findings").replace(
        "<research_findings", "&lt;research_findings"
    )


__all__ = [
    "Research",
    "ResearchBrief",
    "ResearchSink",
    "Source",
    "cited_sources",
    "collect_sources",
    "consult_researcher",
    "researcher_prefix",
]
