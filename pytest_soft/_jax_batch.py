"""Fit terms for soft tests written with jax.numpy: a parametrized test's cases mapped with
``jax.vmap`` over the arguments that differ between them (stacked), the others passed once.

A mapped batch evaluates each case on its own, so it needs no check against the cases' own
calls (unlike the elementwise batches of :mod:`pytest_soft.batch`). Where an argument cannot be
stacked, or the mapped call fails, the cases are fitted one by one, each through the same
compiled function. Nothing here imports jax until a batch is evaluated.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import SoftError
from .fit import Term
from .fit._model import Call
from .fit._problem import is_jax_value

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

    def term_for(indices: np.ndarray | None) -> Term:
        chosen = cases if indices is None else [cases[i] for i in indices]
        kwargs = dict(stacked)
        if indices is not None:
            for name in varying:
                kwargs[name] = stacked[name][indices]
        call = Call(first.function, kwargs, stacked=varying)
        return Term(
            first.name.split("[", 1)[0],
            lambda: mapped_call(call),
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
        got = np.asarray(term.score(), dtype=float)
    except SoftError:
        raise
    except Exception as exc:
        text = str(exc).strip().splitlines()
        return (
            None,
            f"jax.vmap over the cases raised {type(exc).__name__}: {text[0] if text else ''}",
        )
    if got.shape != (len(cases),):
        return None, f"jax.vmap over the cases returned shape {got.shape}, not one score per case"
    return term, ""


def mapped_call(call: Call) -> Any:
    """The batch's per-case scores, evaluated as they are (mapped, not compiled)."""
    import jax
    import jax.numpy as jnp

    fixed = {n: v for n, v in call.kwargs.items() if n not in call.stacked}
    mapped = {n: call.kwargs[n] for n in call.stacked}

    def one(arguments: dict[str, Any]) -> Any:
        value = jnp.asarray(call.function(**fixed, **arguments))
        return jnp.sum(value) if value.ndim else value

    return jax.vmap(one)(mapped)
