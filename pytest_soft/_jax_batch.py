"""Fit terms for soft tests written with jax.numpy: a parametrized test's cases mapped with
``jax.vmap`` over the arguments that differ between them (stacked), the others passed once.

A mapped batch evaluates each case on its own, so it needs no check against the cases' own
calls (unlike the elementwise batches of :mod:`pytest_soft.batch`). Where an argument cannot be
stacked, or the mapped call fails, the cases are fitted one by one, each through the same
compiled function. Nothing here imports jax until a batch is evaluated.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._binding import substituted
from .errors import SoftError
from .fit import Term
from .fit._model import Call
from .fit._problem import is_jax_value
from .parameters import Parameters, record_reads

if TYPE_CHECKING:
    from .batch import Case

__all__ = ["jax_terms", "returns_jax"]


def returns_jax(case: Case) -> bool:
    """Whether the soft test's score is a JAX array (only code that imported jax can return
    one, so without jax loaded the body is not called)."""
    if "jax" not in sys.modules:
        return False
    try:
        return is_jax_value(case.call())
    except SoftError:
        raise
    except Exception:
        return False  # the fit reports it, with the test's name


def case_term(case: Case) -> Term:
    """One case, compiled on its own (shared by every case with the same argument shapes)."""
    return Term(
        case.name,
        case.call,
        case.weight,
        case.threshold,
        backend="jax",
        call=Call(case.function, dict(case.kwargs)),
    )


def jax_terms(group: Sequence[Case]) -> tuple[list[Term], str]:
    """The group's cases as one mapped batch, or one term per case and why."""
    cases = list(group)
    if len(cases) == 1:
        return [case_term(cases[0])], ""
    term, why = _mapped(cases)
    if term is not None:
        return [term], ""
    return [case_term(c) for c in cases], why


def _stack(name: str, values: list[Any]) -> tuple[np.ndarray | None, str]:
    arrays = []
    for v in values:
        if isinstance(v, (str, bytes, bool, np.bool_)) or v is None:
            return None, f"argument '{name}' is not numeric"
        try:
            a = np.asarray(v)
        except (TypeError, ValueError):
            return None, f"argument '{name}' cannot be stacked into an array"
        if a.dtype.kind not in "iuf":
            return None, f"argument '{name}' is not numeric"
        arrays.append(a)
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        shown = ", ".join(str(s) for s in sorted(shapes)[:3])
        return None, f"argument '{name}' has different shapes across the cases ({shown})"
    return np.stack(arrays), ""


def _mapped(cases: list[Case]) -> tuple[Term | None, str]:
    first = cases[0]
    if any(c.function is not first.function for c in cases):
        return None, "the cases call different functions"
    if any(c.weight != first.weight or c.threshold != first.threshold for c in cases):
        return None, "the cases have different weights or thresholds"
    names = list(first.kwargs)
    if any(list(c.kwargs) != names for c in cases):
        return None, "the cases take different arguments"
    varying = tuple(
        name for name in names if any(c.kwargs[name] is not first.kwargs[name] for c in cases)
    )
    if not varying:
        return None, "the cases do not differ in any argument"
    stacked: dict[str, Any] = dict(first.kwargs)
    for name in varying:
        array, why = _stack(name, [c.kwargs[name] for c in cases])
        if array is None:
            return None, why
        stacked[name] = array

    # One plain evaluation for the batch and its minibatches: they differ only in the
    # stacked arrays, which it takes as arguments.
    fixed = {n: v for n, v in stacked.items() if n not in varying}
    evaluate = MappedScores(first.function, fixed)

    def term_for(indices: np.ndarray | None) -> Term:
        chosen = cases if indices is None else [cases[i] for i in indices]
        kwargs = dict(stacked)
        if indices is not None:
            for name in varying:
                kwargs[name] = stacked[name][indices]
        call = Call(first.function, kwargs, stacked=varying)
        mapped = {n: kwargs[n] for n in varying}
        return Term(
            first.name.split("[", 1)[0],
            lambda: evaluate(mapped),
            first.weight,
            first.threshold,
            case_names=[c.name for c in chosen],
            select=term_for if indices is None else None,
            exact=[case_term(c) for c in chosen],
            backend="jax",
            call=call,
        )

    term = term_for(None)
    try:
        # Traced, not computed: the mapped call's shape and whether it traces at all.
        got = evaluate.shape({n: stacked[n] for n in varying})
    except SoftError:
        raise
    except Exception as exc:
        text = str(exc).strip().splitlines()
        return (
            None,
            f"jax.vmap over the cases raised {type(exc).__name__}: {text[0] if text else ''}",
        )
    if got != (len(cases),):
        return None, f"jax.vmap over the cases returned shape {got}, not one score per case"
    return term, ""


class MappedScores:
    """A mapped batch's per-case scores at the current parameter values (the batch's plain
    evaluation: its start scores, and the parameters it reads), in one compiled call.

    Evaluated as they are, op by op, jax.vmap's batched operations each compile on their first
    run (about half a second for the sine example, more than compiling the whole call once).
    So the parameters the body reads are found once by tracing it; each call then reads their
    current values (as the body would: the reads are recorded and a substitution applies) and
    passes them, with the stacked arguments, to the call compiled once. Code that only runs
    with concrete values (a Python ``if`` on a parameter's value) is evaluated as it is.
    """

    def __init__(self, function: Callable[..., Any], fixed: dict[str, Any]):
        self.function = function
        self.fixed = fixed
        self._reads: list[tuple[Parameters, str]] | None = None
        self._compiled: Any = None
        self._as_it_is = False

    def _mapped(self, mapped: dict[str, Any]) -> Any:
        import jax
        import jax.numpy as jnp

        function, fixed = self.function, self.fixed

        def one(arguments: dict[str, Any]) -> Any:
            value = jnp.asarray(function(**fixed, **arguments))
            return jnp.sum(value) if value.ndim else value

        return jax.vmap(one)(mapped)

    def shape(self, mapped: dict[str, Any]) -> tuple[int, ...]:
        """The shape of the scores, from a trace (nothing computed)."""
        import jax

        return tuple(jax.eval_shape(self._mapped, mapped).shape)

    def _compile(self, mapped: dict[str, Any]) -> None:
        import jax

        try:
            with record_reads() as seen:
                jax.eval_shape(self._mapped, mapped)
        except SoftError:
            raise
        except Exception:
            self._as_it_is = True  # it needs concrete values: evaluated as it is
            return
        reads = self._reads = sorted(seen, key=lambda r: (r[0].module, r[1]))

        def compiled(values: list[Any], mapped: dict[str, Any]) -> Any:
            by_group: dict[Parameters, dict[str, Any]] = {}
            for (group, name), value in zip(reads, values):
                by_group.setdefault(group, {})[name] = value
            with substituted(by_group):
                return self._mapped(mapped)

        try:
            # Traced as jit will: with the parameters traced too.
            jax.eval_shape(compiled, [group[name] for group, name in reads], mapped)
        except SoftError:
            raise
        except Exception:
            self._as_it_is = True
            return
        self._compiled = jax.jit(compiled)

    def __call__(self, mapped: dict[str, Any]) -> Any:
        if self._compiled is None and not self._as_it_is:
            self._compile(mapped)
        if self._as_it_is:
            return self._mapped(mapped)
        assert self._reads is not None
        return self._compiled([group[name] for group, name in self._reads], mapped)
