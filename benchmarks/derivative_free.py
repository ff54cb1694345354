"""The derivative-free methods (powell, nelder-mead) against the gradient methods (lsq, lbfgs):
the loss each reaches, its loss and gradient evaluations and its wall time, side by side.

    python benchmarks/derivative_free.py [--rounds N]

Problems, each fitted by pytest_soft.fit.fit from the same start with every method, the
evaluations interleaved round by round (median seconds over the rounds):

- sine: examples/sine (200 points of sin(omega x), omega from 1 within (0, 5)), 10 restarts;
- linear: examples/linear (100 noisy points, w of 3 values and b);
- decay: y = a exp(-r x) + c on 20 exact points, c's upper bound binding (the model of
  tests/test_derivative_free.py, written with autograd.numpy so that every method can run);
- Misra1a, MGH09 (NIST start 2): examples/nist.

The example modules are imported from a temporary copy, so that parameter files left in
examples/ by a fit cannot change the starting points.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import autograd.numpy as anp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_environment

from pytest_soft import Param, Parameters
from pytest_soft.fit import Term, fit

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
METHODS = ("lsq", "lbfgs", "powell", "nelder-mead")


def import_examples() -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="soft-dfree-"))
    for example in ("sine", "linear", "nist"):
        shutil.copytree(
            EXAMPLES / example, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.json")
        )
    sys.path.insert(0, str(tmp))
    import importlib

    names = ("sine", "test_sine", "linear", "test_linear", "misra1a", "test_misra1a")
    return {name: importlib.import_module(name) for name in (*names, "mgh09", "test_mgh09")}


def problems() -> dict[str, tuple[Callable[[], list[Term]], Callable[[], None], int]]:
    """name -> (terms, reset to the start, restarts)."""
    m = import_examples()
    sine, linear = m["sine"], m["linear"]
    decay = Parameters(
        a=Param(1.0, bounds=(0.0, 10.0)), r=Param(0.1, bounds=(0.0, 5.0)), c=Param(0.0, (-1, 0.25))
    )
    xd = 0.25 * np.arange(20)
    yd = 2.5 * np.exp(-0.8 * xd) + 0.3

    def nist(name: str) -> Callable[[], list[Term]]:
        module, test = m[name], getattr(m["test_" + name], f"test_{name}")
        x = np.array([o[0] for o in module.PROBLEM.observations])
        y = np.array([o[1] for o in module.PROBLEM.observations])
        return lambda: [Term(name, functools.partial(test, x, y))]

    def nist_reset(name: str) -> Callable[[], None]:
        module = m[name]
        return lambda: module.theta.update(module.PROBLEM.start_values(2))

    sine_x = np.array([c[0] for c in m["test_sine"].CASES])
    sine_y = np.array([c[1] for c in m["test_sine"].CASES])
    lin_x, lin_y = m["test_linear"].X, m["test_linear"].Y
    return {
        "sine": (
            lambda: [Term("sine", lambda: (sine.f(sine_x) - sine_y) ** 2)],
            lambda: sine.theta.update({"omega": 1.0}),
            10,
        ),
        "linear": (
            lambda: [Term("linear", lambda: (linear.predict(lin_x) - lin_y) ** 2)],
            lambda: linear.theta.update({"w": np.zeros(3), "b": 0.0}),
            0,
        ),
        "decay": (
            lambda: [Term("decay", lambda: (decay.a * anp.exp(-decay.r * xd) + decay.c - yd) ** 2)],
            lambda: decay.update({"a": 1.0, "r": 0.1, "c": 0.0}),
            0,
        ),
        "Misra1a": (nist("misra1a"), nist_reset("misra1a"), 0),
        "MGH09": (nist("mgh09"), nist_reset("mgh09"), 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3)")
    args = parser.parse_args()
    print_environment()
    table = problems()
    seconds: dict[tuple[str, str], list[float]] = {}
    last = {}
    for _ in range(args.rounds):
        for name, (terms, reset, restarts) in table.items():
            for method in METHODS:
                reset()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t0 = time.perf_counter()
                    result = fit(terms(), method=method, restarts=restarts)
                    seconds.setdefault((name, method), []).append(time.perf_counter() - t0)
                last[name, method] = result
    print(
        f"{'problem':9} {'method':12} {'loss after':>12} {'loss evals':>10} {'grad evals':>10}"
        f" {'seconds':>8} {'x lsq time':>10}"
    )
    for name in table:
        base = statistics.median(seconds[name, "lsq"])
        for method in METHODS:
            r = last[name, method]
            t = statistics.median(seconds[name, method])
            print(
                f"{name:9} {method:12} {r.loss_after:12.6g} {r.loss_evaluations:10d} "
                f"{r.gradient_evaluations:10d} {t:8.3f} {t / base:10.1f}"
            )
        print()


if __name__ == "__main__":
    main()
