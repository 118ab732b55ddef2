"""The sandbox page's endpoints, driven over real HTTP against the fake Slack and a tiny app."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import FakeSlack
from sandbox.web import ModelNote, SandboxPage, attach_page
from sandbox.web.snapshot import command_text, compose_text, split_command

BOT_TOKEN = "xoxb-sandbox-page-test"
JSON = dict[str, Any]
Answer = Callable[[JSON], Awaitable[web.StreamResponse]]


async def _ok(_payload: JSON) -> web.StreamResponse:
    return web.Response(status=200)


@dataclass
class App:
    """A stand-in for the bot at /slack/events: records what arrives, answers with `answer`."""

    answer: Answer = _ok
    received: list[JSON] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = (await request.read()).decode()
        if request.content_type == "application/json":
            payload = json.loads(raw)
        else:
            form = {k: v[0] for k, v in parse_qs(raw).items()}
            payload = json.loads(form["payload"]) if "payload" in form else form
        self.received.append(payload)
        return await self.answer(payload)

    def of_type(self, kind: str) -> list[JSON]:
        return [p for p in self.received if p.get("type") == kind]


@dataclass
class Sandbox:
    fake: FakeSlack
    page: SandboxPage
    app: App
    http: aiohttp.ClientSession
    client: AsyncWebClient

    async def state(self, **query: str) -> JSON:
        async with self.http.get(f"{self.fake.url}/sandbox/state", params=query) as response:
            body: JSON = await response.json()
            assert response.status == 200, body
            return body

    async def act(self, path: str, body: JSON, *, status: int = 200) -> JSON:
        async with self.http.post(f"{self.fake.url}/sandbox/{path}", json=body) as response:
            answer: JSON = await response.json()
            assert response.status == status, answer
            return answer


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    fake = FakeSlack(ack_timeout=1.0, retry_delays=(0.0,))
    page = attach_page(fake, model=ModelNote(offline=True, text="offline demo model"))
    await fake.start()
    app = App()
    web_app = web.Application()
    web_app.router.add_post("/slack/events", app.handle)
    runner = web.AppRunner(web_app, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    fake.set_event_target(f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events")
    async with aiohttp.ClientSession() as http:
        client = AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url)
        yield Sandbox(fake=fake, page=page, app=app, http=http, client=client)
    await runner.cleanup()
    await fake.stop()


# --- the composer --------------------------------------------------------------------------------


def test_composer_turns_at_names_into_mentions_and_escapes_markup() -> None:
    workspace = FakeSlack().workspace

    assert compose_text(workspace, "@pmteam design <b>this</b> & that") == (
        "<@U0PMTEAM> design &lt;b&gt;this&lt;/b&gt; &amp; that"
    )
    assert compose_text(workspace, "ping @Alice and @bob.") == "ping <@U0ALICE> and <@U0BOB>."
    assert compose_text(workspace, "@here mail x@pmteam.com, not @nobody") == (
        "<!here> mail x@pmteam.com, not @nobody"
    )


def test_a_commands_people_and_channels_are_escaped_as_slack_sends_them() -> None:
    workspace = FakeSlack().workspace

    assert command_text(workspace, "list @alice") == "list <@U0ALICE|alice>"
    assert command_text(workspace, "list #engineering.") == "list <#C0ENG|engineering>."
    assert command_text(workspace, "list @nobody #nowhere <x>") == "list @nobody #nowhere &lt;x&gt;"


def test_slash_commands_are_split_from_their_text() -> None:
    assert split_command("/pm status T-4 ") == ("/pm", "status T-4")
    assert split_command("/PM") == ("/pm", "")
    assert split_command("see /pm help") is None
    assert split_command("//not a command") is None


async def test_a_mention_typed_in_the_page_reaches_the_app_as_slack_sends_it(
    sandbox: Sandbox,
) -> None:
    posted = await sandbox.act(
        "post", {"as": "U0ALICE", "channel": "C0ENG", "text": "@pmteam plan the <migration>"}
    )

    [envelope] = [p for p in sandbox.app.received if p.get("event", {}).get("type")]
    event = envelope["event"]
    assert event["type"] == "app_mention" and event["user"] == "U0ALICE"
    assert event["text"] == "<@U0PMTEAM> plan the &lt;migration&gt;"
    assert posted["deliveries"] == [{"acked": True, "transport": "http", "statuses": [200]}]
    state = await sandbox.state(**{"as": "U0BOB", "channel": "C0ENG"})
    assert [m["text"] for m in state["messages"]] == [event["text"]]
    assert state["messages"][0]["author"]["name"] == "Alice"


async def test_posting_where_the_person_is_not_a_member_is_refused(sandbox: Sandbox) -> None:
    sandbox.fake.workspace.channel("C0RANDOM").members.discard("U0BOB")

    refused = await sandbox.act(
        "post", {"as": "U0BOB", "channel": "C0RANDOM", "text": "hi"}, status=400
    )

    assert "not a member" in refused["error"]
    assert sandbox.fake.workspace.messages("C0RANDOM") == []


# --- what each person sees -----------------------------------------------------------------------


async def test_ephemeral_answers_show_only_to_their_person(sandbox: Sandbox) -> None:
    await sandbox.client.chat_postEphemeral(channel="C0ENG", user="U0ALICE", text="just for you")

    alice = await sandbox.state(**{"as": "U0ALICE", "channel": "C0ENG"})
    bob = await sandbox.state(**{"as": "U0BOB", "channel": "C0ENG"})

    [shown] = alice["messages"]
    assert shown["ephemeral"] and shown["text"] == "just for you"
    assert bob["messages"] == []


async def test_state_lists_channels_people_model_and_connection(sandbox: Sandbox) -> None:
    state = await sandbox.state(**{"as": "U0BOB"})

    names = [state["channels"][c]["name"] for c in state["channel_order"]]
    assert names == ["engineering", "pm-coordination", "random", "pmteam"]
    assert state["channels"][state["dm"]]["is_im"]
    assert [p["name"] for p in state["people"]] == ["alice", "bob"]
    assert state["model"] == {"offline": True, "text": "offline demo model"}
    assert state["connection"] == "http"
    assert state["me"] == "U0BOB"


async def test_someone_elses_dm_and_unknown_people_are_not_served(sandbox: Sandbox) -> None:
    alice_dm = sandbox.fake.dm_channel("U0ALICE")

    for query in ({"as": "U0BOB", "channel": alice_dm}, {"as": "U0PMTEAM"}, {"as": "U0NOBODY"}):
        async with sandbox.http.get(f"{sandbox.fake.url}/sandbox/state", params=query) as answer:
            assert answer.status == 400


async def test_a_thread_comes_with_its_replies(sandbox: Sandbox) -> None:
    root = await sandbox.fake.post_as_user("U0ALICE", "C0ENG", "root")
    await sandbox.client.chat_postMessage(channel="C0ENG", thread_ts=root.ts, text="a reply")

    state = await sandbox.state(**{"as": "U0ALICE", "channel": "C0ENG", "thread": root.ts})

    assert [m["text"] for m in state["messages"]] == ["root"]
    assert state["messages"][0]["reply_count"] == 1
    assert [m["text"] for m in state["thread"]["messages"]] == ["root", "a reply"]


# --- slash commands ------------------------------------------------------------------------------


async def test_a_command_nobody_answers_tells_only_that_person(sandbox: Sandbox) -> None:
    sandbox.fake.set_event_target(None)

    result = await sandbox.act("post", {"as": "U0ALICE", "channel": "C0ENG", "text": "/pm status"})

    assert result == {"command": "/pm", "acked": False, "transport": "none", "statuses": []}
    alice = await sandbox.state(**{"as": "U0ALICE", "channel": "C0ENG"})
    [notice] = alice["messages"]
    assert notice["text"] == '/pm failed with the error "dispatch_failed"'
    assert notice["author"]["name"] == "Slackbot" and notice["ephemeral"]
    assert (await sandbox.state(**{"as": "U0BOB", "channel": "C0ENG"}))["messages"] == []


async def test_a_command_the_app_answers_shows_its_ephemeral_reply(sandbox: Sandbox) -> None:
    async def answer(payload: JSON) -> web.StreamResponse:
        return web.json_response({"text": f"status for {payload['user_name']}"})

    sandbox.app.answer = answer

    result = await sandbox.act("post", {"as": "U0BOB", "channel": "C0PM", "text": "/pm status"})

    [command] = sandbox.app.received
    assert (command["command"], command["text"], command["user_id"]) == ("/pm", "status", "U0BOB")
    assert result["acked"]
    [shown] = (await sandbox.state(**{"as": "U0BOB", "channel": "C0PM"}))["messages"]
    assert shown["text"] == "status for bob" and shown["ephemeral"]


async def test_a_person_picked_in_a_command_reaches_the_app_as_a_mention(
    sandbox: Sandbox,
) -> None:
    await sandbox.act("post", {"as": "U0BOB", "channel": "C0PM", "text": "/pm list @alice"})

    [command] = sandbox.app.received
    assert command["text"] == "list <@U0ALICE|alice>"


async def test_an_unknown_command_is_not_sent_to_the_app(sandbox: Sandbox) -> None:
    await sandbox.act("post", {"as": "U0ALICE", "channel": "C0ENG", "text": "/deploy now"})

    assert sandbox.app.received == []
    [notice] = (await sandbox.state(**{"as": "U0ALICE", "channel": "C0ENG"}))["messages"]
    assert notice["text"].startswith("/deploy is not a valid command")


# --- interactivity -------------------------------------------------------------------------------


async def test_clicking_a_button_sends_block_actions(sandbox: Sandbox) -> None:
    button = {
        "type": "button",
        "action_id": "task_acknowledge",
        "value": "7",
        "text": {"type": "plain_text", "text": "Acknowledge"},
    }
    posted = await sandbox.client.chat_postMessage(
        channel="C0PM", text="report", blocks=[{"type": "actions", "elements": [button]}]
    )

    result = await sandbox.act(
        "click",
        {"as": "U0BOB", "channel": "C0PM", "ts": posted["ts"], "action_id": "task_acknowledge"},
    )

    assert result["acked"]
    [payload] = sandbox.app.of_type("block_actions")
    assert payload["user"]["id"] == "U0BOB"
    assert payload["actions"][0]["value"] == "7"
    assert payload["container"]["message_ts"] == posted["ts"]
    assert payload["response_url"].startswith(sandbox.fake.url)


async def test_choosing_a_select_option_reports_the_option_not_a_value(sandbox: Sandbox) -> None:
    option = {"text": {"type": "plain_text", "text": "Blocked"}, "value": "blocked"}
    select = {"type": "static_select", "action_id": "pick", "options": [option]}
    posted = await sandbox.client.chat_postMessage(
        channel="C0ENG", text="pick", blocks=[{"type": "actions", "elements": [select]}]
    )

    await sandbox.act(
        "click",
        {
            "as": "U0ALICE",
            "channel": "C0ENG",
            "ts": posted["ts"],
            "action_id": "pick",
            "selected_option": option,
        },
    )

    [payload] = sandbox.app.of_type("block_actions")
    action = payload["actions"][0]
    assert action["selected_option"] == option and "value" not in action


MODAL = {
    "type": "modal",
    "callback_id": "blocked_reason",
    "title": {"type": "plain_text", "text": "Mark blocked"},
    "submit": {"type": "plain_text", "text": "Save"},
    "blocks": [
        {
            "type": "input",
            "block_id": "reason",
            "label": {"type": "plain_text", "text": "What is it waiting on?"},
            "element": {"type": "plain_text_input", "action_id": "text", "multiline": True},
        }
    ],
}


async def test_a_modal_submission_is_sent_and_slack_follows_the_apps_answer(
    sandbox: Sandbox,
) -> None:
    async def answer(payload: JSON) -> web.StreamResponse:
        if payload.get("type") == "block_actions":
            await sandbox.client.views_open(trigger_id=payload["trigger_id"], view=MODAL)
        elif payload.get("type") == "view_submission":
            reason = payload["view"]["state"]["values"]["reason"]["text"]["value"]
            if not reason:
                errors = {"reason": "Say what it is waiting on"}
                return web.json_response({"response_action": "errors", "errors": errors})
        return web.Response(status=200)

    sandbox.app.answer = answer
    button = {"type": "button", "action_id": "block", "text": {"type": "plain_text", "text": "B"}}
    posted = await sandbox.client.chat_postMessage(
        channel="C0PM", text="report", blocks=[{"type": "actions", "elements": [button]}]
    )
    await sandbox.act(
        "click", {"as": "U0BOB", "channel": "C0PM", "ts": posted["ts"], "action_id": "block"}
    )
    modal = (await sandbox.state(**{"as": "U0BOB"}))["modal"]
    assert modal["title"]["text"] == "Mark blocked"
    assert (await sandbox.state(**{"as": "U0ALICE"}))["modal"] is None

    def values(text: str | None) -> JSON:
        return {"reason": {"text": {"type": "plain_text_input", "value": text}}}

    refused = await sandbox.act(
        "views/submit", {"as": "U0BOB", "view_id": modal["id"], "values": values(None)}
    )
    assert refused["errors"] == {"reason": "Say what it is waiting on"}
    assert (await sandbox.state(**{"as": "U0BOB"}))["modal"]["id"] == modal["id"]

    await sandbox.act(
        "views/submit", {"as": "U0BOB", "view_id": modal["id"], "values": values("the DBA")}
    )
    assert (await sandbox.state(**{"as": "U0BOB"}))["modal"] is None
    submissions = sandbox.app.of_type("view_submission")
    assert len(submissions) == 2
    assert submissions[-1]["user"]["id"] == "U0BOB"
    assert submissions[-1]["view"]["callback_id"] == "blocked_reason"


async def test_closing_a_modal_tells_the_app_only_when_it_asked(sandbox: Sandbox) -> None:
    workspace = sandbox.fake.workspace
    quiet = await sandbox.client.views_open(
        trigger_id=workspace.issue_trigger("U0ALICE"), view=MODAL
    )

    closed = await sandbox.act("views/close", {"as": "U0ALICE", "view_id": quiet["view"]["id"]})

    assert closed == {"acked": True, "sent": False}
    assert workspace.modal_views["U0ALICE"] == []
    noisy = await sandbox.client.views_open(
        trigger_id=workspace.issue_trigger("U0ALICE"), view={**MODAL, "notify_on_close": True}
    )
    await sandbox.act("views/close", {"as": "U0ALICE", "view_id": noisy["view"]["id"]})
    [closing] = sandbox.app.of_type("view_closed")
    assert closing["view"]["id"] == noisy["view"]["id"]


async def test_opening_the_home_tab_sends_app_home_opened(sandbox: Sandbox) -> None:
    result = await sandbox.act("home", {"as": "U0ALICE"})

    assert result["acked"]
    [envelope] = sandbox.app.received
    assert envelope["event"]["type"] == "app_home_opened"
    assert envelope["event"]["user"] == "U0ALICE"


# --- the assistant pane --------------------------------------------------------------------------


async def test_opening_the_assistant_starts_a_thread_in_the_viewed_channels_context(
    sandbox: Sandbox,
) -> None:
    started = await sandbox.act("assistant/start", {"as": "U0ALICE", "context_channel": "C0ENG"})

    assert started["acked"]
    [envelope] = sandbox.app.received
    thread = envelope["event"]["assistant_thread"]
    assert envelope["event"]["type"] == "assistant_thread_started"
    assert thread["user_id"] == "U0ALICE"
    assert thread["context"]["channel_id"] == "C0ENG"
    assert (thread["channel_id"], thread["thread_ts"]) == (
        started["channel"],
        started["thread_ts"],
    )
    state = await sandbox.state(**{"as": "U0ALICE", "assistant": started["thread_ts"]})
    pane = state["assistant"]
    assert pane["channel"] == state["dm"] and pane["context_channel"] == "C0ENG"
    assert pane["messages"] == [] and pane["prompts"] == [] and pane["status"] == ""


async def test_switching_channels_with_the_pane_open_changes_the_threads_context(
    sandbox: Sandbox,
) -> None:
    started = await sandbox.act("assistant/start", {"as": "U0BOB", "context_channel": "C0ENG"})

    await sandbox.act(
        "assistant/context",
        {"as": "U0BOB", "thread_ts": started["thread_ts"], "context_channel": "C0PM"},
    )

    [changed] = [
        p["event"]
        for p in sandbox.app.received
        if p["event"]["type"] == "assistant_thread_context_changed"
    ]
    assert changed["assistant_thread"]["context"]["channel_id"] == "C0PM"
    assert changed["assistant_thread"]["thread_ts"] == started["thread_ts"]
    state = await sandbox.state(**{"as": "U0BOB", "assistant": started["thread_ts"]})
    assert state["assistant"]["context_channel"] == "C0PM"


async def test_the_pane_shows_the_prompts_title_and_status_the_app_set(
    sandbox: Sandbox,
) -> None:
    started = await sandbox.act("assistant/start", {"as": "U0ALICE"})
    where = {"channel_id": started["channel"], "thread_ts": started["thread_ts"]}
    prompts = [{"title": "Plan a queue", "message": "How should we build a job queue?"}]
    await sandbox.client.assistant_threads_setSuggestedPrompts(
        **where, title="What can I take on?", prompts=prompts
    )
    await sandbox.client.assistant_threads_setTitle(**where, title="Job queue")
    await sandbox.client.assistant_threads_setStatus(**where, status="is thinking…")

    pane = (await sandbox.state(**{"as": "U0ALICE", "assistant": started["thread_ts"]}))[
        "assistant"
    ]

    assert pane["prompts"] == prompts and pane["prompts_title"] == "What can I take on?"
    assert (pane["title"], pane["status"]) == ("Job queue", "is thinking…")


async def test_the_apps_reply_in_the_thread_clears_its_status_as_slack_does(
    sandbox: Sandbox,
) -> None:
    started = await sandbox.act("assistant/start", {"as": "U0ALICE"})
    where = {"channel_id": started["channel"], "thread_ts": started["thread_ts"]}
    await sandbox.client.assistant_threads_setStatus(**where, status="is thinking…")

    await sandbox.client.chat_postMessage(
        channel=started["channel"], thread_ts=started["thread_ts"], text="Here is a plan."
    )

    pane = (await sandbox.state(**{"as": "U0ALICE", "assistant": started["thread_ts"]}))[
        "assistant"
    ]
    assert pane["status"] == ""
    assert [m["text"] for m in pane["messages"]] == ["Here is a plan."]


async def test_a_message_typed_in_the_pane_is_a_message_im_in_the_assistant_thread(
    sandbox: Sandbox,
) -> None:
    started = await sandbox.act("assistant/start", {"as": "U0ALICE"})

    await sandbox.act(
        "post",
        {
            "as": "U0ALICE",
            "channel": started["channel"],
            "thread_ts": started["thread_ts"],
            "text": "How should we build a job queue?",
        },
    )

    [event] = [p["event"] for p in sandbox.app.received if p["event"]["type"] == "message"]
    assert event["channel_type"] == "im" and event["channel"] == started["channel"]
    assert event["thread_ts"] == started["thread_ts"]
    assert event["text"] == "How should we build a job queue?"
    pane = (await sandbox.state(**{"as": "U0ALICE", "assistant": started["thread_ts"]}))[
        "assistant"
    ]
    assert [m["author"]["id"] for m in pane["messages"]] == ["U0ALICE"]


async def test_someone_elses_assistant_thread_is_not_served(sandbox: Sandbox) -> None:
    started = await sandbox.act("assistant/start", {"as": "U0ALICE"})

    refused = await sandbox.act(
        "assistant/context",
        {"as": "U0BOB", "thread_ts": started["thread_ts"], "context_channel": "C0ENG"},
        status=400,
    )

    assert "no assistant thread" in refused["error"]
    query = {"as": "U0BOB", "assistant": started["thread_ts"]}
    async with sandbox.http.get(f"{sandbox.fake.url}/sandbox/state", params=query) as answer:
        assert answer.status == 400


# --- serving -------------------------------------------------------------------------------------


async def test_the_page_and_only_its_own_files_are_served(sandbox: Sandbox) -> None:
    async with sandbox.http.get(f"{sandbox.fake.url}/") as index:
        html = await index.text()
        assert index.status == 200 and '<script src="/static/app.js">' in html
    async with sandbox.http.get(f"{sandbox.fake.url}/static/blocks.js") as script:
        assert script.status == 200 and script.content_type == "text/javascript"
    for path in ("/static/page.py", "/static/..%2fpage.py", "/static/index.html"):
        async with sandbox.http.get(f"{sandbox.fake.url}{path}") as refused:
            assert refused.status == 404, path


async def test_live_updates_announce_each_new_revision(sandbox: Sandbox) -> None:
    async with sandbox.http.get(f"{sandbox.fake.url}/sandbox/live") as live:
        assert live.content_type == "text/event-stream"

        async def next_revision() -> int:
            while True:
                line = (await asyncio.wait_for(live.content.readline(), 5)).decode()
                if line.startswith("data: "):
                    return int(line.removeprefix("data: "))

        first = await next_revision()
        await sandbox.fake.post_as_user("U0ALICE", "C0ENG", "hello")
        assert await next_revision() > first


async def test_stopping_the_fake_ends_open_live_streams_at_once() -> None:
    fake = FakeSlack()
    attach_page(fake)
    await fake.start()
    async with aiohttp.ClientSession() as http:
        live = await http.get(f"{fake.url}/sandbox/live")
        await live.content.readline()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await fake.stop()
        assert loop.time() - started < 0.9  # the aiohttp shutdown timeout is 1 s
        live.close()
