"""Settings: every environment variable pmteam reads, validated at start with the fix named."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticUndefined
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.core.cron import crontab_trigger

CommaList = Annotated[list[str], NoDecode]

_PLACEHOLDER = re.compile(r"(your|changeme|placeholder|example|xxxx|\.\.\.)", re.IGNORECASE)

# The URL schemes storage.db knows how to turn into its two async drivers (normalise_url).
SQLITE_DRIVERS = frozenset({"sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"})
POSTGRES_DRIVERS = frozenset(
    {"postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2", "postgresql+asyncpg"}
)
DATABASE_URL_EXAMPLES = (
    "sqlite+aiosqlite:///./pmteam.db (SQLite) or "
    "postgresql://user:password@host:5432/pmteam (PostgreSQL, through psycopg)"
)
SECRET_NAMES = frozenset(
    {"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "ANTHROPIC_API_KEY"}
)
# What a Slack token's prefix says it is, for telling people which variable it belongs in.
_TOKEN_KINDS = {
    "xoxb-": "a bot token (xoxb-…)",
    "xapp-": "an app-level token (xapp-…)",
    "xoxp-": "a user token (xoxp-…)",
    "xoxe": "a rotating or refresh token (xoxe…)",
    "xoxr-": "a refresh token (xoxr-…)",
}


class ConfigError(Exception):
    """Settings that can't work; the message lists each problem with its fix."""


# --- MCP servers (PMTEAM_MCP_SERVERS) ----------------------------------------------------------

MCP_SERVER_NAME = re.compile(r"^[a-z0-9_-]{1,32}$")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
MCP_SERVERS_EXAMPLE = (
    '{"github": {"url": "https://api.githubcopilot.com/mcp/", '
    '"headers": {"Authorization": "Bearer ${GITHUB_TOKEN}"}}}'
)


class MissingVariable(ValueError):
    """A `${VAR}` in PMTEAM_MCP_SERVERS names a variable the environment doesn't have."""

    def __init__(self, server: str, variable: str) -> None:
        self.server = server
        self.variable = variable
        super().__init__(
            f"PMTEAM_MCP_SERVERS: the {server} server uses ${{{variable}}}, but {variable} is "
            "not set in the environment; export it (e.g. in the service's environment or "
            "`docker run -e`), or remove the reference"
        )


def _expand(text: str, environ: Mapping[str, str], server: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise MissingVariable(server, name)
        return environ[name]

    return _VARIABLE.sub(value, text)


class McpServerConfig(BaseModel):
    """One server of PMTEAM_MCP_SERVERS: a streamable-HTTP `url` with `headers`, or a stdio
    `command` with `args` and `env`. `${VAR}` in any value is read from the environment when
    pmteam connects; header and env values are secrets (repr hides them, logs redact them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, SecretStr] = Field(default_factory=dict)
    cwd: str | None = None

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if (self.url is None) == (self.command is None):
            raise ValueError('give either "url" (streamable HTTP) or "command" (stdio)')
        if self.url is not None:
            if not self.url.startswith(("http://", "https://", "${")):
                raise ValueError('"url" must start with https:// (or http://)')
            if self.args or self.env or self.cwd:
                raise ValueError('"args", "env" and "cwd" go with "command", not "url"')
        elif self.headers:
            raise ValueError('"headers" go with "url"; a stdio server gets "env" instead')
        return self

    @property
    def transport(self) -> Literal["http", "stdio"]:
        return "http" if self.url is not None else "stdio"

    def _texts(self) -> list[str]:
        texts = [self.url or "", self.command or "", self.cwd or "", *self.args]
        texts += [v.get_secret_value() for v in (*self.headers.values(), *self.env.values())]
        return texts

    def variables(self) -> list[str]:
        """The environment variables its `${VAR}`s name, in order, once each."""
        found = [match.group(1) for text in self._texts() for match in _VARIABLE.finditer(text)]
        return list(dict.fromkeys(found))

    def secrets(self, environ: Mapping[str, str]) -> list[str]:
        """What must never be logged: the header and env values as written and as expanded,
        and the value of every variable it names."""
        values = [v.get_secret_value() for v in (*self.headers.values(), *self.env.values())]
        values += [environ[name] for name in self.variables() if name in environ]
        return [v for v in values if v]

    def expanded(self, name: str, environ: Mapping[str, str]) -> McpServerConfig:
        """This server with every `${VAR}` replaced; MissingVariable names one that isn't set."""

        def secret(value: SecretStr) -> SecretStr:
            return SecretStr(_expand(value.get_secret_value(), environ, name))

        return McpServerConfig(
            url=_expand(self.url, environ, name) if self.url is not None else None,
            headers={key: secret(value) for key, value in self.headers.items()},
            command=_expand(self.command, environ, name) if self.command is not None else None,
            args=[_expand(arg, environ, name) for arg in self.args],
            env={key: secret(value) for key, value in self.env.items()},
            cwd=_expand(self.cwd, environ, name) if self.cwd is not None else None,
        )


def _parse_mcp_servers(value: object) -> dict[str, McpServerConfig]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError(
                f"PMTEAM_MCP_SERVERS is not JSON ({exc}); write e.g. {MCP_SERVERS_EXAMPLE}"
            ) from None
    if not isinstance(value, dict):
        raise ValueError(
            "PMTEAM_MCP_SERVERS must be a JSON object of servers by name; "
            f"write e.g. {MCP_SERVERS_EXAMPLE}"
        )
    servers: dict[str, McpServerConfig] = {}
    for name, entry in value.items():
        if not isinstance(name, str) or not MCP_SERVER_NAME.match(name):
            raise ValueError(
                f"PMTEAM_MCP_SERVERS: {name!r} is not a server name; use 1 to 32 of a-z, 0-9, "
                "_ and - (the engineer sees its tools as <name>__<tool>)"
            )
        if isinstance(entry, McpServerConfig):
            servers[name] = entry
            continue
        try:
            servers[name] = McpServerConfig.model_validate(entry)
        except ValidationError as exc:
            problems = "; ".join(
                (f"{'.'.join(str(p) for p in error['loc'])}: " if error["loc"] else "")
                + str(error["msg"]).removeprefix("Value error, ")
                for error in exc.errors()
            )
            raise ValueError(f"PMTEAM_MCP_SERVERS: the {name} server: {problems}") from None
    return servers


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _token_kind(token: str) -> str | None:
    return next((kind for prefix, kind in _TOKEN_KINDS.items() if token.startswith(prefix)), None)


def display_database_url(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(a URL that can't be read)" if "@" in url else url


def _check_placeholder(name: str, secret: SecretStr | None) -> None:
    if secret is not None and _PLACEHOLDER.search(secret.get_secret_value()):
        raise ValueError(
            f"{name} still holds a placeholder from .env.example; paste the real value "
            "from your Slack app's settings page (api.slack.com/apps)"
        )


class Settings(BaseSettings):
    """pmteam's configuration. Names are a contract (DESIGN §4); `.env` is read too."""

    # env_ignore_empty: `NAME=` in the environment or `.env` means the default (DESIGN §4).
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        populate_by_name=True,
    )

    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    anthropic_api_key: SecretStr | None = Field(default=None, alias="ANTHROPIC_API_KEY")
    anthropic_base_url: str | None = Field(default=None, alias="ANTHROPIC_BASE_URL")

    mode_setting: Literal["socket", "http"] | None = Field(default=None, alias="PMTEAM_MODE")
    host: str = Field(default="127.0.0.1", alias="PMTEAM_HOST")
    port: int = Field(default=3000, ge=0, le=65535, alias="PMTEAM_PORT")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="PMTEAM_SLACK_API_URL")
    database_url: str = Field(
        default="sqlite+aiosqlite:///./pmteam.db", alias="PMTEAM_DATABASE_URL"
    )
    coordination_channel: str | None = Field(default=None, alias="PMTEAM_COORDINATION_CHANNEL")
    standup_cron: str = Field(default="30 9 * * mon-fri", alias="PMTEAM_STANDUP_CRON")
    timezone: str = Field(default="UTC", alias="PMTEAM_TIMEZONE")
    standup_channels: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, alias="PMTEAM_STANDUP_CHANNELS"
    )
    standup_grace_minutes: int = Field(default=120, ge=0, alias="PMTEAM_STANDUP_GRACE_MINUTES")
    standup_skip_empty: bool = Field(default=False, alias="PMTEAM_STANDUP_SKIP_EMPTY")
    retention_days: int = Field(default=0, ge=0, alias="PMTEAM_RETENTION_DAYS")
    engineer_model: str = Field(default="claude-sonnet-5-5", alias="PMTEAM_ENGINEER_MODEL")
    researcher_model: str = Field(default="claude-haiku-5-5", alias="PMTEAM_RESEARCHER_MODEL")
    # Empty: the researcher's model writes the completion reports.
    report_model: str | None = Field(default=None, alias="PMTEAM_REPORT_MODEL")
    engineer_prompt_file: Path | None = Field(default=None, alias="PMTEAM_ENGINEER_PROMPT_FILE")
    research_web: bool = Field(default=True, alias="PMTEAM_RESEARCH_WEB")
    stream_stall_seconds: float = Field(
        default=60.0, gt=0, le=300, alias="PMTEAM_STREAM_STALL_SECONDS"
    )
    max_concurrent_tasks: int = Field(default=4, ge=1, le=64, alias="PMTEAM_MAX_CONCURRENT_TASKS")
    # Files shared with a request are read up to this size (images 5 MB at most, the API's).
    file_max_mb: float = Field(default=10.0, gt=0, le=32, alias="PMTEAM_FILE_MAX_MB")
    allowed_channels: CommaList = Field(default_factory=list, alias="PMTEAM_ALLOWED_CHANNELS")
    allowed_users: CommaList = Field(default_factory=list, alias="PMTEAM_ALLOWED_USERS")
    pm_users: CommaList = Field(default_factory=list, alias="PMTEAM_PM_USERS")
    lease_seconds: int = Field(default=300, ge=10, alias="PMTEAM_LEASE_SECONDS")
    rate_limit_per_user: int = Field(default=20, ge=0, alias="PMTEAM_RATE_LIMIT_PER_USER")
    # A handoff's owner is reminded once when it is still open after this many days.
    handoff_nudge_days: float = Field(default=3.0, gt=0, le=365, alias="PMTEAM_HANDOFF_NUDGE_DAYS")
    daily_budget_usd: float | None = Field(default=None, gt=0, alias="PMTEAM_DAILY_BUDGET_USD")
    user_daily_budget_usd: float | None = Field(
        default=None, gt=0, alias="PMTEAM_USER_DAILY_BUDGET_USD"
    )
    mcp_servers: Annotated[dict[str, McpServerConfig], NoDecode] = Field(
        default_factory=dict, alias="PMTEAM_MCP_SERVERS"
    )
    mcp_write_tools: CommaList = Field(default_factory=list, alias="PMTEAM_MCP_WRITE_TOOLS")
    mcp_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, alias="PMTEAM_MCP_TIMEOUT_SECONDS"
    )
    mcp_approval_minutes: float = Field(
        default=10.0, gt=0, le=1440, alias="PMTEAM_MCP_APPROVAL_MINUTES"
    )
    log_format: Literal["console", "json"] | None = Field(default=None, alias="PMTEAM_LOG_FORMAT")
    log_level: str = Field(default="INFO", alias="PMTEAM_LOG_LEVEL")

    _split = field_validator(
        "allowed_channels", "allowed_users", "pm_users", "mcp_write_tools", mode="before"
    )(_split_commas)
    _mcp_servers = field_validator("mcp_servers", mode="before")(_parse_mcp_servers)

    @field_validator("daily_budget_usd", "user_daily_budget_usd", mode="before")
    @classmethod
    def _no_budget_when_empty(cls, value: object) -> object:
        """`PMTEAM_DAILY_BUDGET_USD=` (empty, as .env.example has it) means no cap."""
        if isinstance(value, str):
            value = value.strip().removeprefix("$").strip()
            return value or None
        return value

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        token = value.get_secret_value()
        if token.startswith("xapp-"):
            raise ValueError(
                "SLACK_BOT_TOKEN holds an app-level token (xapp-…). That one belongs in "
                "SLACK_APP_TOKEN; the bot token starts with xoxb- and is under "
                "'OAuth & Permissions' after you install the app"
            )
        if not token.startswith("xoxb-"):
            kind = _token_kind(token)
            raise ValueError(
                f"SLACK_BOT_TOKEN holds {kind}, but pmteam acts as its bot: use the "
                "Bot User OAuth Token (xoxb-…) from 'OAuth & Permissions'"
                if kind
                else "SLACK_BOT_TOKEN must be a bot token starting with xoxb- "
                "('OAuth & Permissions' → Bot User OAuth Token)"
            )
        _check_placeholder("SLACK_BOT_TOKEN", value)
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        token = value.get_secret_value()
        if token.startswith("xoxb-"):
            raise ValueError(
                "SLACK_APP_TOKEN holds a bot token (xoxb-…). That one belongs in "
                "SLACK_BOT_TOKEN; the app-level token starts with xapp- ('Basic Information' "
                "→ App-Level Tokens, scope connections:write)"
            )
        if not token.startswith("xapp-"):
            kind = _token_kind(token)
            raise ValueError(
                (f"SLACK_APP_TOKEN holds {kind}; " if kind else "SLACK_APP_TOKEN must be ")
                + "an app-level token starting with xapp- "
                "('Basic Information' → App-Level Tokens, scope connections:write)"
            )
        _check_placeholder("SLACK_APP_TOKEN", value)
        return value

    @field_validator("slack_signing_secret", "anthropic_api_key")
    @classmethod
    def _empty_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"PMTEAM_TIMEZONE={value!r} is not an IANA time zone; use a name such as "
                "'Europe/Berlin' or 'America/New_York'"
            ) from exc
        return value

    @field_validator("standup_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        try:
            crontab_trigger(value, timezone=ZoneInfo("UTC"))
        except ValueError as exc:
            raise ValueError(
                f"PMTEAM_STANDUP_CRON={value!r} is not a crontab expression ({exc}); "
                "the default is '30 9 * * mon-fri' (minute hour day month weekday)"
            ) from exc
        return value

    @field_validator("standup_channels", mode="before")
    @classmethod
    def _parse_standup_channels(cls, value: object) -> object:
        """`C123=30 9 * * mon-fri;C456=0 10 * * *` → {"C123": "30 9 * * mon-fri", ...}."""
        if not isinstance(value, str):
            return value
        channels: dict[str, str] = {}
        for entry in value.split(";"):
            if not entry.strip():
                continue
            channel, sep, cron = entry.partition("=")
            channel, cron = channel.strip(), " ".join(cron.split())
            if not sep or not channel or not cron:
                raise ValueError(
                    f"PMTEAM_STANDUP_CHANNELS entry {entry.strip()!r} is not CHANNEL=CRONTAB; "
                    "write e.g. 'C123=30 9 * * mon-fri;C456=0 10 * * *'"
                )
            try:
                crontab_trigger(cron, timezone=ZoneInfo("UTC"))
            except ValueError as exc:
                raise ValueError(
                    f"PMTEAM_STANDUP_CHANNELS: {cron!r} (for {channel}) is not a crontab "
                    f"expression ({exc}); use minute hour day month weekday"
                ) from exc
            channels[channel] = cron
        return channels

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                f"PMTEAM_DATABASE_URL={display_database_url(value)!r} is not a database URL; "
                f"write e.g. {DATABASE_URL_EXAMPLES}"
            ) from None
        if url.drivername not in SQLITE_DRIVERS | POSTGRES_DRIVERS:
            raise ValueError(
                f"PMTEAM_DATABASE_URL={display_database_url(value)!r} names the database "
                f"driver {url.drivername!r}, which pmteam doesn't support; "
                f"use {DATABASE_URL_EXAMPLES}"
            )
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @model_validator(mode="after")
    def _mcp_tools_known(self) -> Settings:
        """Each write tool names a configured server, and every `${VAR}` is set."""
        for entry in self.mcp_write_tools:
            server, dot, tool = entry.partition(".")
            if not dot or not tool or not MCP_SERVER_NAME.match(server):
                raise ValueError(
                    f"PMTEAM_MCP_WRITE_TOOLS: {entry!r} is not <server>.<tool>; write e.g. "
                    "github.create_issue"
                )
            if server not in self.mcp_servers:
                raise ValueError(
                    f"PMTEAM_MCP_WRITE_TOOLS: {entry!r} names the server {server!r}, which "
                    "PMTEAM_MCP_SERVERS doesn't define"
                )
        for name, config in self.mcp_servers.items():
            config.expanded(name, os.environ)  # MissingVariable names what to set
        return self

    @model_validator(mode="after")
    def _prompt_file_exists(self) -> Settings:
        if self.engineer_prompt_file is not None and not self.engineer_prompt_file.is_file():
            raise ValueError(
                f"PMTEAM_ENGINEER_PROMPT_FILE={self.engineer_prompt_file} does not exist; "
                "point it at a markdown file or unset it to use the built-in prompt"
            )
        return self

    @property
    def mode(self) -> Literal["socket", "http"]:
        if self.mode_setting is not None:
            return self.mode_setting
        return "socket" if self.slack_app_token else "http"

    def mode_problems(self) -> list[str]:
        """What the chosen mode (Socket Mode or HTTP) still needs, each with its fix."""
        if self.mode == "socket" and self.slack_app_token is None:
            return [
                "PMTEAM_MODE=socket needs SLACK_APP_TOKEN (xapp-…, scope connections:write), "
                "from 'Basic Information' → App-Level Tokens."
            ]
        if self.mode == "http" and self.slack_signing_secret is None:
            return [
                "HTTP mode needs SLACK_SIGNING_SECRET ('Basic Information' → Signing Secret), "
                "or set SLACK_APP_TOKEN to use Socket Mode instead."
            ]
        return []

    def check_for_run(self) -> None:
        """Raise ConfigError listing everything `pmteam run` still needs."""
        problems: list[str] = []
        if self.slack_bot_token is None:
            problems.append(
                "SLACK_BOT_TOKEN is not set. Create the Slack app from manifest.yml "
                "(api.slack.com/apps → Create New App → From a manifest), install it, and "
                "copy the Bot User OAuth Token (xoxb-…). To try pmteam without a Slack app, "
                "run `uv run pmteam sandbox`."
            )
        problems += self.mode_problems()
        if problems:
            raise ConfigError("\n".join(f"- {p}" for p in problems))

    def secrets(self) -> list[str]:
        """The secret values set, so logging can redact them wherever they appear."""
        values = (
            self.slack_bot_token,
            self.slack_app_token,
            self.slack_signing_secret,
            self.anthropic_api_key,
        )
        secrets = [v.get_secret_value() for v in values if v is not None]
        for server in self.mcp_servers.values():
            secrets += server.secrets(os.environ)
        return secrets


def load_settings(**overrides: object) -> Settings:
    """Read the environment (and `.env`); ConfigError says what to fix, one line each."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = [f"- {_describe(error)}" for error in exc.errors()]
        raise ConfigError("\n".join(lines)) from None


def _describe(error: ErrorDetails) -> str:
    """One line naming the variable and the fix; our validators' messages already do both."""
    field_name = str(error["loc"][0]) if error["loc"] else ""
    field = Settings.model_fields.get(field_name) or next(
        (f for f in Settings.model_fields.values() if f.alias == field_name), None
    )
    name = field.alias if field is not None and field.alias else field_name
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "value_error":
        return message if not name or message.startswith(name) else f"{name}: {message}"
    shown = name if name in SECRET_NAMES else f"{name}={error['input']!r}"
    default = None if field is None else field.default
    fix = "; leave it empty or unset for the default"
    if default not in (None, PydanticUndefined):
        fix += f" ({default})"
    return f"{shown}: {message}{fix}"
