"""The sandbox in a real browser: Chromium drives the page while pmteam answers (the slow test)."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright, expect
from slack_sdk.web.async_client import AsyncWebClient

from bot.cli.sandbox import Sandbox, start_sandbox, stop_sandbox
from bot.listeners.events.assistant import SUGGESTED_PROMPTS
from bot.slack.blocks.report import REPORT_HEADER
from sandbox.slack import FakeSlack
from sandbox.web import ModelNote, SandboxPage, attach_page


def _chromium() -> Path:
    """PMTEAM_CHROMIUM if set, else Debian's /usr/bin/chromium, else a Homebrew install."""
    if configured := os.environ.get("PMTEAM_CHROMIUM"):
        return Path(configured)
    for candidate in (
        Path("/usr/bin/chromium"),
        Path("/Applications/Chromium.app/Contents/MacOS/Chromium"),
    ):
        if candidate.exists():
            return candidate
    return Path("/usr/bin/chromium")


CHROMIUM = _chromium()
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
# The guided tour's requests, and the status the offline demo model gives each one.
TOUR = (
    (
        "Our /v1/invoices list endpoint gets slow past page 50 — how should we paginate it?",
        "COMPLETED",
    ),
    (
        "Plan the migration of the orders table from MySQL to PostgreSQL without downtime",
        "IN PROGRESS",
    ),
    (
        "Set up the Stripe webhook consumer — we're waiting for the production API credentials "
        "from finance",
        "BLOCKED",
    ),
)
FOLLOW_UP = "What about filters and sorting with keyset pagination?"
# The page's one date format: "Tue 1 Dec, 13:02" (with the year outside the current one).
PAGE_TIME = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2} [A-Z][a-z]{2}( \d{4})?, \d{2}:\d{2}$"
)
# Every element whose box leaves the viewport, unless a scroller made for it holds it.
OUTSIDE_THE_VIEWPORT = """() => {
    const width = document.documentElement.clientWidth;
    const inside = (box) => box.left >= -1 && box.right <= width + 1;
    const scrollers = "pre, .table-wrap, .suggestions, .sidebar";
    const wide = [];
    for (const el of document.querySelectorAll("body *")) {
        const box = el.getBoundingClientRect();
        if (!box.width || !box.height || inside(box)) continue;
        const scroller = el.parentElement && el.parentElement.closest(scrollers);
        if (scroller && inside(scroller.getBoundingClientRect())) continue;
        wide.push(`${el.tagName.toLowerCase()}.${el.className} (${Math.round(box.width)} px)`);
    }
    if (document.documentElement.scrollWidth > width) wide.push("the page scrolls sideways");
    return wide;
}"""

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        not CHROMIUM.exists() and not IN_CI,
        reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium, or set "
        "PMTEAM_CHROMIUM to its path); CI installs it and always runs these tests",
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


# --- the guided tour -----------------------------------------------------------------------------


def _answered(slack: FakeSlack, channel: str, ts: str, *, after: str | None = None) -> bool:
    """pmteam's streamed answer in the thread of `ts` (after `after`) has ended."""
    return any(
        m.stream is not None
        and m.stream.state == "completed"
        and (after is None or float(m.ts) > float(after))
        for m in slack.workspace.replies(channel, ts)
    )


@pytest.mark.timeout(420)
async def test_the_guided_tour_walks_through_the_whole_pm_workflow(
    sandbox: Sandbox, page: Page
) -> None:
    slack = sandbox.slack
    await page.goto(sandbox.url)
    tour = page.locator("#tour")
    await expect(tour).to_contain_text("Welcome to the pmteam sandbox")

    # The three requests, asked from the welcome card: real mentions, in order T-1, T-2, T-3.
    asked: list[str] = []
    for number, (request, _status) in enumerate(TOUR, start=1):
        row = tour.locator(".tour-request", has_text=request)
        await row.get_by_role("button", name="Ask pmteam").click()
        await expect(row.get_by_role("button", name="✓ Asked · open thread")).to_be_visible()
        await slack.wait_for(lambda n=number: len(slack.workspace.messages("C0ENG")) == n)
        posted = slack.workspace.messages("C0ENG")[-1]
        assert posted.text == f"<@U0PMTEAM> {request}" and posted.user == "U0ALICE"
        asked.append(posted.ts)
        # Taken (👀) before the next is asked, so the refs follow the order of the requests.
        await slack.wait_for(lambda m=posted: bool(m.reactions.get("eyes")), timeout=30)
    await slack.wait_for(lambda: all(_answered(slack, "C0ENG", ts) for ts in asked), timeout=120)

    # Each answer is in its thread; the card of each is in #pm-coordination, with its status.
    for ts in asked:
        mention = page.locator(f"#messages .message[data-ts='{ts}']")
        await expect(mention.locator(".thread-link")).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    await page.click("[data-channel=pm-coordination]")
    cards = page.locator("#messages .message", has_text=REPORT_HEADER)
    await expect(cards).to_have_count(3, timeout=ANSWER_TIMEOUT_MS)
    for number, (_request, status) in enumerate(TOUR, start=1):
        card = cards.filter(has_text=f"T-{number} · requested by")
        await expect(card.locator(".bk-field").nth(1)).to_contain_text(
            status, timeout=ANSWER_TIMEOUT_MS
        )
    await snap(page, "tour-cards")

    # A follow-up in the first thread, suggested under its reply box, gets its own answer.
    await page.click("[data-channel=engineering]")
    await page.locator(f"#messages .message[data-ts='{asked[0]}'] .thread-link").click()
    await page.locator("#thread-suggestions .suggestion", has_text=FOLLOW_UP).click()
    await expect(page.locator("#thread-text")).to_have_value(FOLLOW_UP)
    await page.press("#thread-text", "Enter")
    await slack.wait_for(
        lambda: any(m.text == FOLLOW_UP for m in slack.workspace.replies("C0ENG", asked[0]))
    )
    [follow_up] = [m for m in slack.workspace.replies("C0ENG", asked[0]) if m.text == FOLLOW_UP]
    await slack.wait_for(
        lambda: _answered(slack, "C0ENG", asked[0], after=follow_up.ts), timeout=90
    )
    [answer] = [
        m
        for m in slack.workspace.replies("C0ENG", asked[0])
        if m.stream is not None and float(m.ts) > float(follow_up.ts)
    ]
    thread = page.locator("#thread-messages")
    await expect(thread.locator(f".message[data-ts='{answer.ts}']")).not_to_have_class(
        re.compile("streaming")
    )
    last_paragraph = answer.text.strip().split("\n\n")[-1].replace("**", "")
    await expect(thread.locator(f".message[data-ts='{answer.ts}']")).to_contain_text(
        last_paragraph[:60]
    )
    await page.click("#thread-close")

    # The in-progress card's "Mark blocked" asks why, in a modal; the answer blocks the task.
    await page.click("[data-channel=pm-coordination]")
    in_progress = cards.filter(has_text="T-2 · requested by")
    await in_progress.get_by_role("button", name="Mark blocked").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_be_visible()
    reason = "waiting for the DBA to approve the cut-over window"
    await dialog.locator("textarea, input[type=text]").first.fill(reason)
    await snap(page, "tour-blocked-modal")
    await dialog.locator("button[type=submit]").click()
    await expect(dialog).to_have_count(0)
    await expect(in_progress.locator(".bk-field").nth(1)).to_contain_text(
        "BLOCKED", timeout=ANSWER_TIMEOUT_MS
    )

    # The Home tab's Blocked section lists both blocked tasks.
    await page.click("#nav-app")
    home = page.locator("#home")
    await expect(home.locator(".bk-section", has_text=reason)).to_contain_text(
        "T-2", timeout=ANSWER_TIMEOUT_MS
    )
    await expect(home.locator(".bk-section", has_text="T-3").first).to_be_visible()
    await expect(home).not_to_contain_text("Nothing is blocked.")
    await snap(page, "tour-home")

    # The assistant pane: pmteam's suggested prompts; one clicked streams an answer there.
    await page.click("[data-channel=engineering]")
    await page.click("#assistant-toggle")
    pane = page.locator("#assistant")
    prompts = pane.locator(".assistant-prompt")
    await expect(prompts).to_have_count(len(SUGGESTED_PROMPTS), timeout=ANSWER_TIMEOUT_MS)
    for index, prompt in enumerate(SUGGESTED_PROMPTS):
        await expect(prompts.nth(index)).to_contain_text(prompt["title"])
    [started] = [d for d in slack.deliveries if d.type == "assistant_thread_started"]
    context = started.payload["event"]["assistant_thread"]
    assert started.acked and context["context"]["channel_id"] == "C0ENG"
    await expect(pane.locator("#assistant-context")).to_contain_text("#engineering")
    await prompts.first.click()
    messages = pane.locator("#assistant-messages")
    await expect(messages).to_contain_text(SUGGESTED_PROMPTS[0]["message"])
    await expect(messages.locator(".message.streaming .caret")).to_have_count(
        1, timeout=ANSWER_TIMEOUT_MS
    )
    dm, root = context["channel_id"], context["thread_ts"]
    await slack.wait_for(lambda: _answered(slack, dm, root), timeout=90)
    [reply] = [m for m in slack.workspace.replies(dm, root) if m.stream is not None]
    await expect(messages.locator(f".message[data-ts='{reply.ts}']")).to_contain_text(
        reply.text.strip().split("\n\n")[-1].replace("**", "")[:60]
    )
    [typed] = [
        d
        for d in slack.deliveries
        if d.type == "message"
        and d.payload["event"].get("thread_ts") == root
        and d.payload["event"].get("user") == "U0ALICE"
    ]
    assert typed.payload["event"]["channel_type"] == "im" and typed.acked
    thread = slack.workspace.assistant_thread(dm, root)
    assert thread is not None and "is thinking…" in thread.status_history
    await expect(pane.locator("#assistant-title")).to_have_text(
        thread.title or SUGGESTED_PROMPTS[0]["message"]
    )
    # Switching channels with the pane open tells pmteam the new context.
    await page.click("[data-channel=pm-coordination]")
    await slack.wait_for(
        lambda: any(d.type == "assistant_thread_context_changed" for d in slack.deliveries)
    )
    await expect(pane.locator("#assistant-context")).to_contain_text("#pm-coordination")
    await snap(page, "tour-assistant")
    await page.click("#assistant-close")

    # /pm standup: the preview's narrative names the tasks, and its cost is marked simulated.
    await page.fill("#composer-text", "/pm standup")
    await page.press("#composer-text", "Enter")
    standup = page.locator("#messages .message.ephemeral", has=page.locator(".bk-header"))
    await expect(standup.locator(".bk-header")).to_contain_text(
        "Standup", timeout=ANSWER_TIMEOUT_MS
    )
    narrative = standup.locator(".bk-section").first
    for number in range(1, len(TOUR) + 1):
        await expect(narrative).to_contain_text(f"T-{number}")
    await expect(standup.locator(".bk-context", has_text="Usage")).to_contain_text(
        re.compile(r"\$[\d,.]+ \(simulated\)")
    )
    await snap(page, "tour-standup")


# --- small screens -------------------------------------------------------------------------------


async def test_phone_widths_keep_the_report_readable_and_inside_the_screen(
    sandbox: Sandbox, page: Page
) -> None:
    slack = sandbox.slack
    posted = await slack.post_as_user("U0ALICE", "C0ENG", f"<@U0PMTEAM> {TOUR[0][0]}")
    await slack.wait_for(
        lambda: (
            any(m.user == "U0PMTEAM" for m in slack.workspace.messages("C0PM"))
            and _answered(slack, "C0ENG", posted.ts)
        ),
        timeout=90,
    )
    for width in (360, 414):
        await page.set_viewport_size({"width": width, "height": 760})
        await page.goto(f"{sandbox.url}#/c/C0PM")
        report = page.locator("#messages .message", has_text=REPORT_HEADER)
        await expect(report.locator(".bk-header")).to_have_text(REPORT_HEADER)
        assert await page.evaluate(OUTSIDE_THE_VIEWPORT) == [], width
        # The sidebar is a strip of channels above the messages, not a column beside them.
        content = await report.locator(".message-content").bounding_box()
        assert content is not None and content["width"] >= 0.75 * width, content
        header = await report.locator(".bk-header").bounding_box()
        assert header is not None and header["height"] < 4 * 27, header  # a few lines at most
        button = await report.get_by_role("button", name="Acknowledge").bounding_box()
        assert button is not None and button["height"] < 40, button  # one line
        await snap(page, f"report-{width}")

        # The thread covers the screen, and its code scrolls sideways inside its block.
        await page.click("[data-channel=engineering]")
        await page.locator(f"#messages .message[data-ts='{posted.ts}'] .thread-link").click()
        await _covers_the_screen(page, "#thread")
        thread = await page.locator("#thread").bounding_box()
        assert thread is not None and (thread["x"], thread["width"]) == (0, width)
        await expect(page.locator("#thread-messages .message").nth(1)).to_be_visible()
        assert await page.evaluate(OUTSIDE_THE_VIEWPORT) == [], width
        await page.click("#thread-close")

        # So does the assistant pane; the home tab fits too.
        await page.click("#assistant-toggle")
        await _covers_the_screen(page, "#assistant")
        pane = await page.locator("#assistant").bounding_box()
        assert pane is not None and (pane["x"], pane["width"]) == (0, width)
        await page.click("#assistant-close")
        await page.click("#nav-app")
        await expect(page.locator("#home .blocks")).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
        assert await page.evaluate(OUTSIDE_THE_VIEWPORT) == [], width


async def _covers_the_screen(page: Page, selector: str) -> None:
    """Wait until the pane at `selector` is shown and has slid in to cover the screen."""
    await expect(page.locator(selector)).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    await page.wait_for_function(
        """(selector) => {
            const box = document.querySelector(selector).getBoundingClientRect();
            return box.x === 0 && box.width === window.innerWidth;
        }""",
        arg=selector,
        timeout=ANSWER_TIMEOUT_MS,
    )


# --- against a stand-in app ----------------------------------------------------------------------


@dataclass
class StandIn:
    """The fake Slack with its page, and a stand-in app that records what it is sent."""

    fake: FakeSlack
    page: SandboxPage
    client: AsyncWebClient
    received: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
async def stand_in() -> AsyncIterator[StandIn]:
    fake = FakeSlack(ack_timeout=2.0, retry_delays=(0.0,))
    sandbox_page = attach_page(fake, model=ModelNote(offline=True, text="Offline demo model"))
    await fake.start()
    world = StandIn(fake, sandbox_page, AsyncWebClient(token="xoxb-test", base_url=fake.api_url))

    async def app(request: web.Request) -> web.StreamResponse:
        raw = (await request.read()).decode()
        if request.content_type == "application/json":
            world.received.append(json.loads(raw))
        else:
            form = {k: v[0] for k, v in parse_qs(raw).items()}
            world.received.append(json.loads(form["payload"]) if "payload" in form else form)
        return web.Response(status=200)

    web_app = web.Application()
    web_app.router.add_post("/slack/events", app)
    runner = web.AppRunner(web_app, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    fake.set_event_target(f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events")
    yield world
    await runner.cleanup()
    await fake.stop()


async def test_a_long_message_is_folded_behind_show_more(stand_in: StandIn, page: Page) -> None:
    words = "The invoices endpoint scans every earlier page before the one asked for. "
    long_text = (words * (40_000 // len(words) + 1))[:40_000]
    await stand_in.client.chat_postMessage(channel="C0ENG", text=words * 50)  # ~3,600 chars
    posted = await stand_in.client.chat_postMessage(channel="C0ENG", text=long_text)
    await page.goto(f"{stand_in.fake.url}/#/c/C0ENG")

    messages = page.locator("#messages .message")
    await expect(messages).to_have_count(2)
    await expect(messages.first.locator(".show-more")).to_have_count(0)
    long_message = page.locator(f"#messages .message[data-ts='{posted['ts']}']")
    toggle = long_message.get_by_role("button", name="Show more")
    await expect(toggle).to_be_visible()
    content = long_message.locator(".message-content")
    folded = await content.evaluate("(node) => [node.clientHeight, node.scrollHeight]")
    assert folded[0] < 600 < folded[1], folded
    await snap(page, "show-more")

    await toggle.click()
    await expect(long_message.get_by_role("button", name="Show less")).to_be_visible()
    unfolded = await content.evaluate("(node) => node.clientHeight")
    assert unfolded >= folded[1] - 1, (unfolded, folded)
    await expect(content).to_contain_text(long_text[-60:].strip())


async def test_at_in_a_composer_offers_people_and_the_app(stand_in: StandIn, page: Page) -> None:
    await page.goto(f"{stand_in.fake.url}/#/c/C0ENG")
    box = page.locator("#composer-text")
    menu = page.locator("#composer .mention-menu")

    await box.press_sequentially("ping @")
    await expect(menu.get_by_role("option")).to_have_count(3)  # pmteam, Alice, Bob
    await box.press_sequentially("b")
    await expect(menu.locator("[role=option] strong")).to_have_text(["Bob"])
    await box.press("Tab")
    await expect(menu).to_be_hidden()
    await expect(box).to_have_value("ping @bob ")
    await box.press_sequentially("and @")
    await box.press("ArrowDown")  # pmteam → Alice
    await box.press("Enter")  # picks, does not send
    await expect(box).to_have_value("ping @bob and @alice ")
    await box.press_sequentially("@p")
    await box.press("Escape")
    await expect(menu).to_be_hidden()
    await expect(box).to_have_value("ping @bob and @alice @p")
    await box.press("Enter")
    await stand_in.fake.wait_for(lambda: bool(stand_in.fake.workspace.messages("C0ENG")))
    [sent] = stand_in.fake.workspace.messages("C0ENG")
    assert sent.text == "ping <@U0BOB> and <@U0ALICE> @p"

    # In a command, the person picked reaches the app as Slack escapes it: /pm list @alice.
    await box.press_sequentially("/pm list @al")
    await box.press("Enter")
    await expect(box).to_have_value("/pm list @alice ")
    await box.press("Enter")
    await stand_in.fake.wait_for(lambda: any(p.get("command") for p in stand_in.received))
    [command] = [p for p in stand_in.received if p.get("command") == "/pm"]
    assert command["text"] == "list <@U0ALICE|alice>"

    # Every composer has it: the thread's reply box too.
    await page.locator(f"#messages .message[data-ts='{sent.ts}']").hover()
    await page.get_by_title("Reply in thread").click()
    await page.locator("#thread-text").press_sequentially("@a")
    await expect(page.locator("#thread-composer [role=option] strong")).to_have_text(["Alice"])


async def test_costs_are_marked_simulated_and_times_share_one_format(
    stand_in: StandIn, browser: Browser
) -> None:
    # The viewer's own time zone, not the server's: Paris is an hour off UTC in winter.
    context = await browser.new_context(
        viewport={"width": 1280, "height": 800}, timezone_id="Europe/Paris"
    )
    tab = await context.new_page()
    moment = 1796218571  # Wed 2 Dec 2026, 13:36 UTC
    await stand_in.client.chat_postMessage(
        channel="C0PM",
        text="usage",
        blocks=[
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": "*Cost*\n$0.27"}],
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f":moneybag: $1,204.50 · since <!date^{moment}^"
                        "{date_short_pretty} {time}|2026-12-02 13:36 UTC>",
                    }
                ],
            },
        ],
    )
    await stand_in.fake.post_as_user("U0ALICE", "C0PM", "our budget is $5 a day")
    await tab.goto(f"{stand_in.fake.url}/#/c/C0PM")

    report, typed = tab.locator("#messages .message").first, tab.locator("#messages .message").last
    await expect(report.locator(".bk-field")).to_have_text(re.compile(r"\$0\.27 \(simulated\)$"))
    await expect(report.locator(".bk-context")).to_contain_text("$1,204.50 (simulated) · since")
    await expect(typed).to_contain_text("our budget is $5 a day")
    await expect(typed).not_to_contain_text("simulated")

    # The date in the blocks and every message's time: one format, in the viewer's time.
    paris = datetime.fromtimestamp(moment, ZoneInfo("Europe/Paris"))
    year = "" if paris.year == datetime.now().year else f" {paris.year}"
    shown = await report.locator(".bk-context time").inner_text()
    assert shown == f"{paris:%a} {paris.day} {paris:%b}{year}, {paris:%H:%M}", shown
    assert shown.endswith("14:36") and PAGE_TIME.match(shown)
    for time in await tab.locator("#messages .message-head time").all_inner_texts():
        assert PAGE_TIME.match(time), time

    # With Claude answering, costs are real: nothing is marked.
    stand_in.page.model = ModelNote(offline=False, text="Answers come from Claude.")
    await tab.reload()
    await expect(report.locator(".bk-field")).to_have_text(re.compile(r"\$0\.27$"))
    await context.close()
