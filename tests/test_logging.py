"""Logs come out in one format, and secrets never reach them."""

from __future__ import annotations

import io
import json
import logging

import structlog

from bot.runtime.logging import SecretRedactor, configure_logging


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_library_logs_share_the_json_format_with_context() -> None:
    stream = io.StringIO()
    configure_logging(log_format="json", stream=stream)
    structlog.contextvars.bind_contextvars(task="T-7")
    try:
        structlog.get_logger("pmteam").info("turn claimed", turn=3)
        logging.getLogger("slack_bolt.App").warning("listener slow")
    finally:
        structlog.contextvars.clear_contextvars()
    ours, library = _lines(stream)
    assert ours["event"] == "turn claimed" and ours["task"] == "T-7" and ours["turn"] == 3
    assert library["event"] == "listener slow" and library["logger"] == "slack_bolt.App"
    for line in (ours, library):
        assert str(line["timestamp"]).endswith("Z")
        assert line["level"] in ("info", "warning")


def test_secrets_are_redacted_everywhere() -> None:
    stream = io.StringIO()
    configure_logging(log_format="json", stream=stream, secrets=["a1b2c3d4e5f6signing"])
    log = structlog.get_logger("pmteam")
    log.info("posting with xoxb-1234-5678-abcdef", headers={"auth": ["Bearer xoxp-9-9-zz"]})
    log.info("socket", url="wss://x?token=xapp-1-A1-2-ff", key="sk-ant-api03-AbC_d-e")
    logging.getLogger("slack_sdk").error("signature a1b2c3d4e5f6signing mismatch")
    try:
        raise RuntimeError("bad token xoxb-1234-5678-abcdef")
    except RuntimeError:
        log.exception("failed")
    text = stream.getvalue()
    for secret in ("xoxb-1234", "xoxp-9", "xapp-1-A1", "sk-ant-api03", "a1b2c3d4e5f6signing"):
        assert secret not in text
    assert text.count("[redacted]") >= 6


def test_console_format_redacts_too() -> None:
    stream = io.StringIO()
    configure_logging(log_format="console", stream=stream)
    structlog.get_logger().info("token xoxb-1-2-3")
    assert "xoxb-1-2-3" not in stream.getvalue()
    assert "[redacted]" in stream.getvalue()


def test_redactor_leaves_ordinary_text_alone() -> None:
    redactor = SecretRedactor()
    assert redactor.redact("xoxo-gossip and sk-anthony") == "xoxo-gossip and sk-anthony"
    assert redactor.redact("the xoxb-1-2 token") == "the [redacted] token"
