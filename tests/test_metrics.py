"""Metrics on prometheus-client: the API the code records with, and what /metrics serves."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from bot.app import Pmteam
from bot.runtime.metrics import KNOWN, Metrics
from sandbox.slack import FakeSlack

# The e2e fixtures live in tests/e2e/conftest.py; this module uses them by import.
from tests.e2e.conftest import mention, pmteam, start_pmteam, wait_until_idle

__all__ = ["pmteam", "start_pmteam"]

ROOT = Path(__file__).resolve().parent.parent


def families(text: str) -> dict[str, str]:
    """Each metric family in an exposition, by name, with its type; fails on bad text."""
    return {family.name: family.type for family in text_string_to_metric_families(text)}


def samples(text: str, name: str) -> list[Sample]:
    return [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


# --- counters and gauges -------------------------------------------------------------------


def test_counters_count_by_their_labels() -> None:
    metrics = Metrics()
    metrics.inc("pmteam_turns_total", outcome="completed")
    metrics.inc("pmteam_turns_total", outcome="completed")
    metrics.inc("pmteam_turns_total", outcome="failed")
    metrics.inc("pmteam_home_refreshes_total", 3)
    metrics.inc("pmteam_task_moves_total", move="reopen", outcome="done")

    assert metrics.value("pmteam_turns_total", outcome="completed") == 2
    assert metrics.value("pmteam_turns_total", outcome="failed") == 1
    assert metrics.value("pmteam_turns_total", outcome="stopped") is None
    assert metrics.value("pmteam_home_refreshes_total") == 3
    assert metrics.value("pmteam_task_moves_total", move="reopen", outcome="done") == 1
    text = metrics.render()
    assert 'pmteam_turns_total{outcome="completed"} 2.0\n' in text
    assert "# TYPE pmteam_turns_total counter\n" in text
    # The snapshot the hand-written class kept, still readable by (name, sorted labels).
    counters = metrics.counters
    assert counters[("pmteam_turns_total", (("outcome", "completed"),))] == 2
    assert counters[("pmteam_home_refreshes_total", ())] == 3
    assert counters[("pmteam_task_moves_total", (("move", "reopen"), ("outcome", "done")))] == 1


def test_gauges_hold_the_last_value_set() -> None:
    metrics = Metrics()
    metrics.set("pmteam_queue_depth", 3)
    metrics.set("pmteam_queue_depth", 5)
    metrics.set("pmteam_workers_busy", 0)
    metrics.set("pmteam_replica_load", 0.5, replica="a")  # a labelled gauge, made on first use

    assert metrics.value("pmteam_queue_depth") == 5
    assert metrics.value("pmteam_replica_load", replica="a") == 0.5
    assert metrics.gauges["pmteam_queue_depth"] == 5
    assert metrics.gauges["pmteam_seen_marks_waiting"] == 0  # declared: there from the start
    text = metrics.render()
    assert "# TYPE pmteam_queue_depth gauge\npmteam_queue_depth 5.0\n" in text
    assert families(text)["pmteam_replica_load"] == "gauge"


def test_a_gauge_only_some_processes_have_appears_when_first_set_with_its_help() -> None:
    metrics = Metrics()
    assert "pmteam_socket_connected" not in families(metrics.render())  # HTTP mode: never set
    metrics.set("pmteam_socket_connected", 1)
    [family] = [
        f
        for f in text_string_to_metric_families(metrics.render())
        if f.name == "pmteam_socket_connected"
    ]
    assert (family.type, family.documentation) == ("gauge", KNOWN["pmteam_socket_connected"].help)
    assert metrics.value("pmteam_socket_connected") == 1


def test_a_name_first_used_in_code_becomes_a_counter_with_those_labels() -> None:
    metrics = Metrics()
    metrics.inc("pmteam_widgets_total", 2, colour="blue")
    assert metrics.value("pmteam_widgets_total", colour="blue") == 2
    assert families(metrics.render())["pmteam_widgets"] == "counter"


def test_a_call_that_does_not_fit_its_metric_is_dropped_not_raised() -> None:
    metrics = Metrics()
    metrics.inc("pmteam_turns_total", outcome="completed")
    metrics.inc("pmteam_turns_total", reason="other labels")  # wrong label names
    metrics.inc("pmteam_turns_total")  # no labels on a labelled counter
    metrics.inc("pmteam_turns_total", -1, outcome="undone")  # counters only go up
    metrics.set("pmteam_turns_total", 7)  # not a gauge
    metrics.observe("pmteam_queue_depth", 1.0)  # not a histogram
    metrics.inc("pmteam_ack_seconds", 1.0)  # a histogram is observed, not counted
    metrics.inc("not a valid name")

    turns = {key: n for key, n in metrics.counters.items() if key[0] == "pmteam_turns_total"}
    assert turns == {("pmteam_turns_total", (("outcome", "completed"),)): 1}
    assert ("not a valid name_total", ()) not in metrics.counters
    assert metrics.value("pmteam_queue_depth") == 0
    families(metrics.render())  # still a clean exposition


# --- histograms ----------------------------------------------------------------------------


def test_histograms_observe_with_labels_into_buckets() -> None:
    metrics = Metrics()
    metrics.observe("pmteam_turn_seconds", 4.0, outcome="completed")
    metrics.observe("pmteam_turn_seconds", 40.0, outcome="completed")
    metrics.observe("pmteam_turn_seconds", 0.5, outcome="failed")
    metrics.observe("pmteam_model_seconds", 2.0, agent="engineer", model="claude-sonnet-5-5")

    def value(name: str, **labels: str) -> float | None:
        return metrics.value(name, **labels)

    assert value("pmteam_turn_seconds_count", outcome="completed") == 2
    assert value("pmteam_turn_seconds_sum", outcome="completed") == 44.0
    assert value("pmteam_turn_seconds_bucket", outcome="completed", le="5.0") == 1
    assert value("pmteam_turn_seconds_bucket", outcome="completed", le="60.0") == 2
    assert value("pmteam_turn_seconds_bucket", outcome="completed", le="+Inf") == 2
    assert value("pmteam_turn_seconds_count", outcome="failed") == 1
    assert (
        value("pmteam_model_seconds_bucket", agent="engineer", model="claude-sonnet-5-5", le="2.5")
        == 1
    )
    assert families(metrics.render())["pmteam_turn_seconds"] == "histogram"


def test_the_ack_histogram_keeps_the_old_sum_name() -> None:
    metrics = Metrics()
    metrics.observe("pmteam_ack_seconds", 0.004)
    metrics.inc("pmteam_ack_seconds_sum", 0.02)  # how the hand-written counter was fed

    assert metrics.value("pmteam_ack_seconds_count") == 2
    assert metrics.value("pmteam_ack_seconds_sum") == pytest.approx(0.024)
    assert metrics.value("pmteam_ack_seconds_bucket", le="0.005") == 1
    assert metrics.value("pmteam_ack_seconds_bucket", le="0.025") == 2


def test_observe_since_takes_a_datetime_or_a_monotonic_reading() -> None:
    metrics = Metrics()
    metrics.observe_since("pmteam_queue_wait_seconds", datetime.now(UTC) - timedelta(seconds=7))
    naive_utc = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=20)
    metrics.observe_since("pmteam_queue_wait_seconds", naive_utc)
    metrics.observe_since("pmteam_turn_seconds", time.monotonic() - 3, outcome="completed")
    metrics.observe_since("pmteam_turn_seconds", None, outcome="completed")  # not started
    metrics.observe_since("pmteam_queue_wait_seconds", datetime.now(UTC) + timedelta(seconds=9))

    assert metrics.value("pmteam_queue_wait_seconds_count") == 3
    assert metrics.value("pmteam_queue_wait_seconds_bucket", le="10.0") == 2  # 7 s and 0 s
    assert metrics.value("pmteam_queue_wait_seconds_bucket", le="30.0") == 3
    assert metrics.value("pmteam_turn_seconds_count", outcome="completed") == 1
    assert metrics.value("pmteam_turn_seconds_sum", outcome="completed") == pytest.approx(3, 0.1)


# --- model calls ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass(frozen=True)
class Call:
    """Shaped like `agents.llm.LLMUsage`, which is what the usage sink is handed."""

    agent: str
    model: str
    counts: Counts
    cost_usd: float
    latency_ms: int


@dataclass(frozen=True)
class CallWithFirstToken(Call):
    first_token_ms: int = 0


@dataclass
class Ledger:
    calls: list[Call] = field(default_factory=list)

    async def record(self, call: Call) -> None:
        self.calls.append(call)


async def test_model_calls_record_latency_tokens_and_cost_and_still_reach_the_ledger() -> None:
    metrics = Metrics()
    ledger = Ledger()
    sink = metrics.metered(ledger)
    who = {"agent": "engineer", "model": "claude-sonnet-5-5"}
    first = Call(**who, counts=Counts(100, 50, 1000, 200), cost_usd=0.0125, latency_ms=3400)
    second = CallWithFirstToken(
        **who, counts=Counts(10, 5, 0, 0), cost_usd=0.0005, latency_ms=900, first_token_ms=450
    )
    await sink.record(first)
    await sink.record(second)

    assert ledger.calls == [first, second]
    assert metrics.value("pmteam_model_seconds_count", **who) == 2
    assert metrics.value("pmteam_model_seconds_sum", **who) == pytest.approx(4.3)
    assert metrics.value("pmteam_model_first_token_seconds_count", **who) == 1
    assert metrics.value("pmteam_model_first_token_seconds_bucket", le="0.5", **who) == 1
    tokens = {
        kind: metrics.value("pmteam_model_tokens_total", kind=kind, **who)
        for kind in ("input", "output", "cache_read", "cache_write")
    }
    assert tokens == {"input": 110, "output": 55, "cache_read": 1000, "cache_write": 200}
    assert metrics.value("pmteam_model_cost_usd_total", **who) == pytest.approx(0.013)


async def test_a_metered_sink_without_a_ledger_only_records() -> None:
    metrics = Metrics()
    call = Call("researcher", "claude-haiku-5-5", Counts(1, 2, 3, 4), 0.001, 1200)
    await metrics.metered().record(call)
    assert metrics.value("pmteam_model_seconds_count", agent="researcher", model=call.model) == 1


# --- the registry --------------------------------------------------------------------------


def test_two_instances_are_independent() -> None:
    one, two = Metrics(), Metrics()  # each registers its own process collectors: no clash
    one.inc("pmteam_turns_total", outcome="completed")
    one.set("pmteam_queue_depth", 4)
    one.observe("pmteam_ack_seconds", 0.01)
    two.inc("pmteam_widgets_total", colour="red")  # made in one registry, not the other

    assert two.value("pmteam_turns_total", outcome="completed") is None
    assert two.value("pmteam_queue_depth") == 0
    assert two.value("pmteam_ack_seconds_count") == 0
    assert one.value("pmteam_widgets_total", colour="red") is None
    assert one.registry is not two.registry
    # Nothing went to prometheus-client's global registry.
    assert REGISTRY.get_sample_value("pmteam_turns_total", {"outcome": "completed"}) is None


def test_the_exposition_parses_and_declares_every_known_metric_with_help() -> None:
    metrics = Metrics()
    metrics.inc("pmteam_turns_total", outcome="completed")
    metrics.observe("pmteam_ack_seconds", 0.01)
    metrics.observe("pmteam_model_seconds", 2.0, agent="engineer", model='odd "model"\\name')
    text = metrics.render()

    parsed = {family.name: family for family in text_string_to_metric_families(text)}
    for name, spec in KNOWN.items():
        assert name.endswith("_total") == (spec.kind == "counter")
        if spec.lazy:
            continue
        family = parsed[name.removesuffix("_total") if spec.kind == "counter" else name]
        assert family.type == spec.kind
        assert family.documentation == spec.help
    assert "process_cpu_seconds" in parsed
    assert "python_info" in parsed
    [odd] = samples(text, "pmteam_model_seconds_count")
    assert odd.labels["model"] == 'odd "model"\\name'


# What the code records: every name it passes to the Metrics API.
RECORDED = re.compile(r"""metrics\.(?:inc|set|observe|observe_since)\(\s*["']([a-z_:]+)["']""")


def test_every_metric_the_code_records_is_declared() -> None:
    used = {
        match
        for folder in ("bot", "agents", "storage")
        for path in (ROOT / folder).rglob("*.py")
        for match in RECORDED.findall(path.read_text())
    }
    assert "pmteam_turns_total" in used  # the pattern finds them
    declared = set(KNOWN) | {f"{name}_sum" for name, s in KNOWN.items() if s.kind == "histogram"}
    assert used - declared == set()


# --- end to end ----------------------------------------------------------------------------


async def test_after_a_mention_metrics_has_the_ack_histogram_turns_and_process(
    pmteam: Pmteam, fake_slack: FakeSlack
) -> None:
    await mention(fake_slack, "design an idempotent payments API")
    await wait_until_idle(pmteam, fake_slack, turns=1)

    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{pmteam.http_port}/metrics") as response,
    ):
        status, content_type, text = (
            response.status,
            response.headers["Content-Type"],
            await response.text(),
        )

    assert status == 200
    assert content_type == CONTENT_TYPE_LATEST
    kinds = families(text)  # parses cleanly
    assert kinds["pmteam_ack_seconds"] == "histogram"
    assert kinds["pmteam_turns"] == "counter"
    assert kinds["process_cpu_seconds"] == "counter"
    assert kinds["pmteam_queue_depth"] == "gauge"
    buckets = samples(text, "pmteam_ack_seconds_bucket")
    assert {s.labels["le"] for s in buckets} >= {"0.1", "3.0", "+Inf"}
    # The mention and its `message` twin were both acked.
    [count] = samples(text, "pmteam_ack_seconds_count")
    assert count.value >= 2
    [inf] = [s for s in buckets if s.labels["le"] == "+Inf"]
    assert inf.value == count.value
    turns = samples(text, "pmteam_turns_total")
    assert sum(s.value for s in turns) == 1
    assert samples(text, "pmteam_slack_requests_total")
    assert samples(text, "process_cpu_seconds_total")[0].value > 0
    assert pmteam.deps.metrics.value("pmteam_queue_depth") == 0  # the gauges were collected
    # The turn's own timings, and every model call's latency, first token, tokens and cost.
    for histogram in (
        "pmteam_queue_wait_seconds_count",
        "pmteam_turn_seconds_count",
        "pmteam_model_seconds_count",
        "pmteam_model_first_token_seconds_count",
    ):
        assert sum(s.value for s in samples(text, histogram)) >= 1, histogram
    agents = {s.labels["agent"] for s in samples(text, "pmteam_model_seconds_count")}
    assert {"engineer", "reporter"} <= agents
    tokens = {s.labels["kind"] for s in samples(text, "pmteam_model_tokens_total")}
    assert "output" in tokens
    assert sum(s.value for s in samples(text, "pmteam_model_cost_usd_total")) > 0
