"""Fits that diverge: a learning rate that makes the loss explode, an implementation with a
singularity next to the start, a loss that turns NaN. The fit steps back or stops, says so,
keeps the best finite point, and never writes a value that is not finite."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from pytest_soft.fit import Term, fit
from pytest_soft.parameters import load_parameter_file

# Overflow on the way to an infinite loss is what these fits are about.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

# f has a pole at a = 1; the data want a = 3 (x / (3 - 1) = 0.5 x).
POLE = """\
import autograd.numpy as np
from pytest_soft import Parameters

theta = Parameters(a={start}, b=0.0)


def f(x):
    return x / (theta.a - 1.0) + theta.b
"""

# The square root is NaN for a < 1; the data want a = 5 (sqrt(4) = 2).
ROOT = """\
import autograd.numpy as np
from pytest_soft import Parameters

theta = Parameters(a={start}, b=0.0)


def f(x):
    return np.sqrt(theta.a - 1.0) * x + theta.b
"""

TESTS = """\
import pytest
from pytest_soft import soft_test
import impl


@soft_test
@pytest.mark.parametrize("x, y", [(1.0, {y1}), (2.0, {y2}), (3.0, {y3})])
def test_f(x, y):
    return (impl.f(x) - y) ** 2
"""

LR_1E6 = ("--fit-lr", "1e6")
CASES = [
    # (id, implementation, start, targets, arguments)
    ("sgd with lr 1e6 explodes", POLE, 1.5, (0.5, 1.0, 1.5), ("--fit-method", "sgd", *LR_1E6)),
    ("adam with lr 1e6 explodes", POLE, 1.5, (0.5, 1.0, 1.5), ("--fit-method", "adam", *LR_1E6)),
    ("sgd steps into NaN", ROOT, 1.5, (2.0, 4.0, 6.0), ("--fit-method", "sgd", "--fit-lr", "10")),
    ("adam steps into NaN", ROOT, 1.5, (2.0, 4.0, 6.0), ("--fit-method", "adam", "--fit-lr", "3")),
    *[
        (f"{method} next to a pole", POLE, 1.001, (0.5, 1.0, 1.5), ("--fit-method", method))
        for method in ("lsq", "lbfgs", "adam", "sgd")
    ],
    *[
        (f"{method} next to NaN", ROOT, 1.0001, (2.0, 4.0, 6.0), ("--fit-method", method))
        for method in ("lsq", "lbfgs")
    ],
]  # fmt: skip


def _loss_line(output: str) -> tuple[float, float]:
    match = re.search(r"^loss (\S+) -> (\S+)", output, re.MULTILINE)
    assert match, output
    return float(match[1]), float(match[2])


@pytest.mark.compat
@pytest.mark.parametrize(
    ("impl", "start", "targets", "args"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_diverging_fit_keeps_the_best_finite_point_and_writes_nothing_non_finite(
    pytester: pytest.Pytester, impl: str, start: float, targets: tuple[float, ...], args: tuple
) -> None:
    pytester.makepyfile(impl=impl.format(start=start))
    y1, y2, y3 = targets
    pytester.makepyfile(test_soft=TESTS.format(y1=y1, y2=y2, y3=y3))

    result = pytester.runpytest("-p", "no:cacheprovider", "--fit", "--fit-max-iter", "300", *args)
    output = result.stdout.str()

    assert result.ret == pytest.ExitCode.OK, output  # every soft test still gives its score
    before, after = _loss_line(output)
    assert math.isfinite(after) and after <= before
    assert "stopped: " in output
    path = pytester.path / "impl.params.json"
    if after < before:
        assert "wrote impl.params.json" in output
        stored = load_parameter_file(path)
        assert all(math.isfinite(v) for v in stored.values()), stored
        assert stored["a"] > 1.0  # on the finite side of the pole / the root
    else:
        assert "no parameter file written" in output
        assert not path.exists()


def test_the_fit_says_when_it_stepped_back_from_a_non_finite_loss(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(impl=POLE.format(start=1.5))
    pytester.makepyfile(test_soft=TESTS.format(y1=0.5, y2=1.0, y3=1.5))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--fit", "--fit-method", "sgd", "--fit-lr", "1e6"
    )
    result.stdout.re_match_lines(
        [r"stopped: .*\(the loss was non-finite at \d+ point\(s\); kept the best finite one\)"]
    )
    # The fit's own line says it; numpy's overflow warnings would only clutter the fit section.
    assert "RuntimeWarning" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize("method", ["lsq", "lbfgs", "adam", "sgd"])
def test_the_engine_never_returns_a_non_finite_point(import_module, method: str) -> None:
    module = import_module("root_impl", ROOT.format(start=1.5))
    xs = np.array([1.0, 2.0, 3.0])
    terms = [Term(f"x={x}", lambda x=x: (module.f(x) - 2.0 * x) ** 2) for x in xs]
    result = fit(terms, method=method, lr=50.0, max_iter=200)
    assert math.isfinite(result.loss_after) and result.loss_after <= result.loss_before
    for change in result.parameters:
        assert np.all(np.isfinite(change.after)), change
    result.apply()
    assert module.theta.a >= 1.0


def test_a_loss_overflowing_across_many_tests_stops_cleanly(tmp_path, monkeypatch):
    # Many terms whose scores overflow together: the suite loss is inf, never an
    # OverflowError from the exact sum.
    import importlib
    import sys

    from pytest_soft.fit import Term, fit

    (tmp_path / "overflowimpl.py").write_text(
        "from pytest_soft import Parameters\ntheta = Parameters(a=0.0)\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("overflowimpl", None)
    impl = importlib.import_module("overflowimpl")
    try:
        terms = [Term(f"t{i}", lambda i=i: (impl.theta.a * 1e150 - i) ** 2) for i in range(5)]
        result = fit(terms, method="sgd", lr=1e6, max_iter=20)
    finally:
        sys.modules.pop("overflowimpl", None)
    assert result.loss_after <= result.loss_before
    assert all(np.isfinite(np.asarray(c.after)).all() for c in result.parameters)
