"""How well a least-squares fit determines its parameters: standard errors, correlations and the
directions that the residuals do not determine at all.

No pytest and no autograd here: :func:`estimate` takes the residuals and their Jacobian at the
optimum (the fit engine computes both) and returns an :class:`Uncertainty`. The convention is the
usual one for nonlinear least squares (NIST StRD, most curve-fitting libraries): the covariance
of the fitted values is ``s² (JᵀJ)⁻¹`` with ``s² = loss / (n - p)`` for ``n`` residuals and
``p`` fitted values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "CORRELATION_SHOWN",
    "RANK_RTOL",
    "Uncertainty",
    "Undetermined",
    "element_names",
    "estimate",
    "merge",
    "unavailable",
]

#: A direction is undetermined when its singular value, with every Jacobian column scaled to
#: unit length, is below this share of the largest. Exact rank deficiency (an unused parameter,
#: a pair that enters only through its product) leaves rounding of about 1e-16 there; the most
#: ill-conditioned NIST StRD problems stay above 1e-8 (see tests/test_uncertainty.py).
RANK_RTOL = 1e-10

#: An element whose squared projection onto the undetermined directions exceeds this has no
#: standard error; smaller projections are rounding of the singular vectors.
INVOLVED = 1e-6

#: Pairs whose correlation exceeds this in absolute value are pointed out in the fit section.
CORRELATION_SHOWN = 0.95


@dataclass(frozen=True)
class Undetermined:
    """Fitted values that the residuals do not determine: one element that nothing depends on
    (``unused``), or several of which only some combination is determined."""

    names: tuple[str, ...]
    unused: bool

    def describe(self) -> str:
        if self.unused:
            return (
                f"{self.names[0]}: no selected soft test's score depends on it near the "
                "optimum, so the fit does not determine it"
            )
        shown = _and(self.names)
        return (
            f"{shown}: the selected soft tests determine only a combination of them (as when "
            "they enter only through their product or their sum), not each one"
        )


@dataclass(frozen=True)
class Uncertainty:
    """Standard errors and correlations of the fitted values, or a note saying why there are
    none. ``stderr`` maps each parameter's full name to a float, or an array shaped like its
    value; NaN marks an element without one (undetermined, or no estimate at all)."""

    names: tuple[str, ...]
    stderr: dict[str, Any]
    correlation: np.ndarray | None
    undetermined: tuple[Undetermined, ...] = ()
    note: str = ""
    residuals: int = 0
    fitted: int = 0
    residual_variance: float = math.nan
    #: The element names of each parameter, in the order of ``names``.
    elements: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        """Whether there are standard errors (for at least the determined parameters)."""
        return self.correlation is not None

    def strong_correlations(self, limit: float = CORRELATION_SHOWN) -> list[tuple[str, str, float]]:
        """Pairs of elements whose correlation exceeds ``limit`` in absolute value, strongest
        first."""
        if self.correlation is None:
            return []
        c = self.correlation
        rows, cols = np.nonzero(np.triu(np.abs(np.nan_to_num(c)) > limit, k=1))
        pairs = [(self.names[i], self.names[j], float(c[i, j])) for i, j in zip(rows, cols)]
        return sorted(pairs, key=lambda p: (-abs(p[2]), p[0], p[1]))


def element_names(name: str, shape: tuple[int, ...]) -> list[str]:
    """``name`` for a scalar; ``name[i]``, ``name[i,j]``, ... for each element of an array, in
    C order (the order of the flat vector the fit works on)."""
    if shape == ():
        return [name]
    return [f"{name}[{','.join(map(str, index))}]" for index in np.ndindex(*shape)]


def _layout(parameters: Sequence[tuple[str, tuple[int, ...]]]) -> dict[str, tuple[str, ...]]:
    return {name: tuple(element_names(name, tuple(shape))) for name, shape in parameters}


def _shaped(flat: np.ndarray, parameters: Sequence[tuple[str, tuple[int, ...]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    offset = 0
    for name, shape in parameters:
        size = math.prod(shape)
        chunk = flat[offset : offset + size]
        out[name] = float(chunk[0]) if tuple(shape) == () else chunk.reshape(shape).copy()
        offset += size
    return out


def unavailable(parameters: Sequence[tuple[str, tuple[int, ...]]], note: str) -> Uncertainty:
    """No standard errors, and why (``note``, a sentence for the fit section)."""
    elements = _layout(parameters)
    names = tuple(n for group in elements.values() for n in group)
    return Uncertainty(
        names=names,
        stderr=_shaped(np.full(len(names), np.nan), parameters),
        correlation=None,
        note=note,
        elements=elements,
    )


def estimate(
    residuals: np.ndarray,
    jacobian: np.ndarray,
    parameters: Sequence[tuple[str, tuple[int, ...]]],
    loss: float | None = None,
) -> Uncertainty:
    """Standard errors, correlations and undetermined directions at a least-squares optimum.

    ``residuals`` (n,) and ``jacobian`` (n, p) at the optimum; ``parameters`` the (full name,
    shape) of each fitted parameter in the order of the Jacobian's columns; ``loss`` the sum of
    squared residuals (computed from ``residuals`` when not given).
    """
    residuals = np.asarray(residuals, dtype=float).ravel()
    jacobian = np.asarray(jacobian, dtype=float)
    n, p = residuals.shape[0], sum(math.prod(shape) for _, shape in parameters)
    if jacobian.shape != (n, p):
        raise ValueError(f"the Jacobian is {jacobian.shape}, expected {(n, p)}")
    if loss is None:
        loss = math.fsum(float(r) * float(r) for r in residuals)
    elements = _layout(parameters)
    names = tuple(e for group in elements.values() for e in group)
    if not (np.all(np.isfinite(jacobian)) and np.all(np.isfinite(residuals))):
        return unavailable(
            parameters, "no standard errors: the Jacobian at the optimum is not finite"
        )
    if n > 0 and not np.any(residuals):
        return unavailable(
            parameters,
            "no standard errors: every residual is exactly 0 (the scores vanish at the "
            "optimum, and with them their slopes)",
        )

    # Scale each column to unit length so that the rank test does not depend on the parameters'
    # units; a column of zeros (nothing depends on that value) stays zero.
    norms = np.linalg.norm(jacobian, axis=0)
    scale = np.where(norms > 0, norms, 1.0)
    scaled = jacobian / scale
    _, sv, vt = np.linalg.svd(scaled, full_matrices=False)
    top = sv[0] if sv.size else 0.0
    keep = sv > RANK_RTOL * top if top > 0 else np.zeros(sv.shape, dtype=bool)
    # The undetermined directions: right singular vectors of small singular values, plus every
    # direction beyond the n rows when there are fewer residuals than fitted values.
    full_v = np.linalg.svd(scaled, full_matrices=True)[2] if n < p else vt
    null = np.concatenate([vt[~keep], full_v[sv.shape[0] :]]) if n < p else vt[~keep]
    projection = null.T @ null if null.size else np.zeros((p, p))
    involved = np.diag(projection) > INVOLVED
    undetermined = _groups(projection, involved, names)

    variance = loss / (n - p) if n > p else math.nan
    flat_err = np.full(p, np.nan)
    correlation = np.full((p, p), np.nan)
    note = ""
    if n <= p:
        note = (
            f"no standard errors: {n} residual(s) for {p} fitted value(s) leave no degrees of "
            "freedom to estimate the spread of the residuals"
        )
    else:
        # (JᵀJ)⁻¹ in scaled coordinates, over the determined directions only: for an element
        # outside the undetermined directions, this is its variance (the pseudo-inverse); the
        # others get none.
        inverse = (vt[keep].T / sv[keep] ** 2) @ vt[keep]
        covariance = variance * inverse / np.outer(scale, scale)
        determined = ~involved
        flat_err[determined] = np.sqrt(np.maximum(np.diag(covariance)[determined], 0.0))
        idx = np.flatnonzero(determined)
        sd = np.sqrt(np.maximum(np.diag(covariance)[idx], 0.0))
        with np.errstate(invalid="ignore", divide="ignore"):
            block = covariance[np.ix_(idx, idx)] / np.outer(sd, sd)
        block = np.clip(block, -1.0, 1.0)
        np.fill_diagonal(block, 1.0)
        correlation[np.ix_(idx, idx)] = block
    return Uncertainty(
        names=names,
        stderr=_shaped(flat_err, parameters),
        correlation=None if note else correlation,
        undetermined=tuple(undetermined),
        note=note,
        residuals=n,
        fitted=p,
        residual_variance=variance,
        elements=elements,
    )


def _groups(
    projection: np.ndarray, involved: np.ndarray, names: Sequence[str]
) -> list[Undetermined]:
    """The involved elements, split into groups that the undetermined directions link (the
    projection onto those directions does not depend on which basis the SVD chose)."""
    index = list(np.flatnonzero(involved))
    seen: set[int] = set()
    out = []
    for i in index:
        if i in seen:
            continue
        group, todo = [], [i]
        seen.add(i)
        while todo:
            k = todo.pop()
            group.append(k)
            for j in index:
                if j not in seen and abs(projection[k, j]) > INVOLVED:
                    seen.add(j)
                    todo.append(j)
        group.sort()
        # Alone, an element is undetermined only when (near enough) nothing depends on it.
        out.append(Undetermined(tuple(names[k] for k in group), unused=len(group) == 1))
    return out


def merge(parts: Sequence[Uncertainty]) -> Uncertainty:
    """One Uncertainty over the parameters of independent fits (blocks sharing no parameter and
    no soft test): their correlations are 0 across blocks."""
    if len(parts) == 1:
        return parts[0]
    elements: dict[str, tuple[str, ...]] = {}
    stderr: dict[str, Any] = {}
    for part in parts:
        elements.update(part.elements)
        stderr.update(part.stderr)
    order = sorted(elements)
    names = tuple(e for name in order for e in elements[name])
    position = {e: i for i, e in enumerate(names)}
    available = [part for part in parts if part.available]
    correlation = None
    if available:
        correlation = np.full((len(names), len(names)), np.nan)
        determined = [
            position[e]
            for part in available
            for k, e in enumerate(part.names)
            if np.isfinite(part.correlation[k, k])
        ]
        correlation[np.ix_(determined, determined)] = 0.0
        for part in available:
            idx = [position[e] for e in part.names]
            correlation[np.ix_(idx, idx)] = part.correlation
    notes = sorted({part.note for part in parts if part.note})
    return Uncertainty(
        names=names,
        stderr={name: stderr[name] for name in order},
        correlation=correlation,
        undetermined=tuple(u for part in parts for u in part.undetermined),
        note="; ".join(notes),
        residuals=sum(part.residuals for part in parts),
        fitted=sum(part.fitted for part in parts),
        elements={name: elements[name] for name in order},
    )


def _and(names: Sequence[str]) -> str:
    if len(names) <= 2:
        return " and ".join(names)
    return ", ".join(names[:-1]) + f" and {names[-1]}"
