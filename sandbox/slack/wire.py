"""Slack wire details shared by the Web API and event delivery: params, signing, ids, cursors."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import secrets
import string
from typing import Any

JSON = dict[str, Any]

# Arguments that form bodies carry as JSON strings; JSON bodies carry them as values.
JSON_ARGUMENTS = frozenset(
    {
        "attachments",
        "blocks",
        "chunks",
        "loading_messages",
        "metadata",
        "prompts",
        "unfurls",
        "view",
    }
)

_ID_ALPHABET = string.ascii_uppercase + string.digits


class ApiError(Exception):
    """A Slack `{"ok": false, "error": ...}` answer (HTTP 200)."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra

    def body(self) -> JSON:
        return {"ok": False, "error": self.error, **self.extra}


def decode_json_arguments(params: JSON) -> JSON:
    """A copy with JSON-string arguments decoded where they parse (kept as strings otherwise)."""
    decoded = dict(params)
    for name in JSON_ARGUMENTS & params.keys():
        value = params[name]
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                decoded[name] = json.loads(value)
    return decoded


class Params:
    """One Web API call's arguments, with Slack's coercions (form values are all strings)."""

    def __init__(self, values: JSON) -> None:
        self.values = values

    def __contains__(self, name: str) -> bool:
        return self.values.get(name) not in (None, "")

    def opt(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def req(self, name: str, error: str = "invalid_arguments") -> str:
        value = self.opt(name)
        if value is None:
            raise ApiError(error)
        return value

    def flag(self, name: str) -> bool:
        value = self.values.get(name)
        if isinstance(value, bool):
            return value
        return str(value).lower() in ("1", "true") if value is not None else False

    def number(self, name: str, default: int, *, low: int = 1, high: int = 1000) -> int:
        value = self.values.get(name)
        if value in (None, ""):
            return default
        try:
            number = int(str(value))
        except ValueError:
            raise ApiError("invalid_arguments") from None
        return max(low, min(high, number))

    def obj(self, name: str, error: str = "invalid_arguments") -> Any:
        """A JSON argument: an object/array in a JSON body, or a JSON string in a form body."""
        value = self.values.get(name)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise ApiError(error) from None
        return value


def sign(signing_secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 request signature: HMAC-SHA256 of "v0:{timestamp}:{body}"."""
    base = b"v0:" + timestamp.encode() + b":" + body
    digest = hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return f"v0={digest}"


def random_id(prefix: str, length: int = 8) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def encode_cursor(key: str) -> str:
    return base64.b64encode(key.encode()).decode()


def decode_cursor(cursor: str, prefix: str) -> str:
    try:
        key = base64.b64decode(cursor.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ApiError("invalid_cursor") from None
    if not key.startswith(prefix):
        raise ApiError("invalid_cursor")
    return key.removeprefix(prefix)


def event_context(event_type: str, team_id: str, app_id: str, channel: str | None) -> str:
    """Slack's opaque event_context string (a versioned, base64 JSON blob)."""
    blob = {"et": event_type, "tid": team_id, "aid": app_id, "cid": channel}
    return "4-" + base64.urlsafe_b64encode(json.dumps(blob).encode()).decode().rstrip("=")
