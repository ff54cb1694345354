"""The autograd backend: gradients and Jacobians of the terms' scores with autograd, reverse
mode or forward mode by shape, with errors turned into a message that names the test and line.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import autograd.numpy as anp
import numpy as np
from autograd import make_jvp, make_vjp

from ..errors import FitError, TracingError
from ._diagnostics import tracing_message
from ._model import Term
from ._problem import Problem, check, evaluation_message, plain_scores, traced_vector

__all__ = ["AUTOGRAD", "AutogradBackend"]


class AutogradBackend:
    name = "autograd"

    def reshape(self, value: Any, shape: tuple[int, ...]) -> Any:
        return anp.reshape(value, shape)

    def scores(self, problem: Problem, x: np.ndarray) -> list[np.ndarray]:
        return plain_scores(problem, x)

    def grad(self, function: Callable[[Any], Any], x: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # a function that ignores x
            return np.asarray(make_vjp(function)(x)[0](1.0), dtype=float)

    @staticmethod
    def _reverse_input(problem: Problem, x: np.ndarray) -> Any:
        """What reverse passes differentiate with respect to: the flat vector or, when the fit
        has one parameter, that parameter's value itself, which spares every pass an index
        into the vector (a node and a backward step each; benchmarks/overhead.py)."""
        if len(problem.slots) != 1:
            return x
        shape = problem.slots[0].spec.shape
        return x[0] if shape == () else x.reshape(shape)

    @staticmethod
    def _traced(
        problem: Problem, term: Term, vector: bool = True, direct: bool = False
    ) -> Callable[[Any], Any]:
        """The term's score as a function of x: a 1-d array, or with ``vector=False`` the score
        as returned (a scalar stays a scalar, which saves a traced reshape per pass). With
        ``direct``, a function of the one parameter's value (see _reverse_input)."""

        def traced(xx: Any) -> Any:
            with problem.bound(xx, direct):
                value = term.score()
                if vector:
                    return traced_vector(term, value)
                check(term, value, strict=False)
                return value

        return traced

    @staticmethod
    def _differentiate(problem: Problem, x: np.ndarray, term: Term, work: Callable[[], Any]) -> Any:
        try:
            with warnings.catch_warnings():
                # autograd warns when a score does not depend on the parameters; the fit
                # reports that itself, per parameter.
                warnings.simplefilter("ignore", UserWarning)
                return work()
        except FitError:
            raise
        except Exception as exc:
            raise failure(problem, x, term, exc) from exc

    def jacobians(
        self, problem: Problem, x: np.ndarray
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per term: per-case scores (n,) and their Jacobian (n, size): one reverse pass per
        case when a term has fewer cases than there are parameters, else one forward pass per
        parameter (never a reverse pass per case over a large batch)."""
        values, jacs = [], []
        size = problem.size
        start, direct = self._reverse_input(problem, x), len(problem.slots) == 1
        for term, n in zip(problem.terms, problem.cases):

            def reverse(term: Term = term) -> tuple[Any, Any]:
                vjp, value = make_vjp(self._traced(problem, term, direct=direct))(start)
                value = np.asarray(value, dtype=float)
                return value, np.stack([np.ravel(vjp(e)) for e in np.eye(value.shape[0])])

            def forward(term: Term = term) -> tuple[Any, Any]:
                # With one parameter, along that parameter itself (see _reverse_input).
                jvp = make_jvp(self._traced(problem, term, direct=direct))(start)
                shape = np.shape(start)
                outs = [jvp(e.reshape(shape) if shape else float(e[0])) for e in np.eye(size)]
                return np.asarray(outs[0][0], dtype=float), np.stack(
                    [np.asarray(o[1], dtype=float) for o in outs], axis=1
                )

            if n <= size:
                value, jac = self._differentiate(problem, x, term, reverse)
            else:
                try:
                    value, jac = self._differentiate(problem, x, term, forward)
                except TracingError as exc:
                    if not isinstance(exc.__cause__, NotImplementedError):
                        raise
                    value, jac = self._differentiate(problem, x, term, reverse)  # no forward rule
            values.append(value)
            jacs.append(np.asarray(jac, dtype=float).reshape(value.shape[0], size))
        return values, jacs

    def gradients(
        self, problem: Problem, x: np.ndarray
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per term: per-case scores and the gradient of their sum (one reverse pass each)."""
        values, grads = [], []
        size = problem.size
        start, direct = self._reverse_input(problem, x), len(problem.slots) == 1
        with warnings.catch_warnings():
            # autograd warns when a score does not depend on the parameters; the fit reports
            # that itself, per parameter.
            warnings.simplefilter("ignore", UserWarning)
            for term in problem.terms:
                try:
                    traced = self._traced(problem, term, vector=False, direct=direct)
                    vjp, value = make_vjp(traced)(start)
                    if type(value) is float or type(value) is np.float64:
                        # The common case, a scalar score: no array conversions.
                        values.append(np.array([value]))
                        grads.append(np.asarray(vjp(1.0), dtype=float).reshape(size))
                        continue
                    value = np.asarray(value, dtype=float)
                    grad = vjp(np.ones_like(value))
                except FitError:
                    raise
                except Exception as exc:
                    raise failure(problem, x, term, exc) from exc
                values.append(np.atleast_1d(value))
                grads.append(np.asarray(grad, dtype=float).reshape(size))
        return values, grads


def failure(problem: Problem, x: np.ndarray, term: Term, exc: Exception) -> FitError:
    """What went wrong while autograd differentiated a term at x: its body raises there even
    when called as it is (say so, naming the line), or autograd cannot trace it."""
    try:
        with problem.bound(x):
            term.score()
    except Exception as own:
        return FitError(evaluation_message(term, own))
    return TracingError(tracing_message(term, exc))


AUTOGRAD = AutogradBackend()
