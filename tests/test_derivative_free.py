"""Fits without any gradient: ``--fit-method powell`` and ``--fit-method nelder-mead`` tune
implementations that autograd cannot trace (``math``, ``float()``, in-place assignment), within
the bounds, with restarts and hold-out, and say that no gradient was used."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from test_examples import (
    LOSS,
    example_globals,  # noqa: F401  (a fixture)
    fit_section,
    numbers,
    run,
    written_parameters,
)

from pytest_soft.fit import Term, TracingError, fit

# An implementation autograd cannot differentiate: math functions, float() and assignment into
# an array. y = amplitude * exp(-rate * x) + offset.
MATH_IMPL = """
    import math
    import numpy as np
    from pytest_soft import Param, Parameters

    theta = Parameters(
        amplitude=Param(1.0, bounds=(0.0, 10.0)),
        rate=Param(0.1, bounds=(0.0, 5.0)),
        offset=Param(0.0, bounds=(-1.0, 0.25)),
    )

    def f(x):
        out = np.zeros(1)
        out[0] = float(theta.amplitude) * math.exp(-float(theta.rate) * x)
        return float(out[0]) + theta.offset
"""

# Data of amplitude 2.5, rate 0.8, offset 0.3: the offset's upper bound (0.25) binds.
MATH_TESTS = """
    import math
    import pytest
    from pytest_soft import soft_test
    import impl

    POINTS = [(0.25 * i, 2.5 * math.exp(-0.8 * 0.25 * i) + 0.3) for i in range(20)]

    @soft_test
    @pytest.mark.parametrize("x, y", POINTS)
    def test_decay(x, y):
        return (impl.f(x) - y) ** 2
"""


def math_terms(module) -> list[Term]:
    points = [(0.25 * i, 2.5 * math.exp(-0.8 * 0.25 * i) + 0.3) for i in range(20)]
    return [
        Term(f"t{i}", lambda x=x, y=y: (module.f(x) - y) ** 2) for i, (x, y) in enumerate(points)
    ]


def best_within_bounds() -> tuple[float, float]:
    """The least-squares amplitude and rate with the offset at its bound 0.25 (a fine grid on
    the rate, the amplitude solved exactly for each)."""
    x = 0.25 * np.arange(20)
    y = 2.5 * np.exp(-0.8 * x) + 0.3 - 0.25
    from scipy.optimize import minimize_scalar

    def rss(rate: float) -> float:
        e = np.exp(-rate * x)
        a = float(e @ y / (e @ e))
        return float(np.sum((a * e - y) ** 2))

    rate = minimize_scalar(rss, bounds=(0.0, 5.0), method="bounded", options={"xatol": 1e-12}).x
    e = np.exp(-rate * x)
    return float(e @ y / (e @ e)), float(rate)


@pytest.mark.parametrize("method", ["powell", "nelder-mead"])
def test_code_autograd_cannot_trace_is_fitted_within_its_bounds(import_module, method) -> None:
    module = import_module("decay", MATH_IMPL)
    result = fit(math_terms(module), method=method)
    assert result.method == method
    assert result.gradient_evaluations == 0
    assert result.converged, result.stop_reason
    after = {c.full_name: c.after for c in result.parameters}
    assert after["decay.offset"] == pytest.approx(0.25, abs=1e-6)  # the bound holds
    amplitude, rate = best_within_bounds()
    assert after["decay.amplitude"] == pytest.approx(amplitude, rel=1e-4)
    assert after["decay.rate"] == pytest.approx(rate, rel=1e-4)
    assert not result.uncertainty.available
    assert method in result.uncertainty.note


def test_the_tracing_error_points_to_the_derivative_free_methods(import_module) -> None:
    module = import_module("decay", MATH_IMPL)
    with pytest.raises(TracingError) as caught:
        fit(math_terms(module))
    assert "--fit-method powell or --fit-method nelder-mead" in str(caught.value)


def test_pytest_fit_with_powell_fits_a_math_implementation(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(impl=MATH_IMPL, test_soft=MATH_TESTS)
    traced = pytester.runpytest("--fit")
    assert traced.ret != 0
    traced.stdout.fnmatch_lines(["*--fit-method powell or --fit-method nelder-mead*"])

    result = pytester.runpytest("--fit", "--fit-method", "powell", "--soft-json", "r.json")
    assert result.ret == 0
    section = fit_section(result)
    assert "method powell (scipy's Powell on the suite loss; no gradient used)" in section
    assert any(" loss and 0 gradient evaluations" in line for line in section)
    assert section[-1] == "wrote impl.params.json"
    values = json.loads((pytester.path / "impl.params.json").read_text())["parameters"]
    amplitude, rate = best_within_bounds()
    assert values["amplitude"] == pytest.approx(amplitude, rel=1e-4)
    assert values["rate"] == pytest.approx(rate, rel=1e-4)
    assert values["offset"] == pytest.approx(0.25, abs=1e-6)
    report = json.loads((pytester.path / "r.json").read_text())["fit"]
    assert report["method"] == "powell"
    assert all(p["stderr"] is None for p in report["parameters"])
    assert report["uncertainty_note"].startswith("no standard errors")


def test_sine_example_with_nelder_mead_and_restarts_finds_omega(pytester) -> None:
    result = run(pytester, "sine", "--fit", "--fit-method", "nelder-mead", "--fit-restarts", "10")
    assert result.ret == 0
    section = fit_section(result)
    assert any(line.startswith("method nelder-mead") for line in section)
    assert any("over 11 of 11 starts" in line for line in section)
    _, after = numbers(section, LOSS)
    assert after < 1e-10
    assert written_parameters(pytester.path / "sine.params.json")["omega"] == pytest.approx(
        1.5, abs=1e-6
    )


@pytest.mark.parametrize("method", ["powell", "nelder-mead"])
def test_linear_example_matches_lstsq_and_keeps_its_holdout(
    pytester,
    example_globals,  # noqa: F811  (the fixture imported above)
    method,
) -> None:
    result = run(pytester, "linear", "--fit", "--fit-method", method)
    assert result.ret == 0
    data = example_globals("linear", "test_linear.py")
    design = np.column_stack([data["X"], np.ones(len(data["Y"]))])
    expected = np.linalg.lstsq(design, data["Y"], rcond=None)[0]
    fitted = written_parameters(pytester.path / "linear.params.json")
    np.testing.assert_allclose(np.append(fitted["w"], fitted["b"]), expected, atol=1e-5)

    (pytester.path / "linear.params.json").unlink()
    held = run(pytester, "linear", "--fit", "--fit-method", method, "--fit-holdout", "0.2")
    assert held.ret == 0
    before, after = numbers(
        fit_section(held), r"^held-out loss \(20 soft tests kept out of the fit\) (\S+) -> (\S+)"
    )
    assert after < 0.01 * before
