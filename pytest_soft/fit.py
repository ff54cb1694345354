"""The fit engine: soft tests become a differentiable loss of the parameters, and an optimiser
tunes the parameters until the loss converges.

No pytest here. A :class:`Term` is anything that computes a score by reading parameters at call
time; :func:`fit` evaluates the terms with values substituted into the parameter groups,
differentiates them with autograd, and returns a :class:`FitResult`. The pytest plugin builds
terms from soft tests; a script or notebook can build them by hand.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import autograd.numpy as anp
import numpy as np
from autograd import make_jvp, make_vjp
from autograd.tracer import getval

from . import _screen
from .errors import FitError, ScoreError, SoftWarning
from .parameters import Parameters, ParamSpec, record_reads
from .scores import check_score

__all__ = [
    "METHODS",
    "FitResult",
    "NothingToFit",
    "ParamChange",
    "Progress",
    "Term",
    "TracingError",
    "fit",
    "improved_enough",
    "split_holdout",
]

_T = TypeVar("_T")

METHODS = ("auto", "lsq", "lbfgs", "adam", "sgd")

#: A fit result is written only when it lowers the loss by more than this share of the loss
#: before the fit, and by more than MIN_IMPROVEMENT_ABS; anything less is rounding noise.
MIN_IMPROVEMENT_REL = 1e-9
MIN_IMPROVEMENT_ABS = 1e-24

#: ``auto`` uses least squares only where each term's Jacobian takes at most this many passes.
MAX_JACOBIAN_PASSES = 64

DEFAULT_TOL = 1e-12
DEFAULT_MAX_ITER = 1000
DEFAULT_LR = {"adam": 0.01, "sgd": 0.01}


class NothingToFit(FitError):
    """The selection gives the fit nothing to do (no soft tests, or no parameters they read)."""


class TracingError(FitError):
    """The implementation cannot be differentiated by autograd as written."""


class _NegativeScore(FitError):
    """A score below 0, which least squares cannot take."""


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
    stop_reason: str
    converged: bool
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
    _assignments: dict[Parameters, dict[str, Any]] = field(default_factory=dict, repr=False)

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


# -- the problem: parameters flattened into one vector --------------------------------------


def _total(parts: Iterable[float]) -> float:
    """An exactly rounded sum, or inf/nan when the parts overflow a float (a diverging fit)."""
    parts = list(parts)
    try:
        return math.fsum(parts)
    except (OverflowError, ValueError):
        return sum(parts)


def _weighted_loss(weights: Iterable[float], values: Iterable[np.ndarray]) -> float:
    """Sum of weight x score over terms (each term's per-case scores summed)."""
    return _total(w * float(np.sum(v)) for w, v in zip(weights, values))


@dataclass(frozen=True)
class _Slot:
    group: Parameters
    spec: ParamSpec
    start: int
    stop: int


class _Problem:
    """The fitted parameters laid out in one flat vector, and the terms evaluated on it."""

    def __init__(self, terms: Sequence[Term], slots: list[_Slot]):
        self.terms = list(terms)
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

    def reverse_input(self, x: np.ndarray) -> Any:
        """What reverse passes differentiate with respect to: the flat vector or, when the fit
        has one parameter, that parameter's value itself, which spares every pass an index
        into the vector (a node and a backward step each; benchmarks/overhead.py)."""
        if len(self.slots) != 1:
            return x
        shape = self.slots[0].spec.shape
        return x[0] if shape == () else x.reshape(shape)

    @contextlib.contextmanager
    def bound(self, x: Any, direct: bool = False) -> Iterator[None]:
        """Substitute x (plain or traced) for the fitted parameters inside the block; with
        ``direct``, x is the one parameter's value (see reverse_input)."""
        layout = self._layout
        saved = []
        try:
            if direct:
                ((group, ((name, *_),)),) = layout
                layout = []
                state = group.__dict__
                saved.append((state, state["_overrides"]))
                state["_overrides"] = {name: x}
            for group, entries in layout:
                values = {}
                for name, start, stop, shape in entries:
                    # One index for a scalar: each traced slice or index costs a node and a
                    # backward step per pass (benchmarks/overhead.py).
                    values[name] = x[start] if shape == () else _reshape(x[start:stop], shape)
                state = group.__dict__
                saved.append((state, state["_overrides"]))
                state["_overrides"] = values
            yield
        finally:
            for state, previous in saved:
                state["_overrides"] = previous

    # evaluation

    def scores(self, x: np.ndarray, terms: Sequence[Term] | None = None) -> list[np.ndarray]:
        """Per-case scores of every term at x, as 1-d arrays (plain evaluation, no tracing)."""
        self.loss_evaluations += 1
        out = []
        with self.bound(x):
            for term in self.terms if terms is None else terms:
                out.append(_score_vector(term, term.score()))
        return out

    def loss(self, x: np.ndarray, terms: Sequence[Term] | None = None) -> float:
        chosen = self.terms if terms is None else terms
        per_term = self.scores(x, chosen)
        return _weighted_loss((t.weight for t in chosen), per_term)

    def _traced(
        self, term: Term, vector: bool = True, direct: bool = False
    ) -> Callable[[Any], Any]:
        """The term's score as a function of x: a 1-d array, or with ``vector=False`` the score
        as returned (a scalar stays a scalar, which saves a traced reshape per pass). With
        ``direct``, a function of reverse_input(x)."""

        def traced(xx: Any) -> Any:
            with self.bound(xx, direct):
                value = term.score()
                if vector:
                    return _traced_vector(term, value)
                _check(term, value, strict=False)
                return value

        return traced

    def _differentiate(self, term: Term, work: Callable[[], Any]) -> Any:
        try:
            with warnings.catch_warnings():
                # autograd warns when a score does not depend on the parameters; the fit
                # reports that itself, per parameter.
                warnings.simplefilter("ignore", UserWarning)
                return work()
        except FitError:
            raise
        except Exception as exc:
            raise TracingError(_tracing_message(term, exc)) from exc

    def jacobians(self, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per term: per-case scores (n,) and their Jacobian (n, size), from autograd: one
        reverse pass per case when a term has fewer cases than there are parameters, else one
        forward pass per parameter (never a reverse pass per case over a large batch)."""
        self.gradient_evaluations += 1
        values, jacs = [], []
        start, direct = self.reverse_input(x), len(self.slots) == 1
        for term, n in zip(self.terms, self.cases):

            def reverse(term: Term = term) -> tuple[Any, Any]:
                vjp, value = make_vjp(self._traced(term, direct=direct))(start)
                value = np.asarray(value, dtype=float)
                return value, np.stack([np.ravel(vjp(e)) for e in np.eye(value.shape[0])])

            def forward(term: Term = term) -> tuple[Any, Any]:
                jvp = make_jvp(self._traced(term))(x)
                outs = [jvp(e) for e in np.eye(self.size)]
                return np.asarray(outs[0][0], dtype=float), np.stack(
                    [np.asarray(o[1], dtype=float) for o in outs], axis=1
                )

            if n <= self.size:
                value, jac = self._differentiate(term, reverse)
            else:
                try:
                    value, jac = self._differentiate(term, forward)
                except TracingError as exc:
                    if not isinstance(exc.__cause__, NotImplementedError):
                        raise
                    value, jac = self._differentiate(term, reverse)  # no forward rule
            values.append(value)
            jacs.append(np.asarray(jac, dtype=float).reshape(value.shape[0], self.size))
        return values, jacs

    def gradients(self, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per term: per-case scores and the gradient of their sum (one reverse pass each)."""
        self.gradient_evaluations += 1
        values, grads = [], []
        start, direct = self.reverse_input(x), len(self.slots) == 1
        with warnings.catch_warnings():
            # autograd warns when a score does not depend on the parameters; the fit reports
            # that itself, per parameter.
            warnings.simplefilter("ignore", UserWarning)
            for term in self.terms:
                try:
                    traced = self._traced(term, vector=False, direct=direct)
                    vjp, value = make_vjp(traced)(start)
                    if type(value) is float or type(value) is np.float64:
                        # The common case, a scalar score: no array conversions.
                        values.append(np.array([value]))
                        grads.append(np.asarray(vjp(1.0), dtype=float).reshape(self.size))
                        continue
                    value = np.asarray(value, dtype=float)
                    grad = vjp(np.ones_like(value))
                except FitError:
                    raise
                except Exception as exc:
                    raise TracingError(_tracing_message(term, exc)) from exc
                values.append(np.atleast_1d(value))
                grads.append(np.asarray(grad, dtype=float).reshape(self.size))
        return values, grads


def _reshape(chunk: Any, shape: tuple[int, ...]) -> Any:
    return anp.reshape(chunk, shape)


def _check(term: Term, value: Any, strict: bool) -> None:
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


def _score_vector(term: Term, value: Any, strict: bool = False) -> np.ndarray:
    _check(term, value, strict)
    return np.atleast_1d(np.asarray(value, dtype=float))


def _traced_vector(term: Term, value: Any) -> Any:
    _check(term, value, strict=False)
    if np.ndim(getval(value)) == 0:
        return anp.reshape(value, (1,))
    return value


_HINTS = [
    (
        re.compile(r"(float|int)\(\) argument must be .*ArrayBox"),
        "it converts a parameter value with float() or int(); keep values as arrays "
        "(autograd.numpy functions accept them directly)",
    ),
    (
        re.compile(r"must be real number, not ArrayBox"),
        "it calls a function of the math module on a parameter value; use the autograd.numpy "
        "function instead (np.sin, np.exp, ...)",
    ),
    (
        re.compile(r"VJP of asarray"),
        "it calls np.asarray on a parameter value; use np.array(...) or leave the value as it is",
    ),
    (
        re.compile(r"setting an array element with a sequence"),
        "it assigns a parameter-dependent value into an array in place (a[i] = ...); build the "
        "array with np.stack, np.concatenate or np.where instead",
    ),
    (
        re.compile(r"'ArrayBox' object has no attribute '(\w+)'"),
        "it calls a method on a parameter value that autograd does not provide; call the "
        "autograd.numpy function instead (np.dot(a, b) for a.dot(b))",
    ),
]


def _user_frame(exc: BaseException) -> str:
    """The deepest traceback frame outside autograd, numpy and pytest-soft, as file:line."""
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        path = frame.filename.replace("\\", "/")
        if any(part in path for part in ("/autograd/", "/numpy/", "/pytest_soft/")):
            continue
        return f"{frame.filename}:{frame.lineno} ({frame.line})"
    return ""


def _tracing_message(term: Term, exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    hint = next((h for pattern, h in _HINTS if pattern.search(str(exc))), None)
    where = _user_frame(exc)
    lines = [
        f"soft test {term.name}: autograd cannot differentiate the implementation: {text}",
    ]
    if where:
        lines.append(f"  at {where}")
    if hint:
        lines.append(f"  Most likely {hint}.")
    lines.append(
        "  Write the implementation with autograd.numpy (import autograd.numpy as np): no "
        "float()/int() of parameter values, no math.* functions, no in-place assignment into "
        "arrays, np.dot(a, b) rather than a.dot(b)."
    )
    return "\n".join(lines)


# -- choosing what to fit ---------------------------------------------------------------------


def _initial_reads(
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
        values.append(_score_vector(term, returned, strict=True))
        reads.append(set(seen))
    return values, reads


def _matches(spec: ParamSpec, selector: str) -> bool:
    return selector in (spec.full_name, spec.group)


def _choose_slots(reads: set[tuple[Parameters, str]], only: Sequence[str] | None) -> list[_Slot]:
    candidates = sorted(
        ((g, g.specs[name]) for g, name in reads), key=lambda pair: pair[1].full_name
    )
    if only:
        unknown = [s for s in only if not any(_matches(spec, s) for _, spec in candidates)]
        if unknown:
            read = ", ".join(spec.full_name for _, spec in candidates) or "none"
            raise NothingToFit(
                f"--fit-params names {', '.join(unknown)}, which no selected soft test reads "
                f"(parameters they read: {read}). Use full names such as 'module.name', or a "
                "module name for its whole group."
            )
        candidates = [(g, spec) for g, spec in candidates if any(_matches(spec, s) for s in only)]
    return _layout(candidates)


def _layout(pairs: Sequence[tuple[Parameters, ParamSpec]]) -> list[_Slot]:
    slots, offset = [], 0
    for group, spec in pairs:
        slots.append(_Slot(group, spec, offset, offset + spec.size))
        offset += spec.size
    return slots


def _independent_blocks(
    reads: Sequence[set[tuple[Parameters, str]]], slots: Sequence[_Slot]
) -> tuple[list[tuple[list[int], list[_Slot]]], list[int]]:
    """Split the fit into blocks that share no parameter: (term indices, slots) per block, and
    the terms that read no fitted parameter (their scores cannot change)."""
    index = {(slot.group, slot.spec.name): i for i, slot in enumerate(slots)}
    parent = list(range(len(slots)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    term_slots: list[list[int]] = []
    for seen in reads:
        mine = sorted(index[key] for key in seen if key in index)
        for other in mine[1:]:
            parent[root(other)] = root(mine[0])
        term_slots.append(mine)
    blocks: dict[int, tuple[list[int], list[int]]] = {}
    for i in range(len(slots)):
        blocks.setdefault(root(i), ([], []))[1].append(i)
    constant = []
    for t, mine in enumerate(term_slots):
        if mine:
            blocks[root(mine[0])][0].append(t)
        else:
            constant.append(t)
    out = [
        (terms, _layout([(slots[i].group, slots[i].spec) for i in members]))
        for terms, members in blocks.values()
    ]
    return out, constant


# -- the optimisers ---------------------------------------------------------------------------


class _Stop(Exception):
    def __init__(self, reason: str):
        self.reason = reason


class _Run:
    """Bookkeeping shared by all optimisers: best point seen, budgets, progress."""

    def __init__(
        self,
        problem: _Problem,
        *,
        start: int,
        starts: int,
        max_iter: int,
        deadline: float,
        t0: float,
        progress: Callable[[Progress], None] | None,
    ):
        self.problem = problem
        self.start = start
        self.starts = starts
        self.max_iter = max_iter
        self.deadline = deadline
        self.t0 = t0
        self.progress = progress
        self.best_x: np.ndarray | None = None
        self.best_loss = math.inf
        self.iterations = 0
        self.history: list[float] = []
        self.nonfinite = 0

    def seen(self, x: np.ndarray, loss: float) -> None:
        if math.isfinite(loss) and loss < self.best_loss:
            self.best_loss = loss
            self.best_x = np.array(x, dtype=float)
        if time.monotonic() > self.deadline:
            raise _Stop("time budget")

    def iteration(self, loss: float, grad_norm: float) -> None:
        self.iterations += 1
        self.history.append(loss)
        if self.progress is not None:
            self.progress(
                Progress(
                    start=self.start,
                    starts=self.starts,
                    iteration=self.iterations,
                    loss=loss,
                    best_loss=self.best_loss,
                    grad_norm=grad_norm,
                    seconds=time.monotonic() - self.t0,
                )
            )
        if self.iterations >= self.max_iter:
            raise _Stop(f"iteration limit ({self.max_iter})")
        if time.monotonic() > self.deadline:
            raise _Stop("time budget")


def _loss_and_grad(problem: _Problem, x: np.ndarray) -> tuple[float, np.ndarray, list]:
    # One reverse pass per term, summed: measured faster than one trace of the whole suite
    # (autograd's backward pass over one large graph costs more than many small ones).
    values, grads = problem.gradients(x)
    loss = _weighted_loss(problem.weights, values)
    grad = np.zeros(problem.size)
    for w, g in zip(problem.weights, grads):
        grad += w * g
    return loss, grad, values


def _residuals(problem: _Problem, values: list[np.ndarray]) -> np.ndarray:
    parts = [np.sqrt(np.maximum(w * v, 0.0)) for w, v in zip(problem.weights, values)]
    return np.concatenate(parts) if parts else np.zeros(0)


def _check_non_negative(problem: _Problem, values: list[np.ndarray]) -> None:
    for term, v in zip(problem.terms, values):
        if np.any(v < 0):
            raise _NegativeScore(
                f"soft test {term.name} scored {float(np.min(v))!r}, below 0: the least-squares "
                "method needs scores that are 0 or more (a loss). Use --fit-method lbfgs, or "
                "return a non-negative score."
            )


def _run_lsq(
    run: _Run, x0: np.ndarray, tol: float, live: np.ndarray | None = None
) -> tuple[str, bool]:
    from scipy.optimize import least_squares

    problem = run.problem
    # scipy's trust-region step stalls on a Jacobian column that is exactly 0: parameters no
    # score depends on (``live`` False, which the fit warns about) stay where they start.
    if live is None or not live.any():
        live = np.ones(problem.size, dtype=bool)

    def full(z: np.ndarray) -> np.ndarray:
        x = np.array(x0, dtype=float)
        x[live] = z
        return x

    def fun(z: np.ndarray) -> np.ndarray:
        x = full(z)
        values = problem.scores(x)
        _check_non_negative(problem, values)
        r = _residuals(problem, values)
        loss = float(np.dot(r, r))
        run.seen(x, loss)
        if not np.all(np.isfinite(r)):
            run.nonfinite += 1
            # A huge (finite) residual makes the solver step back from here.
            return np.full_like(r, 1e150)
        return r

    def jac(z: np.ndarray) -> np.ndarray:
        values, jacs = problem.jacobians(full(z))
        rows = []
        for w, v, j in zip(problem.weights, values, jacs):
            r = np.sqrt(np.maximum(w * v, 0.0))
            # d sqrt(w s) = w ds / (2 sqrt(w s)); where a score is exactly 0 the square root
            # has no derivative, and the score's own gradient is 0 there too: the row is 0.
            scale = np.divide(w, 2.0 * r, out=np.zeros_like(r), where=r > 0)
            rows.append(j * scale[:, None])
        J = np.concatenate(rows) if rows else np.zeros((0, problem.size))
        if not np.all(np.isfinite(J)):
            J = np.nan_to_num(J, nan=0.0, posinf=0.0, neginf=0.0)
        r = _residuals(problem, values)
        run.iteration(float(np.dot(r, r)), float(np.linalg.norm(2.0 * J.T @ r)))
        return J[:, live]

    # least_squares requires a strictly feasible start only for trf's interior steps; it
    # nudges points on a bound itself.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = least_squares(
            fun,
            x0[live],
            jac=jac,
            bounds=(problem.lower[live], problem.upper[live]),
            method="trf",
            # --fit-tol bounds the relative step. The loss-change test (relative to the loss,
            # which stays large on noisy data) and the gradient test (absolute, so loose when
            # the loss is tiny) would stop sooner: with both at 1e-12, NIST ENSO ends with 5
            # correct digits and Lanczos3 with 6.4. Near a minimum the loss changes as the
            # square of the step, so they get tol squared (not below the machine epsilon).
            ftol=max(tol * tol, float(np.finfo(float).eps)),
            xtol=tol,
            gtol=max(tol * tol, float(np.finfo(float).eps)),
            x_scale="jac",
            max_nfev=max(run.max_iter * 10, 100),
        )
    reasons = {
        1: ("converged: gradient below --fit-tol", True),
        2: ("converged: loss changed by less than --fit-tol", True),
        3: ("converged: step below --fit-tol", True),
        4: ("converged: loss change and step below --fit-tol", True),
        0: ("evaluation limit", False),
    }
    return reasons.get(result.status, (f"stopped: {result.message}", False))


_blas_controller: list[Any] = []


def _one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """Limit BLAS to one thread through threadpoolctl (a dependency; without it, no limit).

    scipy's L-BFGS-B (C since scipy 1.15) with multi-threaded OpenBLAS runs many times slower
    when the objective also calls BLAS (scipy issues 22438 and 23191): a 10,401-parameter MLP
    fit took 2.7x longer idle and 12x under load on 2 cores (benchmarks/scale.py). The
    controller is made once: making one scans the loaded libraries, which costs milliseconds.
    """
    if not _blas_controller:
        try:
            from threadpoolctl import ThreadpoolController

            _blas_controller.append(ThreadpoolController())
        except Exception:  # not installed, or it cannot inspect this process
            _blas_controller.append(None)
    controller = _blas_controller[0]
    if controller is None:
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")


def _run_lbfgs(run: _Run, x0: np.ndarray, tol: float) -> tuple[str, bool]:
    from scipy.optimize import minimize

    problem = run.problem
    last: dict[str, Any] = {}

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        loss, grad, _ = _loss_and_grad(problem, x)
        run.seen(x, loss)
        if not (math.isfinite(loss) and np.all(np.isfinite(grad))):
            run.nonfinite += 1
            return 1e300, np.zeros_like(x)
        last["loss"], last["grad"] = loss, grad
        return loss, grad

    def callback(x: np.ndarray) -> None:
        run.iteration(last.get("loss", math.nan), float(np.linalg.norm(last.get("grad", 0.0))))

    bounds = list(
        zip(
            np.where(np.isinf(problem.lower), None, problem.lower),
            np.where(np.isinf(problem.upper), None, problem.upper),
        )
    )
    with _one_blas_thread():
        result = minimize(
            fun,
            x0,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            callback=callback,
            options={
                "maxiter": run.max_iter + 1,
                "ftol": tol,
                "gtol": tol,
                "maxfun": 20 * run.max_iter,
            },
        )
    message = str(result.message)
    if "REL_REDUCTION" in message.upper() or "relative reduction" in message.lower():
        return "converged: loss changed by less than --fit-tol", True
    if "PGTOL" in message.upper() or "projected gradient" in message.lower():
        return "converged: gradient below --fit-tol", True
    if result.success:
        return f"converged: {message}", True
    if run.nonfinite:
        return "stopped: the loss or its gradient became non-finite", False
    if "ABNORMAL" in message.upper():
        return "no progress: the line search found no lower loss", False
    return f"stopped: {message}", False


class _Minibatches:
    """Seeded minibatches of a problem's cases for Adam and SGD: each epoch visits every case
    once in a new random order; a batched term contributes the cases drawn from it."""

    def __init__(self, problem: _Problem, size: int, seed: int):
        self.problem = problem
        self.units = [
            (t, c)
            for t, (term, n) in enumerate(zip(problem.terms, problem.cases))
            for c in (range(n) if term.select is not None and n > 1 else [None])
        ]
        self.size = min(size, len(self.units))
        self.rng = np.random.default_rng(seed)
        self.order = np.empty(0, dtype=int)
        self.epoch_end = False

    def next(self) -> _Problem:
        if self.order.size == 0:
            self.order = self.rng.permutation(len(self.units))
        chosen, self.order = self.order[: self.size], self.order[self.size :]
        self.epoch_end = self.order.size == 0
        picked: dict[int, list[int]] = {}
        for unit in chosen:
            t, c = self.units[unit]
            picked.setdefault(t, []).append(-1 if c is None else c)
        terms = []
        for t, cases in picked.items():
            term = self.problem.terms[t]
            if term.select is not None and cases[0] >= 0:
                term = term.select(np.sort(np.array(cases)))
            terms.append(term)
        sub = _Problem(terms, self.problem.slots)
        sub.cases = [
            len(cases) if cases[0] >= 0 else self.problem.cases[t] for t, cases in picked.items()
        ]
        return sub

    @property
    def scale(self) -> float:
        """Minibatch sums times this estimate the whole suite's."""
        return len(self.units) / self.size


def _run_first_order(
    run: _Run,
    x0: np.ndarray,
    tol: float,
    method: str,
    lr: float,
    minibatches: _Minibatches | None = None,
    patience: int = 200,
) -> tuple[str, bool]:
    if minibatches is not None:
        return _run_minibatch(run, x0, tol, method, lr, minibatches)
    problem = run.problem
    x = np.clip(x0, problem.lower, problem.upper)
    state: dict[str, Any] = {}
    since_best = 0
    best_at_last_check = math.inf
    while True:
        loss, grad, _ = _loss_and_grad(problem, x)
        run.seen(x, loss)
        if not (math.isfinite(loss) and np.all(np.isfinite(grad))):
            run.nonfinite += 1
            if run.best_x is None or run.nonfinite > 20:
                return "stopped: the loss or its gradient became non-finite", False
            # Step back to the best point and take smaller steps from there.
            x, lr, state = run.best_x.copy(), lr * 0.5, {}
            continue
        gnorm = float(np.linalg.norm(grad))
        run.iteration(loss, gnorm)
        if gnorm <= tol:
            return "converged: gradient below --fit-tol", True
        # (The first check compares with inf: inf - tol * inf would be NaN, never passed.)
        margin = tol * max(abs(best_at_last_check), 1e-300)
        if run.best_loss < best_at_last_check - (margin if math.isfinite(margin) else 0.0):
            best_at_last_check = run.best_loss
            since_best = 0
        else:
            since_best += 1
            if since_best >= patience:
                return f"no progress: no lower loss in {patience} iterations", False
        x = np.clip(_step(method, x, grad, state, lr), problem.lower, problem.upper)


def _step(
    method: str, x: np.ndarray, grad: np.ndarray, state: dict[str, Any], lr: float
) -> np.ndarray:
    """One Adam or SGD step (state holds Adam's moments and step count)."""
    if method != "adam":
        return x - lr * grad
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    state["t"] = t = state.get("t", 0) + 1
    state["m"] = m = beta1 * state.get("m", 0.0) + (1 - beta1) * grad
    state["v"] = v = beta2 * state.get("v", 0.0) + (1 - beta2) * grad**2
    return x - lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)


def _run_minibatch(
    run: _Run,
    x0: np.ndarray,
    tol: float,
    method: str,
    lr: float,
    minibatches: _Minibatches,
    patience_epochs: int = 20,
) -> tuple[str, bool]:
    """Adam or SGD on seeded minibatches; the whole suite's loss is measured once an epoch,
    and that is what decides the best point and when progress has stopped."""
    problem = run.problem
    x = np.clip(x0, problem.lower, problem.upper)
    state: dict[str, Any] = {}
    best_epoch_loss = math.inf
    stale_epochs = 0
    run.seen(x, problem.loss(x))
    while True:
        batch = minibatches.next()
        loss, grad, _ = _loss_and_grad(batch, x)
        problem.gradient_evaluations += 1
        loss *= minibatches.scale
        grad = grad * minibatches.scale
        if not (math.isfinite(loss) and np.all(np.isfinite(grad))):
            run.nonfinite += 1
            if run.best_x is None or run.nonfinite > 20:
                return "stopped: the loss or its gradient became non-finite", False
            x, lr, state = run.best_x.copy(), lr * 0.5, {}
            continue
        run.iteration(loss, float(np.linalg.norm(grad)))
        x = np.clip(_step(method, x, grad, state, lr), problem.lower, problem.upper)
        if minibatches.epoch_end:
            epoch_loss = problem.loss(x)
            run.seen(x, epoch_loss)
            margin = tol * abs(best_epoch_loss) if math.isfinite(best_epoch_loss) else 0.0
            if epoch_loss < best_epoch_loss - margin:
                best_epoch_loss, stale_epochs = epoch_loss, 0
            else:
                stale_epochs += 1
                if stale_epochs >= patience_epochs:
                    return (
                        f"no progress: no lower loss in {patience_epochs} epochs of minibatches",
                        False,
                    )


# -- starting points and the gradient check -------------------------------------------------


def _draw_start(
    problem: _Problem, x0: np.ndarray, rng: np.random.Generator, used: np.ndarray
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


def _screen_starts(
    problem: _Problem,
    x0: np.ndarray,
    restarts: int,
    seed: int,
    used: np.ndarray,
    deadline: float,
    fit_warnings: list[str],
) -> _screen.Screen:
    """The restarts' starts, from a screen of the parameter box (see _screen); a warning names
    the parameters without bounds, which the screen can only sample near their initial value."""
    if not restarts:
        low, high, _ = _screen.sampling_box(problem.lower, problem.upper, x0)
        return _screen.Screen([], [], 0, low, high)
    saved_errors = np.seterr(over="ignore", invalid="ignore", divide="ignore")
    try:
        screen = _screen.screen(
            problem.loss,
            problem.lower,
            problem.upper,
            x0,
            restarts,
            seed,
            vary=used,
            deadline=deadline,
        )
    finally:
        np.seterr(**saved_errors)
    names = [
        s.spec.full_name
        for s in problem.slots
        if any(s.start <= i < s.stop for i in screen.unbounded)
    ]
    if names:
        shown = ", ".join(f"'{n}'" for n in names)
        message = (
            f"the restarts search within the bounds, and {shown} "
            f"{'has' if len(names) == 1 else 'have'} none on at least one side: they were "
            f"sampled within {_screen.UNBOUNDED_SPREAD:g} x max(|initial value|, 1) of the "
            "initial value there. Declare bounds (Param(value, bounds=(low, high))) to search "
            "the whole range where the minimum may be."
        )
        fit_warnings.append(message)
        warnings.warn(SoftWarning(message), stacklevel=4)
    return screen


def _gradient_check(problem: _Problem, x: np.ndarray, seed: int) -> list[str]:
    """Compare autograd's directional derivative with a central finite difference, per term;
    return the names of terms where they disagree (code that loses the gradient)."""
    if problem.size == 0:
        return []
    rng = np.random.default_rng(seed)
    d = rng.normal(size=problem.size)
    h = 1e-6 * max(1.0, float(np.linalg.norm(x)))
    # Stay within the bounds: from a point on (or next to) a bound, step inwards only and use
    # a second-order one-sided difference.
    at_lower = x - 2 * h <= problem.lower
    at_upper = x + 2 * h >= problem.upper
    d[at_lower] = np.abs(d[at_lower])
    d[at_upper] = -np.abs(d[at_upper])
    d[at_lower & at_upper] = 0.0
    if not np.any(d):
        return []
    d /= np.linalg.norm(d)
    one_sided = bool(np.any(at_lower | at_upper))
    values, grads = problem.gradients(x)
    plus = problem.scores(x + h * d)
    if one_sided:
        plus2 = problem.scores(x + 2 * h * d)
        differences = [
            (4 * np.sum(p) - np.sum(p2) - 3 * np.sum(v)) / (2 * h)
            for v, p, p2 in zip(values, plus, plus2)
        ]
    else:
        minus = problem.scores(x - h * d)
        differences = [(np.sum(p) - np.sum(m)) / (2 * h) for p, m in zip(plus, minus)]
    suspects = []
    for term, value, grad, difference, p in zip(problem.terms, values, grads, differences, plus):
        ad = float(grad @ d)
        fd = float(difference)
        if not (math.isfinite(ad) and math.isfinite(fd)):
            continue
        scale = max(abs(ad), abs(fd))
        # Rounding in the difference grows with the size of the scores it subtracts.
        magnitude = max(float(np.sum(np.abs(value))), float(np.sum(np.abs(p))))
        noise = 1e-7 * (magnitude + 1e-12) / h
        if abs(ad - fd) > 1e-3 * scale + noise:
            suspects.append(f"{term.name} (autograd {ad:.6g}, finite difference {fd:.6g})")
    return suspects


# -- the entry point --------------------------------------------------------------------------


def fit(
    terms: Sequence[Term],
    *,
    params: Sequence[str] | None = None,
    method: str = "auto",
    tol: float = DEFAULT_TOL,
    max_iter: int = DEFAULT_MAX_ITER,
    timeout: float | None = None,
    restarts: int = 0,
    seed: int = 0,
    lr: float | None = None,
    batch_size: int | None = None,
    holdout: Sequence[Term] = (),
    check_gradient: bool = True,
    progress: Callable[[Progress], None] | None = None,
) -> FitResult:
    """Tune the parameters the terms read so that the weighted sum of their scores is smallest.

    ``params`` restricts the fit to some parameters (full names ``module.name`` or module
    names). Returns a :class:`FitResult`; the parameter groups themselves are unchanged until
    :meth:`FitResult.apply`.
    """
    import scipy.optimize  # noqa: F401  (once, before the clock: the budget is the fit's own)

    if restarts:
        from scipy.stats import qmc  # noqa: F401  (the screen's sampler; its import takes ~1 s)

    t0 = time.monotonic()
    if method not in METHODS:
        raise FitError(f"unknown fit method {method!r}; choose one of {', '.join(METHODS)}.")
    if max_iter < 1:
        raise FitError(f"the iteration limit must be at least 1, got {max_iter}.")
    if not tol > 0:
        raise FitError(f"the tolerance must be positive, got {tol!r}.")
    if restarts < 0:
        raise FitError(f"the number of restarts must be 0 or more, got {restarts}.")
    terms = list(terms)
    if not terms:
        raise NothingToFit("no soft tests selected: there is nothing to fit.")

    values0, reads = _initial_reads(terms)
    if not any(reads):
        names = [name for t in terms for name in (t.case_names or [t.name])]
        shown = ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")
        raise NothingToFit(
            f"the {len(names)} selected soft test(s) ({shown}) read no declared parameter, so "
            "there is nothing to tune. Declare the implementation's constants with "
            "Parameters(...) and read them at call time (theta.name)."
        )
    slots = _choose_slots(set().union(*reads), params)
    blocks, constant = _independent_blocks(reads, slots)
    if len(blocks) == 1:
        # One block: every term goes in, so thresholds and reports see the whole suite.
        blocks, constant = [(list(range(len(terms))), blocks[0][1])], []
    if batch_size is not None and batch_size < 1:
        raise FitError(f"the minibatch size must be at least 1, got {batch_size}.")
    if batch_size is not None and method not in ("adam", "sgd"):
        raise FitError(
            f"minibatches (batch size {batch_size}) are for the adam and sgd methods; the "
            f"{method} method takes every soft test at each step. Choose adam or sgd, or drop "
            "the batch size."
        )
    settings = _Settings(
        method, tol, max_iter, restarts, seed, lr, check_gradient, progress, batch_size
    )
    deadline = t0 + timeout if timeout else math.inf
    outcomes = []
    for term_indices, block_slots in blocks:
        block_terms = [terms[i] for i in term_indices]
        block_values = [values0[i] for i in term_indices]
        outcomes.append(_fit_block(block_terms, block_values, block_slots, settings, t0, deadline))
        if time.monotonic() > deadline:
            break

    constant_loss = _weighted_loss(
        (terms[i].weight for i in constant), (values0[i] for i in constant)
    )
    loss0 = _weighted_loss((t.weight for t in terms), values0)
    done = len(outcomes)
    not_fitted = _total(_block_loss(blocks[k], terms, values0) for k in range(done, len(blocks)))
    loss_after = constant_loss + _total(o.loss_after for o in outcomes) + not_fitted
    history: list[float] = []
    for k, outcome in enumerate(outcomes):
        others = (
            constant_loss
            + _total(o.loss_after for o in outcomes[:k])
            + _total(_block_loss(blocks[j], terms, values0) for j in range(k + 1, len(blocks)))
        )
        history.extend(others + h for h in outcome.history)

    after_values = list(values0)
    for (term_indices, _), outcome in zip(blocks, outcomes):
        for i, v in zip(term_indices, outcome.after_values):
            after_values[i] = v
    assignments: dict[Parameters, dict[str, Any]] = {}
    changes: list[ParamChange] = []
    for outcome in outcomes:
        for group, values in outcome.assignments.items():
            assignments.setdefault(group, {}).update(values)
        changes.extend(outcome.changes)
    changes.sort(key=lambda c: c.full_name)
    fit_warnings = [w for o in outcomes for w in o.warnings]

    scores_before, scores_after = _by_name(terms, values0), _by_name(terms, after_values)
    holdout_before = holdout_after = None
    if holdout:
        whole = _Problem(holdout, slots)
        x0 = whole.current()
        x_after = x0.copy()
        for slot in slots:
            value = assignments.get(slot.group, {}).get(slot.spec.name)
            if value is not None:
                x_after[slot.start : slot.stop] = np.ravel(value)
        held_before, held_after = whole.scores(x0), whole.scores(x_after)
        holdout_before = _weighted_loss((t.weight for t in holdout), held_before)
        holdout_after = _weighted_loss((t.weight for t in holdout), held_after)
        scores_before.update(_by_name(holdout, held_before))
        scores_after.update(_by_name(holdout, held_after))

    if len(blocks) == 1:
        stop_reason = outcomes[0].stop_reason
    else:
        counts: dict[str, int] = {}
        for outcome in outcomes:
            counts[outcome.stop_reason] = counts.get(outcome.stop_reason, 0) + 1
        skipped = len(blocks) - done
        stop_reason = (
            f"{len(blocks)} independent parameter groups fitted one after another: "
            + "; ".join(f"{reason} ({n})" for reason, n in counts.items())
            + (f"; {skipped} not fitted: time budget" if skipped else "")
        )
    methods = sorted({o.method for o in outcomes})
    return FitResult(
        method=methods[0] if len(methods) == 1 else ", ".join(methods),
        terms=sum(len(t.case_names) if t.case_names is not None else 1 for t in terms),
        cases=sum(int(v.shape[0]) for v in values0),
        parameters=changes,
        scalars=sum(slot.spec.size for slot in slots),
        loss_before=loss0,
        loss_after=loss_after,
        iterations=sum(o.iterations for o in outcomes),
        loss_evaluations=sum(o.loss_evaluations for o in outcomes),
        gradient_evaluations=sum(o.gradient_evaluations for o in outcomes),
        seconds=time.monotonic() - t0,
        stop_reason=stop_reason,
        converged=done == len(blocks) and all(o.converged for o in outcomes),
        history=history,
        starts=1 + restarts,
        starts_run=max(o.starts_run for o in outcomes),
        starts_at_best=min(o.starts_at_best for o in outcomes),
        best_start=outcomes[0].best_start if len(outcomes) == 1 else 0,
        holdout_terms=sum(len(t.case_names) if t.case_names is not None else 1 for t in holdout),
        holdout_before=holdout_before,
        holdout_after=holdout_after,
        scores_before=scores_before,
        scores_after=scores_after,
        warnings=fit_warnings,
        blocks=len(blocks),
        screened=sum(o.screened for o in outcomes),
        minima=max(o.minima for o in outcomes),
        _assignments=assignments,
    )


def _block_loss(
    block: tuple[list[int], list[_Slot]], terms: Sequence[Term], values: Sequence[np.ndarray]
) -> float:
    return _weighted_loss((terms[i].weight for i in block[0]), (values[i] for i in block[0]))


@dataclass(frozen=True)
class _Settings:
    method: str
    tol: float
    max_iter: int
    restarts: int
    seed: int
    lr: float | None
    check_gradient: bool
    progress: Callable[[Progress], None] | None
    batch_size: int | None = None


@dataclass
class _BlockOutcome:
    method: str
    loss_after: float
    after_values: list[np.ndarray]
    assignments: dict[Parameters, dict[str, Any]]
    changes: list[ParamChange]
    iterations: int
    loss_evaluations: int
    gradient_evaluations: int
    stop_reason: str
    converged: bool
    history: list[float]
    starts_run: int
    starts_at_best: int
    best_start: int
    warnings: list[str]
    screened: int = 0
    minima: int = 1


def _fit_block(
    terms: list[Term],
    values0: list[np.ndarray],
    slots: list[_Slot],
    settings: _Settings,
    t0: float,
    deadline: float,
) -> _BlockOutcome:
    """Fit the parameters of one block (terms that share parameters with no other block)."""
    method, tol, max_iter, seed = settings.method, settings.tol, settings.max_iter, settings.seed
    problem = _Problem(terms, slots)
    problem.cases = [int(v.shape[0]) for v in values0]
    x0 = problem.current()
    before_assign = problem.assignments(x0)
    loss0 = _weighted_loss((t.weight for t in terms), values0)
    fit_warnings: list[str] = []

    if method == "auto":
        # Least squares needs the Jacobian: one pass per case or per parameter, whichever is
        # fewer, for each term. Where that is costly (a large batch and many parameters),
        # L-BFGS-B needs one reverse pass per term.
        non_negative = all(np.all(v >= 0) for v in values0)
        cheap = all(min(n, problem.size) <= MAX_JACOBIAN_PASSES for n in problem.cases)
        method_used = "lsq" if non_negative and cheap else "lbfgs"
    else:
        method_used = method
    if method_used == "lsq":
        _check_non_negative(problem, values0)

    # Which parameters does anything depend on? (A parameter read but without effect.)
    _, grads = problem.gradients(x0)
    column_used = np.zeros(problem.size, dtype=bool)
    for grad in grads:
        column_used |= grad != 0
    if not column_used.all():
        # A gradient of 0 can also mean the start is an optimum (a refit): look again a little
        # way off before calling a parameter unused.
        step = np.random.default_rng(seed).normal(size=problem.size)
        nearby = np.clip(
            x0 + 1e-3 * np.maximum(np.abs(x0), 1.0) * step, problem.lower, problem.upper
        )
        for grad in problem.gradients(nearby)[1]:
            column_used |= grad != 0
    for slot in slots:
        if not column_used[slot.start : slot.stop].any():
            message = (
                f"no selected soft test's score depends on parameter '{slot.spec.full_name}' "
                "(its gradient is 0 for every test at the start); the fit leaves it unchanged"
                " unless another parameter moves it into play."
            )
            fit_warnings.append(message)
            warnings.warn(SoftWarning(message), stacklevel=3)

    if settings.check_gradient:
        suspects = _gradient_check(problem, x0, seed)
        if suspects:
            shown = "; ".join(suspects[:3]) + (" ..." if len(suspects) > 3 else "")
            message = (
                f"autograd's gradient disagrees with a finite difference for "
                f"{len(suspects)} soft test(s): {shown}. Some code probably loses the gradient "
                "(an isinstance(x, np.ndarray) branch, or a value converted to a plain float); "
                "the fit may stall."
            )
            fit_warnings.append(message)
            warnings.warn(SoftWarning(message), stacklevel=3)

    lr = settings.lr if settings.lr is not None else DEFAULT_LR.get(method_used, 0.01)
    rng = np.random.default_rng(seed)
    total_starts = 1 + settings.restarts
    best_loss, best_x, best_start = loss0, x0.copy(), -1
    finals: list[float] = []
    history: list[float] = []
    iterations = 0
    stop_reason, converged = "", False
    starts_run = 0
    good_enough = _good_enough(problem, loss0)
    x_start = x_clipped = np.clip(x0, problem.lower, problem.upper)
    screen = _screen_starts(problem, x_clipped, 0, seed, column_used, deadline, fit_warnings)
    ends: list[np.ndarray] = []
    for start in range(total_starts):
        if start == 1:  # only once the initial value's fit leaves room to improve
            screen = _screen_starts(
                problem, x_clipped, total_starts - 1, seed, column_used, deadline, fit_warnings
            )
        if start > 0:
            screened = start - 1 < len(screen.starts)
            x_start = (
                screen.starts[start - 1] if screened else _draw_start(problem, x0, rng, column_used)
            )
        run = _Run(
            problem,
            start=start,
            starts=total_starts,
            max_iter=max_iter,
            deadline=deadline,
            t0=t0,
            progress=settings.progress,
        )
        starts_run += 1
        # Overflow on the way to a non-finite loss is counted and reported below, not warned.
        saved_errors = np.seterr(over="ignore", invalid="ignore", divide="ignore")
        try:
            if method_used == "lsq":
                try:
                    reason, ok = _run_lsq(run, x_start, tol, column_used)
                except _NegativeScore:
                    if method != "auto":
                        raise
                    # auto chose least squares because every score was 0 or more at the
                    # start; one went below 0, so L-BFGS-B (any score) goes on from the best.
                    method_used = "lbfgs"
                    x_best = run.best_x if run.best_x is not None else x_start
                    reason, ok = _run_lbfgs(run, x_best, tol)
            elif method_used == "lbfgs":
                reason, ok = _run_lbfgs(run, x_start, tol)
            else:
                minibatches = None
                if settings.batch_size:
                    minibatches = _Minibatches(problem, settings.batch_size, seed + start)
                reason, ok = _run_first_order(run, x_start, tol, method_used, lr, minibatches)
        except _Stop as stop:
            reason, ok = stop.reason, False
        finally:
            np.seterr(**saved_errors)
        if run.nonfinite and "non-finite" not in reason:
            reason += (
                f" (the loss was non-finite at {run.nonfinite} point(s); kept the best finite one)"
            )
        iterations += run.iterations
        history.extend(run.history)
        finals.append(run.best_loss)
        ends.append(run.best_x if run.best_x is not None else x_start)
        if run.best_x is not None and run.best_loss < best_loss:
            best_loss, best_x, best_start = run.best_loss, run.best_x, start
        if start == 0 or best_start == start:
            stop_reason, converged = reason, ok
        if reason == "time budget":
            stop_reason, converged = "time budget", False
            break
        if best_loss <= good_enough(best_x):
            if start < total_starts - 1:
                left = total_starts - 1 - start
                stop_reason += f"; the loss cannot get better, so {left} more start(s) skipped"
            break

    # The value put in is the best point seen; recompute its loss and scores plainly.
    after_values = problem.scores(best_x)
    loss_after = _weighted_loss((t.weight for t in terms), after_values)
    if not math.isfinite(loss_after) or loss_after > loss0:
        best_x, loss_after, after_values = x0, loss0, values0
    at_best = sum(
        1 for f in finals if f <= best_loss + max(1e-6 * abs(best_loss), MIN_IMPROVEMENT_ABS)
    )
    after_assign = problem.assignments(best_x)
    changes = [
        ParamChange(
            slot.spec.full_name,
            before_assign[slot.group][slot.spec.name],
            after_assign[slot.group][slot.spec.name],
        )
        for slot in slots
    ]
    return _BlockOutcome(
        method=method_used,
        loss_after=loss_after,
        after_values=list(after_values),
        assignments=after_assign,
        changes=changes,
        iterations=iterations,
        loss_evaluations=problem.loss_evaluations,
        gradient_evaluations=problem.gradient_evaluations,
        stop_reason=stop_reason,
        converged=converged,
        history=history,
        starts_run=starts_run,
        starts_at_best=at_best,
        best_start=max(best_start, 0),
        warnings=fit_warnings,
        screened=screen.evaluations,
        minima=_screen.distinct_minima(ends, finals, screen.low, screen.high),
    )


def _by_name(terms: Sequence[Term], values: Sequence[np.ndarray]) -> dict[str, float]:
    out: dict[str, float] = {}
    for term, v in zip(terms, values):
        out.update(term.per_case(v))
    return out


def _good_enough(problem: _Problem, loss0: float) -> Callable[[np.ndarray], float]:
    """The loss below which no start can do meaningfully better: rounding noise around 0, or
    (when every test has a threshold) the point where every threshold holds."""

    def limit(x: np.ndarray) -> float:
        if all(t.threshold is not None for t in problem.terms):
            scores = problem.scores(x)
            if all(t.within_threshold(s) for t, s in zip(problem.terms, scores)):
                return math.inf
        return MIN_IMPROVEMENT_ABS

    return limit
