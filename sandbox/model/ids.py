"""Identifiers shaped like the API's: `msg_01…`, `toolu_01…`, `srvtoolu_01…`, `req_011C…`."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_id(prefix: str) -> str:
    return f"{prefix}_01{_random(22)}"


def new_request_id() -> str:
    return f"req_011C{_random(20)}"
