"""What a fit takes and gives: terms (soft tests as the fit sees them), progress reports,
parameter changes and the result, plus the thresholds that decide whether a result is worth
writing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from ..errors import FitError
from ..parameters import Parameters
from ._stops import Stop
from ._uncertainty import Uncertainty

_T = TypeVar("_T")

METHODS = ("auto", "lsq", "lbfgs", "adam", "sgd", "powell", "nelder-mead")
#: Methods that evaluate the loss only: no autograd, so they fit code it cannot trace.
DERIVATIVE_FREE = ("powell", "nelder-mead")

#: A fit result is written only when it lowers the loss by more than this share of the loss
#: before the fit, and by more than MIN_IMPROVEMENT_ABS; anything less is rounding noise.
MIN_IMPROVEMENT_REL = 1e-9
MIN_IMPROVEMENT_ABS = 1e-24

#: ``auto`` uses least squares only where each term's Jacobian takes at most this many passes.
MAX_JACOBIAN_PASSES = 64

DEFAULT_TOL = 1e-12
#: The least-squares method's loss-change and gradient tolerances never go below this: a few
#: machine epsilons, where the relative change of a loss is rounding (at the epsilon itself,
#: NIST Chwirut2 ran 50% more evaluations waiting for a change rounding hides;
#: benchmarks/lsq_defaults.py).
LSQ_TOL_FLOOR = 1e-15
DEFAULT_MAX_ITER = 1000
DEFAULT_LR = {"adam": 0.01, "sgd": 0.01}


@dataclass(frozen=True)
class Call:
    """A soft test's body and the arguments of one call of it (or of a batch of its cases)."""

    function: Callable[..., Any]
    kwargs: Mapping[str, Any]
    #: Arguments stacked along a first axis of cases: the body is mapped over them (jax.vmap),
    #: one case at a time. Empty for one case.
    stacked: tuple[str, ...] = ()


@dataclass
class Term:
    """One soft test as the fit sees it: ``score()`` computes its score (a scalar or a 1-d array
    of per-case scores) reading parameters at call time; ``weight`` scales it in the loss.
    """

    name: str
    score: Callable[[], Any]
    weight: float = 1.0
    threshold: float | None = None
    #: For a term that evaluates several soft tests in one call (a batch), their names, one per
    #: entry of the 1-d array ``score()`` returns; the threshold then applies to each case.
    case_names: Sequence[str] | None = None
    #: For a batch: a term over some of its cases (by index), for minibatches.
    select: Callable[[np.ndarray], Term] | None = None
    #: For a batch: one term per case that computes that case's score the exact way (its own
    #: call). A batch is a fast path: the fit uses it only where it agrees with these, and
    #: verifies the fitted point with these before anything is written.
    exact: Sequence[Term] | None = None
    #: Which backend differentiates the term: "autograd", "jax", or None until the fit sees
    #: its score (a JAX array means "jax").
    backend: str | None = None
    #: For a term built from a test call (the JAX backend compiles it): the function and its
    #: arguments, so every case with the same argument shapes shares one compiled function.
    call: Call | None = None
    #: For a term evaluated in another process (a pytest-xdist worker's soft test): its
    #: stand-in's connection there (pytest_soft.fit._remote). Its backend is then "remote".
    remote: Any = None

    def per_case(self, values: np.ndarray) -> dict[str, float]:
        """The scores by soft test name: one entry, or one per case of a batch."""
        if self.case_names is not None:
            return {name: float(v) for name, v in zip(self.case_names, values)}
        return {self.name: float(np.sum(values))}

    def within_threshold(self, values: np.ndarray) -> bool:
        if self.threshold is None:
            return False
        if self.case_names is not None:
            return bool(np.all(values <= self.threshold))
        return float(np.sum(values)) <= self.threshold


@dataclass(frozen=True)
class Progress:
    """One optimiser iteration, as passed to the progress callback."""

    start: int
    starts: int
    iteration: int
    loss: float
    best_loss: float
    grad_norm: float
    seconds: float


@dataclass
class ParamChange:
    full_name: str
    before: Any
    after: Any


@dataclass(frozen=True)
class WorkerStats:
    """The evaluations of a fit spread over pytest-xdist workers."""

    #: Per worker: its name (gw0, ...) and how many soft test cases it evaluated.
    shards: tuple[tuple[str, int], ...]
    #: Requests answered, and rounds of them (requests sent together: one evaluation of the
    #: suite is one round); the seconds from each round's first request to its last reply,
    #: and the seconds of the slowest worker's own work in each round.
    requests: int
    rounds: int
    wait_seconds: float
    busy_seconds: float

    @property
    def messaging_ms(self) -> float:
        """Milliseconds a round took beyond its slowest worker's own work: the messaging."""
        if not self.rounds:
            return 0.0
        return max(self.wait_seconds - self.busy_seconds, 0.0) * 1e3 / self.rounds


@dataclass
class FitResult:
    """What a fit did. The parameter groups are left as they were; call :meth:`apply` to put the
    tuned values in (and ``group.save()`` to write them).
    """

    method: str
    terms: int
    cases: int
    parameters: list[ParamChange]
    scalars: int
    loss_before: float
    loss_after: float
    iterations: int
    loss_evaluations: int
    gradient_evaluations: int
    seconds: float
    #: Why the optimiser stopped (for several blocks, the first that did not converge).
    stop: Stop
    history: list[float]
    starts: int
    starts_run: int
    starts_at_best: int
    best_start: int
    holdout_terms: int = 0
    holdout_before: float | None = None
    holdout_after: float | None = None
    scores_before: dict[str, float] = field(default_factory=dict)
    scores_after: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: How many independent groups of parameters (sharing no soft test) were fitted separately.
    blocks: int = 1
    #: With restarts: sample points the screen scored to choose them (counted in
    #: loss_evaluations), and how many different minima the starts run ended in.
    screened: int = 0
    minima: int = 1
    #: Starts left before converging, their loss settling above a lower one already found
    #: (not counted in ``minima``).
    starts_left: int = 0
    #: The loss and scores above were measured the exact way (every soft test called on its own
    #: at the start and at the fitted point), not by the fast paths the optimiser used.
    verified: bool = False
    #: One line per batch the fit used (checked against its cases' own calls).
    batches: list[str] = field(default_factory=list)
    #: What the checks found: batches split into their cases, refits, scores that changed.
    notes: list[str] = field(default_factory=list)
    #: Standard errors and correlations of the fitted values (least squares only; otherwise a
    #: note saying why there are none).
    uncertainty: Uncertainty | None = None
    #: Which backend differentiated the soft tests: "autograd", "jax" or "autograd + jax".
    backend: str = "autograd"
    #: JAX only: functions compiled for the fit, the time spent compiling them (part of
    #: ``seconds``), and whether JAX ran in float64 for the fit (jax_enable_x64).
    compiled: int = 0
    compile_seconds: float = 0.0
    float64: bool = False
    #: A fit spread over pytest-xdist workers: who evaluated what, and the messaging's cost.
    workers: WorkerStats | None = None
    _assignments: dict[Parameters, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def stop_reason(self) -> str:
        return self.stop.detail

    @property
    def converged(self) -> bool:
        return self.stop.converged

    @property
    def improved(self) -> bool:
        """Whether the loss fell by more than rounding noise (see :func:`improved_enough`)."""
        return improved_enough(self.loss_before, self.loss_after)

    @property
    def groups(self) -> list[Parameters]:
        return list(self._assignments)

    def apply(self) -> list[Parameters]:
        """Put the tuned values into their parameter groups; return the groups changed."""
        for group, values in self._assignments.items():
            group.update(values)
        return self.groups


def improved_enough(before: float, after: float) -> bool:
    """True when ``after`` is below ``before`` by more than rounding noise."""
    margin = max(MIN_IMPROVEMENT_REL * abs(before), MIN_IMPROVEMENT_ABS)
    return after < before - margin


def split_holdout(terms: Sequence[_T], fraction: float, seed: int) -> tuple[list[_T], list[_T]]:
    """Keep a seeded, random ``fraction`` of the terms (or of any sequence, such as soft tests
    before they become terms) out of the fit: (train, held out)."""
    if not 0.0 <= fraction < 1.0:
        raise FitError(f"the hold-out fraction must be at least 0 and below 1, got {fraction!r}.")
    n_out = round(len(terms) * fraction)
    if fraction > 0 and n_out == 0 and len(terms) > 1:
        n_out = 1
    if n_out >= len(terms):
        n_out = len(terms) - 1
    order = np.random.default_rng(seed).permutation(len(terms))
    out = set(order[:n_out].tolist())
    train = [t for i, t in enumerate(terms) if i not in out]
    held = [t for i, t in enumerate(terms) if i in out]
    return train, held
