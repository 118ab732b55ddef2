"""Getting payloads to the app as Slack does: signed HTTP with retries, or Socket Mode envelopes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from sandbox.slack.wire import sign

JSON = dict[str, Any]
EnvelopeKind = Literal["events_api", "slash_commands", "interactive"]
Transport = Literal["http", "socket", "none"]

logger = logging.getLogger(__name__)


@dataclass
class Attempt:
    """One try at handing a payload to the app; `error` is None when the app acknowledged it."""

    transport: Literal["http", "socket"]
    at: float
    retry_num: int
    retry_reason: str | None
    status: int | None = None
    error: str | None = None
    envelope_id: str | None = None
    elapsed: float = 0.0
    no_retry: bool = False

    @property
    def acked(self) -> bool:
        return self.error is None


@dataclass
class Delivery:
    """A payload Slack sent the app (an event, a slash command, an interaction) and its fate."""

    kind: EnvelopeKind
    type: str
    payload: JSON
    event_id: str | None = None
    transport: Transport = "none"
    attempts: list[Attempt] = field(default_factory=list)
    acked: bool = False
    ack_body: Any = None

    @property
    def status_codes(self) -> list[int | None]:
        return [a.status for a in self.attempts]

    @property
    def retry_count(self) -> int:
        return sum(1 for a in self.attempts if a.retry_num > 0)

    @property
    def retry_reasons(self) -> list[str | None]:
        return [a.retry_reason for a in self.attempts]


@dataclass
class SocketConnection:
    id: str
    ws: web.WebSocketResponse
    connected_at: float


class SocketModeHub:
    """The `/socket-mode` WebSocket endpoint: hello frame, envelopes out, acks in."""

    def __init__(self, *, app_id: str) -> None:
        self.app_id = app_id
        self.connections: list[SocketConnection] = []
        self.ever_connected = False
        self.acks: list[JSON] = []
        self._tickets: set[str] = set()
        self._waiting: dict[str, asyncio.Future[Any]] = {}
        self._turn = 0

    def issue_ticket(self) -> str:
        ticket = str(uuid.uuid4())
        self._tickets.add(ticket)
        return ticket

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            # Slack refuses a reused or made-up ticket; the client must call apps.connections.open.
            return web.Response(status=401, text="invalid_ticket")
        self._tickets.discard(ticket)
        # autoping answers the SDK client's pings; a short close timeout keeps stop() prompt.
        ws = web.WebSocketResponse(autoping=True, timeout=2.0)
        await ws.prepare(request)
        connection = SocketConnection(id=str(uuid.uuid4()), ws=ws, connected_at=time.time())
        self.connections.append(connection)
        self.ever_connected = True
        logger.info("socket mode client connected (%d open)", len(self.connections))
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self.connections),
                "debug_info": {
                    "host": "sandbox-socket-mode",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self.app_id},
            }
        )
        try:
            async for frame in ws:
                if frame.type == aiohttp.WSMsgType.TEXT:
                    self._on_text(str(frame.data))
        finally:
            self.connections.remove(connection)
            logger.info("socket mode client disconnected (%d open)", len(self.connections))
        return ws

    def _on_text(self, data: str) -> None:
        try:
            frame = json.loads(data)
        except ValueError:
            logger.warning("socket mode client sent a non-JSON frame: %.200s", data)
            return
        if not isinstance(frame, dict) or "envelope_id" not in frame:
            return
        self.acks.append(frame)
        waiting = self._waiting.pop(str(frame["envelope_id"]), None)
        if waiting is not None and not waiting.done():
            waiting.set_result(frame.get("payload"))

    async def send(self, envelope: JSON, acked: asyncio.Future[Any]) -> None:
        """Send on the next open connection (round robin); `acked` resolves with the ack payload."""
        if not self.connections:
            raise ConnectionError("no socket mode connection")
        self._turn = (self._turn + 1) % len(self.connections)
        connection = self.connections[self._turn]
        self._waiting[envelope["envelope_id"]] = acked
        await connection.ws.send_str(json.dumps(envelope))

    def forget(self, envelope_id: str) -> None:
        self._waiting.pop(envelope_id, None)

    async def close_all(self) -> None:
        for connection in list(self.connections):
            with contextlib.suppress(Exception):
                await connection.ws.close(code=aiohttp.WSCloseCode.GOING_AWAY)


def _http_body(kind: EnvelopeKind, payload: JSON) -> tuple[bytes, str]:
    if kind == "events_api":
        return json.dumps(payload).encode(), "application/json"
    if kind == "slash_commands":
        return urlencode(payload).encode(), "application/x-www-form-urlencoded"
    return urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded"


def _parse_ack_body(content_type: str, raw: bytes) -> Any:
    text = raw.decode(errors="replace")
    if not text:
        return None
    if content_type == "application/json":
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


class Courier:
    """Delivers payloads with Slack's ack deadline and retry rules, over Socket Mode or HTTP."""

    def __init__(
        self,
        *,
        signing_secret: str,
        hub: SocketModeHub,
        ack_timeout: float,
        retry_delays: Sequence[float],
        max_retries: int,
    ) -> None:
        self.signing_secret = signing_secret
        self.hub = hub
        self.ack_timeout = ack_timeout
        self.retry_delays = tuple(retry_delays) or (0.0,)
        self.max_retries = max_retries
        self.target_url: str | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def deliver(
        self, delivery: Delivery, *, retry_num: int = 0, retry_reason: str | None = None
    ) -> Delivery:
        """Try until acked; only Events API payloads are retried (commands and clicks are not)."""
        loop = asyncio.get_running_loop()
        acked: asyncio.Future[Any] = loop.create_future()
        while True:
            if self.hub.connections:
                attempt = await self._socket_attempt(delivery, acked, retry_num, retry_reason)
            elif self.target_url is not None:
                attempt = await self._http_attempt(delivery, retry_num, retry_reason)
            elif self.hub.ever_connected:
                # A Socket Mode app that dropped its connection: Slack keeps the event and
                # tries again on its retry schedule, in case the app comes back.
                attempt = Attempt(
                    transport="socket",
                    at=time.time(),
                    retry_num=retry_num,
                    retry_reason=retry_reason,
                    error="no_connection",
                )
            else:
                break
            delivery.transport = attempt.transport
            delivery.attempts.append(attempt)
            if attempt.acked or acked.done():
                delivery.acked = True
                break
            if delivery.kind != "events_api" or attempt.no_retry or retry_num >= self.max_retries:
                break
            delay = self.retry_delays[min(retry_num, len(self.retry_delays) - 1)]
            retry_num += 1
            retry_reason = attempt.error
            await asyncio.sleep(delay)
            if acked.done():
                # A late Socket Mode ack arrived during the backoff: Slack would not resend.
                delivery.acked = True
                delivery.ack_body = acked.result()
                break
        return delivery

    async def _socket_attempt(
        self,
        delivery: Delivery,
        acked: asyncio.Future[Any],
        retry_num: int,
        retry_reason: str | None,
    ) -> Attempt:
        envelope_id = str(uuid.uuid4())
        envelope: JSON = {"envelope_id": envelope_id, "payload": delivery.payload}
        envelope["type"] = delivery.kind
        envelope["accepts_response_payload"] = delivery.kind == "slash_commands" or (
            delivery.type in ("view_submission", "block_suggestion")
        )
        if delivery.kind == "events_api":
            envelope["retry_attempt"] = retry_num
            envelope["retry_reason"] = retry_reason or ""
        attempt = Attempt(
            transport="socket",
            at=time.time(),
            retry_num=retry_num,
            retry_reason=retry_reason,
            envelope_id=envelope_id,
        )
        started = time.monotonic()
        try:
            await self.hub.send(envelope, acked)
            delivery.ack_body = await asyncio.wait_for(asyncio.shield(acked), self.ack_timeout)
        except TimeoutError:
            attempt.error = "timeout"
        except (ConnectionError, RuntimeError, aiohttp.ClientError):
            attempt.error = "connection_failed"
        finally:
            self.hub.forget(envelope_id)
            attempt.elapsed = time.monotonic() - started
        return attempt

    async def _http_attempt(
        self, delivery: Delivery, retry_num: int, retry_reason: str | None
    ) -> Attempt:
        assert self.target_url is not None
        if self._session is None:
            raise RuntimeError("the fake Slack is not started")
        body, content_type = _http_body(delivery.kind, delivery.payload)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": sign(self.signing_secret, timestamp, body),
        }
        if retry_num:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason or "unknown_error"
        attempt = Attempt(
            transport="http", at=time.time(), retry_num=retry_num, retry_reason=retry_reason
        )
        started = time.monotonic()
        try:
            async with self._session.post(
                self.target_url,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.ack_timeout),
            ) as response:
                raw = await response.read()
                attempt.status = response.status
                if 200 <= response.status < 300:
                    delivery.ack_body = _parse_ack_body(response.content_type, raw)
                else:
                    attempt.error = "http_error"
                # An app can ask Slack not to retry, e.g. when it knows the event is a duplicate.
                attempt.no_retry = response.headers.get("X-Slack-No-Retry") == "1"
        except TimeoutError:
            attempt.error = "http_timeout"
        except aiohttp.ClientError:
            attempt.error = "connection_failed"
        finally:
            attempt.elapsed = time.monotonic() - started
        return attempt
