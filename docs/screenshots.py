"""Make the README screenshots: `uv run python docs/screenshots.py` walks the sandbox's guided
tour in headless Chromium and writes docs/thread.png, report.png, home.png and assistant.png
(`--out DIR` writes them elsewhere, to look before replacing)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

from playwright.async_api import Page, ViewportSize, async_playwright, expect

from bot.cli.sandbox import Sandbox, start_sandbox, stop_sandbox
from bot.slack.blocks.report import REPORT_HEADER

DOCS = Path(__file__).resolve().parent
# The same browser the tests use: PMTEAM_CHROMIUM, else Debian's, else Homebrew's.
CHROMIUM = os.environ.get("PMTEAM_CHROMIUM") or next(
    (
        path
        for path in ("/usr/bin/chromium", "/Applications/Chromium.app/Contents/MacOS/Chromium")
        if Path(path).exists()
    ),
    "/usr/bin/chromium",
)
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
# Taller than the 1280×800 the page is made for, so a whole report fits in one picture.
VIEWPORT: ViewportSize = {"width": 1280, "height": 1000}
# The guided tour's three requests (completed, in progress, blocked) and its follow-up.
TOUR = (
    "Our /v1/invoices list endpoint gets slow past page 50 — how should we paginate it?",
    "Plan the migration of the orders table from MySQL to PostgreSQL without downtime",
    "Set up the Stripe webhook consumer — we're waiting for the production API credentials "
    "from finance",
)
FOLLOW_UP = "What about filters and sorting with keyset pagination?"
BLOCKED_REASON = "waiting for the DBA to approve the cut-over window"
WAIT_S = 120.0
WAIT_MS = int(WAIT_S * 1000)


def answered(sandbox: Sandbox, channel: str, ts: str, *, after: str = "0") -> bool:
    """pmteam's streamed answer in the thread of `ts`, posted after `after`, has ended."""
    return any(
        m.stream is not None and m.stream.state == "completed" and float(m.ts) > float(after)
        for m in sandbox.slack.workspace.replies(channel, ts)
    )


async def scroll_into_view(page: Page, selector: str, container: str) -> None:
    """Scroll `container` so the element matching `selector` starts at its top."""
    await page.eval_on_selector(
        container,
        """(box, selector) => {
            const target = box.querySelector(selector);
            if (target) box.scrollTop = target.offsetTop - box.offsetTop - 8;
        }""",
        selector,
    )


async def scroll_to_end(page: Page, container: str) -> None:
    """Scroll `container` to its end: the end of the answer and the lines under it."""
    await page.eval_on_selector(container, "(box) => { box.scrollTop = box.scrollHeight; }")


async def shoot(page: Page, out: Path, name: str) -> None:
    await page.mouse.move(0, 0)  # no hover highlight in the picture
    path = out / f"{name}.png"
    await page.screenshot(path=str(path))
    sys.stdout.write(f"wrote {path}\n")


async def walk_the_tour(sandbox: Sandbox, page: Page, out: Path) -> None:
    slack = sandbox.slack
    await page.goto(sandbox.url)

    # Alice asks the tour's three requests from the welcome card in #engineering.
    tour = page.locator("#tour")
    asked: list[str] = []
    for number, request in enumerate(TOUR, start=1):
        row = tour.locator(".tour-request", has_text=request)
        await row.get_by_role("button", name="Ask pmteam").click()
        await slack.wait_for(lambda n=number: len(slack.workspace.messages("C0ENG")) == n)
        asked.append(slack.workspace.messages("C0ENG")[-1].ts)
    await slack.wait_for(lambda: all(answered(sandbox, "C0ENG", ts) for ts in asked), WAIT_S)

    # She asks the suggested follow-up in the first thread and watches it answered.
    await page.get_by_role("button", name="Fold the tour").click()
    await page.locator(f"#messages .message[data-ts='{asked[0]}'] .thread-link").click()
    await page.locator("#thread-suggestions .suggestion").click()
    await page.press("#thread-text", "Enter")
    await slack.wait_for(
        lambda: any(m.text == FOLLOW_UP for m in slack.workspace.replies("C0ENG", asked[0]))
    )
    [follow_up] = [m for m in slack.workspace.replies("C0ENG", asked[0]) if m.text == FOLLOW_UP]
    await slack.wait_for(lambda: answered(sandbox, "C0ENG", asked[0], after=follow_up.ts), WAIT_S)
    await expect(page.locator("#thread-messages .message.streaming")).to_have_count(0)
    await scroll_to_end(page, "#thread-messages")
    await shoot(page, out, "thread")

    # Bob, the PM, reads the in-progress card in #pm-coordination, then marks it blocked.
    await page.click("#thread-close")
    await page.select_option("#viewer", "U0BOB")
    await page.click("[data-channel=pm-coordination]")
    card = page.locator("#messages .message", has_text=REPORT_HEADER).filter(
        has_text="T-2 · requested by"
    )
    await expect(card.get_by_role("button", name="Mark blocked")).to_be_visible(timeout=WAIT_MS)
    ts = await card.get_attribute("data-ts")
    await scroll_into_view(page, f".message[data-ts='{ts}']", "#messages")
    await shoot(page, out, "report")
    await card.get_by_role("button", name="Mark blocked").click()
    dialog = page.get_by_role("dialog")
    await dialog.locator("textarea, input[type=text]").first.fill(BLOCKED_REASON)
    await dialog.locator("button[type=submit]").click()
    await expect(dialog).to_have_count(0)

    # Bob's App Home: the board, with both blocked tasks.
    await page.click("#nav-app")
    await expect(page.locator("#home .bk-section", has_text=BLOCKED_REASON)).to_be_visible(
        timeout=WAIT_MS
    )
    await shoot(page, out, "home")

    # The assistant pane beside #engineering: a suggested prompt, answered in the pane.
    await page.click("[data-channel=engineering]")
    await page.click("#assistant-toggle")
    prompt = page.locator("#assistant .assistant-prompt").first
    await expect(prompt).to_be_visible(timeout=WAIT_MS)
    await prompt.click()
    await slack.wait_for(lambda: len(assistant_replies(sandbox)) > 0, WAIT_S)
    await expect(page.locator("#assistant-messages .message.streaming")).to_have_count(0)
    await scroll_into_view(page, ".message", "#assistant-messages")  # the question, then the answer
    await shoot(page, out, "assistant")


def assistant_replies(sandbox: Sandbox) -> list[str]:
    """The ts of every finished answer pmteam streamed into an assistant thread."""
    workspace = sandbox.slack.workspace
    return [
        m.ts
        for (channel, thread_ts) in workspace.assistant_threads
        for m in workspace.replies(channel, thread_ts)
        if m.stream is not None and m.stream.state == "completed"
    ]


async def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        sandbox = await start_sandbox(
            port=0, database_url=f"sqlite+aiosqlite:///{scratch}/screenshots.db"
        )
        try:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS
                )
                page = await browser.new_page(viewport=VIEWPORT)
                await walk_the_tour(sandbox, page, out)
                await browser.close()
        finally:
            await stop_sandbox(sandbox)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DOCS, help="where to write (default: docs/)")
    asyncio.run(main(parser.parse_args().out))
