"""FakeModel: a local HTTP server speaking the Anthropic Messages API, scripted or offline."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

from sandbox.model import offline, wire
from sandbox.model.ids import new_id, new_request_id
from sandbox.model.prompt_cache import PromptCache, count_input_tokens, diagnose
from sandbox.model.script import ApiError, CutStream, Delay, Reply, ReplyItem, ScriptItem
from sandbox.model.validation import RequestRejected, validate

log = logging.getLogger(__name__)

_REQUEST_ID = web.RequestKey("request_id", str)
_BODY = web.RequestKey("body", dict[str, Any])
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it; `headers` keys are lower-case."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float
    method: str = "POST"


@dataclass
class _Plan:
    """How to answer one /v1/messages request once the script item is unwrapped."""

    error: ApiError | None = None
    item: ReplyItem | None = None
    cut_after: int | None = None
    stream_error: ApiError | None = None
    stall: float = 0.0
    delays: list[float] = field(default_factory=list)


class FakeModel:
    """The Messages API on loopback: scripted replies first, then the offline model."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        offline: bool = True,
        api_key: str | None = None,
        min_cache_tokens: int = 0,
        stream_delay: float = 0.0,
        latency: float = 0.0,
        search_result_tokens: int = wire.SEARCH_RESULT_TOKENS,
    ) -> None:
        """`offline=False` answers an unscripted request with a 500 instead of the offline model;
        `api_key` set makes any other key a 401; `stream_delay` paces SSE events (seconds);
        `latency` is added before every /v1/messages answer (a model's fixed response time);
        `search_result_tokens` is what each web search result is billed as, each time a later
        step of the same call reads it back."""
        self.requests: list[RecordedRequest] = []
        self.usages: list[dict[str, Any]] = []
        self._clock = clock
        self._offline = offline
        self._api_key = api_key
        self._stream_delay = stream_delay
        self.latency = latency
        self._search_result_tokens = search_result_tokens
        self._cache = PromptCache(clock, min_tokens=min_cache_tokens)
        self._script: deque[ScriptItem] = deque()
        # Recent requests by the id of the message that answered them, for `diagnostics`.
        self._answered: dict[str, dict[str, Any]] = {}
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(middlewares=[self._envelope], client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model_id}", self._get_model)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_port = self._runner.addresses[0][1]
        shown = "127.0.0.1" if host in ("", "0.0.0.0") else "[::1]" if host == "::" else host
        if ":" in shown and not shown.startswith("["):
            shown = f"[{shown}]"
        self._base_url = f"http://{shown}:{bound_port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeModel:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("FakeModel is not started")
        return self._base_url

    # -- scripting -------------------------------------------------------------------------

    def script(self, *items: ScriptItem) -> None:
        """Queue replies; each /v1/messages request takes the next one, FIFO."""
        self._script.extend(items)

    @property
    def pending(self) -> int:
        """Scripted items not yet consumed."""
        return len(self._script)

    def reset(self) -> None:
        """Forget the script, the recorded requests and usages, and the prompt cache."""
        self._script.clear()
        self.requests.clear()
        self.usages.clear()
        self._cache.clear()

    def clear_cache(self) -> None:
        self._cache.clear()

    # -- HTTP ------------------------------------------------------------------------------

    @web.middleware
    async def _envelope(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Record the request, check auth, and give every response a request-id."""
        request_id = new_request_id()
        request[_REQUEST_ID] = request_id
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        self.requests.append(
            RecordedRequest(
                path=request.path,
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body if isinstance(body, dict) else {},
                at=self._clock(),
                method=request.method,
            )
        )
        try:
            self._check_auth(request)
            if request.method == "POST" and body is None:
                raise RequestRejected("There was an issue with your request body: invalid JSON")
            if request.method == "POST" and not isinstance(body, dict):
                raise RequestRejected("Request body must be a JSON object")
            request[_BODY] = body if isinstance(body, dict) else {}
            response = await handler(request)
        except RequestRejected as rejected:
            response = _error_response(
                rejected.status, rejected.error_type, rejected.message, request_id
            )
            response.headers.update(rejected.headers)
        if not response.prepared:
            response.headers["request-id"] = request_id
        return response

    def _check_auth(self, request: web.Request) -> None:
        key = request.headers.get("x-api-key")
        authorization = request.headers.get("authorization", "")
        if not key and authorization.lower().startswith("bearer "):
            key = authorization[7:].strip()
        if not key:
            raise RequestRejected(
                "x-api-key header is required", status=401, error_type="authentication_error"
            )
        if self._api_key is not None and key != self._api_key:
            raise RequestRejected(
                "invalid x-api-key", status=401, error_type="authentication_error"
            )

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        raise RequestRejected(
            f"Not found: {request.method} {request.path}", status=404, error_type="not_found_error"
        )

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        models = [_model_info(m) for m in ("claude-sonnet-5-5", "claude-haiku-5-5")]
        return web.json_response(
            {
                "data": models,
                "has_more": False,
                "first_id": models[0]["id"],
                "last_id": models[-1]["id"],
            }
        )

    async def _get_model(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(_model_info(request.match_info["model_id"]))

    async def _count_tokens(self, request: web.Request) -> web.StreamResponse:
        body = request[_BODY]
        validate(body, count_tokens=True, allow_extra="anthropic-beta" in request.headers)
        return web.json_response({"input_tokens": count_input_tokens(body)})

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body: dict[str, Any] = request[_BODY]
        validate(body, allow_extra="anthropic-beta" in request.headers)
        plan = self._plan()
        for seconds in plan.delays:
            await asyncio.sleep(seconds)
        if plan.error is not None:
            return _api_error_response(plan.error, request[_REQUEST_ID])
        stream = bool(body.get("stream"))
        if plan.cut_after is not None and not stream:
            # No response at all: the client sees the connection drop.
            _drop(request)
            return web.Response(status=500)
        reply = plan.item.to_reply() if plan.item is not None else self._unscripted(body)
        log.debug(
            "fake model reply: %s, stop_reason=%s, stream=%s",
            type(plan.item).__name__ if plan.item is not None else "offline",
            reply.stop_reason,
            stream,
        )
        usage = wire.usage_json(
            self._cache.account(body), reply, result_tokens=self._search_result_tokens
        )
        self.usages.append(usage)
        message_id = new_id("msg")
        model = str(body["model"])
        extra = self._diagnostics(body)
        self._answered[message_id] = body
        while len(self._answered) > 1_000:
            del self._answered[next(iter(self._answered))]
        if not stream:
            message = wire.message_json(reply, message_id=message_id, model=model, usage=usage)
            return web.json_response({**message, **extra})
        events = wire.stream_events(
            reply, message_id=message_id, model=model, usage=usage, extra=extra
        )
        return await self._stream(request, events, plan)

    def _diagnostics(self, body: dict[str, Any]) -> dict[str, Any]:
        """`diagnostics` for a request that asked for them (naming the previous message)."""
        asked = body.get("diagnostics")
        if not isinstance(asked, dict):
            return {}
        previous_id = asked.get("previous_message_id")
        if previous_id is None:
            return {"diagnostics": None}  # opted in on a first call: nothing to compare
        return {"diagnostics": diagnose(self._answered.get(str(previous_id)), body)}

    def _plan(self) -> _Plan:
        plan = _Plan()
        if self.latency:
            plan.delays.append(self.latency)
        item: ScriptItem | None = self._script.popleft() if self._script else None
        while isinstance(item, Delay | CutStream):
            if isinstance(item, Delay):
                plan.delays.append(item.seconds)
                item = item.then
            else:
                plan.cut_after = item.after_events
                plan.stream_error = item.error
                plan.stall = item.stall_seconds
                item = item.item
        if isinstance(item, ApiError):
            plan.error = item
        else:
            plan.item = item
        return plan

    def _unscripted(self, body: dict[str, Any]) -> Reply:
        if not self._offline:
            raise _NoScript()
        return offline.respond(body)

    async def _stream(
        self, request: web.Request, events: list[wire.Event], plan: _Plan
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "content-type": "text/event-stream; charset=utf-8",
                "cache-control": "no-cache",
                "request-id": request[_REQUEST_ID],
            }
        )
        await response.prepare(request)
        for sent, (name, data) in enumerate(events):
            if plan.cut_after is not None and sent >= plan.cut_after:
                if plan.stall:
                    await asyncio.sleep(plan.stall)
                if plan.stream_error is None:
                    _drop(request)
                    return response
                error = plan.stream_error
                body = wire.error_json(error.error_type, error.error_message, request[_REQUEST_ID])
                await response.write(wire.sse("error", body))
                break
            await response.write(wire.sse(name, data))
            if self._stream_delay:
                await asyncio.sleep(self._stream_delay)
        await response.write_eof()
        return response


class _NoScript(RequestRejected):
    def __init__(self) -> None:
        super().__init__(
            "FakeModel(offline=False) has no scripted response left",
            status=500,
            error_type="api_error",
            # A missing script is a test bug: retrying would only hide it.
            headers={"x-should-retry": "false"},
        )


def _drop(request: web.Request) -> None:
    # Closing the socket mid-body (no final chunk) is what a dropped connection looks like.
    if request.transport is not None:
        request.transport.abort()


def _error_response(status: int, error_type: str, message: str, request_id: str) -> web.Response:
    return web.json_response(wire.error_json(error_type, message, request_id), status=status)


def _api_error_response(error: ApiError, request_id: str) -> web.Response:
    response = _error_response(error.status, error.error_type, error.error_message, request_id)
    if error.retry_after_ms is not None:
        response.headers["retry-after-ms"] = str(error.retry_after_ms)
        response.headers["retry-after"] = str(math.ceil(error.retry_after_ms / 1000))
    if error.should_retry is not None:
        response.headers["x-should-retry"] = "true" if error.should_retry else "false"
    return response


def _model_info(model_id: str) -> dict[str, Any]:
    return {
        "type": "model",
        "id": model_id,
        "display_name": model_id.replace("-", " ").title(),
        "created_at": "2025-01-01T00:00:00Z",
        "lifecycle": "active",
    }
