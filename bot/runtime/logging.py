"""structlog set up once: context first, ISO UTC times, one format for our logs and libraries'."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import Any, Literal

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

# Slack tokens (xoxb-, xoxp-, xoxa-, xoxr-, xoxs-, xoxe-…), app tokens and Anthropic keys; the
# GitHub and GitLab tokens an MCP server's headers carry (the configured values are redacted as
# known secrets too: this catches one that reaches a log some other way).
SECRET_PATTERN = re.compile(
    r"\b(?:xox[abcdeprs]|xapp|sk-ant)-[A-Za-z0-9][A-Za-z0-9_\-.]*"
    r"|\b(?:gh[pousr]_|github_pat_)[A-Za-z0-9_]{16,}"
    r"|\bglpat-[A-Za-z0-9_\-]{16,}"
)
REDACTED = "[redacted]"


class SecretRedactor:
    """A processor that masks secrets in every string of the event, however deeply nested."""

    def __init__(self, known_secrets: Iterable[str] = ()) -> None:
        self.known = sorted({s for s in known_secrets if len(s) >= 8}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.known:
            text = text.replace(secret, REDACTED)
        return SECRET_PATTERN.sub(REDACTED, text)

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {key: self._walk(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._walk(item) for item in value)
        return value

    def __call__(self, _logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
        for key, value in list(event_dict.items()):
            if key in ("_record", "_from_structlog"):
                continue
            if not isinstance(value, str | dict | list | tuple | int | float | bool | type(None)):
                value = str(value)  # objects whose repr could carry a token
            event_dict[key] = self._walk(value)
        return event_dict


def configure_logging(
    *,
    log_format: Literal["console", "json"] | None = None,
    level: str = "INFO",
    secrets: Iterable[str] = (),
    stream: Any = None,
) -> None:
    """Route structlog and stdlib logging (slack_bolt, anthropic, apscheduler, sqlalchemy)
    through one formatter: console on a TTY, JSON otherwise."""
    stream = stream or sys.stdout
    if log_format is None:
        log_format = "console" if stream.isatty() else "json"
    redactor = SecretRedactor(secrets)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    renderer: Processor
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Tracebacks become text before redaction, so secrets in them are masked too.
            structlog.processors.format_exc_info,
            redactor,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Chatty libraries: their INFO lines are per request; warnings and errors still show.
    for name in ("sqlalchemy.engine", "aiohttp.access", "httpx", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)

    structlog.configure(
        processors=[
            # Drop below-level events before any work is done on them.
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)


__all__ = ["SecretRedactor", "configure_logging", "get_logger"]
