"""The least-squares problem set: pytest-soft's fit with its defaults against scipy's
least_squares, on the 18 Moré-Garbow-Hillstrom problems and the NIST StRD problems of
examples/nist, from every published start.

    python benchmarks/problem_set.py [--repeats N] [PROBLEM ...]

For each problem and start it prints one line: the sum of squares f each side reached, whether
that is the published minimum f* (``ok``), a published local minimum (``local``) or neither
(``MISS``), the loss and Jacobian evaluations, the seconds (median of the repeats), and the
ratio of pytest-soft's evaluations (loss + Jacobian) to scipy's with tight tolerances.

pytest-soft fits what a user's suite would be: one parameter per variable, one soft test per
residual scoring its square, batched into one term (as ``pytest --fit`` batches a parametrized
soft test), fitted by ``pytest_soft.fit.fit`` with its defaults. scipy fits the residuals
themselves with ``least_squares`` (trf) twice: with its defaults, and with
``ftol = xtol = gtol = 1e-15`` (as tight as its tests allow); both with its default scaling.
Both sides take the Jacobian from autograd in the same mode: one reverse pass per residual when
there are no more residuals than parameters, else one forward pass per parameter (the rule of
pytest_soft.fit).

Exit status 1 when pytest-soft's fit misses a published minimum anywhere, or takes more than
twice scipy's evaluations with tight tolerances.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from autograd import make_jvp, make_vjp
from scipy.optimize import least_squares

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_environment
from problems import Problem, all_problems, reached

from pytest_soft import Parameters
from pytest_soft.fit import Term, fit

TIGHT = 1e-15
#: Target: pytest-soft's evaluations at most this multiple of scipy's with tight tolerances.
MAX_RATIO = 2.0
MAX_NFEV = 100_000


def parameter_names(problem: Problem) -> tuple[str, ...]:
    names = problem.extra.get("names")
    return tuple(names) if names else tuple(f"x{i + 1}" for i in range(problem.n))


def engine_fit(problem: Problem, start: str, **options) -> dict:
    """pytest_soft.fit.fit with its defaults (or ``options``) on one soft test per residual."""
    names = parameter_names(problem)
    theta = Parameters(**dict(zip(names, problem.starts[start])))

    def score():
        return problem.residuals([theta[name] for name in names]) ** 2

    m = len(problem.residuals(list(problem.starts[start])))
    term = Term(f"test_{problem.name}", score, case_names=[f"{i}" for i in range(m)])
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit([term], **options)
    seconds = time.perf_counter() - t0
    after = {c.full_name.rsplit(".", 1)[1]: c.after for c in result.parameters}
    x = tuple(float(after[name]) for name in names)
    return {
        "f": result.loss_after,
        "x": x,
        "nfev": result.loss_evaluations,
        "njev": result.gradient_evaluations,
        "seconds": seconds,
        "stop": result.stop_reason,
    }


def autograd_jacobian(fun: Callable, m: int, n: int) -> Callable:
    """The Jacobian in pytest_soft.fit's mode: reverse passes when m <= n, else forward."""
    if m <= n:

        def reverse(x):
            vjp, _ = make_vjp(fun)(x)
            return np.stack([vjp(e) for e in np.eye(m)])

        return reverse

    def forward(x):
        jvp = make_jvp(fun)(x)
        return np.stack([jvp(e)[1] for e in np.eye(n)], axis=1)

    return forward


def scipy_fit(problem: Problem, start: str, tight: bool) -> dict:
    def residuals(b):
        return problem.residuals([b[i] for i in range(problem.n)])

    x0 = np.array(problem.starts[start], dtype=float)
    m = len(residuals(x0))
    tolerances = {"ftol": TIGHT, "xtol": TIGHT, "gtol": TIGHT} if tight else {}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = least_squares(
            residuals,
            x0,
            jac=autograd_jacobian(residuals, m, problem.n),
            method="trf",
            max_nfev=MAX_NFEV,
            **tolerances,
        )
    seconds = time.perf_counter() - t0
    r = np.asarray(result.fun, dtype=float)
    return {
        "f": float(np.dot(r, r)),
        "x": tuple(float(v) for v in result.x),
        "nfev": int(result.nfev),
        "njev": int(result.njev),
        "seconds": seconds,
        "stop": str(result.message),
    }


def verdict(problem: Problem, f: float) -> str:
    return {"f*": "ok", "local": "local", None: "MISS"}[reached(problem, f)]


def measure(problem: Problem, start: str, repeats: int) -> dict[str, dict]:
    """Each side ``repeats`` times, interleaved; seconds are the median."""
    runs: dict[str, list[dict]] = {"soft": [], "default": [], "tight": []}
    for _ in range(repeats):
        runs["soft"].append(engine_fit(problem, start))
        runs["default"].append(scipy_fit(problem, start, tight=False))
        runs["tight"].append(scipy_fit(problem, start, tight=True))
    out = {}
    for side, results in runs.items():
        last = dict(results[-1])
        last["seconds"] = statistics.median(r["seconds"] for r in results)
        out[side] = last
    return out


def evals(side: dict) -> int:
    return side["nfev"] + side["njev"]


def cell(problem: Problem, side: dict) -> str:
    return (
        f"{side['f']:13.6e} {verdict(problem, side['f']):>5} "
        f"{side['nfev']:>5}+{side['njev']:<5} {side['seconds']:7.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("problems", nargs="*", help="problem names (default: all)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per fit (median)")
    args = parser.parse_args(argv)
    problems = all_problems()
    if args.problems:
        known = {p.name.lower(): p for p in problems}
        unknown = [n for n in args.problems if n.lower() not in known]
        if unknown:
            parser.error(f"unknown problem(s) {', '.join(unknown)}; choose from {list(known)}")
        problems = [known[n.lower()] for n in args.problems]

    print_environment()
    side_header = f"{'f':>13} {'':>5} {'evals f+J':>11} {'seconds':>7}"
    print(
        f"{'problem':17} {'source':16} {'start':>5} {'f*':>11}  "
        f"{'pytest-soft (defaults)':^38}  {'scipy trf, defaults':^38}  "
        f"{f'scipy trf, tol {TIGHT:g}':^38}  {'ratio':>5}"
    )
    print(f"{'':17} {'':16} {'':>5} {'':>11}  {side_header}  {side_header}  {side_header}")
    failures: list[str] = []
    counts = {"soft": 0, "default": 0, "tight": 0}
    ratios: list[tuple[float, str]] = []
    runs = 0
    wall0 = time.perf_counter()
    for problem in problems:
        for start in problem.starts:
            sides = measure(problem, start, args.repeats)
            runs += 1
            for side, result in sides.items():
                counts[side] += reached(problem, result["f"]) is not None
            ratio = evals(sides["soft"]) / evals(sides["tight"])
            at = f"{problem.name} start {start}"
            ratios.append((ratio, at))
            flag = ""
            if reached(problem, sides["soft"]["f"]) is None:
                failures.append(f"{at}: missed f* (f = {sides['soft']['f']:.6e})")
                flag = "  <- missed"
            if ratio > MAX_RATIO:
                failures.append(f"{at}: {ratio:.2f}x scipy's evaluations")
                flag += f"  <- over {MAX_RATIO:g}x"
            print(
                f"{problem.name:17} {problem.source:16} {start:>5} {problem.f_star:11.6g}  "
                f"{cell(problem, sides['soft'])}  {cell(problem, sides['default'])}  "
                f"{cell(problem, sides['tight'])}  {ratio:5.2f}{flag}",
                flush=True,
            )
    print(
        "f: sum of squares reached; ok: the published minimum f* (relative 1e-5 for MGH, whose "
        "f* has 6 digits;\n1e-9 for NIST; at most 1e-10 where f* = 0), local: a published "
        "local minimum; evals: loss + Jacobian\nevaluations (pytest-soft's include its start-up "
        "passes: unused-parameter and gradient checks);\nratio: pytest-soft's evals / scipy "
        "tight's; seconds: median of the repeats"
    )
    for problem in problems:
        if problem.note:
            print(f"note: {problem.name}: {problem.note}")
    worst, worst_at = max(ratios)
    print(
        f"reached a published minimum: pytest-soft {counts['soft']} of {runs}, scipy defaults "
        f"{counts['default']} of {runs}, scipy tight {counts['tight']} of {runs}"
    )
    print(
        f"evaluations: pytest-soft at most {worst:.2f}x scipy tight's ({worst_at}), median "
        f"{statistics.median(r for r, _ in ratios):.2f}x; target <= {MAX_RATIO:g}x: "
        f"{'met' if worst <= MAX_RATIO else 'NOT MET'}"
    )
    print(f"(total {time.perf_counter() - wall0:.0f} s)")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
