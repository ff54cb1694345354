"""Where the starts of a fit with restarts begin: a screen of the parameter box (a scrambled
Sobol sample of the loss, no gradients) and the best points of its distinct valleys, so that the
restarts cover the space rather than crowd into one wide valley; uniform draws where the screen
gives too few.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import SoftWarning
from ._problem import Problem

__all__ = [
    "FIRST_STAGE",
    "SCREEN_SHARE",
    "Screen",
    "distinct_minima",
    "draw_start",
    "sample_size",
    "screen",
    "screen_cost",
    "screen_starts",
]

#: Sample points per restart and per varied parameter, before rounding up to a power of two
#: (Sobol points balance best in powers of two). In one dimension and ten restarts that is 512
#: loss evaluations: a few local fits' worth, and milliseconds for a batched soft test.
SAMPLE_PER_START_AND_DIMENSION = 16
MIN_SAMPLE = 64
MAX_SAMPLE = 4096

#: The screen's sample is held to this share of what the restarts' local fits are expected to
#: cost: the first fit's cost (see screen_cost) once per restart.
SCREEN_SHARE = 0.5

#: A gradient or Jacobian evaluation costs about this many loss evaluations per fitted value
#: (autograd, 200 cases: 3-5 for one value, 30 for four and six; benchmarks/multimodal.py).
DERIVATIVE_COST_PER_VALUE = 4

#: A parameter without bounds is sampled within this many times max(|initial value|, 1) of its
#: initial value, on each unbounded side (the scale random restarts used to draw from).
UNBOUNDED_SPREAD = 2.0

#: Which sample points are valley floors, as nearest-better clustering (Preuss) tells them: a
#: point whose nearest lower point lies more than this many times the sample's mean such
#: distance away. Distances are measured in the unit box (each parameter's sampled range
#: scaled to [0, 1]). 2 is the method's usual factor.
NEAREST_BETTER_FACTOR = 2.0

#: The screen scores the first 1/FIRST_STAGE of its sample (at least MIN_SAMPLE points) before
#: the first restart, and the rest only if that restart leaves something to gain (the loss is
#: not 0 to rounding, or some soft test is outside its threshold): a fit that the best of a
#: coarser sample already solves does not pay for the finer one.
FIRST_STAGE = 4

#: Local fits that end within this distance of each other (same unit box, largest coordinate)
#: found the same minimum.
SAME_MINIMUM = 1e-3


@dataclass
class Screen:
    """What the screen chose: the starts, best first, and what it cost."""

    starts: list[np.ndarray]
    #: Losses at the starts, in the same order.
    losses: list[float]
    evaluations: int
    #: The box sampled, per entry of the flat vector (equal ends where a parameter is held).
    low: np.ndarray
    high: np.ndarray
    #: Entries of the flat vector without a finite bound on some side, sampled around x0.
    unbounded: list[int] = field(default_factory=list)
    #: The whole sample (unit box and points) and its losses so far (the first
    #: ``evaluations`` of them; see grow), and how many starts to choose.
    unit: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    scored: np.ndarray = field(default_factory=lambda: np.zeros(0))
    wanted: int = 0

    @property
    def can_grow(self) -> bool:
        return self.evaluations < len(self.points)

    def grow(
        self,
        loss: Callable[[np.ndarray], float],
        used: list[np.ndarray],
        deadline: float = math.inf,
    ) -> None:
        """Score the rest of the sample and choose the starts again from all of it, leaving out
        the points in ``used`` (starts already run)."""
        self.evaluations = _score(loss, self.points, self.scored, self.evaluations, deadline)
        n = self.evaluations
        # The used points stay in the sample (they mark their valleys as found), but are not
        # chosen again.
        chosen = [
            i
            for i in _choose(self.unit[:n], self.scored[:n], self.wanted + len(used))
            if not any(np.array_equal(self.points[i], x) for x in used)
        ][: self.wanted]
        self.starts = [self.points[i].copy() for i in chosen]
        self.losses = [float(self.scored[i]) for i in chosen]


def sampling_box(
    lower: np.ndarray, upper: np.ndarray, x0: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The box to sample: the bounds where finite, and UNBOUNDED_SPREAD * max(|x0|, 1) beyond
    the initial value (or the one finite bound, whichever is further out) where not."""
    reach = UNBOUNDED_SPREAD * np.maximum(np.abs(x0), 1.0)
    low = np.where(np.isfinite(lower), lower, np.minimum(x0, upper) - reach)
    high = np.where(np.isfinite(upper), upper, np.maximum(x0, lower) + reach)
    unbounded = [int(i) for i in np.flatnonzero(~(np.isfinite(lower) & np.isfinite(upper)))]
    return low, high, unbounded


def sample_size(dimension: int, starts: int, budget: int | None = None) -> int:
    """Sample points for ``starts`` restarts over ``dimension`` varied parameters: a power of
    two between MIN_SAMPLE and MAX_SAMPLE, and at most ``budget`` where that is larger than
    MIN_SAMPLE."""
    wanted = max(MIN_SAMPLE, SAMPLE_PER_START_AND_DIMENSION * starts * max(dimension, 1))
    n = min(1 << math.ceil(math.log2(wanted)), MAX_SAMPLE)
    if budget is not None:
        n = min(n, max(MIN_SAMPLE, 1 << max(int(math.log2(max(budget, 1))), 0)))
    return n


def screen_cost(loss_evaluations: int, gradient_evaluations: int, dimension: int) -> int:
    """A local fit's cost in loss evaluations, the unit of the screen's sample."""
    return loss_evaluations + gradient_evaluations * DERIVATIVE_COST_PER_VALUE * max(dimension, 1)


def _sobol(dimension: int, n: int, rng: np.random.Generator) -> np.ndarray:
    from scipy.stats import qmc

    try:
        sampler = qmc.Sobol(dimension, scramble=True, rng=rng)
    except TypeError:  # scipy before 1.15 names the generator ``seed``
        sampler = qmc.Sobol(dimension, scramble=True, seed=rng)
    return sampler.random_base2(int(math.log2(n)))


def screen(
    loss: Callable[[np.ndarray], float],
    lower: np.ndarray,
    upper: np.ndarray,
    x0: np.ndarray,
    starts: int,
    seed: int,
    *,
    vary: np.ndarray | None = None,
    budget: int | None = None,
    deadline: float = math.inf,
    first_stage: int | None = None,
) -> Screen:
    """Score a scrambled Sobol sample of the box (seeded by ``seed``) and return up to ``starts``
    points from different valleys, lowest loss first.

    ``vary`` marks the entries to sample (the rest stay at ``x0``). The starts are the floors of
    the sample's valleys (points far from any lower point, see NEAREST_BETTER_FACTOR), lowest
    first, so that one wide valley does not take every start; where fewer valleys show, the
    points furthest from any lower point fill the starts. Past ``deadline``
    (time.monotonic()) the sample stops where it is. With ``first_stage``, only the first
    1/first_stage of the sample (at least MIN_SAMPLE points) is scored; Screen.grow scores the
    rest.
    """
    x0 = np.asarray(x0, dtype=float)
    vary = np.ones(x0.shape, dtype=bool) if vary is None else np.asarray(vary, dtype=bool)
    low, high, unbounded = sampling_box(lower, upper, x0)
    low, high = np.where(vary, low, x0), np.where(vary, high, x0)
    unbounded = [i for i in unbounded if vary[i]]
    columns = np.flatnonzero(vary & (high > low))
    if starts < 1 or columns.size == 0:
        return Screen([], [], 0, low, high, unbounded)

    n = sample_size(columns.size, starts, budget)
    unit = _sobol(columns.size, n, np.random.default_rng(seed))
    span = (high - low)[columns]
    points = np.repeat(x0[None, :], n, axis=0)
    points[:, columns] = low[columns] + unit * span
    losses = np.full(n, np.inf)
    # The first points of a scrambled Sobol sample whose count is a power of two are a balanced
    # sample of their own: the first stage scores only those (see FIRST_STAGE).
    first = n if first_stage is None else min(n, max(MIN_SAMPLE, n // first_stage))
    evaluated = _score(loss, points[:first], losses, 0, deadline)
    chosen = _choose(unit[:evaluated], losses[:evaluated], starts)
    return Screen(
        starts=[points[i].copy() for i in chosen],
        losses=[float(losses[i]) for i in chosen],
        evaluations=evaluated,
        low=low,
        high=high,
        unbounded=unbounded,
        unit=unit,
        points=points,
        scored=losses,
        wanted=starts,
    )


def _score(
    loss: Callable[[np.ndarray], float],
    points: np.ndarray,
    losses: np.ndarray,
    done: int,
    deadline: float,
) -> int:
    """Score points[done:] into losses (inf where not finite) until the deadline; returns how
    many points are scored in all."""
    for i in range(done, len(points)):
        value = loss(points[i])
        losses[i] = value if math.isfinite(value) else math.inf
        done = i + 1
        if time.monotonic() > deadline:
            break
    return done


def _choose(unit: np.ndarray, losses: np.ndarray, starts: int) -> list[int]:
    """Indices of up to ``starts`` finite-loss points: the floors of the sample's valleys, lowest
    loss first, then (where fewer valleys show) the points furthest from any lower point."""
    finite = np.flatnonzero(np.isfinite(losses))
    if finite.size == 0:
        return []
    order = finite[np.argsort(losses[finite], kind="stable")]
    distance = nearest_better_distances(unit[order])
    # The lowest point has no better one; it is always a floor.
    cut = NEAREST_BETTER_FACTOR * float(np.mean(distance[1:])) if len(order) > 1 else 0.0
    floors = [int(i) for i in np.flatnonzero(distance > cut)]
    others = sorted(set(range(len(order))) - set(floors), key=lambda i: -distance[i])
    return [int(order[i]) for i in (floors + others)[:starts]]


def nearest_better_distances(unit: np.ndarray) -> np.ndarray:
    """For points sorted by loss (lowest first), each one's distance to the nearest point that
    comes before it (infinite for the first)."""
    n = len(unit)
    out = np.full(n, np.inf)
    rows = max(1, (1 << 22) // max(n, 1))  # a few megabytes of distances at a time
    for first in range(1, n, rows):
        last = min(first + rows, n)
        block = unit[first:last]
        d = np.sqrt(((block[:, None, :] - unit[None, :last, :]) ** 2).sum(axis=2))
        # Only the points before each one count: mask the rest.
        d[np.arange(last - first)[:, None] + first <= np.arange(last)[None, :]] = np.inf
        out[first:last] = d.min(axis=1)
    return out


def distinct_minima(
    points: list[np.ndarray], losses: list[float], low: np.ndarray, high: np.ndarray
) -> int:
    """How many different minima the local fits ended in: fits whose end points (with a finite
    loss) lie within SAME_MINIMUM of each other in the unit box count once."""
    span = np.where(high > low, high - low, 1.0)
    found: list[np.ndarray] = []
    for x, f in zip(points, losses):
        u = (np.asarray(x, dtype=float) - low) / span
        if math.isfinite(f) and all(
            np.max(np.abs(u - v), initial=0.0) > SAME_MINIMUM for v in found
        ):
            found.append(u)
    return len(found)


def draw_start(
    problem: Problem, x0: np.ndarray, rng: np.random.Generator, used: np.ndarray
) -> np.ndarray:
    """A random start: uniform within finite bounds, around x0 elsewhere; parameters that no
    score depends on stay where they are. (Used where the screen gave fewer starts than asked,
    e.g. when the time budget cut its sample short.)"""
    lo, hi = problem.lower, problem.upper
    scale = np.maximum(np.abs(x0), 1.0)
    x = x0 + rng.normal(size=x0.shape) * scale
    both = np.isfinite(lo) & np.isfinite(hi)
    x[both] = rng.uniform(lo[both], hi[both])
    only_lo = np.isfinite(lo) & ~np.isfinite(hi)
    x[only_lo] = lo[only_lo] + np.abs(x[only_lo] - lo[only_lo])
    only_hi = ~np.isfinite(lo) & np.isfinite(hi)
    x[only_hi] = hi[only_hi] - np.abs(hi[only_hi] - x[only_hi])
    return np.where(used, x, x0)


def screen_starts(
    problem: Problem,
    x0: np.ndarray,
    restarts: int,
    seed: int,
    used: np.ndarray,
    deadline: float,
    fit_warnings: list[str],
    budget: int | None = None,
    first_stage: int | None = None,
) -> Screen:
    """The restarts' starts for one block, from a screen of its parameter box; a warning names
    the parameters without bounds, which the screen can only sample near their initial value."""
    if not restarts:
        low, high, _ = sampling_box(problem.lower, problem.upper, x0)
        return Screen([], [], 0, low, high)
    saved_errors = np.seterr(over="ignore", invalid="ignore", divide="ignore")
    try:
        found = screen(
            problem.loss,
            problem.lower,
            problem.upper,
            x0,
            restarts,
            seed,
            vary=used,
            budget=budget,
            deadline=deadline,
            first_stage=first_stage,
        )
    finally:
        np.seterr(**saved_errors)
    names = [
        s.spec.full_name
        for s in problem.slots
        if any(s.start <= i < s.stop for i in found.unbounded)
    ]
    if names:
        shown = ", ".join(f"'{n}'" for n in names)
        message = (
            f"the restarts search within the bounds, and {shown} "
            f"{'has' if len(names) == 1 else 'have'} none on at least one side: they were "
            f"sampled within {UNBOUNDED_SPREAD:g} x max(|initial value|, 1) of the "
            "initial value there. Declare bounds (Param(value, bounds=(low, high))) to search "
            "the whole range where the minimum may be."
        )
        fit_warnings.append(message)
        warnings.warn(SoftWarning(message), stacklevel=4)
    return found
