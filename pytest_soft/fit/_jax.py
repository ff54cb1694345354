"""The JAX backend: soft tests written with jax.numpy, evaluated and differentiated by functions
compiled once per fit (scores; scores and gradient; Jacobian, reverse or forward
mode by shape) and reused across blocks, iterations, restarts and checks.

Importing this module imports jax: the problem loads it only when a fit meets JAX code or
``--fit-backend jax``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
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


def _fixed_key(value: Any) -> Any:
    if isinstance(value, (bool, int, str, bytes, type(None))):
        return (type(value).__name__, value)
    return ("id", id(value))


def _case_score(value: Any) -> Any:
    """One case's score inside a mapped batch: a scalar (an array is summed)."""
    value = jnp.asarray(value)
    return jnp.sum(value) if value.ndim else value


@dataclass
class _Prepared:
    """One term of one problem, ready to evaluate: the key of its compiled functions, the
    arrays they take, and the evaluation they compile."""

    key: tuple[Any, ...]
    arrays: dict[str, Any]
    vector: Callable[[Any, dict[str, Any]], Any]
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
            arrays: dict[str, Any] = {}

            def plain(arrays: Mapping[str, Any]) -> Any:
                return jnp.atleast_1d(jnp.asarray(score()))

            body: Callable[[Mapping[str, Any]], Any] = plain
            keep: Any = score
        else:
            key, arrays, body, keep = self._call_body(layout, call)

        def vector(x: Any, arrays: dict[str, Any]) -> Any:
            with problem.bound(x):
                return body(arrays)

        prepared = problem.prepared[index] = _Prepared(key, arrays, vector, keep)
        return prepared

    @staticmethod
    def _call_body(
        layout: tuple[Any, ...], call: Call
    ) -> tuple[tuple[Any, ...], dict[str, Any], Callable[[Mapping[str, Any]], Any], Any]:
        function, stacked = call.function, call.stacked
        traced = {n: v for n, v in call.kwargs.items() if n in stacked or _traced_argument(v)}
        fixed = {n: v for n, v in call.kwargs.items() if n not in traced}
        arrays = {n: jnp.asarray(v) for n, v in traced.items()}
        key = (
            layout,
            id(function),
            stacked,
            tuple(sorted((n, _fixed_key(v)) for n, v in fixed.items())),
            tuple(sorted((n, a.shape, str(a.dtype)) for n, a in arrays.items())),
        )

        def body(arrays: Mapping[str, Any]) -> Any:
            if not stacked:
                return jnp.atleast_1d(jnp.asarray(function(**fixed, **arrays)))
            shared = {n: a for n, a in arrays.items() if n not in stacked}
            mapped = {n: arrays[n] for n in stacked}
            return jax.vmap(lambda one: _case_score(function(**fixed, **shared, **one)))(mapped)

        return key, arrays, body, (function, fixed)

    def _function(self, problem: Problem, index: int, kind: str, x: np.ndarray) -> Any:
        prepared = self._prepare(problem, index)
        compiled = prepared.functions.get(kind)
        if compiled is not None:
            return compiled, prepared
        cached = self._cache.get((kind, *prepared.key))
        if cached is None:
            vector = prepared.vector

            def pair(xx: Any, arrays: dict[str, Any]) -> tuple[Any, Any]:
                v = vector(xx, arrays)
                return v, v

            def summed(xx: Any, arrays: dict[str, Any]) -> tuple[Any, Any]:
                v = vector(xx, arrays)
                return jnp.sum(v), v

            work = {
                "scores": vector,
                "gradient": jax.value_and_grad(summed, has_aux=True),
                "reverse": jax.jacrev(pair, has_aux=True),
                "forward": jax.jacfwd(pair, has_aux=True),
            }[kind]
            # jax.jit's own dispatch (an ahead-of-time compiled function is called through a
            # slower path, ~100 µs a call); its first call traces and compiles, and is what
            # the compile time counts.
            executable = jax.jit(work)
            started = time.perf_counter()
            try:
                jax.block_until_ready(executable(x, prepared.arrays))
            except FitError:
                raise
            except Exception as exc:
                raise TracingError(jax_message(problem.terms[index], exc)) from exc
            self.compile_seconds += time.perf_counter() - started
            self.compiled += 1
            key = (kind, *prepared.key)
            cached = self._cache[key] = (executable, prepared.keep)
        prepared.functions[kind] = cached[0]
        return cached[0], prepared

    def _run(self, problem: Problem, index: int, kind: str, x: np.ndarray) -> Any:
        function, prepared = self._function(problem, index, kind, x)
        try:
            return function(x, prepared.arrays)
        except FitError:
            raise
        except Exception as exc:
            raise TracingError(jax_message(problem.terms[index], exc)) from exc

    # the backend interface

    @staticmethod
    def _vector(term: Term, value: Any) -> np.ndarray:
        """A compiled term's per-case scores as a float array (non-finite let through, as for
        plain evaluation; the full check only for a shape that is wrong)."""
        out = np.asarray(value, dtype=float)
        return out if out.ndim == 1 and out.size else score_vector(term, out)

    def scores(self, problem: Problem, x: np.ndarray) -> list[np.ndarray]:
        x = np.asarray(x, dtype=float)
        return [
            self._vector(term, self._run(problem, i, "scores", x))
            for i, term in enumerate(problem.terms)
        ]

    def gradients(
        self, problem: Problem, x: np.ndarray
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        x = np.asarray(x, dtype=float)
        values, grads = [], []
        for i, term in enumerate(problem.terms):
            (_, value), grad = self._run(problem, i, "gradient", x)
            values.append(self._vector(term, value))
            grads.append(np.asarray(grad, dtype=float).reshape(problem.size))
        return values, grads

    def jacobians(
        self, problem: Problem, x: np.ndarray
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Reverse mode where a term has no more cases than there are parameters, else forward
        mode (as the autograd backend)."""
        x = np.asarray(x, dtype=float)
        values, jacs = [], []
        for i, (term, n) in enumerate(zip(problem.terms, problem.cases)):
            jac, value = self._run(problem, i, "reverse" if n <= problem.size else "forward", x)
            value = self._vector(term, value)
            values.append(value)
            jacs.append(np.asarray(jac, dtype=float).reshape(value.shape[0], problem.size))
        return values, jacs
