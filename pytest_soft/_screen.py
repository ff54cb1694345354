"""Screened multistart: before the local fits, score a scrambled Sobol sample of the parameter box
and start from the best points of different valleys, so that restarts cover the space.

No pytest here. :func:`screen` takes the loss as a function of the flat parameter vector; the
fit engine calls it once per block, before its restarts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

#: Sample points per restart and per varied parameter, before rounding up to a power of two
#: (Sobol points balance best in powers of two). In one dimension and ten restarts that is 512
#: loss evaluations: a few local fits' worth, and milliseconds for a batched soft test.
SAMPLE_PER_START_AND_DIMENSION = 32
MIN_SAMPLE = 64
MAX_SAMPLE = 4096

#: A parameter without bounds is sampled within this many times max(|initial value|, 1) of its
#: initial value, on each unbounded side (the scale random restarts used to draw from).
UNBOUNDED_SPREAD = 2.0

#: Two starts are in different valleys when they are at least this far apart in the unit box
#: (each parameter's sampled range scaled to [0, 1]), measured in the largest coordinate.
MIN_SEPARATION = 0.02

#: Local fits that end within this distance of each other (same unit box, largest coordinate)
#: found the same minimum.
SAME_MINIMUM = 1e-3


@dataclass(frozen=True)
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
    two between MIN_SAMPLE and MAX_SAMPLE (or ``budget``, when smaller)."""
    wanted = max(MIN_SAMPLE, SAMPLE_PER_START_AND_DIMENSION * starts * max(dimension, 1))
    n = min(1 << math.ceil(math.log2(wanted)), MAX_SAMPLE)
    if budget is not None:
        n = min(n, 1 << max(int(math.log2(max(budget, 1))), 0))
    return n


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
) -> Screen:
    """Score a scrambled Sobol sample of the box (seeded by ``seed``) and return up to ``starts``
    points from different valleys, lowest loss first.

    ``vary`` marks the entries to sample (the rest stay at ``x0``). A point is a candidate when
    its loss is below that of its nearest sample neighbours (a valley floor of the sample);
    candidates closer than MIN_SEPARATION to a better chosen one are skipped, so one wide
    valley does not take every start. Where fewer valleys show, the best remaining points at
    that separation fill the starts. Past ``deadline`` (time.monotonic()) the sample stops
    where it is.
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
    evaluated = 0
    for i in range(n):
        value = loss(points[i])
        evaluated += 1
        losses[i] = value if math.isfinite(value) else math.inf
        if time.monotonic() > deadline:
            break
    unit, points, losses = unit[:evaluated], points[:evaluated], losses[:evaluated]

    chosen = _choose(unit, losses, starts)
    return Screen(
        starts=[points[i].copy() for i in chosen],
        losses=[float(losses[i]) for i in chosen],
        evaluations=evaluated,
        low=low,
        high=high,
        unbounded=unbounded,
    )


def _choose(unit: np.ndarray, losses: np.ndarray, starts: int) -> list[int]:
    """Indices of up to ``starts`` finite-loss points: valley floors first, then the rest, each
    more than MIN_SEPARATION from those already taken."""
    finite = np.flatnonzero(np.isfinite(losses))
    if finite.size == 0:
        return []
    order = finite[np.argsort(losses[finite], kind="stable")]
    floors = order[_valley_floors(unit[order], losses[order])]
    chosen: list[int] = []
    for pool, separation in ((floors, MIN_SEPARATION), (order, MIN_SEPARATION), (order, 0.0)):
        for i in pool:
            if len(chosen) == starts:
                return chosen
            # (The last pass, for more starts than the sample has valleys, only skips repeats.)
            if all(np.max(np.abs(unit[i] - unit[j])) > separation for j in chosen):
                chosen.append(int(i))
    return chosen


def _valley_floors(unit: np.ndarray, losses: np.ndarray) -> np.ndarray:
    """Positions of the points whose loss is at most that of each of their nearest neighbours
    (2 per dimension, as many as a grid point has)."""
    from scipy.spatial import cKDTree

    n, dimension = unit.shape
    k = min(2 * dimension, n - 1)
    if k < 1:
        return np.arange(n)
    _, neighbours = cKDTree(unit).query(unit, k=k + 1)
    return np.flatnonzero(np.all(losses[neighbours[:, 1:]] >= losses[:, None], axis=1))


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
