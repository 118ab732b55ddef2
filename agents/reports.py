"""The completion report: its schema and rules, the structured call, and its text layouts."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

import pydantic
import structlog
from anthropic import transform_schema
from pydantic import BaseModel, BeforeValidator, Field, ValidationInfo, field_validator

from agents.config import AgentSettings
from agents.errors import ReportUnavailable
from agents.llm import Completion, ModelClient, PromptPrefix, TurnRef, UsageTotals, Wire
from agents.researcher import Research
from agents.templates import fill, load_prompt

log = structlog.get_logger(__name__)

RED_FLAG_BELOW = 6


class ReportStatus(StrEnum):
    COMPLETED = "COMPLETED"
    IN_PROGRESS = "IN_PROGRESS"
    BLOCKED = "BLOCKED"


STATUS_EMOJI: dict[ReportStatus, str] = {
    ReportStatus.COMPLETED: "✅",
    ReportStatus.IN_PROGRESS: "⏳",
    ReportStatus.BLOCKED: "❌",
}
STATUS_WORDS: dict[ReportStatus, str] = {
    ReportStatus.COMPLETED: "COMPLETED",
    ReportStatus.IN_PROGRESS: "IN PROGRESS",
    ReportStatus.BLOCKED: "BLOCKED",
}

# Field name -> the label people read, in the order of the DESIGN §3 layouts. Two axes are in
# both views (Implementation Feasibility, Risk Assessment): the report states each once, in
# `self_assessment`, so the thread and the PM card can never disagree on them.
PM_AXES: dict[str, str] = {
    "system_architecture_design": "System Architecture & Design",
    "implementation_feasibility": "Implementation Feasibility",
    "scalability_performance": "Scalability & Performance",
    "risk_assessment": "Risk Assessment",
    "integration_reliability": "Integration & Reliability",
}
SELF_AXES: dict[str, str] = {
    "probability_of_success": "Probability of Success",
    "implementation_feasibility": "Implementation Feasibility",
    "quality_completeness": "Quality & Completeness",
    "risk_assessment": "Risk Assessment",
    "alignment_value": "Alignment & Value",
}
SHARED_AXES = frozenset(PM_AXES) & frozenset(SELF_AXES)


class ScoreAxis(StrEnum):
    """Which score a red flag is about: one of the eight distinct axes."""

    SYSTEM_ARCHITECTURE_DESIGN = "system_architecture_design"
    IMPLEMENTATION_FEASIBILITY = "implementation_feasibility"
    SCALABILITY_PERFORMANCE = "scalability_performance"
    RISK_ASSESSMENT = "risk_assessment"
    INTEGRATION_RELIABILITY = "integration_reliability"
    PROBABILITY_OF_SUCCESS = "probability_of_success"
    QUALITY_COMPLETENESS = "quality_completeness"
    ALIGNMENT_VALUE = "alignment_value"

    @property
    def label(self) -> str:
        return PM_AXES.get(self.value) or SELF_AXES[self.value]


class TurnKind(StrEnum):
    """Whether a turn was backend work worth a report, or a conversational reply."""

    BACKEND_WORK = "backend_work"
    CONVERSATION = "conversation"


def _lenient_gaps(info: ValidationInfo) -> list[str] | None:
    """In lenient mode (the last attempt), rule breaches are collected here instead of raised."""
    context = info.context
    if isinstance(context, dict) and isinstance(context.get("gaps"), list):
        gaps: list[str] = context["gaps"]
        return gaps
    return None


def _score_in_range(value: Any, info: ValidationInfo) -> Any:
    gaps = _lenient_gaps(info)
    if gaps is not None and isinstance(value, int) and not 1 <= value <= 9:
        shown = min(9, max(1, value))
        gaps.append(f"{info.field_name} was {value}, outside 1-9; shown as {shown}")
        return shown
    return value


Score = Annotated[int, Field(ge=1, le=9), BeforeValidator(_score_in_range)]


class PMScores(BaseModel):
    """The PM-only scores, 1 (very poor) to 9 (excellent). The PM view's Implementation
    Feasibility and Risk Assessment are the self-assessment's (reports stored before that
    carried their own copies; those are ignored on reading)."""

    system_architecture_design: Score
    scalability_performance: Score
    integration_reliability: Score


class SelfAssessment(BaseModel):
    """The engineer's own confidence, 1 to 9; risk_assessment is inverse (9 = low risk), in
    both views."""

    probability_of_success: Score
    implementation_feasibility: Score
    quality_completeness: Score
    risk_assessment: Score
    alignment_value: Score


class RedFlag(BaseModel):
    """Why a score is below 6, and what would raise it."""

    axis: ScoreAxis
    explanation: str = Field(min_length=1)
    mitigation: str = Field(min_length=1)

    @field_validator("axis", mode="before")
    @classmethod
    def _bare_axis(cls, value: Any) -> Any:
        # Reports stored before the axes were unified named them "pm_scores.x".
        return value.rpartition(".")[2] if isinstance(value, str) else value


class Deliverable(BaseModel):
    kind: Literal["system", "api_integration", "data_storage"]
    description: str = Field(min_length=1)


class Handoff(BaseModel):
    kind: Literal["needed_from_others", "infrastructure_blocker", "integration_endpoint_ready"]
    description: str = Field(min_length=1)
    # Optional, so reports stored before owners were asked for still read.
    owner: str | None = Field(
        default=None,
        description=(
            "The Slack mention of the person or user group who must act, e.g. <@U123> or "
            "<!subteam^S123>, when the thread makes it clear; null when it doesn't."
        ),
    )


# A person (<@U123>, <@W123|name>) or a user group (<!subteam^S123>, <!subteam^S123|@name>).
_USER_MENTION = re.compile(r"<@([UW][A-Z0-9]{2,30})(?:\|[^>]*)?>")
_GROUP_MENTION = re.compile(r"<!subteam\^(S[A-Z0-9]{2,30})(?:\|[^>]*)?>")


def handoff_owner(owner: str | None) -> tuple[str, str | None]:
    """(owner kind, Slack id) of a handoff's owner mention: ("user", "U123"), ("group",
    "S123"), or ("unassigned", None) for anything else, which is never guessed at."""
    text = (owner or "").strip()
    if found := _USER_MENTION.fullmatch(text):
        return "user", found.group(1)
    if found := _GROUP_MENTION.fullmatch(text):
        return "group", found.group(1)
    return "unassigned", None


class CompletionReport(BaseModel):
    """The report of one turn (DESIGN §3), validated: scores 1-9, a red flag for every score
    below 6, and an estimated time whenever the status is IN_PROGRESS."""

    turn_kind: TurnKind = Field(
        description="backend_work: worth reporting to the PM; conversation: a reply that is not."
    )
    task: str = Field(min_length=1, description="The request in one line.")
    status: ReportStatus
    pm_scores: PMScores
    self_assessment: SelfAssessment
    red_flags: list[RedFlag]
    confidence_notes: str
    key_deliverables: list[Deliverable]
    dependencies_handoffs: list[Handoff]
    estimated_time: str | None = Field(
        default=None, description="Remaining effort; required when status is IN_PROGRESS."
    )

    @pydantic.model_validator(mode="before")
    @classmethod
    def _stored_before_turn_kinds(cls, data: Any) -> Any:
        # Every report stored before turns had a kind was a report of backend work.
        if isinstance(data, dict) and "turn_kind" not in data:
            return {"turn_kind": TurnKind.BACKEND_WORK, **data}
        return data

    @field_validator("task")
    @classmethod
    def _one_line(cls, value: str) -> str:
        line = " ".join(value.split())
        return line if len(line) <= 200 else line[:199].rstrip() + "…"

    @pydantic.model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> Self:
        problems: list[str] = []
        for axis, score in self.missing_red_flags():
            problems.append(f"{axis.value} is {score}/9 but has no red flag")
        if self.status is ReportStatus.IN_PROGRESS and not (self.estimated_time or "").strip():
            problems.append("estimated_time is required when status is IN_PROGRESS")
        if not problems:
            return self
        gaps = _lenient_gaps(info)
        if gaps is None:
            raise ValueError(
                "; ".join(problems)
                + ". Add one red flag per score below 6 (naming its axis, with an explanation "
                "and a mitigation), and give estimated_time for IN_PROGRESS work."
            )
        gaps.extend(problems)
        return self

    @property
    def reportable(self) -> bool:
        return self.turn_kind is TurnKind.BACKEND_WORK

    def score(self, axis: str) -> int:
        holder = self.self_assessment if axis in SELF_AXES else self.pm_scores
        value: int = getattr(holder, axis)
        return value

    def scores(self) -> list[tuple[ScoreAxis, int]]:
        """Every distinct axis once, the PM view's first."""
        axes = dict.fromkeys([*PM_AXES, *SELF_AXES])
        return [(ScoreAxis(axis), self.score(axis)) for axis in axes]

    def pm_view(self) -> list[tuple[str, int]]:
        return [(label, self.score(axis)) for axis, label in PM_AXES.items()]

    def self_view(self) -> list[tuple[str, int]]:
        return [(label, self.score(axis)) for axis, label in SELF_AXES.items()]

    def flags_in(self, axes: dict[str, str]) -> list[RedFlag]:
        """The red flags on the axes one view shows (a reader sees the score a flag is about)."""
        return [flag for flag in self.red_flags if flag.axis.value in axes]

    def missing_red_flags(self) -> list[tuple[ScoreAxis, int]]:
        flagged = {flag.axis for flag in self.red_flags}
        return [(a, s) for a, s in self.scores() if s < RED_FLAG_BELOW and a not in flagged]

    @property
    def min_score(self) -> int:
        return min(score for _, score in self.scores())

    @property
    def red_flag_count(self) -> int:
        return len(self.red_flags)


# What the structured call asks for, in the shape the API accepts (no numeric bounds,
# additionalProperties false); computed once so every report call sends the same bytes.
REPORT_SCHEMA: Wire = transform_schema(CompletionReport)


@dataclass(frozen=True)
class ReportOutcome:
    """A report as stored: valid, or kept after the re-ask with its `gaps` marked."""

    report: CompletionReport
    gaps: tuple[str, ...] = ()
    attempts: int = 1
    first_error: str | None = None  # what the re-ask quoted, if there was one
    usage: UsageTotals = field(default_factory=UsageTotals)


def stored_outcome(data: dict[str, Any], gaps: Sequence[str]) -> ReportOutcome:
    """A report as it was stored, read as leniently as it was kept: a report kept with gaps
    (a score out of range, a missing red flag) reads back with those gaps, not as an error."""
    read_gaps: list[str] = []
    report = CompletionReport.model_validate(data, context={"gaps": read_gaps})
    return ReportOutcome(report=report, gaps=tuple(dict.fromkeys([*gaps, *read_gaps])))


def parse_report(text: str) -> CompletionReport:
    """The report in `text` (strict); raises ValueError with what is wrong."""
    return _validate(text, context=None)


def _validate(text: str, *, context: dict[str, Any] | None) -> CompletionReport:
    raw = _json_object(text)
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the reply is not valid JSON ({exc.msg} at position {exc.pos})") from exc
    try:
        return CompletionReport.model_validate(data, context=context)
    except pydantic.ValidationError as exc:
        raise ValueError(_describe(exc)) from exc


def _json_object(text: str) -> str:
    # Structured output is bare JSON; tolerate a fenced block from a model without it.
    start, end = text.find("{"), text.rfind("}")
    return text[start : end + 1] if 0 <= start < end else text


def _describe(exc: pydantic.ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def _attempt_error(completion: Completion) -> str | None:
    if completion.tool_uses:
        return "you called a tool; tools are not available while filing the report"
    if completion.truncated:
        return "the report was cut off at the output limit; keep every field shorter"
    return None


def _with_user_blocks(conversation: Sequence[Wire], blocks: list[Wire]) -> list[Wire]:
    messages = list(conversation)
    if messages and messages[-1].get("role") == "user":
        last = dict(messages[-1])
        content = last["content"]
        last["content"] = [
            *([{"type": "text", "text": content}] if isinstance(content, str) else content),
            *blocks,
        ]
        messages[-1] = last
    else:
        messages.append({"role": "user", "content": blocks})
    return messages


# How much of each part of a turn the reporter reads: enough to judge the work, and a bounded
# prompt whatever the thread's length.
THREAD_CHARS = 3_000
FINDINGS_CHARS = 700
ANSWER_CHARS = 24_000


@dataclass(frozen=True)
class ResearchNote:
    """One research request of the turn, as the reporter reads it."""

    objective: str
    findings: str
    sources: int
    live_sources: bool
    web_searches: int

    @classmethod
    def of(cls, research: Research) -> ResearchNote:
        return cls(
            objective=research.brief.objective,
            findings=research.findings,
            sources=len(research.sources),
            live_sources=research.live_sources,
            web_searches=research.web_searches,
        )

    def render(self, number: int) -> str:
        backing = (
            f"{self.sources} source(s) from {self.web_searches} live web search(es)"
            if self.live_sources
            else "no live sources (the researcher's own knowledge only)"
        )
        return (
            f"{number}. Objective: {_clip(self.objective, 300)}\n"
            f"   Backing: {backing}\n"
            f"   Findings (start): {_clip(self.findings, FINDINGS_CHARS)}"
        )


@dataclass(frozen=True)
class ReportInput:
    """One turn of a task as the report is written from it: a compact transcript, so the
    report call needs neither the engineer's model nor its conversation."""

    ref: str
    channel: str
    requester: str
    request: str
    answer: str
    today: str  # as spoken, e.g. "Wednesday 2 December 2026"
    thread: Sequence[str] = ()  # earlier messages of the thread, "author: text", oldest first
    research: Sequence[ResearchNote] = ()
    stopped_early: str | None = None  # "tool_limit" | "token_budget"
    truncated: bool = False

    def transcript(self) -> str:
        thread = "\n".join(self.thread)
        if len(thread) > THREAD_CHARS:
            thread = "…" + thread[-THREAD_CHARS:]
        research = "\n".join(note.render(n) for n, note in enumerate(self.research, 1))
        notes = []
        if self.stopped_early == "tool_limit":
            notes.append("The turn stopped early: its tool calls were used up.")
        elif self.stopped_early == "token_budget":
            notes.append("The turn stopped early: its output-token budget was used up.")
        if self.truncated:
            notes.append("The answer was cut off at the length limit.")
        return fill(
            "report_turn",
            ref=self.ref,
            channel=self.channel,
            requester=self.requester,
            today=self.today,
            thread=thread or "(nothing before this request)",
            request=_clip(self.request, THREAD_CHARS),
            research=research or "No research was done in this turn.",
            answer=_clip(self.answer, ANSWER_CHARS) or "(no answer text)",
            notes="\n".join(notes),
        ).strip()


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def reporter_prefix() -> PromptPrefix:
    """The reporter's instructions: the same bytes for every report, cached for an hour."""
    return PromptPrefix(system=load_prompt("report"), ttl="1h")


async def write_report(
    *,
    model: ModelClient,
    settings: AgentSettings,
    turn: ReportInput,
    ref: TurnRef,
) -> ReportOutcome:
    """Ask for the report over a compact transcript of the turn, on the reporter's model.

    Not over the engineer's conversation: a structured-output request may not read the cache
    that conversation wrote (a change of output format invalidates it), so it would pay for
    all of it again at the engineer's price. Invalid: ask once more quoting the error; still
    invalid: keep it with the gaps marked. Nothing readable: `ReportUnavailable`."""
    usage = UsageTotals()
    messages: list[Wire] = [
        {"role": "user", "content": [{"type": "text", "text": turn.transcript()}]}
    ]
    first = await _ask(model, settings, messages, ref)
    usage.merge(first.usage)
    error = _attempt_error(first)
    if error is None:
        try:
            return ReportOutcome(report=parse_report(first.text), usage=usage)
        except ValueError as exc:
            error = str(exc)
    log.info("report.reask", error=error[:300])

    retry: list[Wire] = [
        {
            "type": "tool_result",
            "tool_use_id": call["id"],
            "content": "Not run: tools are not available while filing the report.",
            "is_error": True,
        }
        for call in first.tool_uses
    ]
    retry.append({"type": "text", "text": fill("report_retry", error=error)})
    second = await _ask(model, settings, _with_user_blocks(first.conversation, retry), ref)
    usage.merge(second.usage)
    second_error = _attempt_error(second)
    if second_error is None:
        try:
            report = parse_report(second.text)
            return ReportOutcome(report=report, attempts=2, first_error=error, usage=usage)
        except ValueError as exc:
            second_error = str(exc)

    for completion in (second, first):
        gaps: list[str] = []
        try:
            report = _validate(completion.text, context={"gaps": gaps})
        except ValueError:
            continue
        log.warning("report.kept_with_gaps", gaps=gaps)
        return ReportOutcome(
            report=report, gaps=tuple(gaps), attempts=2, first_error=error, usage=usage
        )
    raise ReportUnavailable(
        "The completion report could not be read, even after asking twice "
        f"({second_error}). The answer in the thread stands; mention me with 'report' to try "
        "the report again.",
        agent="reporter",
        model=settings.reporter_model,
    )


async def _ask(
    model: ModelClient,
    settings: AgentSettings,
    messages: list[Wire],
    ref: TurnRef,
) -> Completion:
    return await model.complete(
        agent="reporter",
        model=settings.reporter_model,
        prefix=reporter_prefix(),
        messages=messages,
        max_tokens=settings.report_max_tokens,
        ref=ref,
        output_schema=REPORT_SCHEMA,
        # Continuing a cut-off JSON object in a new message cannot produce valid JSON.
        continue_on_max_tokens=False,
        max_pause_continuations=settings.max_pause_continuations,
    )


# ---------------------------------------------------------------------------------------------
# Text layouts (DESIGN §3); Block Kit renders the same content on the Slack side.

_BRANCH, _LAST = "├── ", "└── "
# What a report calls each kind of deliverable and handoff; a standup line says it shorter.
KIND_LABELS: dict[str, str] = {
    "system": "Systems built",
    "api_integration": "API integrations",
    "data_storage": "Data/storage",
    "needed_from_others": "Needed from others",
    "infrastructure_blocker": "Infrastructure blocker",
    "integration_endpoint_ready": "Integration endpoint ready",
}
SHORT_KIND_LABELS: dict[str, str] = {
    **{kind: label.lower() for kind, label in KIND_LABELS.items()},
    "integration_endpoint_ready": "endpoint ready",
}
# The handoffs that mean the work waits on someone else.
WAITING_KINDS = ("needed_from_others", "infrastructure_blocker")


def status_line(status: ReportStatus) -> str:
    return f"{STATUS_EMOJI[status]} {STATUS_WORDS[status]}"


def _tree(items: Sequence[tuple[str, int]]) -> list[str]:
    return [
        f"{_LAST if i == len(items) - 1 else _BRANCH}{label}: {score}/9"
        for i, (label, score) in enumerate(items)
    ]


def _hanging(head: str, lines: Sequence[str]) -> list[str]:
    """`head` followed by the first line; the rest indented under it, as in the layout."""
    if not lines:
        return [head]
    pad = " " * (len(head) + 1)
    return [f"{head} {lines[0]}", *(f"{pad}{line}" for line in lines[1:])]


def render_self_assessment(report: CompletionReport, gaps: Sequence[str] = ()) -> str:
    """The matrix posted in the task's thread after the answer."""
    scores = report.self_view()
    flags = [
        f"{flag.axis.label} {report.score(flag.axis)}/9: {_sentence(flag.explanation)} "
        f"Mitigation: {_sentence(flag.mitigation)}"
        for flag in report.flags_in(SELF_AXES)
    ]
    flags += [f"⚠ GAP: {gap}" for gap in gaps]
    lines = ["SELF-ASSESSMENT SCORES:", *_tree(scores), ""]
    lines += _hanging("RED FLAGS:", flags or ["none (every score here is 6 or above)"])
    lines += _hanging("CONFIDENCE NOTES:", [" ".join(report.confidence_notes.split()) or "—"])
    return "\n".join(lines)


def render_pm_report(report: CompletionReport, gaps: Sequence[str] = ()) -> str:
    """The report posted to the coordination channel."""
    scores = report.pm_view()
    deliverables = [f"• {KIND_LABELS[d.kind]}: {d.description}" for d in report.key_deliverables]
    handoffs = [f"• {KIND_LABELS[h.kind]}: {h.description}" for h in report.dependencies_handoffs]
    lines = [
        "PROJECT MANAGER REPORT - Backend Engineer Agent",
        f"Task: {report.task}",
        f"Status: {status_line(report.status)}",
        "Self-Assessment Scores (1-9):",
        *_tree(scores),
        "Key Deliverables:",
        *(deliverables or ["• none"]),
        "Dependencies/Handoffs:",
        *(handoffs or ["• none"]),
    ]
    if report.estimated_time:
        lines.append(f"Estimated Time: {report.estimated_time}")
    elif report.status is ReportStatus.IN_PROGRESS:
        lines.append("Estimated Time: ⚠ not given")
    if gaps:
        lines += _hanging("⚠ Report gaps:", list(gaps))
    return "\n".join(lines)


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if text.endswith((".", "!", "?")) else text + "."
