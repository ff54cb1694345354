"""A fit you can trust: fast paths proved where the fit goes, the fitted point verified the
exact way before anything is written, the run after the fit measuring what the fit reported,
and convergence stated honestly."""

from __future__ import annotations

import json
import re

import autograd.numpy as anp
import numpy as np
import pytest
from autograd.tracer import getval
from test_fit_plugin import fit_section

from pytest_soft.batch import Case, build_terms
from pytest_soft.errors import FitError
from pytest_soft.fit import Term, fit

# -- the reduction that slipped through: np.sum over a case's own vector ---------------------

LIN = """
    import autograd.numpy as np
    from pytest_soft import Parameters

    theta = Parameters(w=np.zeros(3), b=0.0)

    def predict(x):                      # x: one case's feature vector, shape (3,)
        return np.sum(theta.w * x) + theta.b
"""

W_TRUE, B_TRUE = np.array([0.5, -1.25, 2.0]), 0.75


def _points() -> list[tuple[list[float], float]]:
    rng = np.random.default_rng(7)
    xs = rng.normal(size=(20, 3))
    return [(x.tolist(), float(x @ W_TRUE + B_TRUE)) for x in xs]


def _lin_tests(batch: bool = True) -> str:
    mark = "@soft_test" if batch else "@soft_test(batch=False)"
    return f"""
    import pytest
    from pytest_soft import soft_test
    import lin

    POINTS = {_points()!r}

    {mark}
    @pytest.mark.parametrize("x, y", POINTS)
    def test_point(x, y):
        return (lin.predict(x) - y) ** 2
"""


def _suite_loss(result: pytest.RunResult) -> float:
    line = next(line for line in result.outlines if "suite loss" in line)
    return float(re.search(r"suite loss (\S+)", line).group(1))


def test_a_reduction_over_a_cases_own_vector_fits_to_the_per_case_optimum(pytester):
    pytester.makepyfile(lin=LIN, test_lin=_lin_tests())
    fitted = pytester.runpytest("--fit")
    assert fitted.ret == 0
    fit = fit_section(fitted)
    # The batch agrees at the start (w = 0) but not away from it: it is refused, with a reason.
    notes = [line for line in fit if line.startswith("note: test_lin.py::test_point: 20 cases")]
    assert len(notes) == 1, fit
    assert "evaluated one by one (away from the start, the batched call scored case" in notes[0]
    assert "the body is not elementwise" in notes[0]
    assert not any(line.startswith("batched ") for line in fit)
    stored = json.loads((pytester.path / "lin.params.json").read_text())["parameters"]
    np.testing.assert_allclose(stored["w"], W_TRUE, rtol=1e-8)
    assert stored["b"] == pytest.approx(B_TRUE, rel=1e-8)

    # The run after the fit measures the loss the fit reported.
    after = float(
        re.search(r"^loss \S+ -> (\S+)", next(x for x in fit if x.startswith("loss ")))[1]
    )
    plain = pytester.runpytest()
    assert plain.ret == 0
    assert _suite_loss(plain) == pytest.approx(after, rel=1e-6, abs=1e-20)

    # The same parameters as the fit that never batches.
    (pytester.path / "lin.params.json").unlink()
    pytester.makepyfile(test_lin=_lin_tests(batch=False))
    exact = pytester.runpytest("--fit")
    assert exact.ret == 0
    again = json.loads((pytester.path / "lin.params.json").read_text())["parameters"]
    np.testing.assert_allclose(stored["w"], again["w"], rtol=1e-8)
    assert stored["b"] == pytest.approx(again["b"], rel=1e-8)


@pytest.mark.compat
def test_the_run_after_the_fit_confirms_its_loss(pytester):
    pytester.makepyfile(
        impl="""
            from pytest_soft import Param, Parameters
            theta = Parameters(a=Param(0.0, bounds=(-5.0, 5.0)))
        """,
        test_soft="""
            import pytest
            from pytest_soft import soft_test
            import impl

            @soft_test
            @pytest.mark.parametrize("t", [1.0, 2.0, 4.0])
            def test_t(t):
                return (impl.theta.a - t) ** 2
        """,
    )
    result = pytester.runpytest("--fit")
    assert result.ret == 0
    line = next(x for x in result.outlines if x.startswith("fit check: "))
    assert line == (
        "fit check: this run's scores of the 3 soft test(s) the fit scored match the fit's "
        "after scores (their loss 4.66667)"
    )


def test_a_score_that_changes_between_calls_is_named_by_the_fit_check(pytester):
    pytester.makepyfile(
        impl="""
            from pytest_soft import Param, Parameters
            theta = Parameters(a=Param(0.0, bounds=(-5.0, 5.0)))
            calls = [0]
        """,
        test_soft="""
            from pytest_soft import soft_test
            import impl

            @soft_test
            def test_drifting():
                # Steady while the fit records it and checks it once more, drifting after.
                impl.calls[0] += 1
                return (impl.theta.a - 1.0) ** 2 + 0.01 * max(0, impl.calls[0] - 2)

            @soft_test
            def test_steady():
                return (impl.theta.a - 1.5) ** 2
        """,
    )
    result = pytester.runpytest("--fit", "--fit-dry-run")
    assert result.ret == 0
    fit = fit_section(result)
    assert any(
        line.startswith("note: the suite's loss at the fitted point is ")
        and "some soft test's score changes from one call to the next" in line
        for line in fit
    ), fit
    line = next(x for x in result.outlines if x.startswith("fit check: "))
    assert line.startswith("fit check: 1 of 2 soft test(s) scored differently in this run")
    assert "test_soft.py::test_drifting (fit " in line
    assert "test_steady" not in line


# -- verify before writing (engine level) ------------------------------------------------------

IMPL = """
    from pytest_soft import Param, Parameters

    theta = Parameters(a=Param(0.0, bounds=(-10.0, 10.0)), b=Param(0.0, bounds=(-10.0, 10.0)))
"""


@pytest.fixture
def impl(import_module):
    return import_module("trustimpl", IMPL)


def test_a_batch_wrong_only_near_the_optimum_is_caught_at_the_fitted_point(impl):
    xs = np.linspace(0.5, 2.0, 8)

    def exact_score(x):
        return (impl.theta.a * x - 2.0 * x) ** 2

    def batched():
        a = impl.theta.a
        # Right everywhere except close to the optimum a = 2, where it pulls towards 1.8:
        # the checks at the start and at the drawn points cannot see it.
        slope = 1.8 if abs(getval(a) - 2.0) < 0.3 else 2.0
        return (a * xs - slope * xs) ** 2

    names = [f"test_f[{i}]" for i in range(len(xs))]
    exact = [Term(n, lambda x=x: exact_score(x)) for n, x in zip(names, xs)]
    term = Term("test_f", batched, case_names=names, exact=exact)
    result = fit([term], params=["trustimpl.a"])

    assert any(
        "the batched call did not match the cases' own calls at the fitted point" in note
        and "refitted with its 8 cases one by one" in note
        for note in result.notes
    ), result.notes
    (change,) = result.parameters
    assert change.after == pytest.approx(2.0, rel=1e-8)
    assert result.verified
    # The reported loss is the suite's own at the written values.
    assert result.loss_after == pytest.approx(0.0, abs=1e-20)
    assert result.improved


def test_groups_that_turn_out_to_interact_are_refitted_as_one(impl):
    theta = impl.theta

    def first():
        return (theta.a - 1.0) ** 2

    def second():
        b = theta.b
        # Reads a only once b has moved past 1: at the start the two look independent.
        extra = (theta.a - 2.0) ** 2 if getval(b) > 1.0 else 0.0
        return (b - 3.0) ** 2 + extra

    result = fit([Term("first", first), Term("second", second)])
    assert any("turned out to interact" in note for note in result.notes), result.notes
    after = {c.full_name: c.after for c in result.parameters}
    assert after["trustimpl.a"] == pytest.approx(1.5, rel=1e-6)
    assert after["trustimpl.b"] == pytest.approx(3.0, rel=1e-6)
    assert result.loss_after == pytest.approx(0.5, rel=1e-9)


def test_a_batch_is_checked_on_its_gradient_too(impl):
    xs = np.linspace(-1.0, 1.0, 6)

    def body(x):
        return (impl.theta.a * x - 0.5) ** 2

    cases = [
        Case(f"test_g[{i}]", body, {"x": float(x)}, 1.0, None, float(body(float(x))), "g")
        for i, x in enumerate(xs)
    ]
    (term,), notes = build_terms(cases)
    assert notes == [] and term.exact is not None
    good = fit([term])
    assert good.batches == [
        "batched test_g: 6 cases in one call (checked against their own calls at 3 points)"
    ]
    assert good.notes == []

    # The same scores, but a gradient that leaks across the cases: refused on the gradient.
    stacked = np.array(xs)

    def leaky():
        a = impl.theta.a
        scores = (a * stacked - 0.5) ** 2
        mean = anp.mean(scores)
        return scores + (mean - getval(mean))  # the same values, a gradient that mixes cases

    leak = Term("test_g", leaky, case_names=term.case_names, exact=term.exact)
    result = fit([leak])
    assert result.batches == []
    assert len(result.notes) == 1
    assert result.notes[0].startswith(
        "test_g: 6 cases evaluated one by one (away from the start, the batched call's "
        "gradient differs from the cases' own"
    )
    assert result.parameters[0].after == pytest.approx(good.parameters[0].after, rel=1e-8)


# -- honest convergence ------------------------------------------------------------------------

SLOW = {
    "impl": """
        from pytest_soft import Param, Parameters
        theta = Parameters(a=Param(0.0, bounds=(-10.0, 10.0)), b=0.0)
    """,
    "test_soft": """
        from pytest_soft import soft_test
        import impl

        @soft_test
        def test_rosenbrock_like():
            a, b = impl.theta.a, impl.theta.b
            return (1.0 - a) ** 2 + 100.0 * (b - a**2) ** 2
    """,
}


def test_a_fit_stopped_by_its_iteration_limit_says_not_converged_first(pytester):
    pytester.makepyfile(**SLOW)
    result = pytester.runpytest("--fit", "--fit-max-iter", "2", "--soft-json", "out.json")
    assert result.ret == 0
    fit = fit_section(result)
    assert fit[0] == (
        "NOT CONVERGED: the fit stopped at its iteration limit before it converged (iteration "
        "limit (2)); the best parameters seen are kept. Raise --fit-max-iter and fit again."
    )
    assert "stopped: iteration limit (2)" in fit
    report = json.loads((pytester.path / "out.json").read_text())
    assert report["fit"]["converged"] is False
    assert not any("did not converge and convergence is required" in x for x in result.outlines)

    converged = pytester.runpytest("--fit", "--soft-json", "out.json")
    assert not any(x.startswith("NOT CONVERGED") for x in fit_section(converged))
    assert json.loads((pytester.path / "out.json").read_text())["fit"]["converged"] is True


@pytest.mark.compat
@pytest.mark.parametrize("how", ["option", "ini"])
def test_require_convergence_fails_the_run_and_keeps_the_written_parameters(pytester, how):
    pytester.makepyfile(**SLOW)
    args = ["--fit", "--fit-max-iter", "2"]
    if how == "option":
        args.append("--fit-require-convergence")
    else:
        pytester.makeini("[pytest]\nsoft_fit_require_convergence = true\n")
    result = pytester.runpytest(*args)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "the fit did not converge and convergence is required "
            "(--fit-require-convergence): the run fails"
        ]
    )
    # Every test itself passed: the run fails for the convergence alone.
    result.assert_outcomes(passed=1)
    # A converged fit passes with the same setting.
    assert pytester.runpytest(*args[:1], *args[3:]).ret == 0


def test_the_command_line_wins_over_the_ini_setting_for_require_convergence(pytester):
    pytester.makepyfile(**SLOW)
    pytester.makeini("[pytest]\nsoft_fit_require_convergence = false\n")
    assert pytester.runpytest("--fit", "--fit-max-iter", "2").ret == 0
    result = pytester.runpytest("--fit", "--fit-max-iter", "2", "--fit-require-convergence")
    assert result.ret == 1


def test_a_case_that_raises_on_its_own_at_the_start_is_a_clear_error(impl):
    xs = np.array([1.0, 2.0, 3.0])

    def own(x):
        if x == 2.0:
            raise ZeroDivisionError("the case's own call divides by zero")
        return (impl.theta.a * x - 1.0) ** 2

    names = [f"test_h[{i}]" for i in range(3)]
    term = Term(
        "test_h",
        lambda: (impl.theta.a * xs - 1.0) ** 2,
        case_names=names,
        exact=[Term(n, lambda x=x: own(x)) for n, x in zip(names, xs)],
    )
    with pytest.raises(FitError) as caught:
        fit([term])
    assert str(caught.value) == (
        "soft test test_h[1] raised ZeroDivisionError: the case's own call divides by zero when "
        "called on its own at the start. Fix it (or deselect it) before fitting."
    )
