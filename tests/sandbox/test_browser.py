"""The sandbox in a real browser: Chromium drives the page while pmteam answers (the slow test)."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright, expect
from slack_sdk.web.async_client import AsyncWebClient

from bot.cli.sandbox import Sandbox, start_sandbox, stop_sandbox
from bot.slack.blocks.report import REPORT_HEADER
from sandbox.slack import FakeSlack
from sandbox.web import attach_page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "sandbox"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PM_AXES = (
    "System Architecture & Design",
    "Implementation Feasibility",
    "Scalability & Performance",
    "Risk Assessment",
    "Integration & Reliability",
)
# Streaming, the researcher and the report take a few seconds with the offline model.
ANSWER_TIMEOUT_MS = 45_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        not CHROMIUM.exists() and not IN_CI,
        reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium); "
        "CI installs it and always runs this test",
    ),
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        # A fresh, empty profile each time; Playwright's own browser download is never used.
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    await context.close()
    assert errors == [], f"the page raised: {errors}"


@pytest.fixture
async def sandbox(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[Sandbox]:
    database = tmp_path / "sandbox.db"
    shutil.copy(sqlite_template, database)
    started = await start_sandbox(
        port=0,
        database_url=f"sqlite+aiosqlite:///{database}",
        stream_delay=0.03,
        migrate=False,
    )
    yield started
    await stop_sandbox(started)


async def snap(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


async def test_a_mention_in_the_browser_gets_a_streamed_answer_a_report_and_a_home(
    sandbox: Sandbox, page: Page
) -> None:
    slack = sandbox.slack
    await page.goto(sandbox.url)
    await expect(page.locator("#banner")).to_contain_text("Offline demo model")
    await expect(page.locator("#connection")).to_have_text("pmteam connected · HTTP events")

    # Alice mentions pmteam from the composer: the fake stores a real <@U…> mention.
    await page.fill("#composer-text", "@pmteam design a durable job queue on PostgreSQL")
    await page.press("#composer-text", "Enter")
    mention = page.locator("#messages .message", has_text="design a durable job queue")
    await expect(mention.locator(".mention")).to_have_text("@pmteam")
    [posted] = slack.workspace.messages("C0ENG")
    assert posted.text == "<@U0PMTEAM> design a durable job queue on PostgreSQL"
    assert posted.user == "U0ALICE"

    # The thread: the answer is seen while it streams, then its self-assessment line follows.
    await mention.locator(".thread-link").click(timeout=ANSWER_TIMEOUT_MS)
    thread = page.locator("#thread-messages")
    await expect(thread.locator(".message.streaming .caret")).to_have_count(
        1, timeout=ANSWER_TIMEOUT_MS
    )
    await expect(thread).to_contain_text("Self-assessment ", timeout=ANSWER_TIMEOUT_MS)
    await expect(thread.locator(".message.streaming")).to_have_count(0)
    await expect(thread).to_contain_text("offline demo model")
    [answer, _summary] = slack.workspace.replies("C0ENG", posted.ts)
    assert answer.stream is not None and answer.stream.state == "completed"
    last_paragraph = answer.text.strip().split("\n\n")[-1].replace("**", "")
    await expect(thread.locator(".message").nth(1)).to_contain_text(last_paragraph)
    await expect(mention.locator("[data-reaction=white_check_mark]")).to_be_visible()
    await snap(page, "thread")

    # The PM report in #pm-coordination, with every score the fake received.
    await page.click("[data-channel=pm-coordination]")
    report = page.locator("#messages .message", has_text=REPORT_HEADER)
    await expect(report.locator(".bk-header")).to_have_text(REPORT_HEADER)
    [stored] = [m for m in slack.workspace.messages("C0PM") if m.user == "U0PMTEAM"]
    for axis in PM_AXES:
        score = re.search(rf"{re.escape(axis)}: (\d)/9", stored.text)
        assert score is not None, axis
        await expect(report).to_contain_text(f"{axis}: {score.group(1)}/9")
    for button in ("Acknowledge", "Reopen"):  # what a COMPLETED task allows
        await expect(report.get_by_role("button", name=button)).to_be_visible()
    await snap(page, "report")

    # A button click is a real block_actions payload, acknowledged by pmteam.
    await report.get_by_role("button", name="Acknowledge").click()
    await slack.wait_for(
        lambda: any(
            d.type == "block_actions"
            and d.acked
            and d.payload["actions"][0]["action_id"] == "task_acknowledge"
            for d in slack.deliveries
        )
    )

    # /pm status: pmteam's answer is shown to Alice only.
    await page.fill("#composer-text", "/pm status")
    await page.press("#composer-text", "Enter")
    ephemeral = page.locator("#messages .message.ephemeral")
    await expect(ephemeral).not_to_have_count(0)
    await expect(ephemeral.last).to_contain_text("Only visible to you")
    [command] = [d for d in slack.deliveries if d.type == "/pm"]
    assert command.acked and command.payload["text"] == "status"
    answers = slack.workspace.ephemerals("C0PM", "U0ALICE")
    assert answers, "pmteam answered /pm status with nothing"
    first_line = re.sub(r"[*_`]", "", answers[-1].text.splitlines()[0]).strip()
    await expect(ephemeral.last).to_contain_text(first_line[:40])
    await snap(page, "pm-status")
    await page.select_option("#viewer", "U0BOB")
    await expect(page.locator("#viewer")).to_have_value("U0BOB")
    await expect(page.locator("#messages .message.ephemeral")).to_have_count(0)
    await expect(report.locator(".bk-header")).to_be_visible()

    # The App Home: opening it sends app_home_opened, and Bob's published view is drawn.
    await page.click("#nav-app")
    await slack.wait_for(lambda: slack.workspace.home_view("U0BOB") is not None, timeout=15)
    home = slack.workspace.home_view("U0BOB")
    assert home is not None
    opened = [d for d in slack.deliveries if d.type == "app_home_opened"]
    assert opened and opened[-1].payload["event"]["user"] == "U0BOB" and opened[-1].acked
    await expect(page.locator("#home .blocks > *")).to_have_count(len(home["blocks"]))
    await expect(page.locator("#home")).to_contain_text("T-1")
    await snap(page, "home")


async def _ok(_request: web.Request) -> web.StreamResponse:
    return web.Response(status=200)


async def test_text_is_never_markup_and_modals_submit_what_was_typed(
    browser: Browser, page: Page
) -> None:
    """Against a stand-in app that opens a modal on a click: hostile text and the overlay."""
    fake = FakeSlack(ack_timeout=2.0, retry_delays=(0.0,))
    attach_page(fake)
    await fake.start()
    client = AsyncWebClient(token="xoxb-browser-test", base_url=fake.api_url)
    received: list[dict[str, Any]] = []

    async def app(request: web.Request) -> web.StreamResponse:
        form = {k: v[0] for k, v in parse_qs((await request.read()).decode()).items()}
        payload = json.loads(form.get("payload", "{}"))
        received.append(payload)
        if payload.get("type") == "block_actions":
            await client.views_open(trigger_id=payload["trigger_id"], view=BLOCKED_MODAL)
        if payload.get("type") == "view_submission":
            reason = payload["view"]["state"]["values"]["reason"]["text"]["value"]
            if not reason:
                errors = {"reason": "Say what it is waiting on"}
                return web.json_response({"response_action": "errors", "errors": errors})
        return web.Response(status=200)

    web_app = web.Application()
    web_app.router.add_post("/slack/events", app)
    runner = web.AppRunner(web_app, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    fake.set_event_target(f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events")
    try:
        hostile = "<img src=x onerror=\"document.title='pwned'\"><b>bold?</b> *really bold*"
        await client.chat_postMessage(
            channel="C0ENG",
            text="report",
            blocks=[
                {"type": "section", "text": {"type": "mrkdwn", "text": hostile}},
                {"type": "markdown", "text": f"**{hostile}**"},
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": "block",
                            "value": "1",
                            "text": {"type": "plain_text", "text": "Mark blocked"},
                        }
                    ],
                },
            ],
        )
        await page.goto(f"{fake.url}/")
        await page.fill("#composer-text", hostile)
        await page.press("#composer-text", "Enter")
        messages = page.locator("#messages .message")
        await expect(messages).to_have_count(2)
        # The app's blocks (mrkdwn and markdown) and Alice's typed text all show as text.
        bot_message, typed = messages.first, messages.last
        await expect(bot_message.locator(".bk-section")).to_contain_text("<b>bold?</b>")
        await expect(bot_message.locator(".bk-markdown")).to_contain_text('<img src=x onerror="')
        await expect(typed).to_contain_text('<img src=x onerror="document.title')
        await expect(page.locator("#messages img")).to_have_count(0)
        await expect(page.locator("#messages b")).to_have_count(0)
        await expect(typed.locator("strong", has_text="really bold")).to_have_count(1)
        assert await page.title() == "pmteam sandbox"

        await page.get_by_role("button", name="Mark blocked").click()
        dialog = page.get_by_role("dialog", name="Mark blocked")
        await expect(dialog).to_be_visible()
        await dialog.get_by_role("button", name="Save").click()
        await expect(dialog.locator(".bk-error")).to_have_text("Say what it is waiting on")
        await dialog.locator("textarea").fill("waiting on the DBA")
        await snap(page, "modal")
        await dialog.get_by_role("button", name="Save").click()
        await expect(dialog).to_have_count(0)
        submissions = [p for p in received if p.get("type") == "view_submission"]
        assert len(submissions) == 2
        values = submissions[-1]["view"]["state"]["values"]
        assert values == {
            "reason": {"text": {"type": "plain_text_input", "value": "waiting on the DBA"}}
        }
    finally:
        await runner.cleanup()
        await fake.stop()


BLOCKED_MODAL = {
    "type": "modal",
    "callback_id": "blocked_reason",
    "title": {"type": "plain_text", "text": "Mark blocked"},
    "submit": {"type": "plain_text", "text": "Save"},
    "close": {"type": "plain_text", "text": "Cancel"},
    "blocks": [
        {
            "type": "input",
            "block_id": "reason",
            "label": {"type": "plain_text", "text": "What is it waiting on?"},
            "element": {"type": "plain_text_input", "action_id": "text", "multiline": True},
        }
    ],
}


GALLERY: list[dict[str, Any]] = [
    {"type": "header", "text": {"type": "plain_text", "text": "Weekly standup :sunrise:"}},
    {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "*Done* _this week_ ~nothing~ `T-4` <@U0BOB> <#C0PM>"},
        "fields": [
            {"type": "mrkdwn", "text": "*Open:*\n3"},
            {"type": "plain_text", "text": "Blocked: 1"},
        ],
        "accessory": {
            "type": "button",
            "action_id": "open_board",
            "text": {"type": "plain_text", "text": "Open board"},
        },
    },
    {"type": "divider"},
    {
        "type": "markdown",
        "text": "## Plan\n1. claim\n2. lease\n\n| step | owner |\n|---|---|\n| claim | worker |\n\n"
        "```sql\nSELECT 1;\n```\n> quoted",
    },
    {
        "type": "rich_text",
        "elements": [
            {
                "type": "rich_text_section",
                "elements": [
                    {"type": "text", "text": "bold ", "style": {"bold": True}},
                    {"type": "text", "text": "code", "style": {"code": True}},
                    {"type": "emoji", "name": "white_check_mark"},
                    {"type": "link", "url": "https://example.com/doc", "text": "doc"},
                    {"type": "user", "user_id": "U0ALICE"},
                ],
            },
            {
                "type": "rich_text_list",
                "style": "ordered",
                "elements": [
                    {"type": "rich_text_section", "elements": [{"type": "text", "text": "one"}]},
                    {"type": "rich_text_section", "elements": [{"type": "text", "text": "two"}]},
                ],
            },
            {"type": "rich_text_quote", "elements": [{"type": "text", "text": "a quote"}]},
            {"type": "rich_text_preformatted", "elements": [{"type": "text", "text": "x = 1"}]},
        ],
    },
    {
        "type": "context",
        "elements": [
            {"type": "image", "image_url": "https://example.com/a.png", "alt_text": "icon"},
            {"type": "mrkdwn", "text": "T-4 · :hourglass_flowing_sand: IN PROGRESS"},
        ],
    },
    {
        "type": "actions",
        "elements": [
            {
                "type": "static_select",
                "action_id": "filter",
                "placeholder": {"type": "plain_text", "text": "Filter"},
                "options": [
                    {"text": {"type": "plain_text", "text": "Open"}, "value": "open"},
                    {"text": {"type": "plain_text", "text": "Blocked"}, "value": "blocked"},
                ],
            },
            {
                "type": "button",
                "action_id": "reopen",
                "style": "danger",
                "text": {"type": "plain_text", "text": "Reopen"},
            },
        ],
    },
]


async def test_every_block_kit_type_pmteam_sends_is_drawn(page: Page) -> None:
    fake = FakeSlack(ack_timeout=2.0, retry_delays=(0.0,))
    attach_page(fake)
    await fake.start()
    received: list[dict[str, Any]] = []

    async def app(request: web.Request) -> web.StreamResponse:
        form = {k: v[0] for k, v in parse_qs((await request.read()).decode()).items()}
        received.append(json.loads(form.get("payload", "{}")))
        return web.Response(status=200)

    web_app = web.Application()
    web_app.router.add_post("/slack/events", app)
    runner = web.AppRunner(web_app, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    fake.set_event_target(f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events")
    try:
        client = AsyncWebClient(token="xoxb-browser-test", base_url=fake.api_url)
        posted = await client.chat_postMessage(channel="C0ENG", text="standup", blocks=GALLERY)
        await page.goto(f"{fake.url}/#/c/C0ENG")
        message = page.locator("#messages .message")
        await expect(message.locator(".bk-header")).to_have_text("Weekly standup 🌅")
        section = message.locator(".bk-section")
        for tag, text in (("strong", "Done"), ("em", "this week"), ("del", "nothing")):
            await expect(section.locator(tag).first).to_have_text(text)
        await expect(section.locator(".mention")).to_have_text(["@bob", "#pm-coordination"])
        await expect(section.locator(".bk-field")).to_have_count(2)
        await expect(section.locator(".bk-accessory button")).to_have_text("Open board")
        await expect(message.locator("hr.bk-divider")).to_have_count(1)
        markdown = message.locator(".bk-markdown")
        await expect(markdown.locator("h4")).to_have_text("Plan")
        await expect(markdown.locator("ol li")).to_have_text(["claim", "lease"])
        await expect(markdown.locator("table td")).to_have_text(["claim", "worker"])
        await expect(markdown.locator("pre")).to_have_text("SELECT 1;")
        await expect(markdown.locator("blockquote")).to_have_text("quoted")
        rich = message.locator(".rich-text")
        await expect(rich.locator("strong")).to_have_text("bold ")
        await expect(rich.locator("a")).to_have_attribute("href", "https://example.com/doc")
        await expect(rich.locator(".mention")).to_have_text("@alice")
        await expect(rich.locator("ol li")).to_have_text(["one", "two"])
        await expect(rich.locator("pre")).to_have_text("x = 1")
        await expect(message.locator(".bk-context")).to_contain_text("⏳ IN PROGRESS")
        await expect(message.locator(".bk-unsupported")).to_have_count(0)
        await snap(page, "blocks")

        await message.locator("select.bk-select").select_option(label="Blocked")
        await fake.wait_for(lambda: len(received) == 1)
        action = received[0]["actions"][0]
        assert action["action_id"] == "filter"
        assert action["selected_option"]["value"] == "blocked"
        assert received[0]["container"]["message_ts"] == posted["ts"]
    finally:
        await runner.cleanup()
        await fake.stop()
