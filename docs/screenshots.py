"""Make the README screenshots: `uv run python docs/screenshots.py` writes docs/*.png."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from playwright.async_api import Page, ViewportSize, async_playwright, expect

from bot.cli.sandbox import start_sandbox, stop_sandbox
from bot.slack.blocks.report import REPORT_HEADER

DOCS = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
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
MENTION = "@pmteam design a durable job queue on PostgreSQL for our nightly billing exports"
WAIT_MS = 60_000


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


async def shoot(page: Page, name: str) -> None:
    path = DOCS / f"{name}.png"
    await page.screenshot(path=str(path))
    sys.stdout.write(f"wrote {path.relative_to(DOCS.parent)}\n")


async def main() -> None:
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
                await page.goto(sandbox.url)

                # Alice asks in #engineering and opens the thread.
                await page.fill("#composer-text", MENTION)
                await page.press("#composer-text", "Enter")
                question = page.locator("#messages .message", has_text="nightly billing")
                await question.locator(".thread-link").click(timeout=WAIT_MS)
                thread = page.locator("#thread-messages")
                await expect(thread).to_contain_text("Self-assessment ", timeout=WAIT_MS)
                await expect(question.locator("[data-reaction=white_check_mark]")).to_be_visible(
                    timeout=WAIT_MS
                )
                await page.mouse.move(0, 0)  # no hover highlight in the picture
                await scroll_to_end(page, "#thread-messages")
                await shoot(page, "thread")

                # Bob, the PM, reads the report in #pm-coordination.
                await page.select_option("#viewer", "U0BOB")
                await page.click("[data-channel=pm-coordination]")
                report = page.locator("#messages .message", has_text=REPORT_HEADER)
                await expect(report).to_be_visible()
                await page.mouse.move(0, 0)
                await scroll_into_view(page, ".message", "#messages")
                await shoot(page, "report")

                # Bob's App Home: the board.
                await page.click("#nav-app")
                await expect(page.locator("#home .blocks")).to_be_visible(timeout=WAIT_MS)
                await page.mouse.move(0, 0)
                await shoot(page, "home")
                await browser.close()
        finally:
            await stop_sandbox(sandbox)


if __name__ == "__main__":
    asyncio.run(main())
