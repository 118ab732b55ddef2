"""The self-score calibration: per axis, how tasks scored high or low turned out, estimates
against the time taken, and the honest "too few" when the sample is small."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.core.calibration import MIN_SAMPLE, calibrate
from storage.calibration import TaskOutcome

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
AXES = (
    "system_architecture_design",
    "scalability_performance",
    "integration_reliability",
    "probability_of_success",
    "implementation_feasibility",
    "quality_completeness",
    "risk_assessment",
    "alignment_value",
)


def outcome(
    number: int,
    *,
    success: int,
    reopened: bool = False,
    blocked: bool = False,
    estimate: str | None = None,
    took: timedelta | None = None,
    bad: bool | None = None,
) -> TaskOutcome:
    scores = dict.fromkeys(AXES, 7)
    scores["probability_of_success"] = success
    return TaskOutcome(
        task_id=number,
        scores=scores,
        estimated_time=estimate,
        estimated_at=T0 if estimate else None,
        completed_at=T0 + took if took else None,
        reopened=reopened,
        blocked_seconds=3600.0 if blocked else 0.0,
        rated_bad=bad,
    )


def test_per_axis_outcomes_follow_the_score_and_estimates_are_a_median_ratio() -> None:
    high = [outcome(n, success=8, reopened=n == 0) for n in range(10)]  # 1 of 10 reopened
    low = [outcome(10 + n, success=4, reopened=n < 2, blocked=n < 3) for n in range(5)]
    estimated = [
        outcome(20 + n, success=7, estimate="2 days", took=timedelta(days=days))
        for n, days in enumerate((2, 3, 3.2, 4, 1))  # ratios 1, 1.5, 1.6, 2, 0.5
    ]
    result = calibrate([*high, *low, *estimated])

    success = next(a for a in result.axes if a.axis.value == "probability_of_success")
    assert (success.high.tasks, success.high.reopened) == (15, 1)
    assert (success.low.tasks, success.low.reopened, success.low.blocked) == (5, 2, 3)
    assert success.line() == (
        "Probability of Success ≥ 7: 7 % reopened, 0 % blocked (n=15); "
        "≤ 5: 40 % reopened, 60 % blocked (n=5)"
    )
    assert result.estimate_ratio == 1.5 and result.estimated_tasks == 5
    assert "estimates: median actual/estimate 1.5× (n=5)" in result.lines()
    line = result.request_line()
    assert "your estimates have run 1.5× long here (median of 5 tasks)" in line
    assert "Probability of Success ≥ 7 were reopened 7 % of the time (n=15)" in line


def test_small_samples_are_called_too_few_and_give_the_engineer_nothing() -> None:
    few = calibrate([outcome(n, success=8) for n in range(MIN_SAMPLE - 1)])
    assert not few.enough
    assert few.lines() == [
        f"Too few finished tasks to calibrate the self-scores yet (n={MIN_SAMPLE - 1}; "
        f"figures start at {MIN_SAMPLE})."
    ]
    assert few.request_line() == ""
    # Enough tasks overall, but too few scored low on the axis: that bucket says so.
    mixed = calibrate([*(outcome(n, success=8) for n in range(6)), outcome(9, success=3)])
    success = next(a for a in mixed.axes if a.axis.value == "probability_of_success")
    assert "≤ 5: too few tasks to tell (n=1)" in success.line()
    assert "too few tasks with an estimate to tell (n=0)" in mixed.estimate_phrase()


def test_thumbs_down_are_counted_over_rated_tasks_only() -> None:
    result = calibrate([outcome(n, success=8, bad=n < 2 if n < 4 else None) for n in range(6)])
    assert (result.bad_ratings, result.rated_tasks) == (2, 4)
    assert "👎 from the asker on 2 of 4 rated tasks" in result.lines()


def test_handoffs_done_and_declined_are_counted() -> None:
    outcomes = [outcome(n, success=8) for n in range(5)]
    outcomes[0] = replace(outcomes[0], handoffs=3, handoffs_done=2, handoffs_declined=1)
    outcomes[1] = replace(outcomes[1], handoffs=1)
    assert "handoffs of these tasks: 2 done, 1 declined, of 4" in calibrate(outcomes).lines()
    assert not any("handoffs" in line for line in calibrate(outcomes[2:] * 2).lines())
