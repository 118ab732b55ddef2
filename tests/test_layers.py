"""The dependency rule of docs/architecture.md holds: import-linter's contracts, and no import
hidden inside a function (the usual way round an import circle) outside the CLIs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("bot", "agents", "storage", "sandbox")
# Deliberately lazy: `pmteam --help` and `python -m sandbox --help` must not load everything.
LAZY_ALLOWED = {Path("bot/cli/__init__.py"), Path("sandbox/__main__.py")}


def function_local_imports(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    found.append((inner.lineno, ast.unparse(inner)))
    return found


def test_the_scan_finds_an_import_inside_a_function() -> None:
    source = "import os\n\ndef f():\n    from bot.app import start\n    return start\n"
    assert function_local_imports(source) == [(4, "from bot.app import start")]


def test_no_module_hides_an_import_inside_a_function() -> None:
    offenders = []
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if relative in LAZY_ALLOWED or "migrations" in relative.parts:
                continue
            for line, statement in function_local_imports(path.read_text()):
                offenders.append(f"{relative}:{line}: {statement}")
    assert offenders == []


def test_the_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
