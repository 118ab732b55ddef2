"""The sandbox web page: static files, JSON endpoints and live updates, served by the fake Slack."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from sandbox.slack.delivery import Delivery
from sandbox.slack.events import user_ref
from sandbox.slack.server import FakeSlack
from sandbox.slack.workspace import AssistantThread, Channel, SandboxError, View
from sandbox.web.snapshot import (
    Notice,
    assistant_json,
    channel_json,
    channel_messages,
    command_text,
    compose_text,
    modal_json,
    person_json,
    split_command,
    thread_messages,
    visible_channels,
)

JSON = dict[str, Any]

STATIC_DIR = Path(__file__).parent / "static"
STATIC_FILES = {
    "app.js": "text/javascript",
    "blocks.js": "text/javascript",
    "style.css": "text/css",
}
NO_STORE = {"Cache-Control": "no-store"}
# How often the live stream looks at the workspace revision (an integer compare).
LIVE_POLL_SECONDS = 0.05
LIVE_KEEPALIVE_SECONDS = 15.0


@dataclass(frozen=True)
class ModelNote:
    """Which model answers, for the page's banner: the offline demo model or Claude."""

    offline: bool
    text: str


class BadRequest(Exception):
    """The page sent something it never would: answered with HTTP 400 and the reason."""


class SandboxPage:
    """The page's routes on the fake Slack's aiohttp app; add them before the fake starts."""

    def __init__(
        self,
        fake: FakeSlack,
        *,
        model: ModelNote | None = None,
        commands: Sequence[str] = ("/pm",),
    ) -> None:
        self.fake = fake
        self.model = model
        self.commands = tuple(commands)
        self.notices: list[Notice] = []
        self._closing = asyncio.Event()

    def attach(self) -> None:
        router = self.fake.web_app.router
        router.add_get("/", self._index)
        router.add_get("/static/{name}", self._static)
        router.add_get("/sandbox/state", self._state)
        router.add_get("/sandbox/live", self._live)
        router.add_post("/sandbox/post", self._post)
        router.add_post("/sandbox/click", self._click)
        router.add_post("/sandbox/home", self._open_home)
        router.add_post("/sandbox/views/submit", self._submit_view)
        router.add_post("/sandbox/views/close", self._close_view)
        router.add_post("/sandbox/assistant/start", self._start_assistant)
        router.add_post("/sandbox/assistant/context", self._change_assistant_context)
        self.fake.web_app.on_shutdown.append(self._on_shutdown)

    async def _on_shutdown(self, _app: web.Application) -> None:
        # Live streams end now, so stopping the fake never waits on an open browser tab.
        self._closing.set()

    # --- reading ---------------------------------------------------------------------------------

    @property
    def connection(self) -> str:
        if self.fake.socket_mode.connections:
            return "socket"
        return "http" if self.fake.event_target else "none"

    async def _index(self, _request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "index.html", headers=NO_STORE)

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC_FILES:
            raise web.HTTPNotFound()
        headers = {**NO_STORE, "Content-Type": STATIC_FILES[name]}
        return web.FileResponse(STATIC_DIR / name, headers=headers)

    async def _state(self, request: web.Request) -> web.Response:
        try:
            return web.json_response(self.state(request.query))
        except (BadRequest, SandboxError) as exc:
            return web.json_response({"error": str(exc)}, status=400)

    def state(self, query: Any) -> JSON:
        """Everything one person's page shows: `as`, and optionally `channel`, `thread` and
        `assistant` (the ts of the person's open assistant thread)."""
        workspace = self.fake.workspace
        people = [u for u in workspace.users.values() if not u.is_bot]
        viewer = self._person(query.get("as") or (people[0].id if people else None))
        dm = workspace.dm_with(viewer)  # the App Home's Messages tab
        channels = visible_channels(workspace, viewer)
        wanted = query.get("channel")
        channel = dm if wanted == "dm" else self._find(channels, wanted)
        thread_ts = query.get("thread")
        state: JSON = {
            "revision": workspace.revision,
            "team": workspace.team.to_api(),
            "me": viewer,
            "bot": {"id": workspace.bot_user.id, "name": workspace.bot_user.name},
            "people": [person_json(u) for u in people],
            "users": {
                u.id: {"name": u.name, "real_name": u.real_name, "is_bot": u.is_bot}
                for u in workspace.users.values()
            },
            "channels": {c.id: channel_json(workspace, c, viewer) for c in channels},
            "channel_order": [c.id for c in channels],
            "dm": dm.id,
            "model": None
            if self.model is None
            else {"offline": self.model.offline, "text": self.model.text},
            "connection": self.connection,
            "commands": list(self.commands),
            "messages": [],
            "thread": None,
            "home": workspace.home_view(viewer),
            "modal": modal_json(workspace, viewer),
            "assistant": None,
        }
        if query.get("assistant"):
            thread = self._assistant_thread(viewer, query.get("assistant"))
            state["assistant"] = assistant_json(workspace, thread, viewer, self.notices)
        if channel is not None:
            state["messages"] = channel_messages(workspace, channel, viewer, self.notices)
            if thread_ts:
                state["thread"] = {
                    "channel": channel.id,
                    "ts": thread_ts,
                    "messages": thread_messages(
                        workspace, channel, thread_ts, viewer, self.notices
                    ),
                }
        return state

    async def _live(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: `revision` whenever the workspace or the app's connection changes."""
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        seen: tuple[int, str] | None = None
        quiet_since = time.monotonic()
        try:
            while not self._closing.is_set():
                current = (self.fake.workspace.revision, self.connection)
                if current != seen:
                    seen = current
                    await response.write(f"event: revision\ndata: {current[0]}\n\n".encode())
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > LIVE_KEEPALIVE_SECONDS:
                    await response.write(b": keep-alive\n\n")
                    quiet_since = time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), LIVE_POLL_SECONDS)
        except ConnectionError:
            pass  # the tab went away
        return response

    # --- acting ----------------------------------------------------------------------------------

    async def _post(self, request: web.Request) -> web.Response:
        return await self._act(request, self.post)

    async def _click(self, request: web.Request) -> web.Response:
        return await self._act(request, self.click)

    async def _open_home(self, request: web.Request) -> web.Response:
        return await self._act(request, self.open_home)

    async def _submit_view(self, request: web.Request) -> web.Response:
        return await self._act(request, self.submit_view)

    async def _close_view(self, request: web.Request) -> web.Response:
        return await self._act(request, self.close_view)

    async def _start_assistant(self, request: web.Request) -> web.Response:
        return await self._act(request, self.start_assistant)

    async def _change_assistant_context(self, request: web.Request) -> web.Response:
        return await self._act(request, self.change_assistant_context)

    async def _act(self, request: web.Request, action: Any) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return web.json_response({"error": "expected a JSON object"}, status=400)
        try:
            result: JSON = await action(body)
        except (BadRequest, SandboxError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(result)

    async def post(self, body: JSON) -> JSON:
        """The composer: a message (with `@name` mentions) or a slash command, as one person."""
        user = self._person(body.get("as"))
        workspace = self.fake.workspace
        channel = workspace.channel(self._text(body, "channel"))
        typed = self._text(body, "text")
        thread_ts = body.get("thread_ts") or None
        command = split_command(typed)
        if command is not None:
            # Slack runs a command typed in a thread against the channel (no thread_ts).
            return await self._command(user, channel, *command)
        if user not in channel.members:
            raise BadRequest(f"you are not a member of #{channel.name}")
        posted = await self.fake.post_as_user(
            user, channel.id, compose_text(workspace, typed), thread_ts=thread_ts
        )
        return {
            "ts": posted.ts,
            "deliveries": [_delivery_json(d) for d in posted.deliveries],
        }

    async def _command(self, user: str, channel: Channel, command: str, text: str) -> JSON:
        if command not in self.commands:
            known = ", ".join(self.commands) or "none"
            self._notice(
                user,
                channel,
                f"{command} is not a valid command. In this sandbox the app's commands are: "
                f"{known}.",
            )
            return {"command": command, "acked": False, "error": "unknown_command"}
        escaped = command_text(self.fake.workspace, text)
        delivery = await self.fake.slash_command(user, channel.id, command, escaped)
        if not delivery.acked:
            # What Slack shows the person when the app did not answer in time (or at all).
            reason = "dispatch_failed" if delivery.transport == "none" else "operation_timeout"
            statuses = [s for s in delivery.status_codes if s is not None]
            if statuses and statuses[-1] >= 400:
                reason = "http_service_error"
            self._notice(user, channel, f'{command} failed with the error "{reason}"')
        return {"command": command, **_delivery_json(delivery)}

    async def click(self, body: JSON) -> JSON:
        """A button (or select) in a message, an ephemeral message, the App Home or a modal."""
        user = self._person(body.get("as"))
        action_id = self._text(body, "action_id")
        value = body.get("value")
        option = body.get("selected_option")
        if value is not None and not isinstance(value, str):
            raise BadRequest("value must be a string")
        if option is not None and not isinstance(option, dict):
            raise BadRequest("selected_option must be an object")
        if body.get("view_id"):
            delivery = await self.fake.click_view_button(
                user,
                action_id,
                value,
                view_id=self._text(body, "view_id"),
                selected_option=option,
            )
        else:
            delivery = await self.fake.click_button(
                user,
                self._text(body, "channel"),
                self._text(body, "ts"),
                action_id,
                value,
                selected_option=option,
            )
        return _delivery_json(delivery)

    async def open_home(self, body: JSON) -> JSON:
        user = self._person(body.get("as"))
        return _delivery_json(await self.fake.open_app_home(user))

    async def submit_view(self, body: JSON) -> JSON:
        """A `view_submission` with the modal's input values; Slack acts on the app's answer."""
        user = self._person(body.get("as"))
        view = self._modal(user, self._text(body, "view_id"))
        values = body.get("values") or {}
        if not isinstance(values, dict):
            raise BadRequest("values must be an object")
        workspace = self.fake.workspace
        submitted = view.to_api(workspace.team.id)
        submitted["state"] = {"values": values}
        payload: JSON = {
            "type": "view_submission",
            "team": {"id": workspace.team.id, "domain": workspace.team.domain},
            "user": user_ref(workspace, user),
            "api_app_id": workspace.bot_user.app_id,
            "token": self.fake.verification_token,
            "trigger_id": workspace.issue_trigger(user),
            "view": submitted,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        delivery = await self.fake.interact(payload)
        result = _delivery_json(delivery)
        if not delivery.acked:
            result["error"] = "pmteam did not answer; the modal stays open"
            return result
        answer = delivery.ack_body if isinstance(delivery.ack_body, dict) else {}
        action = answer.get("response_action")
        stack = workspace.modal_views.setdefault(user, [])
        if action == "errors":
            result["errors"] = answer.get("errors") or {}
            return result
        if action == "update" and isinstance(answer.get("view"), dict):
            view.body = {**answer["view"], "blocks": list(answer["view"].get("blocks", []))}
        elif action == "push" and isinstance(answer.get("view"), dict):
            pushed = View(
                id=workspace.next_view_id(),
                user=user,
                type="modal",
                body=dict(answer["view"]),
                hash=f"{int(time.time())}.push",
            )
            workspace.views[pushed.id] = pushed
            stack.append(pushed.id)
        elif action == "clear":
            stack.clear()
        else:
            stack.remove(view.id)
        workspace.touch()
        return result

    async def close_view(self, body: JSON) -> JSON:
        """Cancel: the modal closes; the app hears `view_closed` only if it asked to."""
        user = self._person(body.get("as"))
        view = self._modal(user, self._text(body, "view_id"))
        workspace = self.fake.workspace
        workspace.modal_views[user].remove(view.id)
        workspace.touch()
        if not view.body.get("notify_on_close"):
            return {"acked": True, "sent": False}
        payload: JSON = {
            "type": "view_closed",
            "team": {"id": workspace.team.id, "domain": workspace.team.domain},
            "user": user_ref(workspace, user),
            "api_app_id": workspace.bot_user.app_id,
            "token": self.fake.verification_token,
            "view": view.to_api(workspace.team.id),
            "is_cleared": False,
            "is_enterprise_install": False,
            "enterprise": None,
        }
        return {**_delivery_json(await self.fake.interact(payload)), "sent": True}

    async def start_assistant(self, body: JSON) -> JSON:
        """The person opens the assistant pane: a new thread, `assistant_thread_started` with
        the channel they are viewing as its context."""
        user = self._person(body.get("as"))
        context = self._context_channel(user, body.get("context_channel"))
        started = await self.fake.start_assistant_thread(user, context_channel_id=context)
        return {
            "channel": started.channel_id,
            "thread_ts": started.thread_ts,
            **_delivery_json(started.delivery),
        }

    async def change_assistant_context(self, body: JSON) -> JSON:
        """The person switches channels with the pane open: `assistant_thread_context_changed`."""
        user = self._person(body.get("as"))
        thread = self._assistant_thread(user, self._text(body, "thread_ts"))
        context = self._context_channel(user, body.get("context_channel"))
        delivery = await self.fake.change_assistant_context(
            user, thread.channel, thread.thread_ts, context
        )
        return _delivery_json(delivery)

    # --- helpers ---------------------------------------------------------------------------------

    def _person(self, user_id: Any) -> str:
        users = self.fake.workspace.users
        if not isinstance(user_id, str) or user_id not in users or users[user_id].is_bot:
            raise BadRequest(f"no person {user_id!r} in the sandbox workspace")
        return user_id

    def _find(self, channels: list[Channel], channel_id: Any) -> Channel | None:
        if not channel_id:
            return None
        for channel in channels:
            if channel.id == channel_id:
                return channel
        raise BadRequest(f"no channel {channel_id!r} that you can see")

    def _assistant_thread(self, user: str, thread_ts: Any) -> AssistantThread:
        dm = self.fake.workspace.dm_with(user)
        thread = self.fake.workspace.assistant_thread(dm.id, str(thread_ts))
        if thread is None or thread.user != user:
            raise BadRequest(f"no assistant thread {thread_ts!r} of yours")
        return thread

    def _context_channel(self, user: str, channel_id: Any) -> str | None:
        """The channel the person is viewing, as an assistant context (None: no channel)."""
        if not channel_id:
            return None
        channels = visible_channels(self.fake.workspace, user)
        channel = self._find(channels, channel_id)
        if channel is None or channel.is_im:
            return None
        return channel.id

    def _modal(self, user: str, view_id: str) -> View:
        stack = self.fake.workspace.modal_views.get(user) or []
        if view_id not in stack:
            raise BadRequest(f"no open modal {view_id!r}")
        return self.fake.workspace.views[view_id]

    @staticmethod
    def _text(body: JSON, name: str) -> str:
        value = body.get(name)
        if not isinstance(value, str) or not value:
            raise BadRequest(f"{name} is required")
        return value

    def _notice(self, user: str, channel: Channel, text: str) -> None:
        ts = self.fake.workspace.next_ts()
        self.notices.append(Notice(channel.id, user, ts, text))
        self.fake.workspace.touch()


def _delivery_json(delivery: Delivery) -> JSON:
    return {
        "acked": delivery.acked,
        "transport": delivery.transport,
        "statuses": delivery.status_codes,
    }


def attach_page(
    fake: FakeSlack, *, model: ModelNote | None = None, commands: Sequence[str] = ("/pm",)
) -> SandboxPage:
    """Serve the sandbox page from `fake` (call before `fake.start()`): `/` in a browser."""
    page = SandboxPage(fake, model=model, commands=commands)
    page.attach()
    return page
