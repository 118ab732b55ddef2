"""`pmteam doctor` connects to each MCP server of PMTEAM_MCP_SERVERS, lists its tools by how
the engineer gets them, and says how to fix one that won't connect, without its secrets."""

from __future__ import annotations

import json
from pathlib import Path

from tests.mcp_support import free_port, stdio_tracker_json
from tests.test_cli import run_cli

GH_TOKEN = "ghp_DoctorDoctorDoctor0123456789"


async def test_doctor_lists_each_mcp_server_with_its_tools_and_the_fix_for_a_failure(
    tmp_path: Path,
) -> None:
    servers = {
        "tracker": stdio_tracker_json(),
        "jira": {"command": "/no/such/jira-mcp"},
        "gh": {
            "url": f"http://127.0.0.1:{free_port()}/mcp",  # nothing listens there
            "headers": {"Authorization": "Bearer ${GH_TOKEN}"},
        },
    }
    env = {
        "PMTEAM_MCP_SERVERS": json.dumps(servers),
        "PMTEAM_MCP_WRITE_TOOLS": "tracker.create_issue,tracker.close_issue",
        "GH_TOKEN": GH_TOKEN,
    }

    ran = await run_cli("doctor", cwd=tmp_path, env=env)

    out = ran.out
    assert ran.code == 1, out + ran.err  # Slack isn't set up here either
    printed = out.splitlines()
    first = next(i for i, line in enumerate(printed) if line[6:].startswith("mcp "))
    lines = printed[first : printed.index("", first)]  # the MCP checks come last
    indent = " " * 19
    assert lines == [
        "FAIL  mcp          gh (http): cannot connect: ConnectError: All connection attempts "
        "failed",
        f"{indent}fix: check the URL and headers of gh in PMTEAM_MCP_SERVERS, and the tokens they "
        "name (`pmteam doctor --timeout 10` waits longer)",
        "FAIL  mcp          jira (stdio): cannot connect: FileNotFoundError: [Errno 2] No such "
        "file or directory: '/no/such/jira-mcp'",
        f"{indent}fix: run the jira command of PMTEAM_MCP_SERVERS by hand: it must start and "
        "speak MCP on stdin/stdout",
        "ok    mcp          tracker (stdio): connected, 7 tools",
        f"{indent}read-only: export_all, get_comment, get_issue, issues.search, slow_report",
        f"{indent}writes, asks the requester first: create_issue",
        f"{indent}withheld (the server says they write; list them in PMTEAM_MCP_WRITE_TOOLS to "
        "offer them with approval): delete_issue",
        "FAIL  mcp          tracker: PMTEAM_MCP_WRITE_TOOLS lists tracker.close_issue, which "
        "the server doesn't offer",
        f"{indent}fix: spell each as <server>.<tool>, with the tool's name as listed above",
    ]
    assert GH_TOKEN not in out + ran.err


async def test_doctor_names_a_variable_an_mcp_server_needs_and_the_environment_lacks(
    tmp_path: Path,
) -> None:
    servers = {"gh": {"url": "https://x.example/mcp", "headers": {"X-Key": "${NO_SUCH_KEY}"}}}

    ran = await run_cli("doctor", cwd=tmp_path, env={"PMTEAM_MCP_SERVERS": json.dumps(servers)})

    assert ran.code == 2, ran.out + ran.err
    assert "the gh server uses ${NO_SUCH_KEY}, but NO_SUCH_KEY is not set" in ran.err
