"""Least-squares test problems with published solutions, for benchmarks/problem_set.py.

``mgh`` holds problems 1-18 of Moré, Garbow and Hillstrom (1981), ``nist`` the NIST StRD
problems of examples/nist. :func:`all_problems` returns both, MGH first.
"""

from __future__ import annotations

from .mgh import PROBLEMS as MGH_PROBLEMS
from .mgh import Problem
from .nist import nist_problems

__all__ = ["MGH_PROBLEMS", "ZERO", "Problem", "all_problems", "nist_problems", "reached"]

#: Where the published minimum is 0, a sum of squares at most this counts as reaching it
#: (residual norm 1e-5); the smallest nonzero minimum of the set is 1.1e-8 (Gaussian).
ZERO = 1e-10


def all_problems() -> list[Problem]:
    return [*MGH_PROBLEMS, *nist_problems()]


def reached(problem: Problem, f: float) -> str | None:
    """Which published minimum ``f`` reaches: "f*", "local" (a published local minimum), or
    None. A value clearly below f* is not a pass: it would mean a wrong formula."""
    if problem.f_star == 0.0:
        if f <= ZERO:
            return "f*"
    elif abs(f - problem.f_star) <= problem.rtol * problem.f_star:
        return "f*"
    for local in problem.local_minima:
        if abs(f - local) <= problem.rtol * local:
            return "local"
    return None
