"""Multimodal fits: how often the fit's screened restarts find the global minimum, against scipy's
global optimisers given the same number of evaluations.

    python benchmarks/multimodal.py [--seeds N] [--restarts N] [--only NAME]

Each problem is a least-squares fit to exact data (the global minimum has loss 0) from a start
in a wrong valley. For each seed 0..N-1 it runs

- the engine, ``pytest_soft.fit.fit(..., restarts=R, seed=s)`` (screened restarts; its local
  method is least squares, scipy's trust-region-reflective ``least_squares``);
- the same with the previous restarts, drawn uniformly within the bounds (the screen switched
  off, which makes the engine fall back to its random draws);
- ``differential_evolution`` (its L-BFGS-B polish included), ``dual_annealing`` (L-BFGS-B local
  searches with the exact gradient) and ``basinhopping`` (the same ``least_squares`` local
  method, with the exact Jacobian), each stopped at the engine's evaluation count for the
  problem (the largest over the seeds).

A run succeeds when its loss ends below 1e-6 (local minima lie far above). Evaluations count
loss and gradient (or Jacobian) evaluations alike; seconds are medians per run. The scipy
methods evaluate plain autograd functions, without the engine's soft-test machinery, which
makes their evaluations cheaper than the engine's.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import autograd.numpy as anp
import numpy as np
from autograd import grad, make_jvp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_environment

from pytest_soft import Param, Parameters
from pytest_soft import fit as engine
from pytest_soft.fit import Term, _planner, _starts

SUCCESS = 1e-6


@dataclass
class Problem:
    name: str
    model: Callable[[Any, np.ndarray], Any]  # (parameter vector, x) -> predictions
    names: tuple[str, ...]
    truth: tuple[float, ...]
    start: tuple[float, ...]
    bounds: tuple[tuple[float, float], ...]
    xs: np.ndarray

    @property
    def ys(self) -> np.ndarray:
        return np.asarray(self.model(np.array(self.truth), self.xs))


def _sine(v: Any, x: np.ndarray) -> Any:
    return anp.sin(v[0] * x)


def _damped(v: Any, x: np.ndarray) -> Any:
    return v[0] * anp.exp(-v[1] * x) * anp.sin(v[2] * x + v[3])


def _two_peaks(v: Any, x: np.ndarray) -> Any:
    return v[0] * anp.exp(-0.5 * ((x - v[1]) / v[2]) ** 2) + v[3] * anp.exp(
        -0.5 * ((x - v[4]) / v[5]) ** 2
    )


def problems() -> list[Problem]:
    rng = np.random.default_rng(20261127)

    def sine(omega: float, reach: float) -> Problem:
        xs = np.sort(rng.uniform(-reach, reach, size=200))
        return Problem(
            f"sine omega={omega:g} x in +-{reach:g}",
            _sine,
            ("omega",),
            (omega,),
            (1.0,),
            ((0.0, 5.0),),
            xs,
        )

    return [
        sine(1.5, 20.0),  # the seed's example (its own data differ only in the draw)
        sine(3.7, 10.0),
        sine(0.6, 30.0),
        sine(4.2, 40.0),
        Problem(
            # Recorded from t = 5 on, after the oscillation has started: a poor frequency
            # start leaves least squares in a wrong valley (from t = 0, raising the decay
            # shortens the window until the frequency's valleys merge, and every start wins).
            "damped oscillator t 5..25",
            _damped,
            ("amplitude", "decay", "frequency", "phase"),
            (2.0, 0.05, 4.7, 1.0),
            (1.0, 0.05, 1.0, 0.0),
            ((0.0, 5.0), (0.0, 1.0), (0.0, 10.0), (-math.pi, math.pi)),
            np.linspace(5.0, 25.0, 300),
        ),
        Problem(
            "two Gaussian peaks",
            _two_peaks,
            ("a1", "m1", "s1", "a2", "m2", "s2"),
            (3.0, 3.0, 0.5, 2.5, 7.0, 0.8),
            (1.0, 9.0, 0.3, 1.0, 9.5, 0.3),  # both peaks far right and narrow
            ((0.0, 5.0), (0.0, 10.0), (0.1, 3.0), (0.0, 5.0), (0.0, 10.0), (0.1, 3.0)),
            np.linspace(0.0, 10.0, 200),
        ),
    ]


# -- the engine ----------------------------------------------------------------------------------


def _declare(problem: Problem) -> Parameters:
    # Declared inside a function: one group per problem in this one script.
    return Parameters(
        **{n: Param(v, bounds=b) for n, v, b in zip(problem.names, problem.start, problem.bounds)}
    )


def run_engine(problem: Problem, restarts: int, seed: int, uniform: bool) -> tuple[float, int]:
    group = _declare(problem)
    xs, ys = problem.xs, problem.ys

    def score() -> Any:
        v = [getattr(group, n) for n in problem.names]
        return (problem.model(v, xs) - ys) ** 2

    term = Term("fit", score, case_names=[f"c{i}" for i in range(len(xs))])
    saved = _planner.screen_starts
    if uniform:
        _planner.screen_starts = _no_screen
    try:
        result = engine.fit([term], restarts=restarts, seed=seed, check_gradient=False)
    finally:
        _planner.screen_starts = saved
    return result.loss_after, result.loss_evaluations + result.gradient_evaluations


def _no_screen(problem: Any, x0: np.ndarray, *args: Any, **kwargs: Any) -> Any:
    return _starts.screen_starts(problem, x0, 0, *args[1:])


# -- scipy's global optimisers -------------------------------------------------------------------


class _Budget(Exception):
    pass


class Counted:
    """The problem's residuals, loss and derivatives as plain functions, counting evaluations
    and stopping (by exception) once the budget is spent."""

    def __init__(self, problem: Problem, budget: int):
        self.problem, self.budget, self.count = problem, budget, 0
        self.best = math.inf
        ys = problem.ys
        self._r = lambda v: problem.model(v, problem.xs) - ys
        self._grad = grad(lambda v: anp.sum(self._r(v) ** 2))
        self._eye = np.eye(len(problem.start))

    def _spend(self) -> None:
        self.count += 1
        if self.count > self.budget:
            raise _Budget

    def residuals(self, v: np.ndarray) -> np.ndarray:
        self._spend()
        r = np.asarray(self._r(np.asarray(v, dtype=float)))
        self.best = min(self.best, float(r @ r))
        return r

    def jac(self, v: np.ndarray) -> np.ndarray:
        # Forward mode, one pass per parameter (few parameters, 200 residuals).
        self._spend()
        jvp = make_jvp(self._r)(np.asarray(v, dtype=float))
        return np.stack([jvp(e)[1] for e in self._eye], axis=1)

    def loss(self, v: np.ndarray) -> float:
        r = self.residuals(v)
        return float(r @ r)

    def loss_grad(self, v: np.ndarray) -> np.ndarray:
        self._spend()
        return np.asarray(self._grad(np.asarray(v, dtype=float)))


def _seeded(seed: int) -> dict[str, Any]:
    import inspect

    from scipy.optimize import differential_evolution

    # scipy 1.15 renamed the optimisers' ``seed`` to ``rng``.
    name = "rng" if "rng" in inspect.signature(differential_evolution).parameters else "seed"
    return {name: seed}


def run_de(problem: Problem, budget: int, seed: int) -> tuple[float, int]:
    from scipy.optimize import differential_evolution

    f = Counted(problem, budget)
    d = len(problem.start)
    generations = max(1, budget // (15 * d) - 1)
    try:
        differential_evolution(
            f.loss, problem.bounds, maxiter=generations, x0=problem.start, **_seeded(seed)
        )
    except _Budget:
        pass
    return f.best, min(f.count, budget)


def run_da(problem: Problem, budget: int, seed: int) -> tuple[float, int]:
    from scipy.optimize import dual_annealing

    f = Counted(problem, budget)
    try:
        dual_annealing(
            f.loss,
            problem.bounds,
            maxfun=budget,
            x0=np.array(problem.start),
            minimizer_kwargs={"method": "L-BFGS-B", "jac": f.loss_grad},
            **_seeded(seed),
        )
    except _Budget:
        pass
    return f.best, min(f.count, budget)


def run_bh(problem: Problem, budget: int, seed: int) -> tuple[float, int]:
    from scipy.optimize import OptimizeResult, basinhopping, least_squares

    f = Counted(problem, budget)
    lower = np.array([b[0] for b in problem.bounds])
    upper = np.array([b[1] for b in problem.bounds])

    def local(fun: Any, x0: np.ndarray, args: Any = (), **_: Any) -> OptimizeResult:
        # The engine's local method: trust-region-reflective least squares within the bounds.
        result = least_squares(
            f.residuals,
            np.clip(x0, lower, upper),
            jac=f.jac,
            bounds=(lower, upper),
            method="trf",
            x_scale="jac",
        )
        return OptimizeResult(x=result.x, fun=2 * result.cost, success=result.success, nfev=0)

    try:
        basinhopping(
            f.loss,
            np.array(problem.start),
            niter=10**6,
            minimizer_kwargs={"method": local},
            **_seeded(seed),
        )
    except _Budget:
        pass
    return f.best, min(f.count, budget)


# -- the table -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--only", help="run only the problems whose name contains this")
    args = parser.parse_args()
    # scipy's optimisers step outside the bounds (basinhopping) or to extreme points, where the
    # damped oscillator overflows; the loss is then inf, which they handle. Not worth a warning.
    np.seterr(all="ignore")
    print_environment()
    print(f"{args.seeds} seeds, --fit-restarts {args.restarts}; success: loss below {SUCCESS:g}")
    print()
    # Warm-up, untimed: the imports (scipy.stats for the screen, the optimisers) and autograd's
    # first traces would otherwise land on the first row.
    first = problems()[0]
    run_engine(first, args.restarts, 0, False)
    for run in (run_de, run_da, run_bh):
        run(first, 100, 0)
    header = f"{'problem':<28} {'method':<22} {'success':>8} {'evals':>7} {'seconds':>8}"
    print(header)
    print("-" * len(header))
    for problem in problems():
        if args.only and args.only not in problem.name:
            continue
        compare(problem, args.seeds, args.restarts)
        sys.stdout.flush()


def compare(problem: Problem, seeds: int, restarts: int) -> None:
    rows: dict[str, list[tuple[bool, int, float]]] = {}

    def record(method: str, run: Callable[..., tuple[float, int]], *args: Any) -> int:
        t = time.perf_counter()
        loss, evals = run(problem, *args)
        rows.setdefault(method, []).append((loss < SUCCESS, evals, time.perf_counter() - t))
        return evals

    # The engine first, for the budget (its runs are reproducible: the same seed, the same
    # evaluations); then every method, seed by seed, timed interleaved so that a busy machine
    # slows them all alike.
    budget = max(run_engine(problem, restarts, s, False)[1] for s in range(seeds))
    for seed in range(seeds):
        record("screened restarts", run_engine, restarts, seed, False)
        record("uniform restarts", run_engine, restarts, seed, True)
        record("differential_evolution", run_de, budget, seed)
        record("dual_annealing", run_da, budget, seed)
        record("basinhopping", run_bh, budget, seed)
    for method, results in rows.items():
        wins = sum(ok for ok, _, _ in results)
        evals = statistics.median(e for _, e, _ in results)
        seconds = statistics.median(s for _, _, s in results)
        print(
            f"{problem.name:<28} {method:<22} {wins:>4}/{len(results):<3} "
            f"{evals:>7.0f} {seconds:>8.3f}"
        )
    print(f"{'':<28} (scipy budget: {budget} evaluations)")


if __name__ == "__main__":
    main()
