"""Loads the prompt files in agents/prompts/ and fills their $placeholders."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from string import Template

PROMPTS_DIR = Path(__file__).parent / "prompts"


@cache
def load_prompt(name: str) -> str:
    """The text of `prompts/<name>.md`, read once; the cached copy keeps prefixes byte-stable."""
    return (PROMPTS_DIR / f"{name}.md").read_text(encoding="utf-8").strip()


def fill(prompt: str, /, **values: str) -> str:
    """`prompts/<prompt>.md` with its `$name` placeholders replaced; a missing value is a bug."""
    return Template(load_prompt(prompt)).substitute(values)


def spoken_date(day: date) -> str:
    """A date as a person says it, e.g. "Wednesday 2 December 2026"."""
    return f"{day:%A} {day.day} {day:%B %Y}"


def utc_today() -> date:
    return datetime.now(UTC).date()
