"""Real `pmteam run` replicas on one PostgreSQL database, killed (`kill -9`) or paused
(`SIGSTOP`) at the worst moments: mid-answer, right after the answer's `chat.stopStream`, right
after the report's post. Whatever happens, each thread ends with exactly one finished answer
and no stuck stream, each task with one card in the coordination channel, and another replica
takes the turn over within the lease + 10 s.

The fake Slack runs in this process and tells each replica's calls apart by its bot token (each
replica has its own), so a test can say which replica did what, and when; its `after=` faults
let a test act the moment Slack has carried out a call, before the caller hears back."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import pytest_asyncio

from sandbox.model import FakeModel
from sandbox.slack import FakeSlack
from sandbox.slack.web_api import ApiCall
from sandbox.slack.workspace import Message
from tests.e2e.conftest import ALICE, BOB, COORDINATION, ENGINEERING, bot_messages, mention_text
from tests.e2e.conftest import post_key_of as key_of
from tests.multiprocess.replicas import (
    Replica,
    clean_environment,
    start_replica,
    stop_replica,
    wait_healthy,
)

pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(240)]

SECRET = "takeover-signing-secret"
LEASE = 10  # seconds: PMTEAM_LEASE_SECONDS' smallest value, so takeovers are quick
TAKEOVER_BOUND = LEASE + 10  # the goal: another replica carries on within this
WRITES = frozenset(
    {
        "chat.postMessage",
        "chat.postEphemeral",
        "chat.update",
        "chat.delete",
        "chat.startStream",
        "chat.appendStream",
        "chat.stopStream",
        "reactions.add",
        "reactions.remove",
    }
)


@dataclass
class Node:
    """One replica and the credentials that tell its calls apart."""

    name: str
    replica: Replica
    token: str
    api_key: str

    @property
    def pid(self) -> int:
        return self.replica.pid


class Cluster:
    """N replicas on one database, one fake Slack (here) and one fake model (here)."""

    def __init__(self, slack: FakeSlack, model: FakeModel, database_url: str, folder: Path):
        self.slack = slack
        self.model = model
        self.database_url = database_url
        self.folder = folder
        self.nodes: list[Node] = []

    async def start(self, count: int, **settings: str) -> list[Node]:
        started = []
        for _ in range(count):
            name = f"r{len(self.nodes)}"
            token, api_key = f"xoxb-1-2-{name}", f"sk-ant-{name}"
            env = {
                **clean_environment(),
                "PMTEAM_DATABASE_URL": self.database_url,
                "PMTEAM_MODE": "http",
                "PMTEAM_LOG_FORMAT": "json",
                "PMTEAM_LOG_LEVEL": "INFO",
                "PMTEAM_SLACK_API_URL": self.slack.api_url,
                "PMTEAM_COORDINATION_CHANNEL": COORDINATION,
                "PMTEAM_LEASE_SECONDS": str(LEASE),
                "PMTEAM_RATE_LIMIT_PER_USER": "0",
                # No late standup at start: its post would be one more in the PM's channel.
                "PMTEAM_STANDUP_GRACE_MINUTES": "0",
                "SLACK_BOT_TOKEN": token,
                "SLACK_SIGNING_SECRET": SECRET,
                "ANTHROPIC_API_KEY": api_key,
                "ANTHROPIC_BASE_URL": self.model.base_url,
                **settings,
            }
            node = Node(name, await start_replica(env, self.folder), token, api_key)
            self.nodes.append(node)
            started.append(node)
        await asyncio.gather(*(wait_healthy(node.replica) for node in started))
        return started

    async def close(self) -> None:
        await asyncio.gather(*(stop_replica(node.replica) for node in self.nodes))

    def logs(self) -> str:
        return "\n".join(f"--- {n.name}\n{n.replica.log()[-20000:]}" for n in self.nodes)

    def node_of(self, call: ApiCall) -> Node:
        [node] = [n for n in self.nodes if n.token == call.token]
        return node

    def writes_by(self, node: Node, *, since: float = 0.0) -> list[ApiCall]:
        return [
            c
            for c in self.slack.calls
            if c.token == node.token and c.method in WRITES and c.at >= since
        ]

    def model_calls_by(self, node: Node, *, since: float = 0.0) -> int:
        keys = {f"Bearer {node.api_key}", node.api_key}
        return sum(
            1
            for r in self.model.requests
            if r.at >= since
            and (r.headers.get("authorization") in keys or r.headers.get("x-api-key") in keys)
        )

    async def ask(self, text: str, *, via: Node, user: str = ALICE) -> str:
        """A mention in a new thread, delivered to `via`; the thread's ts."""
        self.slack.set_event_target(via.replica.events_url)
        posted = await self.slack.post_as_user(user, ENGINEERING, mention_text(text))
        return posted.ts

    async def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(self.database_url) as conn:
            return list(await (await conn.execute(sql, params or None)).fetchall())

    async def wait_all_done(self, turns: int, timeout: float) -> None:
        """Until `turns` turns exist and every one is done."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = await self.rows("SELECT status FROM turn")
            if len(found) >= turns and all(status == "done" for (status,) in found):
                return
            if loop.time() > deadline:
                pytest.fail(f"turns still {found} after {timeout} s\n{self.logs()}")
            await asyncio.sleep(0.2)


@pytest_asyncio.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack(signing_secret=SECRET, retry_delays=(0.0, 0.5, 1.0))
    await fake.start(host="127.0.0.1", port=0)
    try:
        yield fake
    finally:
        await fake.stop()


@pytest_asyncio.fixture
async def model() -> AsyncIterator[FakeModel]:
    # Paced, so an answer streams for a few seconds and can be cut off halfway.
    fake = FakeModel(stream_delay=0.02)
    await fake.start(host="127.0.0.1", port=0)
    try:
        yield fake
    finally:
        await fake.stop()


@pytest_asyncio.fixture
async def cluster(
    slack: FakeSlack, model: FakeModel, empty_postgres: Callable[[], str], tmp_path: Path
) -> AsyncIterator[Cluster]:
    made = Cluster(slack, model, empty_postgres(), tmp_path)
    try:
        yield made
    finally:
        await made.close()


# --- what a thread and the coordination channel show ---------------------------------------------


@dataclass
class Thread:
    answers: list[Message]  # finished answers (keyed `<turn>:answer`)
    stuck: list[Message]  # streams that never ended
    summaries: list[Message]
    working: list[Message]  # "Working on it…" lines left behind


def thread_of(slack: FakeSlack, ts: str) -> Thread:
    messages = bot_messages(slack, ENGINEERING, ts)
    keys = [(m, key_of(m) or "") for m in messages]
    return Thread(
        answers=[m for m, k in keys if k.endswith(":answer")],
        stuck=[m for m in messages if m.stream is not None and m.stream.state != "completed"],
        summaries=[m for m, k in keys if k.endswith(":summary")],
        working=[m for m, k in keys if k.endswith(":working")],
    )


def cards(slack: FakeSlack) -> list[Message]:
    return [m for m in bot_messages(slack, COORDINATION) if (key_of(m) or "").startswith("card:")]


def assert_one_answer_and_one_card(cluster: Cluster, ts: str) -> None:
    thread = thread_of(cluster.slack, ts)
    shown = [(m.text[:60], key_of(m)) for m in bot_messages(cluster.slack, ENGINEERING, ts)]
    if (len(thread.answers), len(thread.stuck), len(thread.working)) != (1, 0, 0):
        # Shown in full with the failure (pytest cuts a long assertion message).
        sys.stdout.write(cluster.logs())
    assert len(thread.answers) == 1, shown
    assert thread.stuck == [], shown
    assert thread.working == [], shown
    assert len(thread.summaries) == 1, shown
    assert len(cards(cluster.slack)) == 1, [m.text[:60] for m in cards(cluster.slack)]


def posts_a_card(params: dict[str, Any]) -> bool:
    """A post of a report card (not, say, a standup, which a replica that starts within the
    standup's grace period posts to the same channel)."""
    return params.get("channel") == COORDINATION and "card:" in str(params.get("metadata", ""))


def killing_the_caller(
    cluster: Cluster, killed: list[Node]
) -> Callable[[ApiCall], Awaitable[None]]:
    """A fake-Slack `after=` hook: `kill -9` the replica that made the call, and note it."""

    async def kill_the_caller(call: ApiCall) -> None:
        node = cluster.node_of(call)
        kill(node)
        killed.append(node)

    return kill_the_caller


def kill(node: Node) -> float:
    os.kill(node.pid, signal.SIGKILL)
    return time.time()


# --- kill -9 ------------------------------------------------------------------------------------


@pytest.mark.reliability(
    "A replica is killed (`kill -9`) mid-answer; another takes the turn over", kind="fault"
)
async def test_a_replica_killed_mid_answer_is_taken_over_within_the_lease(
    cluster: Cluster,
) -> None:
    first, _second = await cluster.start(2)
    killed: list[tuple[Node, float]] = []

    async def kill_the_streamer(call: ApiCall) -> None:
        node = cluster.node_of(call)
        killed.append((node, kill(node)))

    cluster.slack.inject("chat.appendStream", after=kill_the_streamer)
    ts = await cluster.ask("design the orders API with idempotent retries", via=first)
    await cluster.wait_all_done(1, timeout=TAKEOVER_BOUND + 40)

    [(dead, killed_at)] = killed
    survivors = [n for n in cluster.nodes if n is not dead]
    resumed = min(c.at for n in survivors for c in cluster.writes_by(n, since=killed_at))
    assert resumed - killed_at <= TAKEOVER_BOUND, f"took {resumed - killed_at:.1f} s"
    assert_one_answer_and_one_card(cluster, ts)
    [(attempts,)] = await cluster.rows("SELECT attempts FROM turn")
    assert attempts == 1  # the killed attempt counts; the turn did not fail


@pytest.mark.reliability(
    "A replica is killed right after its answer's `chat.stopStream`", kind="fault"
)
async def test_a_replica_killed_right_after_its_answer_ended_gives_one_answer(
    cluster: Cluster,
) -> None:
    first, _second = await cluster.start(2)
    killed: list[Node] = []
    kill_the_caller = killing_the_caller(cluster, killed)

    cluster.slack.inject("chat.stopStream", after=kill_the_caller)
    ts = await cluster.ask("add an index for the slow invoices query", via=first)
    await cluster.wait_all_done(1, timeout=TAKEOVER_BOUND + 40)

    assert len(killed) == 1
    assert_one_answer_and_one_card(cluster, ts)
    # The retry reused the ended answer: no second stream was started.
    assert len(cluster.slack.calls_to("chat.startStream")) == 1
    [(answer,)] = await cluster.rows("SELECT answer_text FROM turn")
    assert answer and answer == thread_of(cluster.slack, ts).answers[0].text.strip()


@pytest.mark.reliability("A replica is killed right after posting the report card", kind="fault")
async def test_a_replica_killed_right_after_posting_the_report_gives_one_report(
    cluster: Cluster,
) -> None:
    first, _second = await cluster.start(2)
    killed: list[Node] = []
    kill_the_caller = killing_the_caller(cluster, killed)

    cluster.slack.inject(
        "chat.postMessage",
        when=posts_a_card,
        after=kill_the_caller,
    )
    ts = await cluster.ask("plan the move of sessions to Redis", via=first)
    await cluster.wait_all_done(1, timeout=TAKEOVER_BOUND + 40)

    assert len(killed) == 1
    assert_one_answer_and_one_card(cluster, ts)
    assert len(cluster.slack.calls_to("chat.startStream")) == 1  # the answer was reused
    [(reports,)] = await cluster.rows("SELECT count(*) FROM report")
    assert reports == 1


# --- SIGSTOP ------------------------------------------------------------------------------------


@pytest.mark.reliability(
    "A replica is paused (`SIGSTOP`) past its lease mid-answer, then resumed", kind="fault"
)
async def test_a_replica_paused_past_its_lease_posts_nothing_once_resumed(
    cluster: Cluster,
) -> None:
    first, _second = await cluster.start(2)
    paused: list[Node] = []

    async def pause_the_streamer(call: ApiCall) -> None:
        node = cluster.node_of(call)
        os.kill(node.pid, signal.SIGSTOP)
        paused.append(node)

    cluster.slack.inject("chat.appendStream", after=pause_the_streamer)
    ts = await cluster.ask("design rate limiting for the public API", via=first)
    await cluster.wait_all_done(1, timeout=TAKEOVER_BOUND + 40)
    [sleeper] = paused
    finished = thread_of(cluster.slack, ts)

    resumed_at = time.time()
    os.kill(sleeper.pid, signal.SIGCONT)
    # Long enough for its heartbeat to run and its streams and model calls to come due.
    await asyncio.sleep(LEASE / 2 + 3)

    assert cluster.writes_by(sleeper, since=resumed_at) == []
    assert cluster.model_calls_by(sleeper, since=resumed_at) == 0
    assert sleeper.replica.process.returncode is None  # alive, and serving
    assert_one_answer_and_one_card(cluster, ts)
    assert [m.ts for m in thread_of(cluster.slack, ts).answers] == [m.ts for m in finished.answers]
    said = sleeper.replica.log()
    assert "turn taken over by another worker" in said or "lease lost" in said, said[-3000:]


# --- a new installation, the same channel --------------------------------------------------------


@pytest.mark.reliability(
    "A database replaced by a new one that reports to the same channel", kind="fault"
)
async def test_a_new_installation_on_the_same_channel_reports_every_task(
    cluster: Cluster, empty_postgres: Callable[[], str]
) -> None:
    """The old database made T-1's card (`card:1`); a fresh database (a move, a restore to
    another server) starts over at T-1 in the same channel. Its T-1 gets its own card, even
    when the replica posting it is killed right after and the retry must look it up."""
    [old] = await cluster.start(1)
    await cluster.ask("design the orders API", via=old)
    await cluster.wait_all_done(1, timeout=60)
    await stop_replica(old.replica)
    assert [key_of(m) for m in cards(cluster.slack)] == ["card:1"]

    cluster.database_url = empty_postgres()
    first, _second = await cluster.start(2)
    killed: list[Node] = []
    kill_the_caller = killing_the_caller(cluster, killed)

    cluster.slack.inject(
        "chat.postMessage",
        when=posts_a_card,
        after=kill_the_caller,
    )
    ts = await cluster.ask("design the invoices API", via=first)
    await cluster.wait_all_done(1, timeout=TAKEOVER_BOUND + 40)

    assert len(killed) == 1
    both = cards(cluster.slack)
    assert [key_of(m) for m in both] == ["card:1", "card:1"]
    installations = {(m.metadata or {})["event_payload"].get("installation") for m in both}
    assert len(installations) == 2
    assert len(thread_of(cluster.slack, ts).summaries) == 1
    [(recorded,)] = await cluster.rows("SELECT ts FROM slack_post WHERE key = 'card:1'")
    assert recorded == both[1].ts


# --- the rate limit -----------------------------------------------------------------------------


@pytest.mark.reliability("The per-person rate limit across two replicas")
async def test_the_rate_limit_holds_across_two_replicas_and_a_retry_counts_once(
    cluster: Cluster,
) -> None:
    first, second = await cluster.start(2, PMTEAM_RATE_LIMIT_PER_USER="2")
    cluster.slack.set_event_target(first.replica.events_url)
    one = await cluster.slack.post_as_user(ALICE, ENGINEERING, mention_text("design the API"))
    # Slack's retry of that mention reaches the other replica: the same message, not a new one.
    cluster.slack.set_event_target(second.replica.events_url)
    [delivery] = [d for d in one.deliveries if d.type == "app_mention"]
    retry = await cluster.slack.deliver_event(
        delivery.payload["event"], event_id=delivery.event_id, retry_num=1
    )
    assert retry.status_codes == [200]
    two = await cluster.ask("index the invoices table", via=second)
    three = await cluster.ask("shard the events table", via=first)
    bobs = await cluster.ask("plan the cache", via=second, user=BOB)
    await cluster.wait_all_done(3, timeout=90)

    requests = [text for (text,) in await cluster.rows("SELECT text FROM turn ORDER BY id")]
    assert requests == ["design the API", "index the invoices table", "plan the cache"]
    refusals = [m.text for m in bot_messages(cluster.slack, ENGINEERING, three)]
    assert len(refusals) == 1 and "a lot of tasks" in refusals[0]
    assert two and bobs
