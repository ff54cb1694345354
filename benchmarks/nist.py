"""The NIST StRD nonlinear regression problems of examples/nist: pytest-soft's fit with its
default settings versus scipy's least_squares (trf, autograd Jacobian, tight tolerances).

    python benchmarks/nist.py [PROBLEM ...]

For each problem and NIST start it prints the minimum log relative error (LRE, about the number
of correct significant digits of the worst parameter) of both fits, their wall time and their
evaluation counts, then how many of the runs reached LRE >= 6.

The pytest-soft side is what `pytest --fit test_<problem>.py` does: one term that scores every
observation in one call (the fit batches the parametrized soft test the same way), fitted by
pytest_soft.fit.fit with its defaults (method auto = least squares on square-root scores).
The parameter files beside the example modules are ignored: both sides start from the NIST
starting values.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from autograd import jacobian
from scipy.optimize import least_squares

from pytest_soft.fit import Term, fit

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "nist"
sys.path.insert(0, str(EXAMPLE))

import strd  # noqa: E402  (the example's parser, found through the path above)

SCIPY_TOL = 1e-15


def plugin_fit(module, start: int) -> dict:
    problem = module.PROBLEM
    x = np.array([o[0] for o in problem.observations])
    y = np.array([o[1] for o in problem.observations])
    module.theta.update(problem.start_values(start))
    term = Term(f"test_{module.__name__}", lambda: (module.f(x) - y) ** 2)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit([term])
    seconds = time.perf_counter() - t0
    values = {p.full_name.split(".", 1)[1]: p.after for p in result.parameters}
    module.theta.update(problem.start_values(start))
    return {
        "lre": problem.lre(values),
        "seconds": seconds,
        "evals": f"{result.loss_evaluations}+{result.gradient_evaluations}",
        "loss": result.loss_after,
    }


def scipy_fit(module, start: int) -> dict:
    problem = module.PROBLEM
    x = np.array([o[0] for o in problem.observations])
    y = np.array([o[1] for o in problem.observations])

    def residuals(b):
        return module.model(x, *[b[i] for i in range(len(problem.names))]) - y

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = least_squares(
            residuals,
            np.array(problem.starts[start - 1]),
            jac=jacobian(residuals),
            method="trf",
            ftol=SCIPY_TOL,
            xtol=SCIPY_TOL,
            gtol=SCIPY_TOL,
            max_nfev=10000,
        )
    seconds = time.perf_counter() - t0
    return {
        "lre": problem.lre(tuple(result.x)),
        "seconds": seconds,
        "evals": f"{result.nfev}+{result.njev}",
        "loss": 2 * result.cost,
    }


def _total_evals(side: dict) -> int:
    loss, gradient = side["evals"].split("+")
    return int(loss) + int(gradient)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("problems", nargs="*", help=f"default: all ({', '.join(strd.PROBLEMS)})")
    args = parser.parse_args(argv)
    names = args.problems or list(strd.PROBLEMS)
    unknown = [n for n in names if n not in strd.PROBLEMS]
    if unknown:
        parser.error(f"unknown problem(s) {', '.join(unknown)}; choose from {strd.PROBLEMS}")

    import importlib

    print(
        f"{'problem':9} {'start':>5}  {'pytest-soft fit (defaults)':>33}  "
        f"{f'scipy trf, tol {SCIPY_TOL:g}':>33}"
    )
    print(
        f"{'':9} {'':>5}  {'LRE':>6} {'seconds':>8} {'evals':>9} {'':>7}  "
        f"{'LRE':>6} {'seconds':>8} {'evals':>9} {'':>7}"
    )
    ok_plugin = ok_scipy = runs = 0
    worst_plugin = worst_scipy = math.inf
    worst_ratio, worst_ratio_at = 0.0, ""
    for name in names:
        module = importlib.import_module(name.lower())
        for start in (1, 2):
            ours = plugin_fit(module, start)
            theirs = scipy_fit(module, start)
            runs += 1
            ok_plugin += ours["lre"] >= 6
            ok_scipy += theirs["lre"] >= 6
            worst_plugin = min(worst_plugin, ours["lre"])
            worst_scipy = min(worst_scipy, theirs["lre"])
            ratio = _total_evals(ours) / _total_evals(theirs)
            if ratio > worst_ratio:
                worst_ratio, worst_ratio_at = ratio, f"{name} start {start}"
            cells = []
            for side in (ours, theirs):
                flag = "" if side["lre"] >= 6 else "  < 6"
                cells.append(
                    f"{side['lre']:6.2f} {side['seconds']:8.3f} {side['evals']:>9} {flag:>7}"
                )
            print(f"{name:9} {start:>5}  {cells[0]}  {cells[1]}", flush=True)
    print("evals: loss evaluations + gradient (Jacobian) evaluations")
    print(
        f"summary: pytest-soft {ok_plugin} of {runs} reached LRE >= 6 (worst "
        f"{worst_plugin:.2f}); scipy {ok_scipy} of {runs} (worst {worst_scipy:.2f})"
    )
    print(
        f"evaluations: pytest-soft at most {worst_ratio:.2f}x scipy's ({worst_ratio_at}); "
        f"target <= 2x: {'met' if worst_ratio <= 2 else 'NOT MET'}"
    )
    return 0 if ok_plugin == runs else 1


if __name__ == "__main__":
    sys.exit(main())
