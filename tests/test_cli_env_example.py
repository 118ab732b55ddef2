""".env.example works as shipped: copied to .env, with only its empty lines filled in, every
`pmteam doctor` check passes, in HTTP mode and in Socket Mode."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config import load_settings
from sandbox.model import FakeModel
from sandbox.slack import FakeSlack
from tests.test_cli import run_cli

EXAMPLE = Path(__file__).resolve().parent.parent / ".env.example"
# The lines a newcomer fills in; everything else is commented out at its default.
TO_FILL_IN = {
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "ANTHROPIC_API_KEY",
    "PMTEAM_COORDINATION_CHANNEL",
}
SETTING = re.compile(r"^(?P<name>[A-Z_]+)=(?P<value>.*)$")


def _set_lines(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        match = SETTING.match(line)
        if match:
            found[match["name"]] = match["value"]
    return found


def fill_in(text: str, values: dict[str, str]) -> str:
    """What a newcomer does: paste each value after its `NAME=`."""
    lines = []
    for line in text.splitlines():
        match = SETTING.match(line)
        if match and match["name"] in values:
            line = f"{match['name']}={values[match['name']]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def test_env_example_sets_only_the_lines_to_fill_in_and_leaves_them_empty() -> None:
    assert _set_lines(EXAMPLE.read_text()) == dict.fromkeys(TO_FILL_IN, "")


def test_env_example_as_shipped_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(EXAMPLE.read_text())

    settings = load_settings()

    assert settings.mode == "http" and settings.log_format is None
    assert (settings.host, settings.port) == ("127.0.0.1", 3000)
    assert settings.database_url == "sqlite+aiosqlite:///./pmteam.db"


@pytest.mark.parametrize("mode", ["http", "socket"])
async def test_a_filled_in_copy_of_env_example_passes_every_doctor_check(
    mode: str, tmp_path: Path, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    values = {
        "SLACK_BOT_TOKEN": "xoxb-1-2-newcomer",
        "ANTHROPIC_API_KEY": "sk-ant-newcomer",
        "PMTEAM_COORDINATION_CHANNEL": "C0PM",
    }
    if mode == "socket":
        values["SLACK_APP_TOKEN"] = "xapp-1-A0PMTEAM-1-newcomer"
    else:
        values["SLACK_SIGNING_SECRET"] = "8f742231b10e8888abcd99yyyzzz85a5"
    (tmp_path / ".env").write_text(fill_in(EXAMPLE.read_text(), values))
    where_the_fakes_are = {
        "PMTEAM_SLACK_API_URL": fake_slack.api_url,
        "ANTHROPIC_BASE_URL": fake_model.base_url,
    }

    ran = await run_cli("doctor", cwd=tmp_path, env=where_the_fakes_are)

    assert ran.code == 0, ran.out + ran.err
    assert "FAIL" not in ran.out
    expected = ["mode", "database", "slack", "scopes", "channel", "model"]
    if mode == "socket":
        expected.append("socket")
    for name in expected:
        assert f"ok    {name:<12}" in ran.out, name
    assert ("Socket Mode" if mode == "socket" else "HTTP mode") in ran.out
    assert "will be created and migrated by `pmteam run`" in ran.out
    assert not (tmp_path / "pmteam.db").exists()
    assert "xoxb-1-2-newcomer" not in ran.out + ran.err
