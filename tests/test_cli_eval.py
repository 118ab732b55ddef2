"""`pmteam eval`: the eight cases through the real agents, a table, and an exit status a team
can gate on; offline for CI, on the operator's key and models otherwise."""

from __future__ import annotations

import json
from pathlib import Path

from agents.evaluation import CHECKS
from sandbox.model import FakeModel
from tests.agents.support import messages_requests
from tests.test_cli import run_cli

CASES = (
    "schema_review",
    "api_design",
    "queue",
    "slow_query",
    "migration",
    "security",
    "vague",
    "off_topic",
)


def table_rows(out: str) -> dict[str, dict[str, str]]:
    """The table's rows by case name, each cell under its column's header."""
    lines = out.splitlines()
    header = lines[0].replace("cost $", "cost_usd").split()
    rows = {}
    for line in lines[2:]:
        if line.startswith("-"):
            break
        cells = line.split()
        rows[cells[0]] = dict(zip(header, cells, strict=True))
    return rows


async def test_offline_eval_prints_every_case_with_its_cost_and_passes(tmp_path: Path) -> None:
    results = tmp_path / "eval.json"

    ran = await run_cli("eval", "--offline", "--json", str(results), cwd=tmp_path)

    assert ran.code == 0, ran.out + ran.err
    rows = table_rows(ran.out)
    assert list(rows) == list(CASES)
    assert all(0 < float(row["cost_usd"]) <= 0.07 for row in rows.values())
    assert all(row[check] in "✓✗" for row in rows.values() for check in CHECKS)
    total = next(line for line in ran.out.splitlines() if line.startswith("total"))
    assert abs(float(total.split()[1]) - sum(float(r["cost_usd"]) for r in rows.values())) < 1e-3
    assert ran.out.splitlines()[-1].startswith("score ")
    assert ran.out.splitlines()[-1].endswith("≥ threshold 0.85: pass")
    progress = [line for line in ran.err.splitlines() if line.startswith("[")]
    assert [line.split()[1] for line in progress] == [f"{name}:" for name in CASES]
    document = json.loads(results.read_text())
    assert [case["name"] for case in document["cases"]] == list(CASES)
    for case in document["cases"]:
        assert list(case["checks"]) == list(CHECKS)
        assert all(isinstance(c["passed"], bool) for c in case["checks"].values())
    assert document["passed"] is True and document["offline"] is True


async def test_a_threshold_no_run_can_reach_exits_1(tmp_path: Path) -> None:
    ran = await run_cli(
        "eval", "--offline", "--case", "slow_query", "--threshold", "1.01", cwd=tmp_path
    )

    assert ran.code == 1, ran.out + ran.err
    assert ran.out.splitlines()[-1].endswith("< threshold 1.01: FAIL")


async def test_without_a_key_and_without_offline_it_says_what_to_do(tmp_path: Path) -> None:
    ran = await run_cli("eval", cwd=tmp_path)

    assert ran.code == 2
    assert "set ANTHROPIC_API_KEY or pass --offline" in ran.err
    assert ran.out == ""


async def test_case_runs_only_the_cases_named(tmp_path: Path) -> None:
    ran = await run_cli("eval", "--offline", "--case", "off_topic", "--case", "queue", cwd=tmp_path)

    assert ran.code == 0, ran.out + ran.err
    assert list(table_rows(ran.out)) == ["queue", "off_topic"]
    assert "[2/2] off_topic" in ran.err


async def test_an_unknown_case_is_a_usage_error_that_lists_the_cases(tmp_path: Path) -> None:
    ran = await run_cli("eval", "--offline", "--case", "lasagne", cwd=tmp_path)

    assert ran.code == 2
    assert "no case named lasagne; the cases are: schema_review, api_design" in ran.err


async def test_with_a_key_it_uses_the_operators_key_base_url_and_models(tmp_path: Path) -> None:
    key = "sk-ant-operator-secret-7f3a"
    # This fake refuses any other key, so a run that passes sent the operator's.
    async with FakeModel(api_key=key) as fake:
        env = {
            "ANTHROPIC_API_KEY": key,
            "ANTHROPIC_BASE_URL": fake.base_url,
            "PMTEAM_ENGINEER_MODEL": "claude-opus-5-5",
        }
        ran = await run_cli("eval", "--case", "security", cwd=tmp_path, env=env)

    assert ran.code == 0, ran.out + ran.err
    models = {r.body["model"] for r in messages_requests(fake)}
    assert models == {"claude-opus-5-5", "claude-haiku-5-5"}
    assert "claude-opus-5-5 (engineer)" in ran.err
    assert key not in ran.out + ran.err


async def test_a_rejected_key_makes_every_case_raise_and_the_run_fail(tmp_path: Path) -> None:
    async with FakeModel(api_key="sk-ant-the-right-one") as fake:
        env = {"ANTHROPIC_API_KEY": "sk-ant-a-wrong-one", "ANTHROPIC_BASE_URL": fake.base_url}
        ran = await run_cli("eval", "--case", "vague", cwd=tmp_path, env=env)

    assert ran.code == 1, ran.out + ran.err
    assert "vague: raised ModelRejected" in ran.out
    assert ran.out.splitlines()[-1].endswith("but 1 case(s) raised: FAIL")
    assert "sk-ant-a-wrong-one" not in ran.out + ran.err
