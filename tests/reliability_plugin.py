"""Feeds RELIABILITY.md: each test marked `reliability("<fault or attack>", kind=...)` is
recorded with its outcome, and written as JSON to $PMTEAM_RELIABILITY_OUT at the end of the run
(`uv run python bench/reliability.py` runs them and renders the table)."""

from __future__ import annotations

import json
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

_results: list[dict[str, str]] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "reliability(scenario, kind='fault'): a fault or attack that RELIABILITY.md lists",
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    marker = item.get_closest_marker("reliability")
    if marker is None or not marker.args:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _results.append(
            {
                "scenario": str(marker.args[0]),
                "kind": str(marker.kwargs.get("kind", "fault")),
                "test": item.nodeid,
                "outcome": report.outcome,
            }
        )


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get("PMTEAM_RELIABILITY_OUT")
    if target:
        Path(target).write_text(json.dumps(_results, indent=1), encoding="utf-8")
