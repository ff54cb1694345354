"""How well a fit determines its parameters: the standard errors and correlations of
pytest_soft._uncertainty on constructed problems against the textbook formulas, the fit engine's
standard errors against NIST's certified ones, and what ``pytest --fit`` and the reports show."""

from __future__ import annotations

import functools
import json
import math
import warnings
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from autograd.tracer import getval
from test_examples import NIST_PROBLEMS, fit_section

from pytest_soft.fit import Term, fit
from pytest_soft.fit._uncertainty import element_names, estimate, merge
from pytest_soft.report import render_fit

# -- the math on constructed problems -------------------------------------------------------------


def linear_problem(seed: int = 1, n: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A design matrix X (n, 3), observations y and the least-squares coefficients."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=n)
    design = np.column_stack([np.ones(n), x, x**2])
    y = design @ np.array([0.5, -1.0, 2.0]) + rng.normal(scale=0.3, size=n)
    beta = np.linalg.lstsq(design, y, rcond=None)[0]
    return design, y, beta


@pytest.mark.compat
def test_linear_model_matches_the_textbook_covariance() -> None:
    design, y, beta = linear_problem()
    residuals = design @ beta - y
    n, p = design.shape
    s2 = float(residuals @ residuals) / (n - p)
    covariance = s2 * np.linalg.inv(design.T @ design)
    expected = np.sqrt(np.diag(covariance))

    u = estimate(residuals, design, [("m.a", ()), ("m.b", ()), ("m.c", ())])

    assert u.available and u.note == ""
    assert u.names == ("m.a", "m.b", "m.c")
    got = [u.stderr[name] for name in u.names]
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    np.testing.assert_allclose(u.correlation, covariance / np.outer(expected, expected), rtol=1e-9)
    assert u.residual_variance == pytest.approx(s2)
    assert u.undetermined == ()


def test_array_parameters_get_per_element_errors_shaped_like_the_value() -> None:
    design, y, beta = linear_problem(seed=2)
    residuals = design @ beta - y
    # The three coefficients as one parameter of shape (1, 3) and nothing else.
    u = estimate(residuals, design, [("m.W", (1, 3))])
    reference = estimate(residuals, design, [("a", ()), ("b", ()), ("c", ())])
    assert u.names == ("m.W[0,0]", "m.W[0,1]", "m.W[0,2]")
    assert u.stderr["m.W"].shape == (1, 3)
    np.testing.assert_allclose(
        u.stderr["m.W"].ravel(), [reference.stderr[k] for k in "abc"], rtol=1e-12
    )
    assert element_names("w", (2, 2)) == ["w[0,0]", "w[0,1]", "w[1,0]", "w[1,1]"]
    assert element_names("w", (3,)) == ["w[0]", "w[1]", "w[2]"]


def test_a_pair_that_enters_only_through_its_product_is_undetermined() -> None:
    # y = a * b * x + c at a = 2, b = 3: the columns for a and b are b x and a x, proportional.
    rng = np.random.default_rng(3)
    x = np.linspace(0, 1, 40)
    y = 6.0 * x + 1.0 + rng.normal(scale=0.05, size=x.size)
    reduced = np.column_stack([x, np.ones_like(x)])
    k, c = np.linalg.lstsq(reduced, y, rcond=None)[0]
    a, b = 2.0, k / 2.0
    residuals = a * b * x + c - y
    jacobian = np.column_stack([b * x, a * x, np.ones_like(x)])

    u = estimate(residuals, jacobian, [("m.a", ()), ("m.b", ()), ("m.c", ())])

    assert [g.names for g in u.undetermined] == [("m.a", "m.b")]
    assert not u.undetermined[0].unused
    assert "only a combination of them" in u.undetermined[0].describe()
    assert math.isnan(u.stderr["m.a"]) and math.isnan(u.stderr["m.b"])
    # c is still determined: its error is the one of the model y = k x + c, with the residual
    # variance over n - 3 fitted values.
    s2 = float(residuals @ residuals) / (x.size - 3)
    expected = math.sqrt(s2 * np.linalg.inv(reduced.T @ reduced)[1, 1])
    assert u.stderr["m.c"] == pytest.approx(expected, rel=1e-8)
    assert np.isnan(u.correlation[0]).all() and u.correlation[2, 2] == 1.0


def test_a_parameter_nothing_depends_on_is_undetermined_and_named() -> None:
    design, y, beta = linear_problem(seed=4)
    residuals = design @ beta - y
    jacobian = np.column_stack([design[:, :2], np.zeros(len(y)), design[:, 2]])
    u = estimate(residuals, jacobian, [("m.v", (2,)), ("m.unused", ()), ("m.c", ())])
    assert [(g.names, g.unused) for g in u.undetermined] == [(("m.unused",), True)]
    assert "no selected soft test's score depends on it" in u.undetermined[0].describe()
    assert math.isnan(u.stderr["m.unused"])
    reference = estimate(residuals, design, [("a", ()), ("b", ()), ("c", ())])
    # With 4 fitted values, s² has one degree of freedom fewer than the reference's.
    n = len(y)
    dof = math.sqrt((n - 3) / (n - 4))
    expected = [reference.stderr[k] * dof for k in "abc"]
    np.testing.assert_allclose(u.stderr["m.v"], expected[:2], rtol=1e-10)
    assert u.stderr["m.c"] == pytest.approx(expected[2], rel=1e-10)


def test_no_degrees_of_freedom_or_an_exact_fit_give_a_note_not_numbers() -> None:
    jacobian = np.array([[1.0, 0.0], [0.0, 1.0]])
    tight = estimate(np.array([0.1, 0.2]), jacobian, [("m.a", ()), ("m.b", ())])
    assert not tight.available and "no degrees of freedom" in tight.note
    exact = estimate(np.zeros(3), np.ones((3, 1)), [("m.a", ())])
    assert not exact.available and "every residual is exactly 0" in exact.note
    assert math.isnan(exact.stderr["m.a"])


def test_merged_blocks_keep_their_errors_and_are_uncorrelated() -> None:
    design, y, beta = linear_problem(seed=5)
    r = design @ beta - y
    one = estimate(r, design[:, :2], [("p.a", ()), ("p.b", ())])
    two = estimate(r, design[:, 2:], [("q.c", ())])
    both = merge([two, one])
    assert both.names == ("p.a", "p.b", "q.c")
    assert both.stderr == {**one.stderr, **two.stderr}
    assert both.correlation[0, 2] == 0.0 and both.correlation[0, 1] == one.correlation[0, 1]


TWO_GROUPS = """
    from pytest_soft import Parameters

    theta = Parameters(a=0.0, b=0.0)
"""
NOISE = (0.1, -0.05, 0.02)


def two_group_terms(module: ModuleType, coupled: bool) -> list[Term]:
    """Three scores of a and three of b; when ``coupled``, b's scores also read a, but only once
    b has moved past 1, so at the start the two groups look independent."""
    theta = module.theta

    def first(y: float) -> Any:
        return (theta.a - y) ** 2

    def second(y: float) -> Any:
        b = theta.b
        extra = (theta.a - 0.2 - y) ** 2 if coupled and getval(b) > 1.0 else 0.0
        return (b - 3.0 - y) ** 2 + extra

    return [Term(f"first{i}", lambda y=y: first(y)) for i, y in enumerate(NOISE)] + [
        Term(f"second{i}", lambda y=y: second(y)) for i, y in enumerate(NOISE)
    ]


def test_independent_groups_get_their_own_errors_and_no_correlation(import_module) -> None:
    module = import_module("twogroups", TWO_GROUPS)
    result = fit(two_group_terms(module, coupled=False), method="lsq")
    assert result.blocks == 2 and result.verified and not result.notes
    u = result.uncertainty
    assert u.names == ("twogroups.a", "twogroups.b") and u.residuals == 6 and u.fitted == 2
    # Each group: 3 residuals about their mean, s² = sum of squares / 2, stderr = sqrt(s² / 3).
    spread = math.sqrt(np.var(NOISE, ddof=1) / 3)
    assert u.stderr["twogroups.a"] == pytest.approx(spread, rel=1e-6)
    assert u.stderr["twogroups.b"] == pytest.approx(spread, rel=1e-6)
    assert u.correlation[0, 1] == 0.0
    assert any("each of the 2 independent parameter groups" in line for line in render_fit(result))


def test_groups_refitted_as_one_report_the_errors_of_the_one_fit(import_module) -> None:
    module = import_module("coupled", TWO_GROUPS)
    result = fit(two_group_terms(module, coupled=True), method="lsq")
    # The verification found that the groups interact and refitted them as one: the standard
    # errors are those of that fit, over all six residuals, with a and b now correlated.
    assert any("turned out to interact" in note for note in result.notes), result.notes
    assert result.blocks == 1 and result.verified
    u = result.uncertainty
    assert u.available and u.residuals == 6 and u.fitted == 2
    assert u.names == ("coupled.a", "coupled.b")
    # Fitted separately, a and b would be uncorrelated (exactly 0); fitted as one they are not,
    # and the errors are those of the residuals sqrt(score) at the reported point.
    assert u.correlation[0, 1] != 0.0
    after = {c.full_name: float(c.after) for c in result.parameters}
    point = np.array([after["coupled.a"], after["coupled.b"]])

    def residuals(ab: np.ndarray) -> np.ndarray:
        a, b = ab
        return np.array(
            [abs(a - y) for y in NOISE]
            + [math.sqrt((b - 3.0 - y) ** 2 + (a - 0.2 - y) ** 2) for y in NOISE]
        )

    h = 1e-6
    jacobian = np.column_stack(
        [(residuals(point + h * e) - residuals(point - h * e)) / (2 * h) for e in np.eye(2)]
    )
    expected = estimate(residuals(point), jacobian, [("coupled.a", ()), ("coupled.b", ())])
    for name in u.names:
        assert u.stderr[name] == pytest.approx(expected.stderr[name], rel=1e-5)


# -- the engine: NIST certified standard deviations ------------------------------------------------


@pytest.mark.parametrize("start", [1, 2])
@pytest.mark.parametrize("name", NIST_PROBLEMS)
def test_nist_standard_errors_match_the_certified_ones(nist, name: str, start: int) -> None:
    module = nist[name]
    test = getattr(nist["test_" + name], f"test_{name.lower()}")
    problem = module.PROBLEM
    x = np.array([o[0] for o in problem.observations])
    y = np.array([o[1] for o in problem.observations])
    module.theta.update(problem.start_values(start))
    term = Term(f"test_{name.lower()}", functools.partial(test, x, y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit([term])
    u = result.uncertainty
    assert u is not None and u.available, u and u.note
    got = [u.stderr[f"{name.lower()}.{b}"] for b in problem.names]
    np.testing.assert_allclose(got, problem.certified_sd, rtol=1e-3, err_msg=f"start {start}")
    assert u.undetermined == ()


# -- the engine: methods and undetermined parameters -------------------------------------------


PRODUCT = """
    import autograd.numpy as np
    from pytest_soft import Parameters

    theta = Parameters(a=1.0, b=1.0, c=0.0)

    def f(x):
        return theta.a * theta.b * x + theta.c
"""


def product_terms(module: ModuleType) -> list[Term]:
    x = np.linspace(0, 1, 20)
    y = 6.0 * x + 1.0 + 0.01 * np.sin(17 * x)
    return [
        Term(f"t{i}", lambda xi=xi, yi=yi: (module.f(xi) - yi) ** 2)
        for i, (xi, yi) in enumerate(zip(x, y))
    ]


def test_fit_of_a_product_pair_succeeds_and_names_the_pair(import_module) -> None:
    module = import_module("product", PRODUCT)
    result = fit(product_terms(module))
    assert result.improved and result.loss_after < 1e-2
    u = result.uncertainty
    assert [g.names for g in u.undetermined] == [("product.a", "product.b")]
    assert math.isnan(u.stderr["product.a"]) and u.stderr["product.c"] > 0
    assert u.correlation is not None


def test_methods_other_than_least_squares_give_no_standard_errors(import_module) -> None:
    module = import_module("product", PRODUCT)
    result = fit(product_terms(module), method="lbfgs", params=["product.a", "product.c"])
    u = result.uncertainty
    assert not u.available
    assert u.note.startswith("no standard errors: they need the least-squares method")
    assert "lbfgs" in u.note


# -- what pytest --fit and the reports show ------------------------------------------------------


IMPL = """
    import autograd.numpy as np
    from pytest_soft import Parameters

    theta = Parameters(a=1.0, b=1.0, c=0.0, w=np.zeros(2))

    def f(x):
        return theta.a * theta.b * x + theta.c + theta.w[0] * x ** 2 + theta.w[1] * x ** 3
"""

TESTS = """
    import numpy as np
    import pytest
    from pytest_soft import soft_test
    import impl

    X = np.linspace(-1, 1, 25)
    Y = 3 * X + 0.5 + 0.2 * X ** 2 - 0.1 * X ** 3 + 0.01 * np.cos(40 * X)

    @soft_test
    @pytest.mark.parametrize("x, y", list(zip(X.tolist(), Y.tolist())))
    def test_point(x, y):
        return (impl.f(x) - y) ** 2
"""


@pytest.mark.compat
def test_fit_section_and_reports_show_errors_correlations_and_the_undetermined_pair(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(impl=IMPL, test_soft=TESTS)
    result = pytester.runpytest(
        "--fit", "--soft-json", "report.json", "--soft-md", "report.md", "--soft-html", "r.html"
    )
    assert result.ret == 0
    section = fit_section(result)
    (c_line,) = [line for line in section if line.startswith("  impl.c ")]
    assert " ± " in c_line
    (w_line,) = [line for line in section if line.startswith("  impl.w ")]
    assert "stderr median" in w_line
    assert any(line.startswith("± standard errors from s² (JᵀJ)⁻¹") for line in section)
    (warning,) = [line for line in section if "only a combination" in line]
    assert "impl.a and impl.b" in warning and "--fit-params" in warning
    # a and b have no error to show
    (a_line,) = [line for line in section if line.startswith("  impl.a ")]
    assert "±" not in a_line and a_line.endswith("(not determined: no standard error)")

    report = json.loads((pytester.path / "report.json").read_text(encoding="utf-8"))["fit"]
    by_name = {p["name"]: p for p in report["parameters"]}
    assert by_name["impl.a"]["stderr"] is None
    assert isinstance(by_name["impl.c"]["stderr"], float) and by_name["impl.c"]["stderr"] > 0
    w_err = by_name["impl.w"]["stderr"]
    assert isinstance(w_err, list) and len(w_err) == 2 and all(e > 0 for e in w_err)
    names = report["correlation"]["names"]
    assert names == ["impl.a", "impl.b", "impl.c", "impl.w[0]", "impl.w[1]"]
    matrix = report["correlation"]["matrix"]
    assert len(matrix) == 5 and all(len(row) == 5 for row in matrix)
    assert matrix[2][2] == 1.0 and matrix[0][0] is None
    assert report["undetermined"][0]["names"] == ["impl.a", "impl.b"]

    markdown = (pytester.path / "report.md").read_text(encoding="utf-8")
    assert "± stderr" in markdown and "impl.a and impl.b" in markdown
    html = (pytester.path / "r.html").read_text(encoding="utf-8")
    assert "± stderr" in html and "impl.a and impl.b" in html
