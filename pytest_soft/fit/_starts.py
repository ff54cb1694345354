"""Where the starts of a fit with restarts begin."""

from __future__ import annotations

import numpy as np

from ._problem import Problem

__all__ = ["draw_start"]


def draw_start(
    problem: Problem, x0: np.ndarray, rng: np.random.Generator, used: np.ndarray
) -> np.ndarray:
    """A random start: uniform within finite bounds, around x0 elsewhere; parameters that no
    score depends on stay where they are."""
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


# -- the entry point --------------------------------------------------------------------------
