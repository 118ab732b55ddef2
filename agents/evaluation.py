"""The evaluation: realistic backend tasks through the real agents, each scored by checks."""

from __future__ import annotations

import asyncio
import re
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from agents.config import AgentSettings
from agents.engineer import EngineerResult, RelatedTask, TaskBrief, run_engineer
from agents.errors import ReportUnavailable
from agents.llm import ModelClient, TurnRef, UsageTotals
from agents.reports import (
    RED_FLAG_BELOW,
    CompletionReport,
    ReportInput,
    ReportOutcome,
    ResearchNote,
    TurnKind,
    write_report,
)
from agents.templates import spoken_date

log = structlog.get_logger(__name__)

CASES_FILE = Path(__file__).with_name("eval_cases.toml")
CHECKS = ("schema", "red_flags", "research", "sources", "key_terms", "kind", "cost", "latency")
DEFAULT_MAX_COST_USD = 0.07
DEFAULT_MAX_SECONDS = 180.0
DEFAULT_THRESHOLD = 0.85
# Where the eval's tasks come from, as the engineer's prompt names them.
CHANNEL = "<#C0EVAL>"
REQUESTER = "<@U0EVAL>"


@dataclass(frozen=True)
class EvalCase:
    """One task of the evaluation, as `eval_cases.toml` states it."""

    name: str
    request: str
    key_terms: tuple[str, ...]
    research_required: bool
    expect_kind: TurnKind | None  # None: either kind is a fair reading of the request


def load_cases(path: Path = CASES_FILE) -> list[EvalCase]:
    """The cases in `path`; ValueError says which one is malformed and how."""
    with path.open("rb") as file:
        data = tomllib.load(file)
    cases = [_case(entry, number) for number, entry in enumerate(data.get("case", []), 1)]
    names = [case.name for case in cases]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{path}: case names must be unique; repeated: {', '.join(repeated)}")
    return cases


def _case(entry: dict[str, Any], number: int) -> EvalCase:
    where = f"case {number} ({entry.get('name', 'unnamed')})"
    name, request = entry.get("name"), entry.get("request")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ValueError(f"{where}: name must be a lower-case word such as 'slow_query'")
    if not isinstance(request, str) or not request.strip():
        raise ValueError(f"{where}: request must be the text a person would write")
    terms = entry.get("key_terms", [])
    if not isinstance(terms, list) or not all(isinstance(t, str) and t.strip() for t in terms):
        raise ValueError(f"{where}: key_terms must be a list of terms")
    required = entry.get("research_required", False)
    if not isinstance(required, bool):
        raise ValueError(f"{where}: research_required must be true or false")
    kind = entry.get("expect_kind")
    if kind is not None and kind not in {k.value for k in TurnKind}:
        raise ValueError(f"{where}: expect_kind must be 'backend_work' or 'conversation'")
    return EvalCase(
        name=name,
        request=request.strip(),
        key_terms=tuple(t.strip() for t in terms),
        research_required=required,
        expect_kind=TurnKind(kind) if kind is not None else None,
    )


@dataclass(frozen=True)
class Limits:
    """What one case may spend: dollars (engineer, researcher and report) and wall time."""

    max_cost_usd: float = DEFAULT_MAX_COST_USD
    max_seconds: float = DEFAULT_MAX_SECONDS


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    reason: str


# -- the checks ----------------------------------------------------------------------------


def check_schema(outcome: ReportOutcome | None, unavailable: str | None = None) -> Check:
    """A report came back and parsed strictly, on the first ask or the re-ask, with no gaps."""
    if outcome is None:
        return Check("schema", False, f"no readable report: {unavailable or 'none came back'}")
    if outcome.gaps:
        return Check("schema", False, f"kept with gaps: {'; '.join(outcome.gaps)}")
    if outcome.attempts > 1:
        return Check("schema", True, f"valid on the re-ask (first: {outcome.first_error})")
    return Check("schema", True, "valid on the first ask")


def check_red_flags(report: CompletionReport | None) -> Check:
    """Every score below 6 has its red flag, and no red flag is on a score of 6 or more."""
    if report is None:
        return Check("red_flags", False, "no report")
    missing = [f"{axis.value} {score}/9" for axis, score in report.missing_red_flags()]
    high = [
        f"{flag.axis.value} {report.score(flag.axis.value)}/9"
        for flag in report.red_flags
        if report.score(flag.axis.value) >= RED_FLAG_BELOW
    ]
    problems = []
    if missing:
        problems.append(f"no red flag for {', '.join(missing)}")
    if high:
        problems.append(f"a red flag on a score of {RED_FLAG_BELOW}+: {', '.join(high)}")
    if problems:
        return Check("red_flags", False, "; ".join(problems))
    low = sum(score < RED_FLAG_BELOW for _, score in report.scores())
    if not low:
        return Check("red_flags", True, f"no score below {RED_FLAG_BELOW}, and no red flag")
    return Check("red_flags", True, f"{low} score(s) below {RED_FLAG_BELOW}, each flagged")


def check_research(case: EvalCase, result: EngineerResult, *, web: bool) -> Check:
    """Where the research rule applies, research ran (with live sources when web is on)."""
    done = len(result.research)
    if not case.research_required:
        return Check("research", True, f"not required ({done} request(s) ran)")
    if not done:
        return Check("research", False, "required, but no research request ran")
    if web and not any(research.live_sources for research in result.research):
        return Check("research", False, f"{done} request(s) ran, none with live sources")
    return Check("research", True, f"{done} request(s) ran")


def check_sources(case: EvalCase, result: EngineerResult, *, web: bool) -> Check:
    """Research done on the web names at least one web page behind it."""
    if not result.research:
        if case.research_required:
            return Check("sources", False, "no research, so no sources")
        return Check("sources", True, "no research, none needed")
    if not web:
        return Check("sources", True, "web research is off: no sources expected")
    urls = [
        source.url
        for research in result.research
        for source in research.sources
        if source.url.startswith(("https://", "http://"))
    ]
    if not urls:
        return Check("sources", False, "research ran, but cited no web page")
    return Check("sources", True, f"{len(set(urls))} web page(s)")


def term_found(term: str, text: str) -> bool:
    """`term` in `text`, ignoring case, at the start of a word; a plural term also matches
    its singular ("indexes" is found by "index"; "migrations" by "migration")."""
    forms = {term, term.removesuffix("s")} - {""}
    for form in forms:
        words = r"\s+".join(re.escape(word) for word in form.split())
        if re.search(rf"(?<![\w]){words}", text, re.IGNORECASE):
            return True
    return False


def check_key_terms(case: EvalCase, answer: str) -> Check:
    """The answer speaks to at least half of the question's key terms."""
    if not case.key_terms:
        return Check("key_terms", True, "none to look for")
    missing = [term for term in case.key_terms if not term_found(term, answer)]
    found = len(case.key_terms) - len(missing)
    shown = f"{found}/{len(case.key_terms)} found"
    if missing:
        shown += f"; missing: {', '.join(missing)}"
    return Check("key_terms", found * 2 >= len(case.key_terms), shown)


def check_kind(case: EvalCase, report: CompletionReport | None) -> Check:
    if report is None:
        return Check("kind", False, "no report")
    if case.expect_kind is None:
        return Check("kind", True, f"{report.turn_kind.value}; either kind fits")
    if report.turn_kind is not case.expect_kind:
        return Check("kind", False, f"{report.turn_kind.value}, expected {case.expect_kind.value}")
    return Check("kind", True, report.turn_kind.value)


def check_cost(cost_usd: float, limits: Limits) -> Check:
    within = cost_usd <= limits.max_cost_usd
    sign = "≤" if within else ">"
    return Check("cost", within, f"${cost_usd:.4f} {sign} ${limits.max_cost_usd:.4f}")


def check_latency(seconds: float, limits: Limits) -> Check:
    within = seconds <= limits.max_seconds
    sign = "≤" if within else ">"
    return Check("latency", within, f"{seconds:.1f} s {sign} {limits.max_seconds:g} s")


# -- scoring one case ----------------------------------------------------------------------


@dataclass(frozen=True)
class CaseResult:
    """One case's checks and figures; `error` when the case itself could not finish."""

    case: EvalCase
    checks: tuple[Check, ...]
    cost_usd: float
    seconds: float
    research_requests: int = 0
    web_searches: int = 0
    sources: int = 0
    turn_kind: TurnKind | None = None
    error: str | None = None

    @property
    def passed(self) -> int:
        return sum(check.passed for check in self.checks)

    @property
    def score(self) -> float:
        return self.passed / len(self.checks) if self.checks else 0.0

    def check(self, name: str) -> Check:
        return next(check for check in self.checks if check.name == name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.case.name,
            "score": round(self.score, 4),
            "error": self.error,
            "turn_kind": self.turn_kind.value if self.turn_kind else None,
            "research_requests": self.research_requests,
            "web_searches": self.web_searches,
            "sources": self.sources,
            "cost_usd": round(self.cost_usd, 6),
            "seconds": round(self.seconds, 2),
            "checks": {c.name: {"passed": c.passed, "reason": c.reason} for c in self.checks},
        }


def score_case(
    case: EvalCase,
    *,
    result: EngineerResult,
    outcome: ReportOutcome | None,
    seconds: float,
    limits: Limits,
    web: bool,
    unavailable: str | None = None,
) -> CaseResult:
    """The checks of one finished case; `outcome` None when no report could be read."""
    usage = UsageTotals()
    usage.merge(result.usage)
    if outcome is not None:
        usage.merge(outcome.usage)
    report = outcome.report if outcome is not None else None
    checks = (
        check_schema(outcome, unavailable),
        check_red_flags(report),
        check_research(case, result, web=web),
        check_sources(case, result, web=web),
        check_key_terms(case, result.answer),
        check_kind(case, report),
        check_cost(usage.cost_usd, limits),
        check_latency(seconds, limits),
    )
    return CaseResult(
        case=case,
        checks=checks,
        cost_usd=usage.cost_usd,
        seconds=seconds,
        research_requests=len(result.research),
        web_searches=sum(research.web_searches for research in result.research),
        sources=sum(len(research.sources) for research in result.research),
        turn_kind=report.turn_kind if report is not None else None,
    )


def failed_case(case: EvalCase, error: str, seconds: float) -> CaseResult:
    """A case that raised: every check fails with what happened."""
    checks = tuple(Check(name, False, error) for name in CHECKS)
    return CaseResult(case=case, checks=checks, cost_usd=0.0, seconds=seconds, error=error)


async def _no_related_tasks(query: str, limit: int) -> list[RelatedTask]:
    return []  # the eval has no database: every task is the team's first


async def run_case(
    case: EvalCase,
    *,
    model: ModelClient,
    settings: AgentSettings,
    limits: Limits,
    number: int = 1,
) -> CaseResult:
    """Run one case as the bot runs a turn (the engineer, then the report) and score it."""
    started = time.monotonic()
    task = TaskBrief(ref=f"T-{number}", request=case.request, requester=REQUESTER, channel=CHANNEL)
    try:
        result = await run_engineer(
            model=model, settings=settings, task=task, find_related_tasks=_no_related_tasks
        )
        turn = ReportInput(
            ref=task.ref,
            channel=task.channel,
            requester=task.requester,
            request=case.request,
            answer=result.answer,
            today=spoken_date(task.today),
            research=[ResearchNote.of(research) for research in result.research],
            stopped_early=result.stopped_early,
            truncated=result.truncated,
        )
        outcome: ReportOutcome | None = None
        unavailable: str | None = None
        try:
            outcome = await write_report(model=model, settings=settings, turn=turn, ref=TurnRef())
        except ReportUnavailable as exc:
            unavailable = exc.message  # what the schema check measures, not a crash
    except Exception as exc:
        # One case's failure (the model down, a bug) must not cost the other cases' results.
        log.exception("eval.case_failed", case=case.name)
        return failed_case(case, f"{type(exc).__name__}: {exc}", time.monotonic() - started)
    return score_case(
        case,
        result=result,
        outcome=outcome,
        seconds=time.monotonic() - started,
        limits=limits,
        web=settings.research_web,
        unavailable=unavailable,
    )


# -- the whole run -------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalRun:
    """Every case's result, in the cases' order, and what they ran on."""

    results: tuple[CaseResult, ...]
    seconds: float
    settings: AgentSettings

    @property
    def score(self) -> float:
        return sum(r.score for r in self.results) / len(self.results) if self.results else 0.0

    @property
    def errors(self) -> int:
        return sum(result.error is not None for result in self.results)

    @property
    def cost_usd(self) -> float:
        return sum(result.cost_usd for result in self.results)

    def passes(self, threshold: float) -> bool:
        return bool(self.results) and self.errors == 0 and self.score >= threshold

    def as_dict(self, threshold: float) -> dict[str, Any]:
        return {
            "score": round(self.score, 4),
            "threshold": threshold,
            "passed": self.passes(threshold),
            "errors": self.errors,
            "cost_usd": round(self.cost_usd, 6),
            "seconds": round(self.seconds, 2),
            "engineer_model": self.settings.engineer_model,
            "researcher_model": self.settings.researcher_model,
            "report_model": self.settings.reporter_model,
            "research_web": self.settings.research_web,
            "cases": [result.as_dict() for result in self.results],
        }


async def run_eval(
    cases: Sequence[EvalCase],
    *,
    model: ModelClient,
    settings: AgentSettings,
    limits: Limits,
    concurrency: int = 1,
    on_result: Callable[[CaseResult], None] | None = None,
) -> EvalRun:
    """Run `cases`, `concurrency` at a time; `on_result` hears of each as it finishes."""
    started = time.monotonic()
    gate = asyncio.Semaphore(concurrency)

    async def one(number: int, case: EvalCase) -> CaseResult:
        async with gate:
            result = await run_case(
                case, model=model, settings=settings, limits=limits, number=number
            )
        if on_result is not None:
            on_result(result)
        return result

    results = await asyncio.gather(*(one(n, case) for n, case in enumerate(cases, 1)))
    return EvalRun(results=tuple(results), seconds=time.monotonic() - started, settings=settings)


# -- the table -----------------------------------------------------------------------------

_MARK = {True: "✓", False: "✗"}


def render_table(run: EvalRun, threshold: float) -> str:
    """The run as plain text: one row per case, the failed checks' reasons, then the verdict."""
    header = ["case", "turn", "web/src", *CHECKS, "cost $", "secs", "score"]
    rows = [header]
    for result in run.results:
        research = f"{result.web_searches}/{result.sources}" if result.research_requests else "—"
        rows.append(
            [
                result.case.name,
                result.turn_kind.value if result.turn_kind else "—",
                research,
                *(_MARK[check.passed] for check in result.checks),
                f"{result.cost_usd:.4f}",
                f"{result.seconds:.1f}",
                f"{result.score:.2f}",
            ]
        )
    rows.append(
        ["total", "", "", *([""] * len(CHECKS)), f"{run.cost_usd:.4f}", f"{run.seconds:.1f}", ""]
    )
    numeric = {len(header) - 3, len(header) - 2, len(header) - 1}
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines.insert(len(lines) - 1, lines[1])
    lines.append("web/src: the researcher's web searches / sources (—: no research request)")
    failures = [
        f"  {result.case.name} · {check.name}: {check.reason}"
        for result in run.results
        for check in result.checks
        if not check.passed and result.error is None
    ]
    failures += [f"  {r.case.name}: raised {r.error}" for r in run.results if r.error]
    if failures:
        lines += ["", "failed:", *failures]
    lines += ["", verdict(run, threshold)]
    return "\n".join(lines)


def verdict(run: EvalRun, threshold: float) -> str:
    """The last line, e.g. `score 0.94 ≥ threshold 0.85: pass`."""
    sign = "≥" if run.score >= threshold else "<"
    places = 2
    while places < 6 and run.score != threshold and _same(run.score, threshold, places):
        places += 1  # 0.849 is not shown as "0.85 < 0.85"
    line = f"score {run.score:.{places}f} {sign} threshold {threshold:.{places}f}"
    if run.errors:
        return f"{line}, but {run.errors} case(s) raised: FAIL"
    return f"{line}: {'pass' if run.passes(threshold) else 'FAIL'}"


def _same(a: float, b: float, places: int) -> bool:
    return f"{a:.{places}f}" == f"{b:.{places}f}"


__all__ = [
    "CASES_FILE",
    "CHECKS",
    "CaseResult",
    "Check",
    "EvalCase",
    "EvalRun",
    "Limits",
    "check_cost",
    "check_key_terms",
    "check_kind",
    "check_latency",
    "check_red_flags",
    "check_research",
    "check_schema",
    "check_sources",
    "failed_case",
    "load_cases",
    "render_table",
    "run_case",
    "run_eval",
    "score_case",
    "term_found",
    "verdict",
]
