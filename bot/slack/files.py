"""Downloading a file someone shared, with the bot token, a size cap and a temporary file."""

from __future__ import annotations

import tempfile

import aiohttp

from bot.core.attachments import SharedFile

CHUNK = 64 * 1024


class DownloadRefused(Exception):
    """Slack would not give the file (a phrase saying why)."""


async def download(
    session: aiohttp.ClientSession, file: SharedFile, *, token: str, max_bytes: int
) -> bytes:
    """The file's bytes, streamed to a temporary file so a large one never sits in memory
    twice; stops at `max_bytes` whatever the declared size said. Raises DownloadRefused."""
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=60)
    async with session.get(
        file.url, headers=headers, timeout=timeout, allow_redirects=False
    ) as response:
        if response.status != 200:
            raise DownloadRefused(f"Slack answered HTTP {response.status}")
        if response.content_type == "text/html" and not file.mimetype.startswith("text/html"):
            # Slack's sign-in page instead of the file: the token lacks files:read.
            raise DownloadRefused("Slack refused the download (does the app have files:read?)")
        with tempfile.SpooledTemporaryFile(max_size=1024 * 1024) as spool:
            received = 0
            async for chunk in response.content.iter_chunked(CHUNK):
                received += len(chunk)
                if received > max_bytes:
                    raise DownloadRefused(f"it is larger than the {max_bytes:,} bytes I read")
                spool.write(chunk)
            spool.seek(0)
            return spool.read()
