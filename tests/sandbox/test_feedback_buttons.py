"""Slack's feedback_buttons in a context_actions block: checked, clicked and drawn by the fakes."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import async_playwright, expect
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import FakeSlack
from sandbox.slack.workspace import SandboxError
from sandbox.web import attach_page

JSON = dict[str, Any]
BOT_TOKEN = "xoxb-feedback-test"
CHROMIUM = Path("/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def feedback_buttons(action_id: str = "answer_feedback") -> JSON:
    return {
        "type": "feedback_buttons",
        "action_id": action_id,
        "positive_button": {
            "text": {"type": "plain_text", "text": "👍"},
            "value": "good",
            "accessibility_label": "This answer helped",
        },
        "negative_button": {
            "text": {"type": "plain_text", "text": "👎"},
            "value": "bad",
            "accessibility_label": "This answer did not help",
        },
    }


def answer_blocks(*elements: JSON) -> list[JSON]:
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": "Use a lease table."}},
        {
            "type": "context_actions",
            "block_id": "feedback",
            "elements": list(elements) or [feedback_buttons()],
        },
    ]


@dataclass
class App:
    """A stand-in for the bot at /slack/events: records each interaction payload it receives."""

    received: list[JSON] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        form = {k: v[0] for k, v in parse_qs((await request.read()).decode()).items()}
        if "payload" in form:
            self.received.append(json.loads(form["payload"]))
        return web.Response(status=200)


@asynccontextmanager
async def app_for(fake: FakeSlack) -> AsyncIterator[App]:
    app = App()
    web_app = web.Application()
    web_app.router.add_post("/slack/events", app.handle)
    runner = web.AppRunner(web_app, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    fake.set_event_target(f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events")
    try:
        yield app
    finally:
        await runner.cleanup()


@pytest.fixture
async def app(fake_slack: FakeSlack) -> AsyncIterator[App]:
    async with app_for(fake_slack) as target:
        yield target


@pytest.fixture
def client(fake_slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)


@pytest.fixture
async def paged() -> AsyncIterator[FakeSlack]:
    """A fake Slack that also serves the sandbox page (attached before it starts)."""
    fake = FakeSlack(ack_timeout=2.0, retry_delays=(0.0,))
    attach_page(fake)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


# --- validation ----------------------------------------------------------------------------------


async def test_a_message_with_feedback_buttons_is_stored_as_sent(
    fake_slack: FakeSlack, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel="C0ENG", text="answer", blocks=answer_blocks())

    stored = fake_slack.workspace.message("C0ENG", posted["ts"])
    assert stored is not None and stored.blocks is not None
    assert stored.blocks[1]["elements"] == [feedback_buttons()]


def _without_negative() -> JSON:
    element = feedback_buttons()
    del element["negative_button"]
    return element


def _with_long_value() -> JSON:
    element = feedback_buttons()
    element["positive_button"]["value"] = "v" * 2001
    return element


def _with_mrkdwn_text() -> JSON:
    element = feedback_buttons()
    element["negative_button"]["text"] = {"type": "mrkdwn", "text": "*no*"}
    return element


BUTTON: JSON = {
    "type": "button",
    "action_id": "more",
    "text": {"type": "plain_text", "text": "More"},
}


@pytest.mark.parametrize(
    ("elements", "pointer"),
    [
        ([_without_negative()], "/blocks/1/elements/0/negative_button"),
        ([feedback_buttons(f"f{i}") for i in range(6)], "/blocks/1/elements"),
        ([BUTTON], "/blocks/1/elements/0"),
        ([_with_long_value()], "/blocks/1/elements/0/positive_button/value"),
        ([_with_mrkdwn_text()], "/blocks/1/elements/0/negative_button/text/type"),
        ([feedback_buttons(), feedback_buttons()], "/blocks/1/elements/1/action_id"),
    ],
    ids=["no-negative-button", "six-elements", "plain-button", "long-value", "mrkdwn", "dup-id"],
)
async def test_slack_rejects_context_actions_it_would_not_render(
    fake_slack: FakeSlack, client: AsyncWebClient, elements: list[JSON], pointer: str
) -> None:
    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(
            channel="C0ENG", text="answer", blocks=answer_blocks(*elements)
        )

    response = raised.value.response
    assert response["error"] == "invalid_blocks"
    messages = response["response_metadata"]["messages"]
    assert any(f"[json-pointer:{pointer}]" in m for m in messages), messages
    assert fake_slack.workspace.messages("C0ENG") == []


async def test_context_actions_needs_at_least_one_element(client: AsyncWebClient) -> None:
    blocks = [{"type": "context_actions", "elements": []}]

    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel="C0ENG", text="answer", blocks=blocks)

    assert raised.value.response["error"] == "invalid_blocks"


# --- clicking ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["good", "bad"])
async def test_a_feedback_click_sends_the_chosen_sides_value(
    fake_slack: FakeSlack, client: AsyncWebClient, app: App, value: str
) -> None:
    posted = await client.chat_postMessage(channel="C0ENG", text="answer", blocks=answer_blocks())

    delivery = await fake_slack.click_button(
        "U0ALICE", "C0ENG", posted["ts"], "answer_feedback", value
    )

    [payload] = app.received
    assert delivery.acked and payload["type"] == "block_actions"
    [action] = payload["actions"]
    assert set(action) == {"type", "action_id", "block_id", "value", "action_ts"}
    assert action["type"] == "feedback_buttons" and action["value"] == value
    assert (action["action_id"], action["block_id"]) == ("answer_feedback", "feedback")
    assert payload["container"]["message_ts"] == posted["ts"]
    assert payload["user"]["id"] == "U0ALICE"


@pytest.mark.parametrize("value", [None, "meh"])
async def test_a_feedback_click_must_name_one_of_its_buttons(
    fake_slack: FakeSlack, client: AsyncWebClient, app: App, value: str | None
) -> None:
    posted = await client.chat_postMessage(channel="C0ENG", text="answer", blocks=answer_blocks())

    with pytest.raises(SandboxError, match="'good', 'bad'"):
        await fake_slack.click_button("U0ALICE", "C0ENG", posted["ts"], "answer_feedback", value)

    assert app.received == []


async def test_the_page_click_endpoint_passes_the_clicked_value(paged: FakeSlack) -> None:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=paged.api_url)
    posted = await client.chat_postMessage(channel="C0ENG", text="answer", blocks=answer_blocks())
    click = {"as": "U0BOB", "channel": "C0ENG", "ts": posted["ts"], "action_id": "answer_feedback"}

    async with app_for(paged) as app, aiohttp.ClientSession() as http:
        async with http.post(f"{paged.url}/sandbox/click", json={**click, "value": "bad"}) as ok:
            answer = await ok.json()
            assert ok.status == 200, answer
        async with http.post(f"{paged.url}/sandbox/click", json=click) as refused:
            error = await refused.json()
            assert refused.status == 400, error

    [payload] = app.received
    assert answer["acked"]
    assert payload["actions"][0]["type"] == "feedback_buttons"
    assert payload["actions"][0]["value"] == "bad" and payload["user"]["id"] == "U0BOB"
    assert "answer_feedback" in error["error"]


# --- the page in a browser -----------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.timeout(120)
@pytest.mark.skipif(
    not CHROMIUM.exists() and not IN_CI,
    reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
)
async def test_the_page_draws_two_thumbs_and_clicking_one_sends_its_value(
    paged: FakeSlack,
) -> None:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=paged.api_url)
    await client.chat_postMessage(channel="C0ENG", text="answer", blocks=answer_blocks())

    async with app_for(paged) as app, async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            tab = await chromium.new_page()
            errors: list[str] = []
            tab.on("pageerror", lambda error: errors.append(str(error)))
            await tab.goto(f"{paged.url}/#/c/C0ENG")
            thumbs = tab.locator("#messages .message .bk-feedback-buttons button")
            await expect(thumbs).to_have_text(["👍", "👎"])
            await expect(thumbs.nth(1)).to_have_attribute("aria-label", "This answer did not help")
            await expect(tab.locator("#messages .bk-unsupported")).to_have_count(0)

            await thumbs.nth(1).click()
            await paged.wait_for(lambda: len(app.received) == 1)
        finally:
            await chromium.close()

    action = app.received[0]["actions"][0]
    assert (action["type"], action["action_id"], action["value"]) == (
        "feedback_buttons",
        "answer_feedback",
        "bad",
    )
    assert errors == []
