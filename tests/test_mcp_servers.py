"""pmteam's MCP connections against a real MCP server (tests/mcp_server.py) over stdio and
streamable HTTP: tools listed, calls answered, deadlines, crashes, late servers, secrets."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.config import ConfigError, McpServerConfig, load_settings
from bot.runtime.mcp import CallTimedOut, McpServers, ServerUnavailable
from tests.mcp_support import (
    TRACKER_TOKEN,
    calls_made,
    free_port,
    http_tracker,
    stdio_tracker,
)
from tests.test_cli import SETTINGS_PREFIXES

AUTH = {"Authorization": "Bearer ${TRACKER_TOKEN}"}
ENVIRON = {"TRACKER_TOKEN": TRACKER_TOKEN}
TRACKER_TOOLS = [
    "create_issue",
    "delete_issue",
    "export_all",
    "get_comment",
    "get_issue",
    "issues.search",
    "slow_report",
]


@pytest.fixture
def calls_file(tmp_path: Path) -> Path:
    return tmp_path / "calls.jsonl"


@pytest.fixture
async def open_servers() -> AsyncIterator[Callable[..., McpServers]]:
    """McpServers made by the test, each closed afterwards."""
    made: list[McpServers] = []

    def make(configs: dict[str, McpServerConfig], **options: object) -> McpServers:
        options.setdefault("call_timeout", 10.0)
        servers = McpServers(configs, **options)  # type: ignore[arg-type]
        made.append(servers)
        return servers

    yield make
    for servers in made:
        await servers.close()


async def until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition still false"
        await asyncio.sleep(0.05)


async def test_a_stdio_server_lists_its_tools_and_answers_with_its_env_expanded(
    open_servers: Callable[..., McpServers], calls_file: Path
) -> None:
    servers = open_servers(
        {"tracker": stdio_tracker(CALLS_FILE="${MCP_CALLS}")},
        environ={"MCP_CALLS": str(calls_file)},
    )
    await servers.start(wait=30)

    [state] = servers.states()
    assert state.connected and state.transport == "stdio" and state.error is None
    assert [tool.name for tool in servers.tools()] == TRACKER_TOOLS
    tools = {tool.name: tool for tool in servers.tools()}
    assert tools["get_issue"].read_only_hint is True
    assert tools["create_issue"].read_only_hint is False
    assert tools["issues.search"].read_only_hint is None
    assert tools["get_issue"].description.startswith("Read one issue of the tracker")
    assert tools["get_issue"].input_schema["properties"]["number"]["type"] == "integer"

    # Called from another task than the connection's, as a turn does.
    reply = await asyncio.create_task(servers.call("tracker", "get_issue", {"number": 12}))

    assert not reply.is_error
    assert reply.text.startswith("Issue #12: Checkout times out under load")
    # The call reached the server, which wrote to the file ${MCP_CALLS} named.
    assert calls_made(calls_file) == [{"tool": "get_issue", "arguments": {"number": 12}}]


async def test_an_http_server_is_sent_the_headers_with_the_token_from_the_environment(
    open_servers: Callable[..., McpServers],
) -> None:
    async with http_tracker() as tracker:
        right = open_servers(
            {"tracker": McpServerConfig(url=tracker.url, headers=AUTH)}, environ=ENVIRON
        )
        wrong = open_servers(
            {"tracker": McpServerConfig(url=tracker.url, headers=AUTH)},
            environ={"TRACKER_TOKEN": "not-the-token"},
        )
        await asyncio.gather(right.start(wait=30), wrong.start(wait=30))

        [state] = right.states()
        assert state.connected and state.transport == "http"
        assert [tool.name for tool in right.tools()] == TRACKER_TOOLS
        reply = await right.call("tracker", "issues.search", {"query": "checkout"})
        assert reply.text == "2 issues match 'checkout': #12, #31"
        # The server refused the other token: no tools, a reason, and no secret in it.
        [refused] = wrong.states()
        assert not refused.connected and wrong.tools() == []
        assert refused.error and "not-the-token" not in refused.error
        with pytest.raises(ServerUnavailable):
            await wrong.call("tracker", "get_issue", {"number": 1})


async def test_an_unknown_tool_is_the_servers_error_not_a_broken_connection(
    open_servers: Callable[..., McpServers],
) -> None:
    servers = open_servers({"tracker": stdio_tracker()})
    await servers.start(wait=30)

    reply = await servers.call("tracker", "drop_database", {})

    assert reply.is_error and "drop_database" in reply.text
    assert servers.states()[0].connected


async def test_a_call_past_its_deadline_times_out_and_the_connection_goes_on(
    open_servers: Callable[..., McpServers], calls_file: Path
) -> None:
    servers = open_servers({"tracker": stdio_tracker(CALLS_FILE=str(calls_file))}, call_timeout=0.5)
    await servers.start(wait=30)
    loop = asyncio.get_running_loop()

    started = loop.time()
    with pytest.raises(CallTimedOut):
        await servers.call("tracker", "slow_report", {"seconds": 30})

    assert loop.time() - started < 5
    reply = await servers.call("tracker", "get_issue", {"number": 3})
    assert reply.text.startswith("Issue #3")
    assert [call["tool"] for call in calls_made(calls_file)] == ["slow_report", "get_issue"]


async def test_a_stdio_server_that_dies_mid_call_is_said_so_and_reconnected(
    open_servers: Callable[..., McpServers], calls_file: Path
) -> None:
    servers = open_servers({"tracker": stdio_tracker(CALLS_FILE=str(calls_file))})
    await servers.start(wait=30)

    with pytest.raises(ServerUnavailable) as crashed:
        await servers.call("tracker", "export_all", {})

    assert "stopped during the call" in crashed.value.reason
    # A new server process is started and connected in the background.
    await until(lambda: servers.states()[0].connected)
    reply = await servers.call("tracker", "get_issue", {"number": 4})
    assert reply.text.startswith("Issue #4")
    assert [call["tool"] for call in calls_made(calls_file)] == ["export_all", "get_issue"]


async def test_an_http_server_killed_mid_call_is_said_so_and_reconnected_once_back(
    open_servers: Callable[..., McpServers],
) -> None:
    async with http_tracker() as tracker:
        servers = open_servers(
            {"tracker": McpServerConfig(url=tracker.url, headers=AUTH)}, environ=ENVIRON
        )
        await servers.start(wait=30)
        call = asyncio.create_task(servers.call("tracker", "slow_report", {"seconds": 30}))
        await asyncio.sleep(0.5)

        await tracker.kill()

        with pytest.raises(ServerUnavailable):
            await asyncio.wait_for(call, 10)
        await until(lambda: not servers.states()[0].connected)
        await tracker.start()  # the same port again
        await until(lambda: servers.states()[0].connected)
        reply = await servers.call("tracker", "get_issue", {"number": 5})
        assert reply.text.startswith("Issue #5")


async def test_an_idle_server_that_goes_away_is_noticed_without_a_call(
    open_servers: Callable[..., McpServers],
) -> None:
    async with http_tracker() as tracker:
        servers = open_servers(
            {"tracker": McpServerConfig(url=tracker.url, headers=AUTH)},
            environ=ENVIRON,
            refresh_every=0.3,
        )
        await servers.start(wait=30)
        assert servers.states()[0].connected

        await tracker.kill()

        # Its tools are withdrawn before any turn tries one.
        await until(lambda: not servers.states()[0].connected)
        assert servers.tools() == []
        await tracker.start()
        await until(lambda: servers.states()[0].connected)
        assert len(servers.tools()) == len(TRACKER_TOOLS)


async def test_a_server_that_is_not_up_at_start_is_connected_once_it_is(
    open_servers: Callable[..., McpServers],
) -> None:
    port = free_port()
    servers = open_servers(
        {"tracker": McpServerConfig(url=f"http://127.0.0.1:{port}/mcp", headers=AUTH)},
        environ=ENVIRON,
    )

    await servers.start(wait=30)  # its first attempt fails at once: nothing listens

    [state] = servers.states()
    assert not state.connected and state.error and "ConnectError" in state.error
    assert servers.tools() == []
    with pytest.raises(ServerUnavailable):
        await servers.call("tracker", "get_issue", {"number": 1})
    async with http_tracker(port=port):
        await until(lambda: servers.states()[0].connected)
        assert [tool.name for tool in servers.tools()] == TRACKER_TOOLS
        reply = await servers.call("tracker", "get_issue", {"number": 6})
        assert reply.text.startswith("Issue #6")


async def test_a_missing_command_is_an_error_and_other_servers_carry_on(
    open_servers: Callable[..., McpServers],
) -> None:
    servers = open_servers(
        {"broken": McpServerConfig(command="/no/such/mcp-server"), "tracker": stdio_tracker()}
    )

    await servers.start(wait=30)

    broken, tracker = servers.states()
    assert not broken.connected and broken.error and "FileNotFoundError" in broken.error
    assert tracker.connected
    assert {tool.server for tool in servers.tools()} == {"tracker"}


# --- settings ------------------------------------------------------------------------------


def _load(**values: str) -> object:
    return load_settings(_env_file=None, **values)


def test_servers_are_read_from_json_with_their_variables_left_for_connect_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_0123456789abcdefghijABCDEFGHIJ")
    servers = json.dumps(
        {
            "github": {
                "url": "https://api.githubcopilot.com/mcp/",
                "headers": {"Authorization": "Bearer ${GITHUB_TOKEN}"},
            },
            "db": {"command": "uvx", "args": ["mcp-server-postgres"], "env": {"PGPASSWORD": "pw"}},
        }
    )

    settings = load_settings(
        _env_file=None,
        PMTEAM_MCP_SERVERS=servers,
        PMTEAM_MCP_WRITE_TOOLS="github.create_issue, github.add_issue_comment",
    )

    github = settings.mcp_servers["github"]
    assert github.transport == "http" and settings.mcp_servers["db"].transport == "stdio"
    assert github.headers["Authorization"].get_secret_value() == "Bearer ${GITHUB_TOKEN}"
    assert github.variables() == ["GITHUB_TOKEN"]
    expanded = github.expanded("github", {"GITHUB_TOKEN": "ghp_x"})
    assert expanded.headers["Authorization"].get_secret_value() == "Bearer ghp_x"
    assert settings.mcp_write_tools == ["github.create_issue", "github.add_issue_comment"]
    assert (settings.mcp_timeout_seconds, settings.mcp_approval_minutes) == (30.0, 10.0)
    # Secrets: hidden from repr, and known to the log redactor, expanded or not.
    assert "ghp_0123456789" not in repr(settings) and "pw" not in repr(github)
    assert "ghp_0123456789abcdefghijABCDEFGHIJ" in settings.secrets()


def test_a_variable_missing_from_the_environment_is_named_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("JIRA_TOKEN", raising=False)
    servers = {"jira": {"url": "https://jira.example/mcp", "headers": {"X-Token": "${JIRA_TOKEN}"}}}

    with pytest.raises(ConfigError) as refused:
        load_settings(_env_file=None, PMTEAM_MCP_SERVERS=json.dumps(servers))

    assert str(refused.value) == (
        "- PMTEAM_MCP_SERVERS: the jira server uses ${JIRA_TOKEN}, but JIRA_TOKEN is not set in "
        "the environment; export it (e.g. in the service's environment or `docker run -e`), or "
        "remove the reference"
    )


@pytest.mark.parametrize(
    ("values", "said"),
    [
        ({"PMTEAM_MCP_SERVERS": "{github: 1}"}, "PMTEAM_MCP_SERVERS is not JSON"),
        ({"PMTEAM_MCP_SERVERS": '["github"]'}, "must be a JSON object of servers by name"),
        (
            {"PMTEAM_MCP_SERVERS": '{"Git Hub": {"command": "x"}}'},
            "'Git Hub' is not a server name; use 1 to 32 of a-z, 0-9, _ and -",
        ),
        (
            {"PMTEAM_MCP_SERVERS": '{"gh": {"url": "https://x", "command": "y"}}'},
            'the gh server: give either "url" (streamable HTTP) or "command" (stdio)',
        ),
        (
            {"PMTEAM_MCP_SERVERS": '{"gh": {"url": "ftp://x"}}'},
            '"url" must start with https:// (or http://)',
        ),
        ({"PMTEAM_MCP_SERVERS": '{"gh": {"command": "x", "tools": 1}}'}, "the gh server: tools"),
        (
            {"PMTEAM_MCP_SERVERS": '{"gh": {"command": "x"}}', "PMTEAM_MCP_WRITE_TOOLS": "gh"},
            "PMTEAM_MCP_WRITE_TOOLS: 'gh' is not <server>.<tool>",
        ),
        (
            {
                "PMTEAM_MCP_SERVERS": '{"gh": {"command": "x"}}',
                "PMTEAM_MCP_WRITE_TOOLS": "jira.create_issue",
            },
            "names the server 'jira', which PMTEAM_MCP_SERVERS doesn't define",
        ),
        ({"PMTEAM_MCP_TIMEOUT_SECONDS": "0"}, "PMTEAM_MCP_TIMEOUT_SECONDS='0'"),
    ],
)
def test_mcp_settings_that_cannot_work_are_refused_with_the_fix(
    values: dict[str, str], said: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(_env_file=None, **values)

    assert said in str(refused.value)


# Run in its own process: logging is configured once per process, and this test's setup
# must not leak into the tests that read the log after it.
LOGGING_RUN = """
import asyncio
import os
import structlog
from bot.config import load_settings
from bot.runtime.logging import configure_logging
from bot.runtime.mcp import McpServers

async def main():
    settings = load_settings(_env_file=None)
    configure_logging(log_format="json", secrets=settings.secrets())
    servers = McpServers(settings.mcp_servers, call_timeout=5)
    await servers.start(wait=30)
    await servers.close()
    log = structlog.get_logger("pmteam.test")
    # However a value gets into a line, it is masked.
    log.warning("calling", headers={"Authorization": "Bearer " + os.environ["GITHUB_TOKEN"]})
    log.warning("spawning", env="PGPASSWORD=pg-password-literal")

asyncio.run(main())
"""


async def test_mcp_secrets_never_reach_the_logs(tmp_path: Path) -> None:
    token = "ghp_SecretSecretSecret0123456789"
    port = free_port()  # nothing listens: the connection fails and is logged
    servers = {
        "github": {
            "url": f"http://127.0.0.1:{port}/mcp",
            "headers": {"Authorization": "Bearer ${GITHUB_TOKEN}"},
        },
        "db": {"command": "/no/such/server", "env": {"PGPASSWORD": "pg-password-literal"}},
    }
    clean = {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_PREFIXES)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LOGGING_RUN,
        cwd=tmp_path,
        env={**clean, "GITHUB_TOKEN": token, "PMTEAM_MCP_SERVERS": json.dumps(servers)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)

    text = out.decode()
    assert process.returncode == 0, text + err.decode()
    assert "MCP server unavailable" in text  # the failures were logged...
    assert token not in text + err.decode()  # ...without the secrets
    assert "pg-password-literal" not in text + err.decode()
    assert text.count("[redacted]") >= 2
