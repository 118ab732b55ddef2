"""`pmteam doctor`'s check of the MCP servers: apart, because the MCP SDK takes a second to
import, and only a doctor with servers to check should pay for it."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.cli.doctor import MORE, WAIT_LONGER, Check
from bot.config import Settings
from bot.runtime.mcp import McpServers, ServerState
from bot.services.tool_calls import tool_access

# A stdio MCP server (uvx, docker, npx) may download or build itself before it answers.
MCP_TIMEOUT_FLOOR = 10.0


async def check_mcp(settings: Settings, *, timeout: float) -> list[Check]:
    """Each MCP server of PMTEAM_MCP_SERVERS: connected (as `pmteam run` would, listing its
    tools, calling none), and its tools by how the engineer gets them."""
    if not settings.mcp_servers:
        return []
    wait = max(timeout, MCP_TIMEOUT_FLOOR)
    servers = McpServers(
        settings.mcp_servers, call_timeout=settings.mcp_timeout_seconds, connect_timeout=wait
    )
    # The check's own line says what failed: no "trying again" lines in between.
    logging.getLogger("pmteam.mcp").setLevel(logging.CRITICAL)
    try:
        await servers.start(wait=wait)
        states = servers.states()
    finally:
        await servers.close()
    checks = []
    for state in states:
        if not state.connected:
            checks.append(_mcp_failure(state, wait))
            continue
        checks.append(Check("mcp", True, _mcp_tools(state, settings.mcp_write_tools)))
        offered = {f"{state.name}.{tool.name}" for tool in state.tools}
        unknown = [
            entry
            for entry in settings.mcp_write_tools
            if entry.startswith(f"{state.name}.") and entry not in offered
        ]
        if unknown:
            checks.append(
                Check(
                    "mcp",
                    False,
                    f"{state.name}: PMTEAM_MCP_WRITE_TOOLS lists {', '.join(unknown)}, which "
                    "the server doesn't offer",
                    "spell each as <server>.<tool>, with the tool's name as listed above",
                )
            )
    return checks


def _mcp_tools(state: ServerState, write_tools: Sequence[str]) -> str:
    by_access: dict[str, list[str]] = {"read": [], "write": [], "withheld": []}
    for tool in state.tools:
        by_access[tool_access(tool, write_tools)].append(tool.name)
    lines = [f"{state.name} ({state.transport}): connected, {len(state.tools)} tools"]
    titles = {
        "read": "read-only",
        "write": "writes, asks the requester first",
        "withheld": "withheld (the server says they write; list them in "
        "PMTEAM_MCP_WRITE_TOOLS to offer them with approval)",
    }
    for access, names in by_access.items():
        if names:
            lines.append(f"{titles[access]}: {', '.join(names)}")
    return MORE.join(lines)


def _mcp_failure(state: ServerState, wait: float) -> Check:
    why = state.error or f"no answer within {wait:g} s"
    if state.transport == "stdio":
        fix = (
            f"run the {state.name} command of PMTEAM_MCP_SERVERS by hand: it must start and "
            "speak MCP on stdin/stdout"
        )
    else:
        fix = (
            f"check the URL and headers of {state.name} in PMTEAM_MCP_SERVERS, and the tokens "
            f"they name {WAIT_LONGER}"
        )
    return Check("mcp", False, f"{state.name} ({state.transport}): cannot connect: {why}", fix)
