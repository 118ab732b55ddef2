"""The demo completion report: status, scores and red flags that follow what was asked."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

from sandbox.model.ask import Ask, clip
from sandbox.model.patterns import Match, is_backend, match

PM_AXES = ("system_architecture_design", "scalability_performance", "integration_reliability")
SELF_AXES = (
    "probability_of_success",
    "implementation_feasibility",
    "quality_completeness",
    "risk_assessment",
    "alignment_value",
)
RED_FLAG_BELOW = 6
_REPORT_FIELDS = frozenset(
    {
        "turn_kind",
        "task",
        "status",
        "pm_scores",
        "self_assessment",
        "red_flags",
        "confidence_notes",
        "key_deliverables",
        "dependencies_handoffs",
        "estimated_time",
    }
)
_TAG = re.compile(r"<(thread_before|request|research|answer)>\s*(.*?)\s*</\1>", re.S)
# Where one message of the thread starts: "<@U1>: …" or "pmteam (earlier answer): …".
_THREAD_ENTRY = re.compile(r"^(?:<@\w+>|pmteam \(earlier answer\)): ", re.M)
_PERSON = re.compile(r"<@([UW][A-Z0-9]{2,30})(?:\|[^>]*)?>")
_LIVE_SOURCES = re.compile(r"(\d+) source\(s\) from \d+ live web search")


def is_completion_report(schema: dict[str, Any]) -> bool:
    """Whether `schema` is pmteam's CompletionReport (by its fields and score axes), which
    the demo fills from the transcript instead of with generic values."""
    properties = schema.get("properties")
    if not isinstance(properties, dict) or set(properties) != _REPORT_FIELDS:
        return False
    return _properties(schema, properties["pm_scores"]) == set(PM_AXES) and _properties(
        schema, properties["self_assessment"]
    ) == set(SELF_AXES)


def _properties(root: dict[str, Any], schema: Any) -> set[str]:
    if isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        name = schema["$ref"].rpartition("/")[2]
        schema = (root.get("$defs") or {}).get(name)
    properties = schema.get("properties") if isinstance(schema, dict) else None
    return set(properties) if isinstance(properties, dict) else set()


@dataclass(frozen=True)
class Transcript:
    """One turn as the report request lays it out (agents/prompts/report_turn.md)."""

    request: str
    thread: tuple[str, ...]  # what people wrote before, oldest first (not the bot's answers)
    research: str
    answer: str

    @classmethod
    def read(cls, text: str) -> Transcript:
        parts = dict(_TAG.findall(text))
        thread = parts.get("thread_before", "")
        starts = [m.start() for m in _THREAD_ENTRY.finditer(thread)]
        entries = [thread[a:b].strip() for a, b in itertools.pairwise([*starts, len(thread)])]
        from_people = tuple(
            _THREAD_ENTRY.sub("", entry, count=1)
            for entry in entries
            if not entry.startswith("pmteam (earlier answer)")
        )
        return cls(
            request=parts.get("request", text),
            thread=from_people,
            research=parts.get("research", ""),
            answer=parts.get("answer", ""),
        )


@dataclass
class _Scores:
    values: dict[str, int]
    flags: dict[str, tuple[str, str]]

    def concern(self, axis: str, score: int, explanation: str, mitigation: str) -> None:
        """Lower `axis` to `score`, with the reason a red flag gives when it is below 6."""
        if score < self.values[axis]:
            self.values[axis] = score
            if score < RED_FLAG_BELOW:
                self.flags[axis] = (explanation, mitigation)

    def cap(self, limit: int) -> None:
        for axis in self.values:
            self.values[axis] = min(self.values[axis], limit)


def build_report(transcript: Transcript) -> dict[str, Any]:
    """A CompletionReport as JSON: deterministic for the same transcript."""
    request = Ask(transcript.request)
    earlier = [Ask(text) for text in transcript.thread if is_backend(Ask(text).words)]
    if request.is_social or not (is_backend(request.words) or earlier):
        return _conversation(request)
    # A follow-up without backend words of its own ("please try again") is about the thread.
    topic = request if is_backend(request.words) else earlier[0]
    found = match(topic)
    task_ask = earlier[0] if earlier else request
    status = _status(topic)
    scores = _scores(found, status, transcript.research)
    return {
        "turn_kind": "backend_work",
        "task": _task_line(match(task_ask)),
        "status": status,
        "pm_scores": {axis: scores.values[axis] for axis in PM_AXES},
        "self_assessment": {axis: scores.values[axis] for axis in SELF_AXES},
        "red_flags": [
            {"axis": axis, "explanation": explanation, "mitigation": mitigation}
            for axis, (explanation, mitigation) in scores.flags.items()
        ],
        "confidence_notes": _confidence_notes(found, status, transcript.research),
        "key_deliverables": [
            {"kind": kind, "description": found.fill(text)}
            for kind, text in found.pattern.deliverables
        ],
        "dependencies_handoffs": _owned(_handoffs(found, status)),
        "estimated_time": found.pattern.estimate if status == "IN_PROGRESS" else None,
    }


def _status(ask: Ask) -> str:
    if ask.blocker:
        return "BLOCKED"
    if ask.asks_for_something_large:
        return "IN_PROGRESS"
    return "COMPLETED"


def _task_line(found: Match) -> str:
    summary = found.ask.summary
    if found.ask.is_imperative or not found.specific:
        return summary or "Backend request"
    line = found.fill(found.pattern.task)
    return line[:1].upper() + line[1:]


def _research_kind(research: str) -> str:
    """What backed the turn: "live" sources, "unchecked" (no live sources) or "none"."""
    if not research or research.startswith("No research was done"):
        return "none"
    return "live" if _LIVE_SOURCES.search(research) else "unchecked"


def _scores(found: Match, status: str, research: str) -> _Scores:
    pattern = found.pattern
    scores = _Scores(
        values={
            "system_architecture_design": 7,
            "scalability_performance": 7,
            "integration_reliability": 7,
            "probability_of_success": 7,
            "implementation_feasibility": 7,
            "quality_completeness": 7,
            "risk_assessment": 7,
            "alignment_value": 8,
        },
        flags={},
    )
    if not found.specific:
        # No pattern fits: the answer is a generic first slice, not a design for this request.
        scores.values["system_architecture_design"] = 6
        scores.values["quality_completeness"] = 6
    if pattern.risk < RED_FLAG_BELOW:
        scores.concern(
            "risk_assessment", pattern.risk, pattern.risk_reason, pattern.risk_mitigation
        )
    else:
        scores.values["risk_assessment"] = pattern.risk
    missing = found.ask.missing()
    if status == "BLOCKED" and missing:
        scores.concern(
            "implementation_feasibility",
            4,
            f"The work cannot be finished without {missing}; only what does not depend on it "
            "can be built now.",
            f"Agree a date for {missing} with whoever provides it, and build and test "
            "everything else against a sandbox or test mode meanwhile.",
        )
        scores.concern(
            "probability_of_success",
            5,
            f"Delivery depends on {missing}, whose timing is outside the team's control.",
            "Raise the dependency in the standup and escalate if it has not arrived by the "
            "agreed date.",
        )
    elif status == "IN_PROGRESS":
        scores.values["quality_completeness"] = min(scores.values["quality_completeness"], 6)
    kind = _research_kind(research)
    if kind != "live" and pattern.risk <= 6:
        # The engineer's rule: migrations, security changes and the like need research, and
        # no score may rest above 6 on claims nothing checked.
        scores.cap(6)
    elif kind != "live":
        scores.values["quality_completeness"] = min(scores.values["quality_completeness"], 6)
    return scores


def _confidence_notes(found: Match, status: str, research: str) -> str:
    notes = [
        "Written by the offline demo model, not Claude: it matched the request to its "
        f"“{found.pattern.title}” pattern, and these scores follow fixed rules rather than a "
        "review of the real system."
        if found.specific
        else "Written by the offline demo model, not Claude: no pattern in its library fits "
        "this request, so the answer is a generic first slice and the scores are cautious."
    ]
    kind = _research_kind(research)
    if kind == "live":
        count = _LIVE_SOURCES.search(research)
        notes.append(
            f"The research returned {count.group(1) if count else 'some'} source(s) from the "
            "demo's local library of public documentation, not a live web search."
        )
    elif kind == "unchecked":
        notes.append(
            "The research had no live sources, so nothing was checked against current material."
        )
    else:
        notes.append("No research was done in this turn.")
    missing = found.ask.missing()
    if status == "BLOCKED" and missing:
        notes.append(f"It cannot be finished without {missing}.")
    elif status == "IN_PROGRESS":
        notes.append(
            f"Only the plan is delivered; carrying it out is estimated at {found.pattern.estimate}."
        )
    return " ".join(notes)


def _handoffs(found: Match, status: str) -> list[dict[str, str]]:
    handoffs: list[dict[str, str]] = []
    missing = found.ask.missing()
    if status == "BLOCKED" and missing:
        blocker = found.ask.blocker or ""
        waiting = re.search(r"\b(waiting for|waiting on|blocked on)\b", blocker, re.I)
        description = f"{waiting.group(1)} {missing}" if waiting else missing
        infrastructure = bool(re.search(r"\baccess to\b", missing, re.I))
        handoffs.append(
            {
                "kind": "infrastructure_blocker" if infrastructure else "needed_from_others",
                "description": clip(description[:1].upper() + description[1:], 300),
            }
        )
    for kind, text in found.pattern.handoffs:
        # An endpoint is ready for others only once the work is done.
        if kind == "integration_endpoint_ready" and status != "COMPLETED":
            continue
        handoffs.append({"kind": kind, "description": found.fill(text)})
    return handoffs


def _owned(handoffs: list[dict[str, str]]) -> list[dict[str, str]]:
    """A handoff that names exactly one person (the request's "waiting on <@U…>") is theirs
    to do; otherwise nobody is named (the owner is never guessed)."""
    owned = []
    for handoff in handoffs:
        people = set(_PERSON.findall(handoff["description"]))
        waiting = handoff["kind"] in ("needed_from_others", "infrastructure_blocker")
        if waiting and len(people) == 1:
            handoff = {**handoff, "owner": f"<@{people.pop()}>"}
        owned.append(handoff)
    return owned


def _conversation(request: Ask) -> dict[str, Any]:
    scores = dict.fromkeys((*PM_AXES, *SELF_AXES), 7)
    return {
        "turn_kind": "conversation",
        "task": request.summary or "Conversation",
        "status": "COMPLETED",
        "pm_scores": {axis: scores[axis] for axis in PM_AXES},
        "self_assessment": {axis: scores[axis] for axis in SELF_AXES},
        "red_flags": [],
        "confidence_notes": (
            "A conversational reply from the offline demo model, not backend work: there is "
            "nothing here for the project manager to assess."
        ),
        "key_deliverables": [],
        "dependencies_handoffs": [],
        "estimated_time": None,
    }
