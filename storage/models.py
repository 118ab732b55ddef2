"""The tables: tasks and their turns, status history, reports, research, team tool calls, usage
and standups."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, String, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime, utcnow


class TaskStatus(StrEnum):
    QUEUED = "queued"  # received, waiting for a worker
    WORKING = "working"  # a turn is running now
    IN_PROGRESS = "in_progress"  # the last report said IN_PROGRESS
    BLOCKED = "blocked"
    COMPLETED = "completed"
    FAILED = "failed"


OPEN_STATUSES: frozenset[TaskStatus] = frozenset(
    {TaskStatus.QUEUED, TaskStatus.WORKING, TaskStatus.IN_PROGRESS, TaskStatus.BLOCKED}
)


class Visibility(StrEnum):
    """Who sees a task: its channel's people, or (asked in a DM, the assistant pane or a
    private channel) only its requester until they share it with the PM."""

    CHANNEL = "channel"
    PRIVATE = "private"
    SHARED = "shared"


class ReportKind(StrEnum):
    BACKEND_WORK = "backend_work"  # a report for the PM's card
    CONVERSATION = "conversation"  # kept for the record; no card, no standup, no board


class Rating(StrEnum):
    GOOD = "good"
    BAD = "bad"


class Approval(StrEnum):
    """Where a call of a team tool that writes stands with its requester."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    TIMED_OUT = "timed_out"  # no answer within PMTEAM_MCP_APPROVAL_MINUTES: not run
    WITHDRAWN = "withdrawn"  # the turn ended (stopped, failed) before anyone answered


class TurnStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


def _ts_column(*, nullable: bool = False, index: bool = False) -> Any:
    return Column(UTCDateTime(), nullable=nullable, index=index)


class Task(SQLModel, table=True):
    """One Slack thread's piece of work; shown to people as ``T-<id>``."""

    __table_args__ = (
        UniqueConstraint("team_id", "channel_id", "thread_ts", name="uq_task_thread"),
        Index("ix_task_status_updated", "status", "updated_at"),
        Index("ix_task_requester_status", "requester_id", "status"),
        Index("ix_task_channel_status", "channel_id", "status"),
        # `/pm list <status>`: newest first by id within a status, no sort.
        Index("ix_task_status_id", "status", "id"),
        Index("ix_task_report_retry", "report_retry_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32)
    channel_id: str = Field(max_length=32)
    thread_ts: str = Field(max_length=32)
    requester_id: str = Field(max_length=32)
    title: str = Field(max_length=200)
    request_text: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default=TaskStatus.QUEUED, sa_type=String(16))
    status_reason: str | None = Field(default=None, sa_column=Column(Text))
    visibility: str = Field(default=Visibility.CHANNEL, sa_type=String(16))
    # A card the coordination channel refused: why, and when housekeeping tries again.
    report_error: str | None = Field(default=None, max_length=200)
    report_retry_at: datetime | None = Field(default=None, sa_column=_ts_column(nullable=True))
    report_attempts: int = 0
    estimated_time: str | None = Field(default=None, max_length=200)
    estimate_due_at: datetime | None = Field(default=None, sa_column=_ts_column(nullable=True))
    nudged_at: datetime | None = Field(default=None, sa_column=_ts_column(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts_column())

    @property
    def ref(self) -> str:
        return f"T-{self.id}"


class Turn(SQLModel, table=True):
    """One request in a task's thread (the first mention, or a follow-up), worked once."""

    __table_args__ = (
        UniqueConstraint("task_id", "seq", name="uq_turn_task_seq"),
        # The intake dedupe key: Slack retries and the app_mention + message double delivery
        # both carry the same (team, channel, ts).
        UniqueConstraint("team_id", "channel_id", "message_ts", name="uq_turn_message"),
        Index("ix_turn_queue", "status", "id"),
        # The database itself refuses a second running turn for one task.
        Index(
            "uq_turn_one_running_per_task",
            "task_id",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
        Index("ix_turn_lease", "status", "lease_expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", ondelete="CASCADE")
    seq: int
    team_id: str = Field(max_length=32)
    channel_id: str = Field(max_length=32)
    message_ts: str = Field(max_length=32)
    user_id: str = Field(max_length=32)
    text: str = Field(sa_column=Column(Text, nullable=False))
    source: str = Field(default="mention", max_length=16)
    status: str = Field(default=TurnStatus.QUEUED, sa_type=String(16))
    attempts: int = 0
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_expires_at: datetime | None = Field(default=None, sa_column=_ts_column(nullable=True))
    heartbeat_at: datetime | None = Field(default=None, sa_column=_ts_column(nullable=True))
    answer_text: str | None = Field(default=None, sa_column=Column(Text))
    # What the engineer was sent, from the request to the last tool result (API message
    # form): a follow-up renders this turn from it, so it keeps the research and the cache.
    exchange: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    # The files shared with the request (Slack's id, name, type, size and download URL); the
    # worker downloads them when it works the turn.
    files: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    # Who pressed Stop on the running answer; the worker ends the turn without a report.
    stop_requested_by: str | None = Field(default=None, max_length=32)
    failure_reason: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts_column())
    started_at: datetime | None = Field(default=None, sa_column=_ts_column(nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=_ts_column(nullable=True))


class TaskEvent(SQLModel, table=True):
    """The status history of a task, with who moved it."""

    __tablename__ = "task_event"
    __table_args__ = (
        Index("ix_taskevent_task", "task_id", "id"),
        Index("ix_taskevent_created", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", ondelete="CASCADE")
    kind: str = Field(default="status", max_length=16)  # status | acknowledged | nudged
    from_status: str | None = Field(default=None, sa_type=String(16))
    to_status: str | None = Field(default=None, sa_type=String(16))
    actor: str = Field(max_length=32)  # a Slack user id, or "pmteam" for the bot itself
    note: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts_column())


class Report(SQLModel, table=True):
    """A stored CompletionReport for one turn (the full report as JSON, key fields as columns)."""

    __table_args__ = (
        UniqueConstraint("turn_id", name="uq_report_turn"),
        Index("ix_report_task", "task_id", "id"),
        # Reports in a period, newest first; red_flag_count is checked in the index.
        Index("ix_report_created_flags", "created_at", "red_flag_count"),
    )

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", ondelete="CASCADE")
    turn_id: int = Field(foreign_key="turn.id", ondelete="CASCADE")
    status: str = Field(max_length=16)  # COMPLETED | IN_PROGRESS | BLOCKED
    kind: str = Field(default=ReportKind.BACKEND_WORK, sa_type=String(16))
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    red_flag_count: int = 0
    min_score: int = 9
    gaps: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts_column())


class Feedback(SQLModel, table=True):
    """A person's 👍 or 👎 on one answer; the latest click counts."""

    __table_args__ = (
        UniqueConstraint("turn_id", "user_id", name="uq_feedback_turn_user"),
        Index("ix_feedback_created", "created_at"),
        Index("ix_feedback_task", "task_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    turn_id: int = Field(foreign_key="turn.id", ondelete="CASCADE")
    task_id: int = Field(foreign_key="task.id", ondelete="CASCADE")
    user_id: str = Field(max_length=32)
    rating: str = Field(sa_type=String(8))  # good | bad
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts_column())


class ResearchRequest(SQLModel, table=True):
    """One consultation of the researcher, with its findings and cited sources."""

    __tablename__ = "research_request"
    __table_args__ = (Index("ix_research_task", "task_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    task_id: int | None = Field(default=None, foreign_key="task.id", ondelete="CASCADE")
    turn_id: int | None = Field(default=None, foreign_key="turn.id", ondelete="CASCADE")
    objective: str = Field(sa_column=Column(Text, nullable=False))
    request: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    findings: str = Field(sa_column=Column(Text, nullable=False))
    sources: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    live_sources: bool = True
    web_searches: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts_column())


class ToolCall(SQLModel, table=True):
    """One call of a team tool (an MCP server's) in a turn: what was asked, who approved it
    when it writes, and how it ended."""

    __tablename__ = "tool_call"
    __table_args__ = (
        Index("ix_tool_call_task", "task_id", "id"),
        Index("ix_tool_call_turn", "turn_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", ondelete="CASCADE")
    turn_id: int = Field(foreign_key="turn.id", ondelete="CASCADE")
    server: str = Field(max_length=32)
    tool: str = Field(max_length=128)
    arguments: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    writes: bool = False
    approval: str | None = Field(default=None, sa_type=String(16))  # None: read-only
    decided_by: str | None = Field(default=None, max_length=32)
    decided_at: datetime | None = Field(default=None, sa_column=_ts_column(nullable=True))
    started_at: datetime | None = Field(default=None, sa_column=_ts_column(nullable=True))
    duration_ms: int | None = None
    # ok | error: … | timed out | denied | not approved in time | stopped; None while running
    outcome: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts_column())


class LLMCall(SQLModel, table=True):
    """The usage ledger: one row per model call."""

    __tablename__ = "llm_call"
    __table_args__ = (
        # Covers the usage summaries (`/pm usage`, Home, standup): no table reads per call.
        Index(
            "ix_llmcall_usage",
            "created_at",
            "agent",
            "model",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "web_searches",
            "cost_usd",
        ),
        Index("ix_llmcall_task", "task_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    task_id: int | None = Field(default=None, foreign_key="task.id", ondelete="SET NULL")
    turn_id: int | None = Field(default=None, foreign_key="turn.id", ondelete="SET NULL")
    agent: str = Field(max_length=32)  # engineer | researcher | reporter | pm
    model: str = Field(max_length=64)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    web_searches: int = 0
    cost_usd: float = 0.0
    latency_ms: int = 0
    stop_reason: str | None = Field(default=None, max_length=40)
    request_id: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts_column())


class SlackPost(SQLModel, table=True):
    """What was posted to Slack for a turn, keyed so a retried turn never posts twice."""

    __tablename__ = "slack_post"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=100, unique=True)  # "<turn id>:<kind>"
    turn_id: int | None = Field(default=None, foreign_key="turn.id", ondelete="CASCADE")
    kind: str = Field(max_length=32)  # answer | matrix | report | failure | nudge ...
    channel_id: str = Field(max_length=32)
    ts: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts_column())


class Standup(SQLModel, table=True):
    """The claim row that makes each (channel, period) standup go out exactly once."""

    __table_args__ = (UniqueConstraint("channel_id", "period", name="uq_standup_period"),)

    id: int | None = Field(default=None, primary_key=True)
    channel_id: str = Field(max_length=32)
    period: str = Field(max_length=40)  # the local scheduled time, ISO
    status: str = Field(default="claimed", max_length=16)  # claimed | posted | skipped
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_expires_at: datetime | None = Field(default=None, sa_column=_ts_column(nullable=True))
    ts: str | None = Field(default=None, max_length=32)
    note: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts_column())
    posted_at: datetime | None = Field(default=None, sa_column=_ts_column(nullable=True))


class DedupeKey(SQLModel, table=True):
    """Slack event ids already handled, so a retried delivery is recognised before any work."""

    __tablename__ = "dedupe_key"

    key: str = Field(primary_key=True, max_length=120)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts_column(index=True))


class HomeVisit(SQLModel, table=True):
    """When each person last opened the App Home, so status changes refresh only live boards."""

    __tablename__ = "home_visit"

    user_id: str = Field(primary_key=True, max_length=32)
    team_id: str = Field(max_length=32)
    opened_at: datetime = Field(default_factory=utcnow, sa_column=_ts_column(index=True))


class TaskCountDelta(SQLModel, table=True):
    """+1/-1 per task entering/leaving a status, appended by triggers on `task` (migration
    0002), so counting tasks by status sums a few rows instead of scanning every task."""

    __tablename__ = "task_count_delta"

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(sa_type=String(16))
    delta: int


class Installation(SQLModel, table=True):
    """The one row naming this installation, made at its first start; it is part of every
    post's key in Slack (see docs/architecture.md, "Keys")."""

    key: str = Field(default="this", primary_key=True, max_length=16)
    id: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts_column())


class RateEvent(SQLModel, table=True):
    """One new turn a person started, counted by the per-person rate limit across every
    replica (`storage/rate_limits.py`); one row per Slack message, so a retry or a double
    delivery counts once. Rows older than the window are pruned as the person writes again."""

    __tablename__ = "rate_event"
    __table_args__ = (
        UniqueConstraint("team_id", "channel_id", "message_ts", name="uq_rate_event_message"),
        Index("ix_rate_event_user", "user_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(max_length=32)
    team_id: str = Field(max_length=32)
    channel_id: str = Field(max_length=32)
    message_ts: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts_column())


class ChannelConvention(SQLModel, table=True):
    """A channel's standing context for the engineer (`/pm conventions set`): its stack,
    versions, constraints and decisions, sent with every task asked there."""

    __tablename__ = "channel_convention"
    __table_args__ = (UniqueConstraint("team_id", "channel_id", name="uq_channel_convention"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32)
    channel_id: str = Field(max_length=32)
    text: str = Field(sa_column=Column(Text, nullable=False))
    updated_by: str = Field(max_length=32)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts_column())


class HandoffOwner(StrEnum):
    USER = "user"
    GROUP = "group"
    UNASSIGNED = "unassigned"


class HandoffStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    DECLINED = "declined"


class HandoffItem(SQLModel, table=True):
    """One thing a report says others must do (needed from others, an infrastructure
    blocker), tracked until its owner marks it done or declines it."""

    __tablename__ = "handoff"
    __table_args__ = (
        # A retried turn stores its report once, and so its handoffs once.
        UniqueConstraint("report_id", "position", name="uq_handoff_report_position"),
        Index("ix_handoff_task", "task_id", "id"),
        Index("ix_handoff_owner_status", "owner_id", "status"),
        Index("ix_handoff_status_created", "status", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", ondelete="CASCADE")
    report_id: int = Field(foreign_key="report.id", ondelete="CASCADE")
    turn_id: int = Field(foreign_key="turn.id", ondelete="CASCADE")
    position: int  # its index in the report's dependencies_handoffs
    kind: str = Field(max_length=32)  # needed_from_others | infrastructure_blocker
    description: str = Field(sa_column=Column(Text, nullable=False))
    owner_kind: str = Field(default=HandoffOwner.UNASSIGNED, sa_type=String(16))
    owner_id: str | None = Field(default=None, max_length=32)  # U…/W… or a user group's S…
    status: str = Field(default=HandoffStatus.OPEN, sa_type=String(16))
    reason: str | None = Field(default=None, sa_column=Column(Text))  # why it was declined
    decided_by: str | None = Field(default=None, max_length=32)
    nudged_at: datetime | None = Field(default=None, sa_column=_ts_column(nullable=True))
    # The owner's DM about it, updated when it is decided.
    dm_channel: str | None = Field(default=None, max_length=32)
    dm_ts: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts_column())
