"""Connections to the team's MCP servers: connected at start, their tools listed, calls made with
a deadline, and a server that fails or dies reconnected in the background with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Literal, TextIO

import httpx2
import pydantic
import structlog
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import (
    AudioContent,
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    Implementation,
    ResourceLink,
    TextContent,
    TextResourceContents,
    Tool,
)
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT

from bot.config import McpServerConfig

log = structlog.get_logger("pmteam.mcp")

CONNECT_TIMEOUT = 20.0  # seconds for a connection attempt's handshake and tool listing
START_WAIT = 15.0  # seconds `start` waits for the first attempts before going on without them
REFRESH_EVERY = 60.0  # seconds between tool listings on a connection: a dead server is noticed
BACKOFF_FIRST = 1.0  # seconds before the first reconnect; doubled after each failure
BACKOFF_MAX = 60.0
CALL_GRACE = 5.0  # seconds past the call's own deadline before the transport is given up on
CLOSE_WAIT = 8.0  # seconds each connection gets to shut down (a stdio server to exit)
LIST_PAGES = 20  # pages of tools/list read at most: a server that never ends its list can't hang


@dataclass(frozen=True)
class ServerTool:
    """A tool as its server lists it."""

    server: str
    name: str
    description: str
    input_schema: dict[str, Any]
    # The server's own word (MCP's readOnlyHint), None when it says nothing.
    read_only_hint: bool | None = None


@dataclass(frozen=True)
class ToolReply:
    """What the server answered a call with: its text (the server's words, untrusted), and
    whether it reports a failure."""

    text: str
    is_error: bool = False


class CallFailed(Exception):
    """The call got no answer from the server's tool; `reason` says why, in pmteam's words."""

    def __init__(self, server: str, reason: str) -> None:
        super().__init__(f"{server}: {reason}")
        self.server = server
        self.reason = reason


class ServerUnavailable(CallFailed):
    """The server isn't connected, or its connection broke during the call."""


class CallTimedOut(CallFailed):
    """The server did not answer within PMTEAM_MCP_TIMEOUT_SECONDS."""


@dataclass(frozen=True)
class ServerState:
    """A server as `pmteam doctor` shows it."""

    name: str
    transport: Literal["http", "stdio"]
    connected: bool
    tools: tuple[ServerTool, ...]
    error: str | None


def failure_text(exc: BaseException) -> str:
    """What went wrong, in a few words: the innermost errors of an exception group, by type
    and message (never a header, which no exception here carries)."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(dict.fromkeys(failure_text(inner) for inner in exc.exceptions))
    message = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def result_text(result: CallToolResult) -> str:
    """A tool result's content as text; what isn't text is described in a line."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, TextContent):
            parts.append(block.text)
        elif isinstance(block, ImageContent | AudioContent):
            kind = "an image" if isinstance(block, ImageContent) else "audio"
            parts.append(f"[{kind} ({block.mime_type}), not shown]")
        elif isinstance(block, ResourceLink):
            parts.append(f"[a link to {block.uri} ({block.name})]")
        elif isinstance(block, EmbeddedResource):
            resource = block.resource
            if isinstance(resource, TextResourceContents):
                parts.append(f"[{resource.uri}]\n{resource.text}")
            else:
                parts.append(f"[{resource.uri} ({resource.mime_type or 'binary'}), not shown]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False, indent=1))
    return "\n\n".join(parts)


def _server_tool(server: str, tool: Tool) -> ServerTool:
    schema = dict(tool.input_schema) if isinstance(tool.input_schema, dict) else {}
    schema.setdefault("type", "object")
    hint = tool.annotations.read_only_hint if tool.annotations is not None else None
    return ServerTool(
        server=server,
        name=tool.name,
        description=(tool.description or "").strip(),
        input_schema=schema,
        read_only_hint=hint,
    )


class McpConnection:
    """One server's connection, owned by one task: the SDK's transports run in task groups
    that must be entered and left in the same task, and a transport that fails cancels the
    task that entered it, which must not be a turn. Calls come from the turns' tasks."""

    def __init__(
        self,
        name: str,
        config: McpServerConfig,
        *,
        call_timeout: float,
        environ: Mapping[str, str],
        errlog: TextIO | None = None,
        refresh_every: float = REFRESH_EVERY,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.name = name
        self.config = config
        self.call_timeout = call_timeout
        self.environ = environ
        self.errlog = errlog
        self.refresh_every = refresh_every
        self.connect_timeout = connect_timeout
        self.tools: tuple[ServerTool, ...] = ()
        self.error: str | None = None
        self.attempted = asyncio.Event()  # set once the first attempt has ended, either way
        self.connected = asyncio.Event()
        self._client: Client | None = None
        self._sessions = 0  # connections made so far
        self._broken = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"pmteam-mcp-{self.name}")

    async def close(self) -> None:
        self._closing.set()
        self._broken.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), CLOSE_WAIT)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        except Exception:  # _run catches its own; this is only a last guard
            log.exception("MCP connection ended badly", server=self.name)

    @property
    def is_connected(self) -> bool:
        return self._client is not None

    def state(self) -> ServerState:
        return ServerState(
            name=self.name,
            transport=self.config.transport,
            connected=self.is_connected,
            tools=self.tools,
            error=self.error,
        )

    async def call(self, tool: str, arguments: dict[str, Any]) -> ToolReply:
        """The server's reply to one call. Raises CallTimedOut past the deadline, and
        ServerUnavailable when the server isn't there (then it is reconnected)."""
        client = self._client
        if client is None:
            raise ServerUnavailable(self.name, f"not connected ({self.error or 'starting'})")
        try:
            async with asyncio.timeout(self.call_timeout + CALL_GRACE):
                result = await client.call_tool(
                    tool, arguments, read_timeout_seconds=self.call_timeout
                )
        except MCPError as exc:
            if exc.code == REQUEST_TIMEOUT:
                raise CallTimedOut(self.name, f"no answer in {self.call_timeout:g} s") from None
            if exc.code == CONNECTION_CLOSED:
                self._lost("the connection closed during the call")
                raise ServerUnavailable(self.name, "it stopped during the call") from None
            # The server answered with a protocol error (unknown tool, bad arguments): its words.
            return ToolReply(text=exc.message, is_error=True)
        except TimeoutError:
            # Not even the SDK's own deadline fired: the transport is stuck.
            self._lost("the transport stopped answering")
            raise CallTimedOut(self.name, f"no answer in {self.call_timeout:g} s") from None
        except pydantic.ValidationError:
            raise CallFailed(self.name, "its answer could not be read") from None
        except Exception as exc:
            self._lost(failure_text(exc))
            raise ServerUnavailable(self.name, "its connection broke during the call") from exc
        return ToolReply(text=result_text(result), is_error=result.is_error)

    def _lost(self, why: str) -> None:
        if not self._broken.is_set():
            log.warning("MCP server connection lost; reconnecting", server=self.name, error=why)
        # Calls from now on are told at once; the connection's task closes it and reconnects.
        self._client = None
        self.tools = ()
        self.connected.clear()
        self.error = why
        self._broken.set()

    async def _run(self) -> None:
        backoff = BACKOFF_FIRST
        while not self._closing.is_set():
            self._broken.clear()
            sessions = self._sessions
            try:
                await self._session()
            except Exception as exc:  # an ExceptionGroup from the transport's task group too
                self.error = failure_text(exc)
            finally:
                self._client = None
                self.tools = ()
                self.connected.clear()
                self.attempted.set()
            if self._closing.is_set():
                break
            if self._sessions > sessions:
                backoff = BACKOFF_FIRST  # it was up: this is a new failure, not the same one
            log.warning(
                "MCP server unavailable; trying again",
                server=self.name,
                transport=self.config.transport,
                error=self.error,
                in_seconds=backoff,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def _session(self) -> None:
        async with AsyncExitStack() as stack:
            client = await self._connect(stack)
            tools = await self._list_tools(client)
            self._client, self.tools, self.error = client, tools, None
            self._sessions += 1
            self.connected.set()
            self.attempted.set()
            log.info(
                "MCP server connected",
                server=self.name,
                transport=self.config.transport,
                tools=len(tools),
            )
            while not self._broken.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._broken.wait(), self.refresh_every)
                if not self._broken.is_set():
                    # The list again (2026-07-28 has no ping): it raises when the server is
                    # gone or hung, and picks up tools the server added or dropped.
                    tools = await self._list_tools(client)
                    if self.is_connected:
                        self.tools = tools

    async def _connect(self, stack: AsyncExitStack) -> Client:
        # ${VAR}s are read now, not at start: the values live only as long as the connection.
        config = self.config.expanded(self.name, self.environ)
        info = Implementation(name="pmteam", version="1")
        if config.url is not None:
            http = await stack.enter_async_context(
                httpx2.AsyncClient(
                    headers={
                        key: value.get_secret_value() for key, value in config.headers.items()
                    },
                    timeout=httpx2.Timeout(self.connect_timeout, read=300.0),
                )
            )
            transport = streamable_http_client(config.url, http_client=http)
        else:
            assert config.command is not None
            params = StdioServerParameters(
                command=config.command,
                args=config.args,
                env={key: value.get_secret_value() for key, value in config.env.items()} or None,
                cwd=config.cwd,
            )
            transport = stdio_client(params, errlog=self.errlog or sys.stderr)
        client = Client(transport, read_timeout_seconds=self.connect_timeout, client_info=info)
        return await stack.enter_async_context(client)

    async def _list_tools(self, client: Client) -> tuple[ServerTool, ...]:
        tools: list[ServerTool] = []
        cursor: str | None = None
        for _ in range(LIST_PAGES):
            page = await client.list_tools(cursor=cursor, cache_mode="refresh")
            tools += [_server_tool(self.name, tool) for tool in page.tools]
            cursor = page.next_cursor
            if not cursor:
                break
        return tuple(sorted(tools, key=lambda tool: tool.name))


class McpServers:
    """The connections to every server of PMTEAM_MCP_SERVERS."""

    def __init__(
        self,
        configs: Mapping[str, McpServerConfig],
        *,
        call_timeout: float,
        environ: Mapping[str, str] | None = None,
        errlog: TextIO | None = None,
        refresh_every: float = REFRESH_EVERY,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.connections = {
            name: McpConnection(
                name,
                config,
                call_timeout=call_timeout,
                environ=os.environ if environ is None else environ,
                errlog=errlog,
                refresh_every=refresh_every,
                connect_timeout=connect_timeout,
            )
            for name, config in sorted(configs.items())
        }

    def __bool__(self) -> bool:
        return bool(self.connections)

    async def start(self, *, wait: float = START_WAIT) -> None:
        """Connect to every server; wait up to `wait` seconds for each one's first attempt, so
        the first turns see their tools. One that fails (or takes longer) is logged and tried
        again in the background; its tools are missing until it connects."""
        if not self.connections:
            return
        for connection in self.connections.values():
            connection.start()
        waits = [
            asyncio.create_task(c.attempted.wait(), name=f"pmteam-mcp-wait-{c.name}")
            for c in self.connections.values()
        ]
        _, pending = await asyncio.wait(waits, timeout=wait)
        for task in pending:
            task.cancel()
        slow = [c.name for c in self.connections.values() if not c.attempted.is_set()]
        if slow:
            log.warning("MCP servers still connecting; going on without them", servers=slow)

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.connections.values()))

    def tools(self) -> list[ServerTool]:
        """The tools of the servers connected now, by server and name."""
        return [tool for c in self.connections.values() if c.is_connected for tool in c.tools]

    def states(self) -> list[ServerState]:
        return [c.state() for c in self.connections.values()]

    async def call(self, server: str, tool: str, arguments: dict[str, Any]) -> ToolReply:
        connection = self.connections.get(server)
        if connection is None:
            raise ServerUnavailable(server, "no such server")
        return await connection.call(tool, arguments)


__all__ = [
    "CallFailed",
    "CallTimedOut",
    "McpConnection",
    "McpServers",
    "ServerState",
    "ServerTool",
    "ServerUnavailable",
    "ToolReply",
    "failure_text",
    "result_text",
]
