"""How the engineer's self-scores compare with what happened (pure): per axis, how often tasks
scored high or low were reopened or blocked, and how estimates compared with the time taken."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from agents.reports import ScoreAxis
from bot.core.estimates import parse_estimate
from storage.calibration import TaskOutcome

CALIBRATION_DAYS = 90  # the finished tasks it is computed from
# Below this many tasks a figure says nothing; it is said so instead.
MIN_SAMPLE = 5
HIGH, LOW = 7, 5  # "scored 7 or more" against "scored 5 or less" (a red flag)


@dataclass(frozen=True)
class Bucket:
    tasks: int
    reopened: int
    blocked: int

    def rate(self, count: int) -> str:
        return f"{round(100 * count / self.tasks)} %"

    def phrase(self) -> str:
        if self.tasks < MIN_SAMPLE:
            return f"too few tasks to tell (n={self.tasks})"
        return (
            f"{self.rate(self.reopened)} reopened, {self.rate(self.blocked)} blocked "
            f"(n={self.tasks})"
        )


@dataclass(frozen=True)
class AxisCalibration:
    axis: ScoreAxis
    high: Bucket
    low: Bucket

    def line(self) -> str:
        return f"{self.axis.label} ≥ {HIGH}: {self.high.phrase()}; ≤ {LOW}: {self.low.phrase()}"


@dataclass(frozen=True)
class Calibration:
    tasks: int
    axes: list[AxisCalibration]
    estimate_ratio: float | None  # median of actual / estimated time
    estimated_tasks: int
    bad_ratings: int
    rated_tasks: int
    handoffs: int = 0
    handoffs_done: int = 0
    handoffs_declined: int = 0

    @property
    def enough(self) -> bool:
        return self.tasks >= MIN_SAMPLE

    def estimate_phrase(self) -> str:
        if self.estimate_ratio is None or self.estimated_tasks < MIN_SAMPLE:
            return f"estimates: too few tasks with an estimate to tell (n={self.estimated_tasks})"
        ratio, n = self.estimate_ratio, self.estimated_tasks
        return f"estimates: median actual/estimate {ratio:.1f}× (n={n})"

    def lines(self) -> list[str]:
        """The calibration as people read it (`/pm calibration`, the weekly standup)."""
        if not self.enough:
            return [
                f"Too few finished tasks to calibrate the self-scores yet (n={self.tasks}; "
                f"figures start at {MIN_SAMPLE})."
            ]
        lines = [axis.line() for axis in self.axes]
        lines.append(self.estimate_phrase())
        if self.rated_tasks:
            lines.append(
                f"👎 from the asker on {self.bad_ratings} of {self.rated_tasks} rated tasks"
            )
        if self.handoffs:
            lines.append(
                f"handoffs of these tasks: {self.handoffs_done} done, {self.handoffs_declined} "
                f"declined, of {self.handoffs}"
            )
        return lines

    def request_line(self) -> str:
        """One line for the engineer's request, or "" when the sample says nothing yet."""
        parts = []
        if self.estimate_ratio is not None and self.estimated_tasks >= MIN_SAMPLE:
            ratio = self.estimate_ratio
            if ratio >= 1.15:
                parts.append(f"your estimates have run {ratio:.1f}× long here")
            elif ratio <= 0.85:
                parts.append(f"your estimates have run {ratio:.1f}× short here (work took less)")
            else:
                parts.append("your estimates have been about right here")
            parts[-1] += f" (median of {self.estimated_tasks} tasks)"
        success = next((a for a in self.axes if a.axis is ScoreAxis.PROBABILITY_OF_SUCCESS), None)
        if success is not None and success.high.tasks >= MIN_SAMPLE:
            parts.append(
                f"tasks you scored Probability of Success ≥ {HIGH} were reopened "
                f"{success.high.rate(success.high.reopened)} of the time (n={success.high.tasks})"
            )
        return "; ".join(parts)


def calibrate(outcomes: Sequence[TaskOutcome]) -> Calibration:
    axes = []
    for axis in ScoreAxis:
        high = [o for o in outcomes if o.scores.get(axis.value, 0) >= HIGH]
        low = [o for o in outcomes if 0 < o.scores.get(axis.value, 0) <= LOW]
        axes.append(AxisCalibration(axis=axis, high=_bucket(high), low=_bucket(low)))
    ratios = []
    for outcome in outcomes:
        estimate = parse_estimate(outcome.estimated_time)
        start, end = outcome.estimated_at, outcome.completed_at
        if estimate is None or start is None or end is None or estimate.total_seconds() <= 0:
            continue
        took = (end - start).total_seconds()
        if took > 0:
            ratios.append(took / estimate.total_seconds())
    rated = [o for o in outcomes if o.rated_bad is not None]
    return Calibration(
        tasks=len(outcomes),
        axes=axes,
        estimate_ratio=statistics.median(ratios) if ratios else None,
        estimated_tasks=len(ratios),
        bad_ratings=sum(1 for o in rated if o.rated_bad),
        rated_tasks=len(rated),
        handoffs=sum(o.handoffs for o in outcomes),
        handoffs_done=sum(o.handoffs_done for o in outcomes),
        handoffs_declined=sum(o.handoffs_declined for o in outcomes),
    )


def _bucket(outcomes: Sequence[TaskOutcome]) -> Bucket:
    return Bucket(
        tasks=len(outcomes),
        reopened=sum(1 for o in outcomes if o.reopened),
        blocked=sum(1 for o in outcomes if o.blocked_seconds > 0),
    )
