"""Fast paths proved against exact evaluation: a batch is used only where it agrees with its
cases' own calls (at the start and at points drawn away from it, scores and gradient), and the
fitted point is measured the exact way before anything is written.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Sequence
from typing import Any

import autograd.numpy as anp
import numpy as np
from autograd.tracer import getval

from ..errors import FitError
from ..parameters import Parameters
from ._layout import Slot
from ._model import MIN_IMPROVEMENT_ABS, Term
from ._problem import Problem, traced_vector
from ._starts import draw_start

# -- fast paths proved against exact evaluation -----------------------------------------------

#: A batch's per-case scores must agree with the cases' own calls to this relative tolerance,
#: case by case. The floor (a share of the test's largest score) only absorbs rounding in
#: scores that come out of a cancellation, such as (prediction - target) ** 2 near a fit.
CASE_RTOL = 1e-9
CASE_FLOOR = 1e-15
#: The batch's gradient and the cases' summed gradients must agree to this relative tolerance.
GRADIENT_RTOL = 1e-6
#: Points besides the start where a batch is checked, and at most how many are drawn to find
#: them (a drawn point where the cases' own calls raise cannot be used).
CHECK_POINTS = 2
CHECK_DRAWS = 6
#: The gradient is checked on at most this many cases of a batch (a random subset).
GRADIENT_CASES = 32


def cases_disagree(got: np.ndarray, expected: np.ndarray) -> int | None:
    """The index of the first case whose two scores disagree (relative, per case), or None.

    Both non-finite in the same way counts as agreement: the fit treats such points alike."""
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    if got.shape != expected.shape:
        return 0
    finite = np.isfinite(expected)
    largest = float(np.max(np.abs(expected[finite]))) if finite.any() else 0.0
    limit = CASE_RTOL * np.maximum(np.abs(got), np.abs(expected)) + CASE_FLOOR * largest
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(got - expected) <= limit)
    same = (np.isnan(got) & np.isnan(expected)) | (np.isinf(got) & (got == expected))
    bad &= ~same
    return int(np.flatnonzero(bad)[0]) if bad.any() else None


def exact_terms(terms: Sequence[Term]) -> list[Term]:
    """The terms with every batch replaced by its cases' own terms."""
    return [e for t in terms for e in (t.exact if t.exact is not None else [t])]


def _check_points(problem: Problem, x0: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Points to check a batch at, besides the start: alternately one near the start and one
    anywhere within the bounds (around the start where a parameter is unbounded)."""
    points = []
    scale = np.maximum(np.abs(x0), 1.0)
    for k in range(CHECK_DRAWS):
        if k % 2 == 0:
            x = x0 + 0.1 * scale * rng.normal(size=x0.shape)
        else:
            x = draw_start(problem, x0, rng, np.ones(x0.shape, dtype=bool))
        points.append(np.clip(x, problem.lower, problem.upper))
    return points


def _batch_disagreement(
    term: Term, problem: Problem, points: Sequence[np.ndarray], rng: np.random.Generator
) -> str:
    """Why a batch cannot stand in for its cases' own calls, checked on the scores at the
    start and at CHECK_POINTS more points and on the gradient; empty when it can."""
    assert term.exact is not None
    exact = list(term.exact)
    checked = 0
    for k, x in enumerate(points):
        with np.errstate(all="ignore"), problem.bound(x):
            try:
                expected = np.array([float(np.sum(_plain(e))) for e in exact])
            except FitError:
                raise
            except Exception as exc:
                if k == 0:
                    failing = next(e for e in exact if _raises(e))
                    raise FitError(
                        f"soft test {failing.name} raised {type(exc).__name__}: "
                        f"{_first_line(exc)} when called on its own at the start. Fix it (or "
                        "deselect it) before fitting."
                    ) from exc
                continue  # the cases themselves cannot be evaluated here: another point
            try:
                got = _plain(term)
            except FitError:
                raise
            except Exception as exc:
                return f"the batched call raised {type(exc).__name__}: {_first_line(exc)}"
        where = "at the start" if k == 0 else "away from the start"
        if np.shape(got) != expected.shape:
            return (
                f"the batched call returned shape {np.shape(got)} {where}, not one score per "
                f"case {expected.shape}"
            )
        bad = cases_disagree(got, expected)
        if bad is not None:
            return (
                f"{where}, the batched call scored case {exact[bad].name} {float(got[bad])!r} "
                f"where the case's own call scores {float(expected[bad])!r}: the body is not "
                "elementwise (a sum, mean, max, dot or index over a case's own arrays mixes "
                "the cases)"
            )
        if k > 0:
            why = _gradient_disagreement(term, problem, x, rng)
            if why:
                return why
            checked += 1
            if checked == CHECK_POINTS:
                return ""
    return (
        f"its cases' own calls could be evaluated at only {checked} of {len(points) - 1} "
        "points drawn away from the start, too few to check the batch"
    )


def _raises(term: Term) -> bool:
    try:
        _plain(term)
    except Exception:
        return True
    return False


def _plain(term: Term) -> np.ndarray:
    return np.atleast_1d(np.asarray(getval(term.score()), dtype=float))


def _gradient_disagreement(
    term: Term, problem: Problem, x: np.ndarray, rng: np.random.Generator
) -> str:
    """Compare the gradient of a random positive combination of the per-case scores, from the
    batched call and from the cases' own calls (on a random subset of the cases)."""
    assert term.exact is not None
    n = len(term.exact)
    if n > GRADIENT_CASES and term.select is not None:
        chosen = np.sort(rng.choice(n, GRADIENT_CASES, replace=False))
        batch = term.select(chosen)
    else:
        chosen, batch = np.arange(n), term
    exact = [term.exact[i] for i in chosen]
    u = rng.uniform(1.0, 2.0, size=len(chosen))

    def batched(xx: Any) -> Any:
        with problem.bound(xx):
            return anp.sum(u * traced_vector(batch, batch.score()))

    def one_by_one(xx: Any) -> Any:
        with problem.bound(xx):
            return sum(ui * anp.sum(e.score()) for ui, e in zip(u, exact))

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a score that does not depend on x
        try:
            g_exact = problem.backend.grad(one_by_one, x)
        except Exception:
            return ""  # the fit itself reports code the backend cannot differentiate
        try:
            g_batch = problem.backend.grad(batched, x)
        except Exception as exc:
            return f"autograd cannot differentiate the batched call: {type(exc).__name__}"
    if not (np.all(np.isfinite(g_exact)) and np.all(np.isfinite(g_batch))):
        return ""
    gap = float(np.linalg.norm(g_batch - g_exact))
    size = float(np.linalg.norm(g_batch) + np.linalg.norm(g_exact))
    if gap > GRADIENT_RTOL * size:
        return (
            "away from the start, the batched call's gradient differs from the cases' own "
            f"(relative difference {gap / max(size, 1e-300):.2g}): the body mixes the cases"
        )
    return ""


def batch_proof(
    term: Term, problem: Problem, points: Sequence[np.ndarray], seed: int
) -> tuple[str, str]:
    """How a batch stands in for its cases' own calls (the end of its line in the fit
    section), and why it cannot ("" when it can). The random draws of its checks depend on the
    seed and its name only, so a batch is judged alike wherever it is checked (in this process,
    or in the pytest-xdist worker that holds it)."""
    assert term.exact is not None
    if term.call is not None and term.call.stacked:
        # Mapped with jax.vmap: each case is evaluated on its own, nothing to prove.
        return "in one call (jax.vmap)", ""
    rng = np.random.default_rng([seed, 0x5EED, zlib.crc32(term.name.encode())])
    why = _batch_disagreement(term, problem, points, rng)
    return f"in one call (checked against their own calls at {1 + CHECK_POINTS} points)", why


def verify_batches(
    terms: list[Term], slots: list[Slot], seed: int
) -> tuple[list[Term], list[str], list[str]]:
    """Keep a batch only where it agrees with its cases' own calls at the start and at points
    drawn away from it, scores and gradient; split the others into their cases.

    Returns the terms, the batches kept (as lines for the fit section), and one line per batch
    split saying why."""
    if not any(t.exact is not None for t in terms):
        return terms, [], []
    problem = Problem([], slots)
    x0 = problem.current()
    rng = np.random.default_rng([seed, 0x5EED])
    points = [x0, *_check_points(problem, x0, rng)]
    out: list[Term] = []
    kept: list[str] = []
    split: list[str] = []
    for term in terms:
        if term.exact is None:
            out.append(term)
            continue
        if term.remote is not None:
            how, why = term.remote.verify(slots, points, seed)  # where its cases live
        else:
            how, why = batch_proof(term, problem, points, seed)
        if why:
            split.append(f"{term.name}: {len(term.exact)} cases evaluated one by one ({why})")
            out.extend(term.exact)
        else:
            kept.append(f"batched {term.name}: {len(term.exact)} cases {how}")
            out.append(term)
    return out, kept, split


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else ""


def point(problem: Problem, assignments: dict[Parameters, dict[str, Any]]) -> np.ndarray:
    """The flat vector of the problem's slots with the assigned values put in."""
    x = problem.current()
    for slot in problem.slots:
        value = assignments.get(slot.group, {}).get(slot.spec.name)
        if value is not None:
            x[slot.start : slot.stop] = np.ravel(value)
    return x


def losses_agree(a: float, b: float) -> bool:
    if not (math.isfinite(a) and math.isfinite(b)):
        return a == b or (math.isnan(a) and math.isnan(b))
    return abs(a - b) <= CASE_RTOL * max(abs(a), abs(b)) + MIN_IMPROVEMENT_ABS


def disagreeing_batches(
    terms: Sequence[Term], slots: list[Slot], x: np.ndarray
) -> list[tuple[Term, str]]:
    """The batches whose per-case scores at x differ from their cases' own calls."""
    out = []
    for term in terms:
        if term.exact is None:
            continue
        problem = Problem([term, *term.exact], slots)
        with np.errstate(all="ignore"):
            got, *own = problem.scores(x)
        bad = cases_disagree(got, np.array([float(np.sum(v)) for v in own]))
        if bad is not None:
            out.append(
                (
                    term,
                    f"case {term.exact[bad].name}: {float(got[bad])!r} batched, "
                    f"{float(np.sum(own[bad]))!r} on its own",
                )
            )
    return out
