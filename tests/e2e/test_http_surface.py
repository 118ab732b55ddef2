"""The HTTP surface: signed requests only, 4xx for garbage, 200 for every event, health pages."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp
import pytest

from bot.app import Pmteam
from sandbox.slack import FakeSlack
from sandbox.slack.workspace import User
from storage.intake import record_intake
from storage.models import Task, Turn, TurnStatus
from tests.e2e.conftest import (
    ALICE,
    BOT_USER,
    ENGINEERING,
    SIGNING_SECRET,
    mention_text,
    rows,
    wait_until_idle,
)


def sign(body: bytes, timestamp: int, secret: str = SIGNING_SECRET) -> dict[str, str]:
    base = f"v0:{timestamp}:".encode() + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": f"v0={digest}",
    }


async def post_event(
    pmteam: Pmteam,
    body: bytes,
    *,
    headers: dict[str, str],
    content_type: str = "application/json",
) -> tuple[int, str]:
    url = f"http://127.0.0.1:{pmteam.http_port}/slack/events"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers={"Content-Type": content_type, **headers}) as response,
    ):
        return response.status, await response.text()


async def get(pmteam: Pmteam, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{pmteam.http_port}{path}") as response,
    ):
        return response.status, await response.text()


def mention_envelope(fake_slack: FakeSlack, ts: str, text: str) -> dict[str, Any]:
    """The event_callback Slack would send for a mention stored at `ts`."""
    team = fake_slack.workspace.team.id
    return {
        "token": fake_slack.verification_token,
        "team_id": team,
        "api_app_id": fake_slack.workspace.bot_user.app_id,
        "type": "event_callback",
        "event_id": f"Ev0E2E{ts.replace('.', '')}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": team, "user_id": BOT_USER, "is_bot": True}],
        "event": {
            "type": "app_mention",
            "user": ALICE,
            "text": text,
            "ts": ts,
            "channel": ENGINEERING,
            "team": team,
            "event_ts": ts,
        },
    }


@pytest.mark.reliability("Forged, tampered, unsigned and replayed requests", kind="attack")
async def test_only_correctly_signed_fresh_requests_are_accepted(
    pmteam: Pmteam, fake_slack: FakeSlack
) -> None:
    # The message exists in Slack, but Slack itself was never told to deliver it: we do.
    text = mention_text("design a cache for the catalogue service")
    fake_slack.subscriptions -= {"app_mention", "message.channels"}
    posted = await fake_slack.post_as_user(ALICE, ENGINEERING, text)
    assert posted.deliveries == []
    body = json.dumps(mention_envelope(fake_slack, posted.ts, text)).encode()
    now = int(time.time())

    forged = sign(body, now, secret="not-the-signing-secret")
    assert (await post_event(pmteam, body, headers=forged))[0] == 401

    tampered = sign(body, now)
    assert (await post_event(pmteam, body.replace(b"cache", b"CACHE"), headers=tampered))[0] == 401

    unsigned: dict[str, str] = {"X-Slack-Request-Timestamp": str(now)}
    assert (await post_event(pmteam, body, headers=unsigned))[0] == 401

    stale = sign(body, now - 10 * 60)  # correctly signed, but replayed 10 minutes later
    assert (await post_event(pmteam, body, headers=stale))[0] == 401

    assert await rows(pmteam, Task) == []  # nothing rejected left a trace

    status, _ = await post_event(pmteam, body, headers=sign(body, now))
    assert status == 200
    [turn] = await wait_until_idle(pmteam, fake_slack, turns=1)
    assert (turn.message_ts, turn.status) == (posted.ts, TurnStatus.DONE)

    status, metrics = await get(pmteam, "/metrics")
    assert status == 200
    assert 'pmteam_turns_total{outcome="' in metrics
    assert 'pmteam_slack_requests_total{status="401"} 4.0\n' in metrics


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b"{not json"),
        ("application/json", b"[1, 2, 3]"),
        ("application/json", b""),
        ("application/x-www-form-urlencoded", b"payload=%7Bnot+json"),
    ],
    ids=["broken-json", "json-array", "empty", "broken-form-payload"],
)
@pytest.mark.reliability(
    "Malformed bodies: broken JSON, a JSON array, empty, a broken form", kind="attack"
)
async def test_malformed_body_gets_a_4xx_not_a_500(
    pmteam: Pmteam, content_type: str, body: bytes
) -> None:
    status, _ = await post_event(
        pmteam, body, headers=sign(body, int(time.time())), content_type=content_type
    )
    assert 400 <= status < 500


async def test_events_pmteam_does_not_act_on_are_acknowledged_with_200(
    pmteam: Pmteam, fake_slack: FakeSlack
) -> None:
    fake_slack.subscriptions |= {"message.channels", "member_joined_channel", "reaction_added"}
    fake_slack.workspace.add_user(User(id="U0CAROL", name="carol", real_name="Carol"))

    joined = await fake_slack.join_channel("U0CAROL", ENGINEERING)
    chatter = await fake_slack.post_as_user(ALICE, ENGINEERING, "lunch at noon?")
    edited = await fake_slack.edit_as_user(
        ALICE, ENGINEERING, chatter.ts, mention_text("design the lunch API")
    )
    deleted = await fake_slack.delete_as_user(ALICE, ENGINEERING, chatter.ts)
    dm = fake_slack.dm_channel(ALICE)
    bot = fake_slack.workspace.bot_user
    own_dm = await fake_slack.deliver_event(
        {
            "type": "message",
            "channel": dm,
            "channel_type": "im",
            "user": bot.id,
            "bot_id": bot.bot_id,
            "app_id": bot.app_id,
            "text": "Here is the plan you asked for.",
            "ts": fake_slack.workspace.next_ts(),
        }
    )
    other_bot_dm = await fake_slack.deliver_event(
        {
            "type": "message",
            "subtype": "bot_message",
            "channel": dm,
            "channel_type": "im",
            "bot_id": "B0OTHERBOT",
            "username": "deploy-bot",
            "text": "Deploy finished.",
            "ts": fake_slack.workspace.next_ts(),
        }
    )
    file_only_dm = await fake_slack.deliver_event(
        {
            "type": "message",
            "subtype": "file_share",
            "channel": dm,
            "channel_type": "im",
            "user": ALICE,
            "text": "",
            "files": [{"id": "F0SCHEMA", "name": "schema.sql"}],
            "ts": fake_slack.workspace.next_ts(),
        }
    )
    reaction = await fake_slack.deliver_event(
        {
            "type": "reaction_added",
            "user": ALICE,
            "reaction": "thumbsup",
            "item": {"type": "message", "channel": ENGINEERING, "ts": chatter.ts},
            "item_user": ALICE,
        }
    )

    deliveries = [
        *joined.deliveries,
        *chatter.deliveries,
        *edited.deliveries,
        *deleted.deliveries,
        own_dm,
        other_bot_dm,
        file_only_dm,
        reaction,
    ]
    kinds = {
        (d.type, d.payload["event"].get("subtype")) for d in deliveries if d.kind == "events_api"
    }
    assert kinds == {
        ("message", "channel_join"),
        ("member_joined_channel", None),
        ("message", None),
        ("message", "message_changed"),
        ("message", "message_deleted"),
        ("message", "bot_message"),
        ("message", "file_share"),
        ("reaction_added", None),
    }
    assert all(d.status_codes == [200] for d in deliveries)
    await pmteam.deps.drain()
    assert await rows(pmteam, Task) == []
    assert await rows(pmteam, Turn) == []
    assert not fake_slack.calls_to("chat.postMessage")
    assert not fake_slack.calls_to("reactions.add")


async def test_health_and_readiness(pmteam: Pmteam) -> None:
    status, body = await get(pmteam, "/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"

    status, body = await get(pmteam, "/readyz")
    assert status == 200
    assert json.loads(body) == {"status": "ok", "checks": {"database": "ok", "slack": "ok"}}


async def test_readiness_probes_reuse_a_recent_slack_check(
    pmteam: Pmteam, fake_slack: FakeSlack
) -> None:
    before = len(fake_slack.calls_to("auth.test"))
    for _ in range(5):
        status, _body = await get(pmteam, "/readyz")
        assert status == 200
    # A load balancer probing every few seconds costs one auth.test, not one per probe.
    assert len(fake_slack.calls_to("auth.test")) == before + 1


async def test_metrics_show_the_queue_the_workers_and_the_reactions_waiting(
    pmteam: Pmteam, fake_slack: FakeSlack
) -> None:
    await pmteam.worker.stop()  # nothing claims: what is queued stays queued
    async with pmteam.deps.sessions.begin() as session:
        for n in range(3):
            ts = f"1700000000.00000{n}"
            await record_intake(
                session=session,
                team_id="T1",
                channel_id=ENGINEERING,
                thread_ts=ts,
                message_ts=ts,
                user_id=ALICE,
                text=f"task {n}",
                source="mention",
            )
    status, metrics = await get(pmteam, "/metrics")
    assert status == 200
    assert "# TYPE pmteam_queue_depth gauge\npmteam_queue_depth 3.0\n" in metrics
    assert "\npmteam_workers_busy 0.0\n" in metrics
    assert "\npmteam_seen_marks_waiting 0.0\n" in metrics


async def test_readiness_fails_when_slack_is_down(pmteam: Pmteam, fake_slack: FakeSlack) -> None:
    fake_slack.inject("auth.test", error="invalid_auth", times=None)
    status, body = await get(pmteam, "/readyz")
    assert status == 503
    checks = json.loads(body)["checks"]
    assert checks["database"] == "ok" and checks["slack"] != "ok"
