"""The JAX backend: soft tests written with jax.numpy, evaluated and differentiated by functions
compiled once per fit (scores; scores and gradient; Jacobian, reverse or forward
mode by shape) and reused across blocks, iterations, restarts and checks.

Importing this module imports jax: the problem loads it only when a fit meets JAX code or
``--fit-backend jax``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import FitError, TracingError
from ._diagnostics import user_frame
from ._model import Call, Term
from ._problem import Problem, score_vector

__all__ = ["JaxBackend", "float64", "jax_message"]


@contextlib.contextmanager
def float64() -> Iterator[None]:
    """JAX in float64 inside the block (parameters and scores as exact as autograd's), its own
    setting restored after."""
    before = bool(jax.config.read("jax_enable_x64"))
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", before)


def jax_message(term: Term, exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    lines = [
        f"soft test {term.name}: JAX cannot trace the implementation: {type(exc).__name__}: "
        f"{text[0] if text else ''}"
    ]
    where = user_frame(exc)
    if where:
        lines.append(f"  at {where}")
    lines.append(
        "  Write it with jax.numpy (import jax.numpy as jnp): no float()/int() or Python `if` "
        "on values that depend on the parameters or on a case's arguments (jnp.where), no numpy "
        "or math functions on them (jnp.sin, not np.sin), no assignment into arrays "
        "(a.at[i].set(v)). Code written with autograd.numpy is fitted with autograd: "
        "--fit-backend auto or autograd."
    )
    return "\n".join(lines)


def _traced_argument(value: Any) -> bool:
    """Arguments the compiled functions take as inputs (numbers and real arrays); the rest
    (ints, strings, objects) are fixed into the compiled function."""
    if isinstance(value, (bool, np.bool_, int, np.integer)):
        return False
    if isinstance(value, (float, np.floating)):
        return True
    if isinstance(value, (np.ndarray, jax.Array)):
        return np.dtype(value.dtype).kind in "iuf"
    return False


def _on_device(value: Any) -> Any:
    """An argument as the compiled functions take it at every call: an array moved to the
    device once (not copied again at each call); a scalar as it is (jit takes a Python or
    numpy scalar at little cost, and keeps a Python float weakly typed, as the test saw it)."""
    if isinstance(value, np.ndarray) and value.ndim:
        return jnp.asarray(value)
    return value


def _signature(value: Any) -> tuple[Any, ...]:
    """What jit compiles an argument for: its kind (a Python scalar is weakly typed), shape
    and dtype."""
    if isinstance(value, float):
        return ("float", ())
    return (type(value).__name__, np.shape(value), str(value.dtype))


def _fixed_key(value: Any) -> Any:
    if isinstance(value, (bool, int, str, bytes, type(None))):
        return (type(value).__name__, value)
    return ("id", id(value))


def _case_score(value: Any) -> Any:
    """One case's score inside a mapped batch: a scalar (an array is summed)."""
    value = jnp.asarray(value)
    return jnp.sum(value) if value.ndim else value


def _compiled_work(kind: str, vector: Callable[..., Any]) -> Callable[..., Any]:
    """What a kind of compiled function computes, all in one flat array so that a call costs
    one transfer from the device: "scores" the per-case scores (n,); "gradient" the scores,
    then the gradient of their sum (n + size,); "reverse" and "forward" the scores, then their
    Jacobian row by row (n + n * size,), by reverse or forward mode."""
    if kind == "scores":
        return vector

    def pair(x: Any, *arrays: Any) -> tuple[Any, Any]:
        v = vector(x, *arrays)
        return v, v

    def summed(x: Any, *arrays: Any) -> tuple[Any, Any]:
        v = vector(x, *arrays)
        return jnp.sum(v), v

    if kind == "gradient":
        value_and_grad = jax.value_and_grad(summed, has_aux=True)

        def gradient(x: Any, *arrays: Any) -> Any:
            (_, v), g = value_and_grad(x, *arrays)
            return jnp.concatenate([v, jnp.ravel(g)])

        return gradient
    jacobian = (jax.jacrev if kind == "reverse" else jax.jacfwd)(pair, has_aux=True)

    def rows(x: Any, *arrays: Any) -> Any:
        jac, v = jacobian(x, *arrays)
        return jnp.concatenate([v, jnp.ravel(jac)])

    return rows


@dataclass
class _Prepared:
    """One term of one problem, ready to evaluate: the key of its compiled functions, the
    arguments they take after the flat vector (in order), and the evaluation they compile."""

    key: tuple[Any, ...]
    arrays: tuple[Any, ...]
    vector: Callable[..., Any]
    keep: Any
    functions: dict[str, Any] = field(default_factory=dict)


class JaxBackend:
    name = "jax"

    def __init__(self) -> None:
        self.compiled = 0
        self.compile_seconds = 0.0
        self._cache: dict[tuple[Any, ...], tuple[Any, Any]] = {}

    def reshape(self, value: Any, shape: tuple[int, ...]) -> Any:
        return jnp.reshape(value, shape)

    def grad(self, function: Callable[[Any], Any], x: np.ndarray) -> np.ndarray:
        return np.asarray(jax.grad(function)(jnp.asarray(x, dtype=float)), dtype=float)

    # preparing and compiling

    def _prepare(self, problem: Problem, index: int) -> _Prepared:
        got = problem.prepared.get(index)
        if got is not None:
            return got
        term = problem.terms[index]
        layout = tuple(
            (id(s.group), s.spec.name, s.start, s.stop, s.spec.shape) for s in problem.slots
        )
        call = term.call
        if call is None:
            # A term built by hand: its score() compiled as it is.
            score = term.score
            key: tuple[Any, ...] = (layout, "score", id(score))
            arrays: tuple[Any, ...] = ()

            def plain(*arrays: Any) -> Any:
                return jnp.atleast_1d(jnp.asarray(score()))

            body: Callable[..., Any] = plain
            keep: Any = score
        else:
            key, arrays, body, keep = self._call_body(layout, call)

        def vector(x: Any, *arrays: Any) -> Any:
            with problem.bound(x):
                return body(*arrays)

        prepared = problem.prepared[index] = _Prepared(key, arrays, vector, keep)
        return prepared

    @staticmethod
    def _call_body(
        layout: tuple[Any, ...], call: Call
    ) -> tuple[tuple[Any, ...], tuple[Any, ...], Callable[..., Any], Any]:
        function, stacked = call.function, call.stacked
        names = tuple(n for n, v in call.kwargs.items() if n in stacked or _traced_argument(v))
        fixed = {n: v for n, v in call.kwargs.items() if n not in names}
        arrays = tuple(_on_device(call.kwargs[n]) for n in names)
        key = (
            layout,
            id(function),
            stacked,
            tuple(sorted((n, _fixed_key(v)) for n, v in fixed.items())),
            tuple((n, _signature(a)) for n, a in zip(names, arrays)),
        )

        def body(*values: Any) -> Any:
            traced = dict(zip(names, values))
            if not stacked:
                return jnp.atleast_1d(jnp.asarray(function(**fixed, **traced)))
            shared = {n: a for n, a in traced.items() if n not in stacked}
            mapped = {n: traced[n] for n in stacked}
            return jax.vmap(lambda one: _case_score(function(**fixed, **shared, **one)))(mapped)

        return key, arrays, body, (function, fixed)

    def _function(self, problem: Problem, index: int, kind: str, x: np.ndarray) -> Any:
        prepared = self._prepare(problem, index)
        compiled = prepared.functions.get(kind)
        if compiled is not None:
            return compiled
        cached = self._cache.get((kind, *prepared.key))
        if cached is None:
            # jax.jit's own dispatch (an ahead-of-time compiled function is called through a
            # slower path, ~100 µs a call); its first call traces and compiles, and is what
            # the compile time counts.
            executable = jax.jit(_compiled_work(kind, prepared.vector))
            started = time.perf_counter()
            try:
                jax.block_until_ready(executable(x, *prepared.arrays))
            except FitError:
                raise
            except Exception as exc:
                raise TracingError(jax_message(problem.terms[index], exc)) from exc
            self.compile_seconds += time.perf_counter() - started
            self.compiled += 1
            key = (kind, *prepared.key)
            cached = self._cache[key] = (executable, prepared.keep)
        executable = cached[0]
        arrays = prepared.arrays
        term = problem.terms[index]

        def run(x: np.ndarray) -> np.ndarray:
            # One call and one transfer; the flat array's pieces are views of it.
            try:
                return np.asarray(executable(x, *arrays), dtype=float)
            except FitError:
                raise
            except Exception as exc:
                raise TracingError(jax_message(term, exc)) from exc

        prepared.functions[kind] = run
        return run

    # the backend interface

    @staticmethod
    def _vector(term: Term, value: np.ndarray) -> np.ndarray:
        """A compiled term's per-case scores (non-finite let through, as for plain evaluation;
        the full check only for a shape that is wrong)."""
        return value if value.ndim == 1 and value.size else score_vector(term, value)

    def _runs(self, problem: Problem, kind: str, x: np.ndarray) -> list[Callable[..., Any]]:
        """The term's compiled functions of one kind, in term order (compiled at the first
        call, then kept on the problem)."""
        runs = problem.prepared.get(kind)
        if runs is None:
            runs = problem.prepared[kind] = [
                self._function(problem, i, kind, x) for i in range(len(problem.terms))
            ]
        return runs

    def scores(self, problem: Problem, x: np.ndarray) -> list[np.ndarray]:
        x = np.asarray(x, dtype=float)
        return [
            self._vector(term, run(x))
            for term, run in zip(problem.terms, self._runs(problem, "scores", x))
        ]

    def gradients(
        self, problem: Problem, x: np.ndarray
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        x = np.asarray(x, dtype=float)
        size = problem.size
        values, grads = [], []
        for term, run in zip(problem.terms, self._runs(problem, "gradient", x)):
            out = run(x)
            n = out.size - size
            values.append(self._vector(term, out[:n]))
            grads.append(out[n:])
        return values, grads

    def jacobians(
        self, problem: Problem, x: np.ndarray
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Reverse mode where a term has no more cases than there are parameters, else forward
        mode (as the autograd backend)."""
        x = np.asarray(x, dtype=float)
        size = problem.size
        values, jacs = [], []
        for i, (term, n) in enumerate(zip(problem.terms, problem.cases)):
            out = self._function(problem, i, "reverse" if n <= size else "forward", x)(x)
            cases = out.size // (1 + size)
            values.append(self._vector(term, out[:cases]))
            jacs.append(out[cases:].reshape(cases, size))
        return values, jacs
