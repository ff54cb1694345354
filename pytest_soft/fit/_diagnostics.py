"""Diagnostics for the user: why autograd cannot differentiate an implementation (with a hint
and the line), and whether the backend's gradient agrees with a finite difference.
"""

from __future__ import annotations

import math
import re
import traceback

import numpy as np

from ..errors import FitError
from ._model import Term
from ._optimisers import residual_jacobian, residuals
from ._problem import Problem
from ._uncertainty import Uncertainty, estimate, unavailable

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


def user_frame(exc: BaseException) -> str:
    """The deepest traceback frame outside autograd, JAX, numpy and pytest-soft, as file:line."""
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        path = frame.filename.replace("\\", "/")
        if any(
            part in path for part in ("/autograd/", "/jax/", "/jaxlib/", "/numpy/", "/pytest_soft/")
        ):
            continue
        return f"{frame.filename}:{frame.lineno} ({frame.line})"
    return ""


def tracing_message(term: Term, exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    hint = next((h for pattern, h in _HINTS if pattern.search(str(exc))), None)
    where = user_frame(exc)
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
        "arrays, np.dot(a, b) rather than a.dot(b). Or fit without gradients: "
        "--fit-method powell or --fit-method nelder-mead evaluate the code as it is."
    )
    return "\n".join(lines)


#: The backends as messages name them.
BACKEND_NAMES = {"autograd": "autograd", "jax": "JAX"}


def gradient_check(problem: Problem, x: np.ndarray, seed: int) -> list[tuple[str, str]]:
    """Compare the backend's directional derivative with a central finite difference, per
    term; return, for each term where they disagree (code that loses the gradient), the
    backend that differentiated it and a line naming the term and both numbers."""
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
    for term, backend, value, grad, difference, p in zip(
        problem.terms, problem.backend_names, values, grads, differences, plus
    ):
        ad = float(grad @ d)
        fd = float(difference)
        if not (math.isfinite(ad) and math.isfinite(fd)):
            continue
        scale = max(abs(ad), abs(fd))
        # Rounding in the difference grows with the size of the scores it subtracts.
        magnitude = max(float(np.sum(np.abs(value))), float(np.sum(np.abs(p))))
        noise = 1e-7 * (magnitude + 1e-12) / h
        if abs(ad - fd) > 1e-3 * scale + noise:
            name = BACKEND_NAMES.get(backend, backend)
            suspects.append((backend, f"{term.name} ({name} {ad:.6g}, finite difference {fd:.6g})"))
    return suspects


#: How code typically loses the gradient, by backend.
_LOST_GRADIENT = {
    "autograd": "an isinstance(x, np.ndarray) branch, or a value converted to a plain float",
    "jax": "jax.lax.stop_gradient, a cast to an integer or a rounding step, or a wrong "
    "custom derivative (jax.custom_jvp)",
}


def gradient_warning(suspects: list[tuple[str, str]]) -> str:
    """The warning for gradient_check's suspects, naming the backend(s) that computed the
    gradients in question."""
    backends = list(dict.fromkeys(backend for backend, _ in suspects))
    whose = " and ".join(f"{BACKEND_NAMES.get(b, b)}'s" for b in backends)
    plural = "s disagree" if len(backends) > 1 else " disagrees"
    shown = "; ".join(line for _, line in suspects[:3]) + (" ..." if len(suspects) > 3 else "")
    causes = "; or ".join(_LOST_GRADIENT[b] for b in backends if b in _LOST_GRADIENT)
    return (
        f"{whose} gradient{plural} with a finite difference for {len(suspects)} soft "
        f"test(s): {shown}. Some code probably loses the gradient"
        + (f" ({causes})" if causes else "")
        + "; the fit may stall."
    )


def uncertainty_at(problem: Problem, x: np.ndarray, method: str) -> Uncertainty:
    """Standard errors at the optimum x of a least-squares fit (one more Jacobian evaluation);
    for any other method, a note saying why there are none."""
    layout = [(slot.spec.full_name, slot.spec.shape) for slot in problem.slots]
    if method != "lsq":
        return unavailable(
            layout,
            f"no standard errors: they need the least-squares method (--fit-method lsq, scores "
            f"taken as squared residuals), and this fit used {method}",
        )
    try:
        values, jacs = problem.jacobians(x)
    except FitError as exc:
        return unavailable(
            layout, f"no standard errors: the Jacobian failed at the optimum ({exc})"
        )
    return estimate(residuals(problem, values), residual_jacobian(problem, values, jacs), layout)
