"""The request edge under hostile input: verified before parsed, bounded in size and depth,
never logged, and probes that can't spend Slack's rate limit."""

from __future__ import annotations

import json
import time

import pytest
from structlog.testing import capture_logs

from bot.app import Pmteam
from bot.runtime.http import MAX_BODY_BYTES, RefusalLog, signature_valid
from sandbox.slack import FakeSlack
from storage.models import Task
from tests.e2e.conftest import SIGNING_SECRET, rows
from tests.e2e.test_http_surface import get, post_event, sign

MARKER = "QQ-BODY-MARKER-QQ"


def nested(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


@pytest.mark.reliability("Non-numeric or malformed request timestamps", kind="attack")
@pytest.mark.parametrize("timestamp", ["yesterday", "", "1e9", "-5", "9" * 40, " 1700000000"])
async def test_a_bad_timestamp_is_401_not_500(pmteam: Pmteam, timestamp: str) -> None:
    body = b'{"type": "event_callback"}'
    headers = {**sign(body, int(time.time())), "X-Slack-Request-Timestamp": timestamp}
    status, _ = await post_event(pmteam, body, headers=headers)
    assert status == 401


@pytest.mark.reliability("JSON nested 200,000 levels deep, signed and unsigned", kind="attack")
async def test_deeply_nested_json_is_refused_with_a_4xx_signed_or_not(pmteam: Pmteam) -> None:
    body = nested(200_000)
    assert len(body) < MAX_BODY_BYTES
    unsigned, _ = await post_event(pmteam, body, headers={})
    assert unsigned == 401  # never parsed: the signature is checked first
    signed, _ = await post_event(pmteam, body, headers=sign(body, int(time.time())))
    assert signed == 400
    form = b"payload=" + nested(100_000)
    signed_form, _ = await post_event(
        pmteam,
        form,
        headers=sign(form, int(time.time())),
        content_type="application/x-www-form-urlencoded",
    )
    assert 400 <= signed_form < 500
    status, _ = await get(pmteam, "/healthz")
    assert status == 200  # and the process is fine


@pytest.mark.reliability(
    "Oversized and forged bodies, none of which reaches the log", kind="attack"
)
async def test_an_oversized_body_is_413_and_nothing_of_it_is_logged(
    pmteam: Pmteam, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    big = json.dumps({"type": "event_callback", "junk": MARKER * 40_000}).encode()
    assert len(big) > MAX_BODY_BYTES
    assert (await post_event(pmteam, big, headers={}))[0] == 413
    assert (await post_event(pmteam, big, headers=sign(big, int(time.time()))))[0] == 413
    # Under the size limit but forged: 401, and the body is not in any log either.
    forged = json.dumps({"type": "event_callback", "junk": MARKER * 1_000}).encode()
    for _ in range(20):
        assert (await post_event(pmteam, forged, headers={}))[0] == 401
    assert await rows(pmteam, Task) == []

    logged = capsys.readouterr().out + caplog.text
    assert MARKER not in logged
    # One short line for the whole burst, with the counts, not one per request.
    lines = [line for line in logged.splitlines() if "refused requests" in line]
    assert 1 <= len(lines) <= 2
    assert all(len(line) < 400 for line in lines)


@pytest.mark.reliability("/readyz probed repeatedly while Slack rejects the token", kind="attack")
async def test_failing_readiness_probes_ask_slack_once(
    pmteam: Pmteam, fake_slack: FakeSlack
) -> None:
    fake_slack.inject("auth.test", error="invalid_auth", times=None)
    before = len(fake_slack.calls_to("auth.test"))
    for _ in range(10):
        status, body = await get(pmteam, "/readyz")
        assert status == 503 and json.loads(body)["checks"]["slack"] != "ok"
    assert len(fake_slack.calls_to("auth.test")) == before + 1


def test_the_signature_check_itself() -> None:
    body, now = b"{}", time.time()
    good = sign(body, int(now))
    stamp, signature = good["X-Slack-Request-Timestamp"], good["X-Slack-Signature"]
    assert signature_valid(SIGNING_SECRET, body, stamp, signature, now=now)
    assert not signature_valid(SIGNING_SECRET, body + b" ", stamp, signature, now=now)
    assert not signature_valid(SIGNING_SECRET, body, stamp, signature, now=now + 301)
    assert not signature_valid(SIGNING_SECRET, body, None, signature, now=now)
    assert not signature_valid(SIGNING_SECRET, body, stamp, None, now=now)
    assert not signature_valid("other", body, stamp, signature, now=now)


def test_refusals_are_logged_at_most_once_per_period() -> None:
    moments = iter([0.0, 1.0, 2.0, 11.0, 12.0])
    refusals = RefusalLog(every=10.0, clock=lambda: next(moments))
    with capture_logs() as logs:
        for reason in ("invalid_signature", "body_too_large", "invalid_signature"):
            refusals.note(reason)  # t=0 writes a line; t=1 and t=2 are counted
        refusals.note("invalid_signature")  # t=11: a new line, with what came in between
        refusals.note("invalid_signature")  # t=12: counted for the next line
    assert [(e["event"], e.get("invalid_signature"), e.get("body_too_large")) for e in logs] == [
        ("refused requests to /slack/events", 1, None),
        ("refused requests to /slack/events", 2, 1),
    ]
