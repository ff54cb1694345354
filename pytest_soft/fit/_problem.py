"""The problem: the fitted parameters laid out in one flat vector, and the terms evaluated on
it exactly (plain scores here; gradients and Jacobians through a differentiation backend).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

import autograd.numpy as anp
import numpy as np
from autograd.tracer import getval

from .._binding import substituted
from .._numeric import exact_sum
from ..errors import FitError, ScoreError, SoftError
from ..parameters import Parameters, record_reads
from ..scores import check_score
from ._layout import Slot
from ._model import Term


def weighted_loss(weights: Iterable[float], values: Iterable[np.ndarray]) -> float:
    """Sum of weight x score over terms (each term's per-case scores summed), exactly rounded
    (inf or nan when a diverging fit overflows)."""
    # np.add.reduce is what np.sum runs on an ndarray, without its dispatch (a third of this
    # function's time on one term); anything else (a JAX array) keeps np.sum's own dispatch.
    return exact_sum(
        [
            w * float(_add(v, axis=None) if type(v) is np.ndarray else np.sum(v))
            for w, v in zip(weights, values)
        ]
    )


_add = np.add.reduce


def default_backend() -> Backend:
    from ._autograd import AUTOGRAD

    return AUTOGRAD


# -- which backend differentiates which term --------------------------------------------------

#: The choices of --fit-backend: auto (JAX for soft tests whose score is a JAX array, autograd
#: for the rest), or one backend for every soft test.
BACKENDS = ("auto", "autograd", "jax")
INSTALL_JAX = "pip install 'pytest-soft[jax]'"


def is_jax_value(value: Any) -> bool:
    """Whether a score is a JAX array. Only code that imported jax can return one, so this
    never imports it."""
    array_type = _jax_array_type()
    return array_type is not None and isinstance(value, array_type)


def _jax_array_type() -> type | None:
    """jax.Array if jax is loaded (a module half imported or torn down, as pytester's
    in-process runs leave it, may lack it)."""
    array_type = getattr(sys.modules.get("jax"), "Array", None)
    return array_type if isinstance(array_type, type) else None


class FitBackends:
    """The backends of one fit: the choice, and the JAX backend, created at its first use (a fit
    without JAX code never imports jax) and kept for the whole fit, so that what it compiles
    serves every block, iteration, restart and check."""

    def __init__(self, choice: str = "auto"):
        if choice not in BACKENDS:
            raise FitError(f"unknown fit backend {choice!r}; choose one of {', '.join(BACKENDS)}.")
        self.choice = choice
        self.jax: Any = None
        self.float64 = False
        self.used: set[str] = set()

    def kind(self, term: Term) -> str:
        if term.remote is not None:
            return "remote"  # evaluated where it lives, by that process's own backends
        if self.choice == "jax":
            return "jax"
        if term.backend == "jax" and self.choice == "autograd":
            raise FitError(
                f"soft test {term.name} returns a JAX array, and autograd (--fit-backend "
                "autograd) cannot differentiate JAX code. Fit it with --fit-backend auto (JAX "
                "for the soft tests written with jax.numpy, autograd for the others) or jax."
            )
        return term.backend or "autograd"

    def get(self, kind: str) -> Backend:
        self.used.add(kind)
        if kind == "autograd":
            return default_backend()
        if kind == "remote":
            from ._remote import REMOTE

            return REMOTE
        if self.jax is None:
            self.jax = load_jax().JaxBackend()
        return self.jax


def load_jax() -> Any:
    """The JAX backend module (which imports jax), or a FitError saying how to install it."""
    try:
        from . import _jax
    except ImportError as exc:
        raise FitError(
            f"the JAX backend needs JAX, which is not installed ({exc}). Install the extra: "
            f"{INSTALL_JAX}"
        ) from exc
    return _jax


_FIT_BACKENDS: ContextVar[FitBackends | None] = ContextVar("pytest_soft_fit_backends", default=None)
#: The backends of evaluations outside a fit (a problem built by hand).
_OUTSIDE_A_FIT = FitBackends()


def current_backends() -> FitBackends:
    return _FIT_BACKENDS.get() or _OUTSIDE_A_FIT


@contextlib.contextmanager
def fit_backends(choice: str) -> Iterator[FitBackends]:
    """The backends of one fit, for the length of the block. Wherever JAX may differentiate (the
    choice is jax, or the code imported jax), JAX runs in float64 inside the block and returns
    to its own setting after it."""
    backends = FitBackends(choice)
    token = _FIT_BACKENDS.set(backends)
    try:
        if choice == "jax" or (choice == "auto" and _jax_array_type() is not None):
            with load_jax().float64():
                backends.float64 = True
                yield backends
        else:
            yield backends
    finally:
        _FIT_BACKENDS.reset(token)


_T = TypeVar("_T")


class Problem:
    """The fitted parameters laid out in one flat vector, and the terms evaluated on it."""

    def __init__(self, terms: Sequence[Term], slots: list[Slot], backend: Backend | None = None):
        self.terms = list(terms)
        self.slots = slots
        #: Where the terms use more than one backend: each backend's terms (by index) as a
        #: problem of their own, evaluated there and reassembled in term order.
        self._parts: list[tuple[list[int], Problem]] | None = None
        #: A backend's preparation of the terms (the JAX backend's compiled functions: each
        #: term's by its index, and the terms' in order by kind of function).
        self.prepared: dict[int | str, Any] = {}
        if backend is None:
            fits = current_backends()
            kinds = [fits.kind(t) for t in self.terms]
            #: The backend that differentiates each term, by name (for messages).
            self.backend_names = kinds
            order = list(dict.fromkeys(kinds))
            backend = fits.get(order[0]) if len(order) == 1 else default_backend()
            if len(order) > 1:
                self._parts = [
                    (
                        idx := [i for i, k in enumerate(kinds) if k == kind],
                        Problem([self.terms[i] for i in idx], slots, fits.get(kind)),
                    )
                    for kind in order
                ]
        else:
            self.backend_names = [backend.name] * len(self.terms)
        self.backend = backend
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
        self.cases = [1] * len(self.terms)

    @property
    def cases(self) -> list[int]:
        """Cases per term, known after the first evaluation; it decides forward or reverse mode."""
        return self._cases

    @cases.setter
    def cases(self, value: list[int]) -> None:
        self._cases = list(value)
        for idx, part in self._parts or ():
            part.cases = [self._cases[i] for i in idx]

    def _gather(self, work: Callable[[Problem], tuple[list[_T], ...]]) -> tuple[list[_T], ...]:
        """Run ``work`` on each backend's part and put its per-term results back in term order."""
        assert self._parts is not None
        out: tuple[list[Any], ...] | None = None
        for idx, part in self._parts:
            got = work(part)
            if out is None:
                out = tuple([None] * len(self.terms) for _ in got)
            for whole, piece in zip(out, got):
                for i, value in zip(idx, piece):
                    whole[i] = value
        assert out is not None
        return out

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
        if terms is None:
            if self._parts is not None:
                return self._gather(lambda part: (part.backend.scores(part, x),))[0]
            return self.backend.scores(self, x)
        return plain_scores(self, x, terms)

    def loss(self, x: np.ndarray, terms: Sequence[Term] | None = None) -> float:
        chosen = self.terms if terms is None else terms
        # The whole problem through its backend (each backend's own evaluation, one request
        # per worker for terms evaluated elsewhere); some terms called as they are.
        per_term = self.scores(x) if terms is None else self.scores(x, chosen)
        return weighted_loss((t.weight for t in chosen), per_term)

    # differentiation, through the backend

    def gradients(self, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per term: per-case scores and the gradient of their sum."""
        self.gradient_evaluations += 1
        if self._parts is not None:
            return self._gather(lambda part: part.backend.gradients(part, x))  # type: ignore[return-value]
        return self.backend.gradients(self, x)

    def jacobians(self, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per term: per-case scores (n,) and their Jacobian (n, size)."""
        self.gradient_evaluations += 1
        if self._parts is not None:
            return self._gather(lambda part: part.backend.jacobians(part, x))  # type: ignore[return-value]
        return self.backend.jacobians(self, x)


def plain_scores(
    problem: Problem, x: np.ndarray, terms: Sequence[Term] | None = None
) -> list[np.ndarray]:
    """Per-case scores of the terms at x, each called as it is (no tracing, no compiling)."""
    out = []
    with problem.bound(x):
        for term in problem.terms if terms is None else terms:
            try:
                value = term.score()
            except SoftError:
                raise
            except Exception as exc:
                raise FitError(evaluation_message(term, exc)) from exc
            out.append(score_vector(term, value))
    return out


def evaluation_message(term: Term, exc: BaseException) -> str:
    """A soft test's body raised while the fit evaluated it (away from the start, where it
    did not): name the test and the line."""
    from ._diagnostics import user_frame

    where = user_frame(exc)
    return (
        f"soft test {term.name} raised {type(exc).__name__}: {exc} while the fit evaluated it"
        + (f" (at {where})" if where else "")
        + ". Fix it (or deselect it), then fit again; bounds on the parameters keep a fit away "
        "from values the code cannot take."
    )


class Backend(Protocol):
    """How a problem's scores are differentiated. Plain evaluation is the problem's own; a
    backend adds gradients and Jacobians per term (summed by the caller in term order, so
    the terms can be evaluated in any grouping, or elsewhere, with the same result)."""

    name: str

    def scores(self, problem: Problem, x: np.ndarray) -> list[np.ndarray]:
        """Per term: per-case scores at x (plain_scores, or a compiled equivalent)."""
        ...

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


#: check()'s shortcut for a 1-d float score: at most this many cases, each within +-this
#: bound. Their sum, and every partial sum math.fsum forms on the way, then stays below
#: 2**20 * 2**1000, far from a float's overflow (2**1024), so check_score could only accept it.
_QUICK_CASES = 1 << 20
_QUICK_BOUND = 2.0**1000
_FLOAT = np.dtype(float)


def check(term: Term, value: Any, strict: bool) -> None:
    """Validate a score; unless ``strict``, let a real but non-finite score through, so that
    the optimisers step back from a point where the loss turned NaN or infinite."""
    raw = getval(value)
    if not strict:
        kind = type(raw)
        if kind is float or kind is np.float64:
            return  # a real scalar: valid, finite or not
        if (
            kind is np.ndarray
            and raw.ndim == 1
            and raw.dtype == _FLOAT
            and 0 < raw.size <= _QUICK_CASES
            # Two reductions instead of check_score's isfinite, list and exact sum; a NaN
            # fails both comparisons, so NaN, infinite and huge scores take the full check.
            and -_QUICK_BOUND <= np.minimum.reduce(raw)
            and np.maximum.reduce(raw) <= _QUICK_BOUND
        ):
            return  # what check_score accepts: finite per-case scores with a finite sum
    try:
        check_score(value, term.name)
    except ScoreError:
        raw = np.asarray(getval(value))
        if strict or raw.dtype.kind != "f" or raw.ndim > 1 or np.all(np.isfinite(raw)):
            raise


def score_vector(term: Term, value: Any, strict: bool = False) -> np.ndarray:
    check(term, value, strict)
    # The common shapes without the general conversion's calls (the same arrays result).
    kind = type(value)
    if kind is np.ndarray and value.ndim == 1 and value.dtype == _FLOAT:
        return value
    if kind is float or kind is np.float64:
        return np.array([value], dtype=float)
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
    if any(term.remote is not None for term in terms):
        from ._remote import fetch_start

        fetch_start([term for term in terms if term.remote is not None])
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
        if term.backend is None:
            term.backend = "jax" if is_jax_value(returned) else "autograd"
        current_backends().kind(term)  # a JAX score with --fit-backend autograd stops here
    return values, reads
