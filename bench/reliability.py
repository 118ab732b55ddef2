"""Run the fault and attack tests and write RELIABILITY.md from what they did.

    uv run python bench/reliability.py [--out RELIABILITY.md]

Every test marked `@pytest.mark.reliability("<scenario>", kind="fault"|"attack")` is run
(on SQLite and, where the test asks for it, PostgreSQL); the table lists each scenario, how
many test cases tried it, and how many held. Exit status 1 when any did not hold.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = """# Reliability

What pmteam's test suite does to it on purpose, and how it comes out. Each row is a fault
(something that breaks around pmteam) or an attack (someone or something trying to misuse
it), tried by the tests listed under it, end to end against the sandbox fakes over real HTTP
and real databases. This file is written by `uv run python bench/reliability.py`, which runs
the tests marked `@pytest.mark.reliability` and counts their outcomes; run it after adding or
changing one.

"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "RELIABILITY.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        results_file = Path(scratch) / "results.json"
        env = {**os.environ, "PMTEAM_RELIABILITY_OUT": str(results_file)}
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-m",
            "reliability",
            "-p",
            "no:cacheprovider",
        ]
        run = subprocess.run(command, cwd=ROOT, env=env, check=False)
        results = json.loads(results_file.read_text(encoding="utf-8"))
    by_scenario: dict[tuple[str, str], list[dict[str, str]]] = collections.defaultdict(list)
    for result in results:
        by_scenario[(result["kind"], result["scenario"])].append(result)
    lines = [
        HEADER,
        f"Last run: {dt.date.today().isoformat()}, {len(results)} test cases, "
        f"{sum(r['outcome'] == 'passed' for r in results)} held.\n",
        "| Kind | Scenario | Tried | Held | Tests |",
        "|---|---|---|---|---|",
    ]
    for (kind, scenario), runs in sorted(by_scenario.items()):
        held = sum(r["outcome"] == "passed" for r in runs)
        tests = sorted({r["test"].split("[")[0].split("::")[-1] for r in runs})
        lines.append(
            f"| {kind} | {scenario} | {len(runs)} | {held} | "
            + ", ".join(f"`{name}`" for name in tests)
            + " |"
        )
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(by_scenario)} scenarios, {len(results)} test cases -> {args.out}")
    failed = [r for r in results if r["outcome"] != "passed"]
    for result in failed:
        print(f"did not hold: {result['scenario']} ({result['test']})")
    return 1 if failed or run.returncode not in (0,) else 0


if __name__ == "__main__":
    raise SystemExit(main())
