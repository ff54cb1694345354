"""Fit terms from recorded soft tests, and batched evaluation: the cases of a parametrized soft
test evaluated in one call.

A soft test written the natural way (one parametrized case per data point) costs one autograd
trace per case. When the test body is elementwise, calling it once with its arguments stacked
into arrays gives every case's score at the cost of one trace. This module builds fit terms
from recorded cases: a batch where the stacked call reproduces the recorded scores, case by case
otherwise (with the reason). A batch is only a candidate: it carries its cases' own terms, and
the fit engine keeps it only where it also agrees with them away from the start, scores and
gradient, and checks the fitted point with them before anything is written. A test whose body
no longer gives its recorded score once its fixtures are torn down is left out.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import SoftError
from .fit import CASE_RTOL, Term, cases_disagree
from .scores import per_case_sums

__all__ = ["Case", "build_terms"]


@dataclass
class Case:
    """One recorded soft test: its body, the arguments it was called with, and its score."""

    name: str
    function: Callable[..., Any]
    kwargs: dict[str, Any]
    weight: float
    threshold: float | None
    score: float
    #: Cases with the same key may be batched together; None never batches.
    batch_key: Hashable | None = None
    #: The soft test's place in the run's collection: terms are built in this order, so that a
    #: fit spread over workers sums and stacks them as one process does.
    index: int = 0

    def call(self) -> Any:
        return self.function(**self.kwargs)


def build_terms(cases: Sequence[Case], backend: str = "auto") -> tuple[list[Term], list[str]]:
    """Fit terms for the cases, batched where possible, and one note per case left out and per
    batch that fell back to case-by-case evaluation, saying why. Soft tests the JAX backend
    fits (``backend`` jax, or auto and their score is a JAX array) are mapped with jax.vmap."""
    notes: list[str] = []
    groups: dict[Hashable, list[Case]] = {}
    singles: list[Case] = []
    for case in cases:
        why = _not_reproducible(case)
        if why:
            notes.append(f"{case.name}: left out of the fit: {why}")
        elif case.batch_key is None:
            singles.append(case)
        else:
            groups.setdefault(case.batch_key, []).append(case)
    terms: list[Term] = []
    if backend != "autograd":
        from ._jax_batch import case_term, jax_terms, returns_jax

        def jax(case: Case) -> bool:
            return backend == "jax" or returns_jax(case)

        for key in [k for k, group in groups.items() if jax(group[0])]:
            group = groups.pop(key)
            made, why = jax_terms(group)
            terms.extend(made)
            if why:
                notes.append(
                    f"{_base_name(group[0].name)}: {len(group)} cases evaluated one by one, "
                    f"compiled ({why})"
                )
        kept = []
        for case in singles:
            if jax(case):
                terms.append(case_term(case))
            else:
                kept.append(case)
        singles = kept
    for group in groups.values():
        term, why = _batched(group) if len(group) > 1 else (None, "")
        if term is not None:
            terms.append(term)
            continue
        if why:
            notes.append(
                f"{_base_name(group[0].name)}: {len(group)} cases evaluated one by one ({why})"
            )
        singles.extend(group)
    terms.extend(Term(case.name, case.call, case.weight, case.threshold) for case in singles)
    # In the order of the collection (a batch where its first case is): the same order for a
    # whole suite and for the union of its shards, whatever was batched.
    place = {case.name: case.index for case in cases}
    terms.sort(key=lambda t: min(place[n] for n in (t.case_names or [t.name])))
    return terms, notes


def _not_reproducible(case: Case) -> str:
    """Why calling the body again (as the fit will, after the test's fixtures were torn down)
    does not give the score the test run recorded; empty when it does."""
    try:
        again = float(np.sum(np.asarray(case.call(), dtype=float)))
    except SoftError:
        raise
    except Exception as exc:
        return (
            f"called again after its fixtures' teardown it raised {type(exc).__name__}: "
            f"{_first_line(exc)} (a fixture's teardown closes or empties what the test uses)"
        )
    if not np.isclose(again, case.score, rtol=CASE_RTOL, atol=CASE_RTOL * 1e-12):
        return (
            f"called again after its fixtures' teardown it scored {again!r} instead of "
            f"{case.score!r} (a fixture's teardown changes what the test uses)"
        )
    return ""


def _base_name(name: str) -> str:
    return name.split("[", 1)[0]


def _batched(group: list[Case]) -> tuple[Term | None, str]:
    first = group[0]
    if any(c.function is not first.function for c in group):
        return None, "the cases call different functions"
    if any(c.weight != first.weight or c.threshold != first.threshold for c in group):
        return None, "the cases have different weights or thresholds"
    names = list(first.kwargs)
    if any(list(c.kwargs) != names for c in group):
        return None, "the cases take different arguments"
    varying = [
        name for name in names if any(c.kwargs[name] is not first.kwargs[name] for c in group)
    ]
    if not varying:
        return None, "the cases do not differ in any argument"
    stacked = dict(first.kwargs)
    for name in varying:
        values = [c.kwargs[name] for c in group]
        if any(isinstance(v, (str, bytes)) or v is None for v in values):
            return None, f"argument '{name}' is not numeric"
        try:
            stacked[name] = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            return None, f"argument '{name}' cannot be stacked into an array"
    function = first.function

    def score() -> Any:
        with per_case_sums():
            return function(**stacked)

    expected = np.array([c.score for c in group])
    try:
        got = np.asarray(score(), dtype=float)
    except SoftError:
        raise
    except Exception as exc:
        return None, f"the batched call raised {type(exc).__name__}: {_first_line(exc)}"
    if got.shape != expected.shape:
        return None, (
            f"the batched call returned shape {got.shape}, not one score per case {expected.shape}"
        )
    bad = cases_disagree(got, expected)
    if bad is not None:
        return None, (
            f"the batched call scored case {group[bad].name} {got[bad]!r} instead of "
            f"{expected[bad]!r}: the body is not elementwise"
        )
    names = [c.name for c in group]

    def select(indices: np.ndarray) -> Term:
        """The same batch over some of its cases (for minibatches)."""
        part = dict(stacked)
        for name in varying:
            part[name] = stacked[name][indices]

        def part_score() -> Any:
            with per_case_sums():
                return function(**part)

        return Term(
            _base_name(first.name),
            part_score,
            first.weight,
            first.threshold,
            case_names=[names[i] for i in indices],
            exact=[
                Term(group[i].name, group[i].call, first.weight, first.threshold) for i in indices
            ],
        )

    term = Term(
        _base_name(first.name),
        score,
        first.weight,
        first.threshold,
        case_names=names,
        select=select,
        exact=[Term(c.name, c.call, c.weight, c.threshold) for c in group],
    )
    return term, ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else ""
