"""Settings fail fast and name the fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("SLACK_", "PMTEAM_", "ANTHROPIC_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout


def test_defaults_match_the_design_contract() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite+aiosqlite:///./pmteam.db"
    assert settings.standup_cron == "30 9 * * mon-fri"
    assert settings.timezone == "UTC"
    assert settings.engineer_model == "claude-sonnet-5-5"
    assert settings.researcher_model == "claude-haiku-5-5"
    assert settings.max_concurrent_tasks == 4
    assert settings.lease_seconds == 300
    assert settings.slack_api_url == "https://slack.com/api/"
    assert (settings.host, settings.port) == ("127.0.0.1", 3000)
    assert settings.mode == "http"


def test_app_token_selects_socket_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-A111-222-abc")
    assert load_settings().mode == "socket"
    monkeypatch.setenv("PMTEAM_MODE", "http")
    assert load_settings().mode == "http"


def test_run_without_bot_token_says_what_to_set() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings().check_for_run()
    message = str(caught.value)
    assert "SLACK_BOT_TOKEN is not set" in message
    assert "manifest.yml" in message
    assert "pmteam sandbox" in message


def test_http_mode_needs_signing_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1-2-abc")
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        load_settings().check_for_run()
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "8f742231b10e8888abcd99yyyzzz85a5")
    load_settings().check_for_run()


def test_app_token_in_bot_token_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xapp-1-A111-222-abc")
    with pytest.raises(ConfigError, match="belongs in SLACK_APP_TOKEN"):
        load_settings()


def test_bot_token_in_app_token_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_APP_TOKEN", "xoxb-1-2-abc")
    with pytest.raises(ConfigError, match="belongs in SLACK_BOT_TOKEN"):
        load_settings()


def test_user_token_in_bot_token_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxp-1-2-3-abc")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value) == (
        "- SLACK_BOT_TOKEN holds a user token (xoxp-…), but pmteam acts as its bot: use the "
        "Bot User OAuth Token (xoxb-…) from 'OAuth & Permissions'"
    )


def test_empty_values_mean_the_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "PMTEAM_MODE=\nPMTEAM_LOG_FORMAT=\nPMTEAM_PORT=\nSLACK_APP_TOKEN=\nPMTEAM_TIMEZONE=\n"
    )
    monkeypatch.setenv("PMTEAM_STANDUP_CRON", "")
    monkeypatch.setenv("PMTEAM_DATABASE_URL", "")

    settings = load_settings()

    assert settings.mode_setting is None and settings.mode == "http"
    assert settings.log_format is None
    assert settings.port == 3000
    assert settings.slack_app_token is None
    assert (settings.timezone, settings.standup_cron) == ("UTC", "30 9 * * mon-fri")
    assert settings.database_url == "sqlite+aiosqlite:///./pmteam.db"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:///./pmteam.db",
        "sqlite:////data/pmteam.db",
        "sqlite+pysqlite:///relative.db",
        "postgresql://pm:secret@db:5432/pmteam",
        "postgres://pm@db/pmteam",
        "postgresql+psycopg://pm@db/pmteam?sslmode=require",
        "postgresql+psycopg2://pm@db/pmteam",
        "postgresql+asyncpg://pm@db/pmteam",
    ],
)
def test_database_urls_pmteam_can_use_are_accepted(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PMTEAM_DATABASE_URL", url)
    assert load_settings().database_url == url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("garbage://x", "PMTEAM_DATABASE_URL='garbage://x' names the database driver 'garbage'"),
        ("garbage", "PMTEAM_DATABASE_URL='garbage' is not a database URL"),
        ("mysql://pm:hunter2@db/pmteam", "'mysql://pm:***@db/pmteam' names the database driver"),
        ("postgresql+pg8000://pm@db/x", "names the database driver 'postgresql+pg8000'"),
    ],
)
def test_a_database_url_pmteam_cant_use_names_the_fix(
    url: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PMTEAM_DATABASE_URL", url)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert expected in message
    assert "sqlite+aiosqlite:///./pmteam.db" in message and "postgresql://" in message
    assert "hunter2" not in message


def test_every_problem_is_one_line_and_all_are_reported_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PMTEAM_DATABASE_URL", "garbage://x")
    monkeypatch.setenv("PMTEAM_STANDUP_CRON", "every morning")
    monkeypatch.setenv("PMTEAM_PORT", "http")
    monkeypatch.setenv("PMTEAM_MODE", "sockets")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    lines = str(caught.value).splitlines()
    assert [line.split("=")[0].split(":")[0] for line in lines] == [
        "- PMTEAM_MODE",
        "- PMTEAM_PORT",
        "- PMTEAM_DATABASE_URL",
        "- PMTEAM_STANDUP_CRON",
    ]
    assert lines[1] == (
        "- PMTEAM_PORT='http': Input should be a valid integer, unable to parse string as an "
        "integer; leave it empty or unset for the default (3000)"
    )


def test_placeholder_token_from_env_example_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-your-bot-token")
    with pytest.raises(ConfigError, match="placeholder"):
        load_settings()


def test_bad_timezone_and_cron_name_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMTEAM_TIMEZONE", "Mars/Olympus")
    monkeypatch.setenv("PMTEAM_STANDUP_CRON", "every morning")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "IANA" in str(caught.value)
    assert "crontab" in str(caught.value)


def test_comma_lists_are_split(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMTEAM_ALLOWED_USERS", "U1, U2,,U3 ")
    assert load_settings().allowed_users == ["U1", "U2", "U3"]


def test_dotenv_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PMTEAM_MAX_CONCURRENT_TASKS=7\n")
    assert load_settings().max_concurrent_tasks == 7


def test_tokens_never_appear_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1-2-verysecret")
    settings = load_settings()
    assert "verysecret" not in repr(settings)
    assert "xoxb-1-2-verysecret" in settings.secrets()


def test_env_example_documents_every_variable() -> None:
    example = (Path(__file__).parent.parent / ".env.example").read_text()
    for field in Settings.model_fields.values():
        assert field.alias is not None
        if field.alias == "ANTHROPIC_BASE_URL":
            assert "# ANTHROPIC_BASE_URL=" in example
            continue
        assert f"{field.alias}=" in example, f"{field.alias} is missing from .env.example"
