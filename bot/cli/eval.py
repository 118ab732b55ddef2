"""`pmteam eval`: the evaluation cases through the real agents, on Claude or the offline model."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from anthropic import AsyncAnthropic

from agents.config import AgentSettings
from agents.evaluation import (
    CaseResult,
    EvalCase,
    EvalRun,
    Limits,
    load_cases,
    render_table,
    run_eval,
)
from agents.llm import ModelClient
from bot.app import agent_settings_for
from bot.config import Settings
from sandbox.model import FakeModel

# The offline model takes any key; this one only says where a request came from.
OFFLINE_API_KEY = "sk-ant-eval-offline-model"
DEFAULT_API_HOST = "api.anthropic.com"


def select_cases(names: Sequence[str]) -> list[EvalCase]:
    """The cases named (all of them when none is), in the file's order; ValueError for a name
    that is not a case."""
    cases = load_cases()
    known = [case.name for case in cases]
    unknown = [name for name in dict.fromkeys(names) if name not in known]
    if unknown:
        raise ValueError(f"no case named {', '.join(unknown)}; the cases are: {', '.join(known)}")
    return [case for case in cases if not names or case.name in names]


def describe_models(settings: AgentSettings, *, offline: bool, base_url: str | None) -> str:
    """What the run talks to, for the operator: model names and the API host, never the key."""
    if offline:
        where = "the offline fake model (answers are templates, not Claude)"
    else:
        host = urlsplit(base_url).hostname if base_url else None
        where = (
            f"{settings.engineer_model} (engineer), {settings.researcher_model} (researcher), "
            f"{settings.reporter_model} (reports) at {host or DEFAULT_API_HOST}"
        )
    web = "on" if settings.research_web else "off (PMTEAM_RESEARCH_WEB=false)"
    return f"{where}; web research {web}"


class Progress:
    """One line on `err` per case as it finishes."""

    def __init__(self, total: int, err: IO[str]) -> None:
        self._total = total
        self._done = 0
        self._err = err

    def __call__(self, result: CaseResult) -> None:
        self._done += 1
        failed = [check.name for check in result.checks if not check.passed]
        line = (
            f"[{self._done}/{self._total}] {result.case.name}: "
            f"{result.passed}/{len(result.checks)} checks, "
            f"${result.cost_usd:.4f}, {result.seconds:.1f} s"
        )
        if result.error is not None:
            line += f" — raised {result.error}"
        elif failed:
            line += f" (✗ {', '.join(failed)})"
        self._err.write(line + "\n")
        self._err.flush()


async def evaluate(
    settings: Settings,
    *,
    offline: bool,
    cases: Sequence[EvalCase],
    limits: Limits,
    concurrency: int,
    err: IO[str],
) -> EvalRun:
    """Run `cases` on the operator's models (or the in-process offline model)."""
    agent_settings = agent_settings_for(settings)
    async with contextlib.AsyncExitStack() as stack:
        if offline:
            fake = FakeModel()
            await fake.start(host="127.0.0.1", port=0)
            stack.push_async_callback(fake.stop)
            api_key: str | None = OFFLINE_API_KEY
            base_url: str | None = fake.base_url
        else:
            key = settings.anthropic_api_key
            api_key = key.get_secret_value() if key is not None else None
            base_url = settings.anthropic_base_url
        anthropic = AsyncAnthropic(api_key=api_key, base_url=base_url)
        stack.push_async_callback(anthropic.close)
        model = ModelClient.from_settings(anthropic, agent_settings)
        shown = describe_models(agent_settings, offline=offline, base_url=base_url)
        err.write(f"pmteam eval: {len(cases)} case(s) on {shown}\n")
        err.flush()
        return await run_eval(
            cases,
            model=model,
            settings=agent_settings,
            limits=limits,
            concurrency=concurrency,
            on_result=Progress(len(cases), err),
        )


async def run_eval_command(
    settings: Settings,
    *,
    offline: bool,
    cases: Sequence[EvalCase],
    limits: Limits,
    threshold: float,
    concurrency: int,
    json_path: Path | None,
    out: IO[str],
    err: IO[str],
) -> int:
    """`pmteam eval`: the table on `out`; 0 when the run passes the threshold, 1 otherwise."""
    run = await evaluate(
        settings,
        offline=offline,
        cases=cases,
        limits=limits,
        concurrency=concurrency,
        err=err,
    )
    out.write(render_table(run, threshold) + "\n")
    if json_path is not None:
        document = {"offline": offline, **run.as_dict(threshold)}
        json_path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return 0 if run.passes(threshold) else 1
