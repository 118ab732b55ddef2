"""pmteam's metrics on prometheus-client, served on GET /metrics.

Each `Metrics` has its own `CollectorRegistry`: several pmteam instances run in one test
process, and the global registry would mix them up (or refuse the second). The known metrics
are declared up front with their help text, labels and buckets (`KNOWN`, listed in the
README); a name used nowhere in `KNOWN` is made on first use, a counter or a gauge with the
label names of that first call. Recording never raises: a call that doesn't fit its metric
(other label names, a negative count) is logged and dropped, so a metrics slip can't cost a
person their answer.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, Literal, Protocol, TypeVar

import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

log = structlog.get_logger("pmteam.metrics")

Kind = Literal["counter", "gauge", "histogram"]
Metric = Counter | Gauge | Histogram

# Slack wants the ack within 3 s; most are a few milliseconds.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
# A turn waits for a free worker: nothing when idle, minutes behind a burst.
QUEUE_WAIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)
# A turn is the answer, any research and the report: seconds to many minutes.
TURN_BUCKETS = (1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0)
# One model call: a short report in seconds, a long streamed answer in minutes.
MODEL_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 90.0, 120.0, 180.0, 300.0)
FIRST_TOKEN_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 20.0, 30.0)
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

TOKEN_KINDS = ("input", "output", "cache_read", "cache_write")


@dataclass(frozen=True)
class Spec:
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    # Made on first use, not up front: a value only some processes have (0 would mislead).
    lazy: bool = False


# Every metric pmteam records, by the name its samples have (README "Metrics" lists them).
KNOWN: dict[str, Spec] = {
    # Slack's side of the HTTP surface
    "pmteam_slack_requests_total": Spec(
        "counter", "Requests to /slack/events, by the HTTP status answered.", ("status",)
    ),
    "pmteam_ack_seconds": Spec(
        "histogram",
        "Seconds from a request to /slack/events arriving to its ack (Slack allows 3).",
        buckets=ACK_BUCKETS,
    ),
    "pmteam_intake_total": Spec(
        "counter",
        "Slack messages at intake, by outcome (queued, duplicate, ignored, refused, "
        "rate_limited, bare_mention).",
        ("outcome",),
    ),
    "pmteam_intake_dropped_total": Spec(
        "counter",
        "Messages acked but not stored because no database can hold them, by reason.",
        ("reason",),
    ),
    "pmteam_events_ignored_total": Spec(
        "counter", "Slack events pmteam has no listener for, by event type.", ("type",)
    ),
    "pmteam_commands_total": Spec("counter", "/pm commands run, by command.", ("command",)),
    "pmteam_task_moves_total": Spec(
        "counter",
        "Task moves asked for with a button or modal, by move and outcome (done, refused).",
        ("move", "outcome"),
    ),
    "pmteam_handoffs_total": Spec(
        "counter",
        "Handoff events: DMs sent to owners, decisions, assignments, reminders, by event.",
        ("event",),
    ),
    "pmteam_answer_ratings_total": Spec(
        "counter", "Thumbs up or down on an answer, by rating (good, bad).", ("rating",)
    ),
    "pmteam_home_refreshes_total": Spec("counter", "App Home boards republished."),
    "pmteam_slack_calls_total": Spec(
        "counter", "Slack Web API calls made to deliver a turn, by kind.", ("kind",)
    ),
    # Turns
    "pmteam_turns_total": Spec(
        "counter",
        "Turns ended, by outcome (completed, in_progress, blocked, stopped, failed, "
        "stalled, lease_lost, handed_back).",
        ("outcome",),
    ),
    "pmteam_queue_wait_seconds": Spec(
        "histogram",
        "Seconds a turn waited in the queue, from intake to a worker taking it.",
        buckets=QUEUE_WAIT_BUCKETS,
    ),
    "pmteam_turn_seconds": Spec(
        "histogram",
        "Seconds a turn ran, from a worker taking it to its end, by outcome.",
        ("outcome",),
        TURN_BUCKETS,
    ),
    "pmteam_errors_total": Spec(
        "counter", "Errors that ended or broke a turn, by type.", ("type",)
    ),
    # The model
    "pmteam_model_seconds": Spec(
        "histogram",
        "Seconds per model call, by agent and model.",
        ("agent", "model"),
        MODEL_BUCKETS,
    ),
    "pmteam_model_first_token_seconds": Spec(
        "histogram",
        "Seconds from a model call's start to its first streamed token, by agent and model.",
        ("agent", "model"),
        FIRST_TOKEN_BUCKETS,
    ),
    "pmteam_model_tokens_total": Spec(
        "counter",
        "Model tokens, by agent, model and kind (input, output, cache_read, cache_write).",
        ("agent", "model", "kind"),
    ),
    "pmteam_model_cost_usd_total": Spec(
        "counter",
        "What the model calls cost, in US dollars, by agent and model.",
        ("agent", "model"),
    ),
    # Gauges, set when /metrics is scraped
    "pmteam_queue_depth": Spec("gauge", "Turns queued for a worker, across every replica."),
    "pmteam_workers_busy": Spec("gauge", "This replica's workers running a turn."),
    "pmteam_seen_marks_waiting": Spec("gauge", "Eyes reactions waiting to be added in Slack."),
    "pmteam_socket_connected": Spec(
        "gauge",
        "1 while the Socket Mode connection is up, 0 while it is down (Socket Mode only).",
        lazy=True,
    ),
}


class TokenCounts(Protocol):
    """What `model_call` reads of a call's token counts (`agents.llm.TokenCounts`)."""

    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def cache_read_tokens(self) -> int: ...
    @property
    def cache_write_tokens(self) -> int: ...


class ModelCall(Protocol):
    """What `model_call` reads of one model call (`agents.llm.LLMUsage` is one; the runtime
    doesn't import agents). A `first_token_ms` attribute, when a call has one, is recorded too."""

    @property
    def agent(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def counts(self) -> TokenCounts: ...
    @property
    def cost_usd(self) -> float: ...
    @property
    def latency_ms(self) -> int: ...


CallT = TypeVar("CallT", bound=ModelCall)
CallT_contra = TypeVar("CallT_contra", bound=ModelCall, contravariant=True)


class UsageSink(Protocol[CallT_contra]):
    async def record(self, call: CallT_contra) -> None: ...


class Metrics:
    """Counters, gauges and histograms in one registry of this instance's own."""

    def __init__(self, *, process: bool = True) -> None:
        self.registry = CollectorRegistry()
        self._metrics: dict[str, Metric] = {}
        self._lock = threading.Lock()
        for name, spec in KNOWN.items():
            if not spec.lazy:
                self._make(name, spec)
        if process:
            # process_* (CPU, memory, open files, start time) and python_info.
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)

    # -- recording ------------------------------------------------------------------------

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        """Add `amount` to a counter (or a gauge). `inc("x_sum", s)` on a histogram `x`
        observes `s`, as the hand-written `pmteam_ack_seconds_sum` counter was fed."""
        base = name.removesuffix("_sum")
        if base != name and KNOWN.get(base, _NO_SPEC).kind == "histogram":
            self.observe(base, amount, **labels)
            return
        metric = self._metric(name, "counter", labels)
        if metric is None:
            return
        if isinstance(metric, Histogram):
            _rejected(name, "inc on a histogram; use observe")
            return
        if amount < 0 and isinstance(metric, Counter):
            _rejected(name, "a counter only goes up")
            return
        try:
            (metric.labels(**labels) if labels else metric).inc(amount)
        except ValueError as exc:  # other label names than the metric's
            _rejected(name, str(exc))

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set a gauge."""
        metric = self._metric(name, "gauge", labels)
        if metric is None:
            return
        if not isinstance(metric, Gauge):
            _rejected(name, "set on a metric that isn't a gauge")
            return
        try:
            _child(metric, labels).set(value)
        except ValueError as exc:
            _rejected(name, str(exc))

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        """Record one observation in a histogram (made with default buckets if unknown)."""
        metric = self._metric(name, "histogram", labels)
        if metric is None:
            return
        if not isinstance(metric, Histogram):
            _rejected(name, "observe on a metric that isn't a histogram")
            return
        try:
            _child(metric, labels).observe(seconds)
        except ValueError as exc:
            _rejected(name, str(exc))

    def observe_since(self, name: str, start: datetime | float | None, **labels: str) -> None:
        """Observe the seconds since `start`: a datetime (naive means UTC) or a
        `time.monotonic()` reading. Nothing is recorded when `start` is None."""
        if start is None:
            return
        if isinstance(start, datetime):
            began = start if start.tzinfo is not None else start.replace(tzinfo=UTC)
            seconds = (datetime.now(UTC) - began).total_seconds()
        else:
            seconds = time.monotonic() - start
        self.observe(name, max(seconds, 0.0), **labels)

    def model_call(self, call: ModelCall) -> None:
        """One model call: its latency, first token (if the call says), tokens and cost."""
        who = {"agent": call.agent, "model": call.model}
        self.observe("pmteam_model_seconds", call.latency_ms / 1000, **who)
        first_token_ms = getattr(call, "first_token_ms", None)
        if isinstance(first_token_ms, int | float):
            self.observe("pmteam_model_first_token_seconds", first_token_ms / 1000, **who)
        counts = call.counts
        for kind, tokens in zip(
            TOKEN_KINDS,
            (
                counts.input_tokens,
                counts.output_tokens,
                counts.cache_read_tokens,
                counts.cache_write_tokens,
            ),
            strict=True,
        ):
            self.inc("pmteam_model_tokens_total", tokens, kind=kind, **who)
        self.inc("pmteam_model_cost_usd_total", call.cost_usd, **who)

    def metered(self, sink: UsageSink[CallT] | None = None) -> MeteredSink[CallT]:
        """A usage sink that records each call here, then hands it to `sink`:
        `ModelClient(..., usage_sink=deps.metrics.metered(ledger))`."""
        return MeteredSink(self, sink)

    # -- reading --------------------------------------------------------------------------

    def render(self) -> str:
        """The Prometheus text exposition of everything in the registry."""
        return generate_latest(self.registry).decode("utf-8")

    def value(self, name: str, **labels: str) -> float | None:
        """One sample's value (`pmteam_turns_total`, `pmteam_ack_seconds_count`, …), or None."""
        return self.registry.get_sample_value(name, labels)

    @property
    def counters(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """pmteam's counter values by (name, sorted labels), as the hand-written class kept
        them; a snapshot."""
        values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for metric in list(self._metrics.values()):
            if not isinstance(metric, Counter):
                continue
            for family in metric.collect():
                for sample in family.samples:
                    if sample.name.endswith("_total"):
                        key = (sample.name, tuple(sorted(sample.labels.items())))
                        values[key] = sample.value
        return values

    @property
    def gauges(self) -> dict[str, float]:
        """pmteam's unlabelled gauge values by name; a snapshot."""
        return {
            sample.name: sample.value
            for metric in list(self._metrics.values())
            if isinstance(metric, Gauge)
            for family in metric.collect()
            for sample in family.samples
            if not sample.labels
        }

    # -- inside ---------------------------------------------------------------------------

    def _metric(self, name: str, kind: Kind, labels: Mapping[str, str]) -> Metric | None:
        metric = self._metrics.get(name)
        if metric is not None:
            return metric
        with self._lock:
            metric = self._metrics.get(name)
            if metric is None:
                spec = KNOWN.get(name) or Spec(
                    kind, f"{name} (made on first use)", tuple(sorted(labels))
                )
                if not _NAME.fullmatch(name):
                    _rejected(name, "not a Prometheus metric name")
                    return None
                try:
                    metric = self._make(name, spec)
                except ValueError as exc:  # an invalid name, or one taken by a collector
                    _rejected(name, str(exc))
                    return None
        return metric

    def _make(self, name: str, spec: Spec) -> Metric:
        metric: Metric
        if spec.kind == "counter":
            # prometheus-client names the family without `_total` and adds it to the sample.
            metric = Counter(
                name.removesuffix("_total"), spec.help, spec.labels, registry=self.registry
            )
        elif spec.kind == "gauge":
            metric = Gauge(name, spec.help, spec.labels, registry=self.registry)
        else:
            metric = Histogram(
                name, spec.help, spec.labels, registry=self.registry, buckets=spec.buckets
            )
        self._metrics[name] = metric
        return metric


class MeteredSink(Generic[CallT]):
    """A usage sink that records every model call in `Metrics` before passing it on."""

    def __init__(self, metrics: Metrics, inner: UsageSink[CallT] | None) -> None:
        self._metrics = metrics
        self._inner = inner

    async def record(self, call: CallT) -> None:
        try:
            self._metrics.model_call(call)
        except Exception:  # the ledger row matters more than the metric
            log.exception("metrics.model_call_failed", agent=call.agent)
        if self._inner is not None:
            await self._inner.record(call)


_NO_SPEC = Spec("counter", "")
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
M = TypeVar("M", Counter, Gauge, Histogram)


def _child(metric: M, labels: Mapping[str, str]) -> M:
    return metric.labels(**labels) if labels else metric


_said: set[tuple[str, str]] = set()


def _rejected(name: str, why: str) -> None:
    """Say once per process, not on every call of a hot path."""
    if (name, why) not in _said:
        _said.add((name, why))
        log.warning("metrics.rejected", metric=name, why=why)
