"""The one adapter from agents to storage: usage rows, research rows and reports."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from agents.llm import LLMUsage, TurnRef
from agents.reports import (
    WAITING_KINDS,
    CompletionReport,
    ReportOutcome,
    handoff_owner,
    stored_outcome,
)
from agents.researcher import Research
from storage.handoffs import NewHandoff, add_handoffs
from storage.models import LLMCall, Report, ResearchRequest
from storage.records import record_llm_call, save_report, save_research


class StorageLedger:
    """A `UsageSink` and `ResearchSink` on the pmteam database; one transaction per write."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def record(self, call: LLMUsage) -> None:
        c = call.counts
        row = LLMCall(
            task_id=call.ref.task_id,
            turn_id=call.ref.turn_id,
            agent=call.agent[:32],
            model=call.model[:64],
            input_tokens=c.input_tokens,
            output_tokens=c.output_tokens,
            cache_read_tokens=c.cache_read_tokens,
            cache_write_tokens=c.cache_write_tokens,
            web_searches=c.web_searches,
            cost_usd=call.cost_usd,
            latency_ms=call.latency_ms,
            stop_reason=call.stop_reason[:40] if call.stop_reason else None,
            request_id=call.request_id[:100] if call.request_id else None,
        )
        async with self._sessions.begin() as session:
            await record_llm_call(session=session, call=row)

    async def save_research(self, research: Research, ref: TurnRef) -> None:
        await self.store_research(research, ref)

    async def store_research(self, research: Research, ref: TurnRef) -> ResearchRequest:
        async with self._sessions.begin() as session:
            return await save_research(
                session=session,
                task_id=ref.task_id,
                turn_id=ref.turn_id,
                objective=research.brief.objective,
                request=research.brief.model_dump(mode="json"),
                findings=research.findings,
                sources=[source.as_dict() for source in research.sources],
                live_sources=research.live_sources,
                web_searches=research.web_searches,
            )

    async def save_report(
        self, outcome: ReportOutcome, *, task_id: int, turn_id: int, owner: str | None = None
    ) -> Report:
        """Store a turn's report once (a retried turn gets the stored one back); with `owner`,
        only while that claim still holds the turn."""
        report = outcome.report
        async with self._sessions.begin() as session:
            stored = await save_report(
                session=session,
                task_id=task_id,
                turn_id=turn_id,
                status=report.status.value,
                kind=report.turn_kind.value,
                data=report.model_dump(mode="json"),
                red_flag_count=report.red_flag_count,
                min_score=report.min_score,
                gaps=list(outcome.gaps),
                owner=owner,
            )
            # In the same transaction: a stored report always has its handoffs tracked (the
            # stored one's: a concurrent save of this turn may have stored another).
            assert stored.id is not None
            await add_handoffs(
                session=session,
                task_id=task_id,
                report_id=stored.id,
                turn_id=turn_id,
                items=tracked_handoffs(stored_outcome(stored.data, stored.gaps).report),
            )
            return stored


def tracked_handoffs(report: CompletionReport) -> list[NewHandoff]:
    """The handoffs of a report that wait on someone (needed from others, infrastructure
    blockers), with their owners; none for a conversational turn."""
    if not report.reportable:
        return []
    items = []
    for position, handoff in enumerate(report.dependencies_handoffs):
        if handoff.kind not in WAITING_KINDS:
            continue
        owner_kind, owner_id = handoff_owner(handoff.owner)
        items.append(
            NewHandoff(
                position=position,
                kind=handoff.kind,
                description=handoff.description,
                owner_kind=owner_kind,
                owner_id=owner_id,
            )
        )
    return items
