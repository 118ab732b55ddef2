"""Block Kit for the self-score calibration (`/pm calibration`, the weekly standup) (pure)."""

from __future__ import annotations

from bot.core.calibration import MIN_SAMPLE, Calibration
from bot.slack.blocks.common import Block, context, section


def build_calibration_blocks(calibration: Calibration, *, days: int) -> list[Block]:
    lines = "\n".join(f"• {line}" for line in calibration.lines())
    return [
        section(
            f"*:dart: Self-score calibration* — {calibration.tasks} tasks completed in the last "
            f"{days} days, their first report's scores against what happened\n{lines}"
        ),
        context(
            "Reopened: a Reopen after the work was delivered · blocked: ever marked blocked · "
            f"a figure needs {MIN_SAMPLE} tasks · the engineer sees a one-line summary with "
            "each request"
        ),
    ]
