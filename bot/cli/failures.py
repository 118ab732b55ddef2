"""What went wrong when a command could not start, as one line with the fix; None for a bug."""

from __future__ import annotations

import errno

import aiohttp
from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import DBAPIError

from bot.config import Settings, display_database_url

_ADDRESS_PROBLEMS = {
    errno.EADDRINUSE: "is already in use; stop what listens there, or pass --port "
    "(or set PMTEAM_PORT)",
    errno.EADDRNOTAVAIL: "is not an address of this machine; pass --host 0.0.0.0 (or fix "
    "PMTEAM_HOST)",
    errno.EACCES: "may not be listened on by this user; pass a --port above 1023",
}


def describe_start_failure(exc: BaseException, settings: Settings) -> str | None:
    """Slack refusing a token or out of reach, a database error, an address that can't be
    listened on: the operator's to fix. Anything else is a bug and keeps its traceback."""
    if isinstance(exc, SlackApiError):
        error = exc.response.get("error")
        method = str(getattr(exc.response, "api_url", "")).rstrip("/").rsplit("/", 1)[-1]
        if method == "apps.connections.open":
            return (
                f"Slack refused SLACK_APP_TOKEN ({error}); make a new app-level token with "
                "connections:write ('Basic Information' → App-Level Tokens)"
            )
        return (
            f"Slack refused SLACK_BOT_TOKEN on {method or 'a call'} ({error}); reinstall the "
            "app and copy its Bot User OAuth Token again (`pmteam doctor` checks it)"
        )
    if isinstance(exc, aiohttp.ClientError | TimeoutError):
        return (
            f"cannot reach Slack at {settings.slack_api_url} ({exc.__class__.__name__}); "
            "check the network and PMTEAM_SLACK_API_URL"
        )
    if isinstance(exc, DBAPIError):
        first = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else ""
        return (
            f"the database {display_database_url(settings.database_url)} failed "
            f"({exc.orig.__class__.__name__}{': ' + first if first else ''}); check "
            "PMTEAM_DATABASE_URL and that the database is reachable (`pmteam doctor`)"
        )
    if isinstance(exc, OSError) and exc.errno in _ADDRESS_PROBLEMS:
        return f"{settings.host}:{settings.port} {_ADDRESS_PROBLEMS[exc.errno]}"
    return None
