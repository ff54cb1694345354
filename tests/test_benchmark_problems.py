"""The benchmark problem set (benchmarks/problems): every Moré-Garbow-Hillstrom formula gives the
published sum of squares at the published minimiser, and reaches the published minimum from
the standard start; and benchmarks/problem_set.py prints one line per problem and start and
passes with the engine's defaults."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from autograd import jacobian
from scipy.optimize import least_squares

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT / "benchmarks"))

from problems import MGH_PROBLEMS, ZERO, Problem, nist_problems, reached  # noqa: E402

BY_NAME = {p.name: p for p in MGH_PROBLEMS}


def test_the_set_is_the_papers_eighteen_problems() -> None:
    assert [p.source.split()[1] for p in MGH_PROBLEMS] == [str(i) for i in range(1, 19)]
    dimensions = {p.name: (p.n, len(p.residuals(list(p.starts["1"])))) for p in MGH_PROBLEMS}
    # (n, m) as published; m chosen where the paper leaves it open: 10, 99, 10, 20, 13.
    assert dimensions == {
        "Rosenbrock": (2, 2),
        "FreudensteinRoth": (2, 2),
        "PowellBadlyScaled": (2, 2),
        "BrownBadlyScaled": (2, 3),
        "Beale": (2, 3),
        "JennrichSampson": (2, 10),
        "HelicalValley": (3, 3),
        "Bard": (3, 15),
        "Gaussian": (3, 15),
        "Meyer": (3, 16),
        "GulfRD": (3, 99),
        "Box3D": (3, 10),
        "PowellSingular": (4, 4),
        "Wood": (4, 6),
        "KowalikOsborne": (4, 11),
        "BrownDennis": (4, 20),
        "Osborne1": (5, 33),
        "BiggsEXP6": (6, 13),
    }


@pytest.mark.parametrize(
    ("name", "x", "f", "exact"),
    [(p.name, x, f, exact) for p in MGH_PROBLEMS for x, f, exact in p.minimisers],
    ids=[f"{p.name}-{i}" for p in MGH_PROBLEMS for i in range(len(p.minimisers))],
)
def test_published_minimiser_gives_published_minimum(name: str, x, f: float, exact: bool) -> None:
    problem = BY_NAME[name]
    if exact:
        # Every exact published minimiser is a zero of the residuals (up to rounding).
        assert f == 0.0
        assert problem.sum_of_squares(x) <= 1e-20
        return
    # A minimiser published to a few digits: polished, it stays put and gives f.
    polished = _solve(problem, np.array(x, dtype=float))
    assert np.allclose(polished.x, x, rtol=2e-3, atol=1e-8), polished.x
    f_polished = float(np.dot(polished.fun, polished.fun))
    if f == 0.0:
        assert f_polished <= ZERO
    else:
        assert f_polished == pytest.approx(f, rel=problem.rtol)


@pytest.mark.parametrize("problem", MGH_PROBLEMS, ids=lambda p: p.name)
def test_scipy_reaches_the_published_minimum_from_the_standard_start(problem: Problem) -> None:
    result = _solve(problem, np.array(problem.starts["1"], dtype=float))
    f = float(np.dot(result.fun, result.fun))
    assert reached(problem, f) is not None, f


def test_reached_tells_minimum_local_minimum_and_miss_apart() -> None:
    bard, froth = BY_NAME["Bard"], BY_NAME["FreudensteinRoth"]
    assert reached(bard, 8.21487e-3) == "f*"
    assert reached(bard, 8.3e-3) is None
    assert reached(bard, 8.1e-3) is None  # below the published minimum: a wrong formula
    assert reached(froth, 48.98425) == "local"
    assert reached(froth, 1e-12) == "f*"
    assert reached(froth, 1e-6) is None


def test_nist_problems_give_the_certified_sum_of_squares_at_the_certified_values() -> None:
    problems = nist_problems()
    import strd  # examples/nist, on the path once nist_problems() has run

    assert [p.name for p in problems] == list(strd.PROBLEMS)
    for problem in problems:
        certified = strd.load(problem.name).certified
        assert problem.sum_of_squares(certified) == pytest.approx(problem.f_star, rel=1e-6)
        assert set(problem.starts) == {"1", "2"}


def test_problem_set_benchmark_prints_a_line_per_problem_and_start_and_passes() -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "problem_set.py"),
            "--repeats",
            "1",
            "FreudensteinRoth",
            "BrownDennis",
            "Misra1a",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    names = ("FreudensteinRoth", "BrownDennis", "Misra1a")
    lines = [line for line in out.stdout.splitlines() if line.startswith(names)]
    # One line per problem and start: the name, then the start in its column.
    assert [(line.split()[0], line[35:40].strip()) for line in lines] == [
        ("FreudensteinRoth", "1"),
        ("BrownDennis", "1"),
        ("Misra1a", "1"),
        ("Misra1a", "2"),
    ], lines
    rows = [line.split() for line in lines]
    verdicts = [[cell for cell in r if cell in ("ok", "local", "MISS")] for r in rows]
    assert verdicts[0] == ["local"] * 3  # the published local minimum 48.9842
    assert all(v == ["ok"] * 3 for v in verdicts[1:]), verdicts
    assert "reached a published minimum: pytest-soft 4 of 4" in out.stdout
    assert "target <= 2x: met" in out.stdout


def _solve(problem: Problem, x0: np.ndarray):
    def residuals(b):
        return problem.residuals([b[i] for i in range(problem.n)])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return least_squares(
            residuals, x0, jac=jacobian(residuals), ftol=1e-15, xtol=1e-15, gtol=1e-15
        )
