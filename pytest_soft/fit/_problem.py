"""The problem: the fitted parameters laid out in one flat vector, and the terms evaluated on
it exactly (plain scores here; gradients and Jacobians through a differentiation backend).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import autograd.numpy as anp
import numpy as np
from autograd.tracer import getval

from .._binding import substituted
from .._numeric import exact_sum
from ..errors import FitError, ScoreError
from ..parameters import Parameters, record_reads
from ..scores import check_score
from ._layout import Slot
from ._model import Term


def weighted_loss(weights: Iterable[float], values: Iterable[np.ndarray]) -> float:
    """Sum of weight x score over terms (each term's per-case scores summed), exactly rounded
    (inf or nan when a diverging fit overflows)."""
    return exact_sum(w * float(np.sum(v)) for w, v in zip(weights, values))


def default_backend() -> Backend:
    from ._autograd import AUTOGRAD

    return AUTOGRAD


class Problem:
    """The fitted parameters laid out in one flat vector, and the terms evaluated on it."""

    def __init__(self, terms: Sequence[Term], slots: list[Slot], backend: Backend | None = None):
        self.terms = list(terms)
        self.backend = backend if backend is not None else default_backend()
        self.slots = slots
        self.size = slots[-1].stop if slots else 0
        self.lower = np.full(self.size, -np.inf)
        self.upper = np.full(self.size, np.inf)
        for slot in slots:
            if slot.spec.lower is not None:
                self.lower[slot.start : slot.stop] = slot.spec.lower
            if slot.spec.upper is not None:
                self.upper[slot.start : slot.stop] = slot.spec.upper
        self.weights = np.array([t.weight for t in self.terms], dtype=float)
        self.loss_evaluations = 0
        self.gradient_evaluations = 0
        # The slots by group, laid out once for bound(), which runs for every term and pass.
        by_group: dict[Parameters, list[tuple[str, int, int, tuple[int, ...]]]] = {}
        for slot in slots:
            by_group.setdefault(slot.group, []).append(
                (slot.spec.name, slot.start, slot.stop, slot.spec.shape)
            )
        self._layout = list(by_group.items())
        # Cases per term, known after the first evaluation; it decides forward or reverse mode.
        self.cases = [1] * len(self.terms)

    # values in and out of the groups

    def current(self) -> np.ndarray:
        x = np.empty(self.size)
        for slot in self.slots:
            x[slot.start : slot.stop] = np.ravel(slot.group.to_dict()[slot.spec.name])
        return x

    def assignments(self, x: np.ndarray) -> dict[Parameters, dict[str, Any]]:
        out: dict[Parameters, dict[str, Any]] = {}
        for slot in self.slots:
            chunk = x[slot.start : slot.stop]
            value = (
                float(chunk[0])
                if slot.spec.shape == ()
                else np.array(chunk).reshape(slot.spec.shape)
            )
            out.setdefault(slot.group, {})[slot.spec.name] = value
        return out

    def bound(self, x: Any, direct: bool = False) -> contextlib.AbstractContextManager[None]:
        """Substitute x (plain or traced) for the fitted parameters inside the block; with
        ``direct``, x is the value of the fit's one parameter (a backend's fast path)."""
        if direct:
            ((group, ((name, *_),)),) = self._layout
            return substituted({group: {name: x}})
        values: dict[Parameters, dict[str, Any]] = {}
        for group, entries in self._layout:
            mine = values[group] = {}
            for name, start, stop, shape in entries:
                # One index for a scalar: each traced slice or index costs a node and a
                # backward step per pass (benchmarks/overhead.py).
                mine[name] = x[start] if shape == () else self.backend.reshape(x[start:stop], shape)
        return substituted(values)

    # evaluation

    def scores(self, x: np.ndarray, terms: Sequence[Term] | None = None) -> list[np.ndarray]:
        """Per-case scores of every term at x, as 1-d arrays (plain evaluation, no tracing)."""
        self.loss_evaluations += 1
        out = []
        with self.bound(x):
            for term in self.terms if terms is None else terms:
                out.append(score_vector(term, term.score()))
        return out

    def loss(self, x: np.ndarray, terms: Sequence[Term] | None = None) -> float:
        chosen = self.terms if terms is None else terms
        per_term = self.scores(x, chosen)
        return weighted_loss((t.weight for t in chosen), per_term)

    # differentiation, through the backend

    def gradients(self, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per term: per-case scores and the gradient of their sum."""
        self.gradient_evaluations += 1
        return self.backend.gradients(self, x)

    def jacobians(self, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per term: per-case scores (n,) and their Jacobian (n, size)."""
        self.gradient_evaluations += 1
        return self.backend.jacobians(self, x)


class Backend(Protocol):
    """How a problem's scores are differentiated. Plain evaluation is the problem's own; a
    backend adds gradients and Jacobians per term (summed by the caller in term order, so
    the terms can be evaluated in any grouping, or elsewhere, with the same result)."""

    name: str

    def gradients(
        self, problem: Problem, x: np.ndarray
    ) -> tuple[list[np.ndarray], list[np.ndarray]]: ...

    def jacobians(
        self, problem: Problem, x: np.ndarray
    ) -> tuple[list[np.ndarray], list[np.ndarray]]: ...

    def grad(self, function: Callable[[Any], Any], x: np.ndarray) -> np.ndarray:
        """The gradient of a scalar function of the flat vector at x."""
        ...

    def reshape(self, value: Any, shape: tuple[int, ...]) -> Any:
        """A (possibly traced) array in another shape."""
        ...


def check(term: Term, value: Any, strict: bool) -> None:
    """Validate a score; unless ``strict``, let a real but non-finite score through, so that
    the optimisers step back from a point where the loss turned NaN or infinite."""
    raw = getval(value)
    if not strict and (type(raw) is float or type(raw) is np.float64):
        return  # a real scalar: valid, finite or not
    try:
        check_score(value, term.name)
    except ScoreError:
        raw = np.asarray(getval(value))
        if strict or raw.dtype.kind != "f" or raw.ndim > 1 or np.all(np.isfinite(raw)):
            raise


def score_vector(term: Term, value: Any, strict: bool = False) -> np.ndarray:
    check(term, value, strict)
    return np.atleast_1d(np.asarray(value, dtype=float))


def traced_vector(term: Term, value: Any) -> Any:
    """A traced score as a 1-d array of per-case scores (a scalar becomes one case)."""
    check(term, value, strict=False)
    if np.ndim(getval(value)) == 0:
        return anp.reshape(value, (1,))
    return value


def initial_reads(
    terms: Sequence[Term],
) -> tuple[list[np.ndarray], list[set[tuple[Parameters, str]]]]:
    """Each term's scores at the start, and the parameters each one reads."""
    values: list[np.ndarray] = []
    reads: list[set[tuple[Parameters, str]]] = []
    for term in terms:
        with record_reads() as seen:
            try:
                returned = term.score()
            except FitError:
                raise
            except Exception as exc:
                raise FitError(
                    f"soft test {term.name} raised {type(exc).__name__}: {exc}. Fix it (or "
                    "deselect it) before fitting."
                ) from exc
        values.append(score_vector(term, returned, strict=True))
        reads.append(set(seen))
    return values, reads
