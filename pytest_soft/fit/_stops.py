"""Why an optimiser stopped, as a kind the planner and the reports act on plus the sentence
the fit section shows."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Stop", "StopKind", "StopRun"]


class StopKind(enum.Enum):
    CONVERGED = "converged"
    ITERATION_LIMIT = "iteration limit"
    EVALUATION_LIMIT = "evaluation limit"
    TIME_BUDGET = "time budget"
    NO_PROGRESS = "no progress"
    NON_FINITE = "non-finite"
    FAILED = "failed"
    #: A start left before converging: its loss was settling above a loss already found.
    LEFT = "left"

    @property
    def budget(self) -> bool:
        """A budget the user sets ran out (raising it lets the fit go on)."""
        return self in (StopKind.ITERATION_LIMIT, StopKind.EVALUATION_LIMIT, StopKind.TIME_BUDGET)


@dataclass(frozen=True)
class Stop:
    kind: StopKind
    #: The sentence after "stopped: " in the fit section.
    detail: str

    @property
    def converged(self) -> bool:
        return self.kind is StopKind.CONVERGED

    def __str__(self) -> str:
        return self.detail


class StopRun(Exception):
    """Raised inside an optimiser's callbacks to end the run with this stop."""

    def __init__(self, stop: Stop):
        super().__init__(stop.detail)
        self.stop = stop


TIME_BUDGET = Stop(StopKind.TIME_BUDGET, "time budget")
