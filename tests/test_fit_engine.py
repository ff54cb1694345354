"""The fit engine used directly, as a script or notebook would: hand-made Terms that read a
Parameters group declared in a real module written to a temporary directory. No pytest plugin
in between."""

from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from pytest_soft import SoftWarning
from pytest_soft.errors import FitError, ScoreError
from pytest_soft.fit import (
    MIN_IMPROVEMENT_ABS,
    MIN_IMPROVEMENT_REL,
    NothingToFit,
    Progress,
    Term,
    TracingError,
    fit,
    improved_enough,
    split_holdout,
)
from pytest_soft.fit._problem import score_vector
from pytest_soft.scores import check_score

# The implementation under fit: a line a * x + b (b bounded), a vector w, and a parameter that
# no term below reads.
MODEL = """
    import math

    import autograd.numpy as np
    import numpy as onp
    from autograd.tracer import getval

    from pytest_soft import Param, Parameters

    theta = Parameters(
        a=0.0,
        b=Param(0.0, bounds=(-1.0, 1.0)),
        w=np.zeros(3),
        never_read=5.0,
    )

    def line(x):
        return theta.a * x + theta.b

    def mix(x):
        return theta.w[0] + theta.w[1] * x + theta.w[2] * x * x
"""

XS = np.array([-2.0, -1.0, 0.0, 1.0, 2.0, 3.0])
A_TRUE, B_TRUE = 1.5, -0.25
YS = A_TRUE * XS + B_TRUE


@pytest.fixture
def load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ModuleType]]:
    """``load(source, name="model")``: write the module into tmp_path and import it for real."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    names: set[str] = set()

    def _load(source: str = MODEL, name: str = "model") -> ModuleType:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        sys.modules.pop(name, None)
        importlib.invalidate_caches()
        names.add(name)
        return importlib.import_module(name)

    yield _load
    for name in names:
        sys.modules.pop(name, None)


def line_term(model: ModuleType, name: str = "test_line", weight: float = 1.0) -> Term:
    """A vectorised term: one squared residual per data point."""
    return Term(name, lambda: (model.line(XS) - YS) ** 2, weight)


def point_terms(model: ModuleType) -> list[Term]:
    """One scalar term per data point."""
    return [
        Term(f"test_point[{i}]", lambda x=x, y=y: (model.line(x) - y) ** 2)
        for i, (x, y) in enumerate(zip(XS, YS))
    ]


def after(result, full_name: str):
    return next(p.after for p in result.parameters if p.full_name == full_name)


# -- convergence and the optimisers -----------------------------------------------------------


@pytest.mark.compat
@pytest.mark.parametrize(
    ("method", "options", "tolerance"),
    [
        ("lsq", {}, 1e-8),
        ("lbfgs", {}, 1e-5),
        ("adam", {"lr": 0.05, "max_iter": 3000}, 1e-2),
        ("sgd", {"lr": 0.01, "max_iter": 3000}, 1e-3),
    ],
)
def test_each_method_reaches_the_known_optimum(load, method, options, tolerance):
    model = load()
    result = fit([line_term(model)], method=method, **options)

    assert result.method == method
    assert after(result, "model.a") == pytest.approx(A_TRUE, abs=tolerance)
    assert after(result, "model.b") == pytest.approx(B_TRUE, abs=tolerance)
    assert result.loss_before == pytest.approx(float(np.sum(YS**2)))
    assert result.loss_after < 1e-3 * result.loss_before
    assert result.improved
    assert result.iterations >= 1 and result.loss_evaluations >= 1
    assert result.stop_reason
    # the groups themselves are left alone until apply()
    assert (model.theta.a, model.theta.b) == (0.0, 0.0)


def test_scalar_terms_and_a_vectorised_term_give_the_same_fit(load):
    model = load()
    vectorised = fit([line_term(model)], method="lsq")
    per_point = fit(point_terms(model), method="lsq")

    assert (vectorised.terms, vectorised.cases) == (1, 6)
    assert (per_point.terms, per_point.cases) == (6, 6)
    assert vectorised.loss_before == pytest.approx(per_point.loss_before)
    assert after(vectorised, "model.a") == pytest.approx(after(per_point, "model.a"), abs=1e-8)
    assert after(vectorised, "model.b") == pytest.approx(after(per_point, "model.b"), abs=1e-8)


@pytest.mark.parametrize("method", ["lsq", "lbfgs"])
def test_the_objective_is_the_weighted_sum_of_scores(load, method):
    model = load()
    # 3 (a - 0)^2 + 1 (a - 4)^2 is smallest at a = 1 (unweighted it would be 2).
    terms = [
        Term("test_zero", lambda: (model.theta.a - 0.0) ** 2, weight=3.0),
        Term("test_four", lambda: (model.theta.a - 4.0) ** 2, weight=1.0),
    ]
    result = fit(terms, method=method)

    assert after(result, "model.a") == pytest.approx(1.0, abs=1e-6)
    assert result.loss_before == pytest.approx(16.0)
    assert result.loss_after == pytest.approx(3.0 * 1.0 + 9.0, abs=1e-9)
    assert result.scores_before == pytest.approx({"test_zero": 0.0, "test_four": 16.0})
    assert result.scores_after == pytest.approx({"test_zero": 1.0, "test_four": 9.0}, abs=1e-6)


def test_auto_is_least_squares_for_losses_and_lbfgs_when_a_score_is_negative(load):
    model = load()
    assert fit([line_term(model)]).method == "lsq"

    # A score that goes below 0 (a log-likelihood-like objective, smallest at a = 2).
    negative = Term("test_negative", lambda: (model.theta.a - 2.0) ** 2 - 10.0)
    result = fit([negative])
    assert result.method == "lbfgs"
    assert after(result, "model.a") == pytest.approx(2.0, abs=1e-6)
    assert result.loss_after == pytest.approx(-10.0)


def test_auto_switches_to_lbfgs_when_a_score_goes_below_0_during_the_fit(load):
    model = load()
    # 5.25 at the start (so auto picks least squares), -1 at the optimum a = 2.5. (Centred
    # at 2, the first step, a trust region of 1 from a = 0, would land exactly on the score 0
    # at a = 1, the least-squares optimum, and never see a score below 0.)
    score = Term("test_dips", lambda: (model.theta.a - 2.5) ** 2 - 1.0)

    result = fit([score])
    assert result.method == "lbfgs"
    assert after(result, "model.a") == pytest.approx(2.5, abs=1e-6)
    assert result.loss_after == pytest.approx(-1.0)

    with pytest.raises(FitError, match=r"soft test test_dips scored -\S+, below 0"):
        fit([score], method="lsq")


def test_least_squares_refuses_a_negative_score_naming_the_test(load):
    model = load()
    negative = Term("test_negative", lambda: model.theta.a - 10.0)
    with pytest.raises(FitError, match=r"soft test test_negative scored -10\.0, below 0"):
        fit([negative], method="lsq")


@pytest.mark.compat
@pytest.mark.parametrize(
    ("method", "options"),
    [("lsq", {}), ("lbfgs", {}), ("adam", {"lr": 0.1, "max_iter": 300}), ("sgd", {"lr": 0.1})],
)
def test_bounds_are_respected(load, method, options):
    model = load()
    seen: list[float] = []

    def score():
        from autograd.tracer import getval

        seen.append(float(getval(model.theta.b)))
        return (model.theta.b - 3.0) ** 2  # the unbounded optimum, 3, is above the bound 1

    result = fit([Term("test_bounded", score)], method=method, **options)

    assert after(result, "model.b") == pytest.approx(1.0, abs=1e-6)
    assert after(result, "model.b") <= 1.0
    assert result.loss_after == pytest.approx(4.0, abs=1e-5)
    # (the gradient check steps 1e-6 either side of the start, which is inside the bounds)
    assert len(seen) > 3 and max(seen) <= 1.0 and min(seen) >= -1.0


def test_array_parameters_are_fitted_and_keep_their_shape(load):
    model = load()
    target = np.array([0.5, -1.0, 0.25])
    ys = target[0] + target[1] * XS + target[2] * XS**2
    result = fit([Term("test_mix", lambda: (model.mix(XS) - ys) ** 2)])

    (change,) = result.parameters
    assert change.full_name == "model.w"
    assert change.after.shape == (3,)
    np.testing.assert_allclose(change.after, target, atol=1e-8)
    assert result.scalars == 3


# -- what is fitted -----------------------------------------------------------------------------


def test_only_parameters_the_terms_read_are_fitted(load):
    model = load()
    result = fit([line_term(model)])
    assert [p.full_name for p in result.parameters] == ["model.a", "model.b"]


def test_params_restricts_the_fit_by_full_name_or_module_name(load):
    model = load()
    only_a = fit([line_term(model)], params=["model.a"])
    assert [p.full_name for p in only_a.parameters] == ["model.a"]
    # b stays at 0, so a is the least-squares slope through the origin
    assert after(only_a, "model.a") == pytest.approx(
        float(np.dot(XS, YS) / np.dot(XS, XS)), abs=1e-8
    )

    whole = fit([line_term(model)], params=["model"])
    assert [p.full_name for p in whole.parameters] == ["model.a", "model.b"]


def test_params_naming_something_no_term_reads_is_an_error(load):
    model = load()
    with pytest.raises(NothingToFit, match=r"model\.never_read.*model\.a, model\.b"):
        fit([line_term(model)], params=["model.never_read"])


def test_no_terms_or_no_parameters_read_is_nothing_to_fit(load):
    load()
    with pytest.raises(NothingToFit, match="no soft tests selected"):
        fit([])
    with pytest.raises(NothingToFit, match="read no declared parameter"):
        fit([Term("test_constant", lambda: 1.0)])


@pytest.mark.parametrize("method", ["lsq", "lbfgs"])
def test_a_parameter_no_score_depends_on_is_warned_about_and_the_others_are_fitted(load, method):
    model = load()
    terms = [line_term(model), Term("test_zero_times", lambda: 0.0 * model.theta.never_read)]
    with pytest.warns(SoftWarning, match=r"parameter 'model\.never_read'") as caught:
        result = fit(terms, method=method)
    assert len(caught) == 1  # a and b are not warned about
    assert after(result, "model.never_read") == 5.0
    assert any("model.never_read" in w for w in result.warnings)
    assert after(result, "model.a") == pytest.approx(A_TRUE, abs=1e-6)
    assert after(result, "model.b") == pytest.approx(B_TRUE, abs=1e-6)
    assert result.loss_after < 1e-10

    # the same with only unbounded parameters (scipy's unbounded least squares), all at 0
    theta = model.theta
    slope = Term("test_slope", lambda: (theta.a - 2.0) ** 2 + 0.0 * theta.w[0])
    with pytest.warns(SoftWarning, match=r"parameter 'model\.w'"):
        result = fit([slope], method=method)
    assert after(result, "model.a") == pytest.approx(2.0, abs=1e-6)
    assert result.loss_after < 1e-10


def test_a_parameter_with_gradient_0_only_at_the_start_is_fitted_without_a_warning(load):
    model = load()
    theta = model.theta
    # d/db is 0 while a is 0 (the start); the optimum is a = 1, b = 0.5.
    term = Term("test_product", lambda: (theta.a * theta.b - 0.5) ** 2 + (theta.a - 1.0) ** 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SoftWarning)
        result = fit([term], method="lsq")
    assert after(result, "model.a") == pytest.approx(1.0, abs=1e-6)
    assert after(result, "model.b") == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize(
    ("expression", "hint"),
    [
        ("float(model.theta.a) * 2.0", "float"),
        ("int(model.theta.a + 0.5) * 2.0", "float"),  # the hint covers float() and int()
        ("model.math.sin(model.theta.a)", "math"),
        ("model.np.asarray(model.theta.a) * 2.0", "asarray"),
        ("model.theta.w.dot(model.np.ones(3))", "np.dot"),
    ],
)
def test_code_that_breaks_tracing_is_a_clear_error(load, expression, hint):
    model = load()
    term = Term("test_broken", lambda: (eval(expression, {"model": model}) - 1.0) ** 2)
    with pytest.raises(TracingError) as caught:
        fit([term])
    message = str(caught.value)
    assert message.startswith("soft test test_broken: autograd cannot differentiate")
    assert hint in message
    assert "autograd.numpy" in message


def test_in_place_assignment_is_a_clear_error(load):
    model = load()

    def score():
        out = model.np.zeros(2)
        out[0] = model.theta.a  # in place: autograd cannot follow it
        return (out.sum() - 1.0) ** 2

    with pytest.raises(TracingError, match=r"(?s)test_inplace.*in place.*np\.stack"):
        fit([Term("test_inplace", score)])


def test_code_that_silently_loses_part_of_the_gradient_is_warned_about(load):
    model = load()

    def score():
        a = model.theta.a
        # The second use goes through a plain float: it runs, but autograd sees only the first.
        plain = model.onp.float64(model.getval(a))
        return (a + plain - 3.0) ** 2

    with pytest.warns(SoftWarning, match=r"disagrees with a finite difference.*test_lossy"):
        fit([Term("test_lossy", score)], max_iter=5)

    with warnings.catch_warnings():
        warnings.simplefilter("error", SoftWarning)
        fit([Term("test_lossy", score)], max_iter=5, check_gradient=False)


# -- stopping, restarts, non-finite losses ----------------------------------------------------


def test_iteration_limit_keeps_the_best_point_seen(load):
    model = load()
    result = fit([line_term(model)], method="sgd", lr=0.001, max_iter=5)
    assert result.stop_reason == "iteration limit (5)"
    assert not result.converged
    assert result.iterations == 5
    assert 0 < result.loss_after < result.loss_before
    assert result.loss_after <= min(result.history)


def test_time_budget_stops_the_fit(load):
    model = load()
    result = fit([line_term(model)], method="adam", timeout=1e-9)
    assert result.stop_reason == "time budget"
    assert not result.converged
    # The budget ran out at the first evaluation: no step was taken, nothing to write.
    assert result.iterations == 0
    assert result.loss_after == result.loss_before
    assert not result.improved
    assert all(np.array_equal(c.after, c.before) for c in result.parameters)


def test_progress_is_reported_every_iteration(load):
    model = load()
    seen: list[Progress] = []
    result = fit([line_term(model)], method="sgd", lr=0.001, max_iter=4, progress=seen.append)
    assert [p.iteration for p in seen] == [1, 2, 3, 4]
    assert all((p.start, p.starts) == (0, 1) for p in seen)
    assert [p.loss for p in seen] == result.history
    assert seen[-1].best_loss <= seen[0].loss


# Data from sin(1.5 x): fitting omega from a start of 4 gets stuck in a local minimum.
SINE = """
    import autograd.numpy as np
    from pytest_soft import Param, Parameters

    theta = Parameters(omega=Param(4.0, bounds=(0.0, 5.0)))

    def f(x):
        return np.sin(theta.omega * x)
"""
SINE_XS = np.linspace(-6.0, 6.0, 25)
SINE_YS = np.sin(1.5 * SINE_XS) + 0.05 * np.cos(7.0 * SINE_XS)  # not exactly reachable


def sine_terms(model: ModuleType) -> list[Term]:
    return [Term("test_sine", lambda: (model.f(SINE_XS) - SINE_YS) ** 2)]


def test_restarts_find_the_global_optimum_and_are_reproducible_with_a_seed(load):
    model = load(SINE, "wave")
    single = fit(sine_terms(model), max_iter=50)
    first = fit(sine_terms(model), restarts=6, seed=3, max_iter=50)
    again = fit(sine_terms(model), restarts=6, seed=3, max_iter=50)

    assert abs(after(single, "wave.omega") - 1.5) > 0.5  # one start stays in a local minimum
    assert after(first, "wave.omega") == pytest.approx(1.5, abs=0.01)
    assert first.loss_after < single.loss_after
    assert (first.starts, first.starts_run) == (7, 7)  # the loss cannot reach 0: no early stop
    assert 1 <= first.starts_at_best < 7
    assert first.best_start > 0

    assert again.parameters == first.parameters
    assert again.history == first.history
    assert (again.starts_at_best, again.best_start) == (first.starts_at_best, first.best_start)

    other = fit(sine_terms(model), restarts=6, seed=4, max_iter=50)
    assert other.history != first.history


def test_restarts_stop_early_once_the_loss_cannot_improve(load):
    model = load()
    result = fit([line_term(model)], restarts=5)
    assert result.loss_after < 1e-20
    assert (result.starts, result.starts_run) == (6, 1)
    assert "5 more start(s) skipped" in result.stop_reason


NAN_MODEL = """
    import autograd.numpy as np
    from pytest_soft import Parameters

    theta = Parameters(a=0.0)

    def score():
        # (a - 3)^2 is smallest at 3, but the score is NaN from a = 2 on: the best finite
        # point is just below 2.
        return (theta.a - 3.0) ** 2 + 0.0 * np.sqrt(2.0 - theta.a)
"""


@pytest.mark.compat
@pytest.mark.parametrize(
    ("method", "options"),
    [("lsq", {}), ("lbfgs", {}), ("adam", {"lr": 0.5, "max_iter": 200}), ("sgd", {"lr": 0.5})],
)
def test_a_loss_turning_nan_mid_fit_keeps_the_best_finite_point(load, method, options):
    model = load(NAN_MODEL, "nanny")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's "invalid value in sqrt"
        result = fit([Term("test_nan", model.score)], method=method, **options)

    a = after(result, "nanny.a")
    assert math.isfinite(a) and 0.0 < a < 2.0
    assert math.isfinite(result.loss_after) and result.loss_after < result.loss_before
    assert result.improved
    assert "non-finite" in result.stop_reason
    result.apply()
    model.theta.save()  # what the plugin does: writes only finite values
    assert model.theta.path.read_text().count("NaN") == 0


# -- hold-out -----------------------------------------------------------------------------------


def test_split_holdout_is_seeded_and_disjoint(load):
    model = load()
    terms = point_terms(model)
    train, held = split_holdout(terms, 0.5, seed=1)

    assert len(train) == 3 and len(held) == 3
    assert {t.name for t in train} | {t.name for t in held} == {t.name for t in terms}
    assert not {t.name for t in train} & {t.name for t in held}
    assert [t.name for t in split_holdout(terms, 0.5, seed=1)[1]] == [t.name for t in held]
    assert any(
        [t.name for t in split_holdout(terms, 0.5, seed=s)[1]] != [t.name for t in held]
        for s in range(2, 6)
    )
    # a small fraction still holds one out, and at least one term is always left to fit
    assert len(split_holdout(terms, 0.01, seed=0)[1]) == 1
    assert len(split_holdout(terms[:2], 0.9, seed=0)[0]) == 1
    assert split_holdout(terms, 0.0, seed=0) == (terms, [])


@pytest.mark.parametrize("fraction", [1.0, 1.5, -0.1])
def test_split_holdout_rejects_a_fraction_outside_0_to_1(load, fraction):
    model = load()
    with pytest.raises(FitError, match="hold-out fraction"):
        split_holdout(point_terms(model), fraction, seed=0)


def test_holdout_loss_is_reported_before_and_after(load):
    model = load()
    # Targets 0, 1, 2, 3 for a; hold out two of them.
    terms = [Term(f"test_t{t}", lambda t=t: (model.theta.a - t) ** 2) for t in range(4)]
    train, held = split_holdout(terms, 0.5, seed=0)
    result = fit(train, holdout=held)

    train_targets = [int(t.name[-1]) for t in train]
    held_targets = [int(t.name[-1]) for t in held]
    best = sum(train_targets) / 2
    assert after(result, "model.a") == pytest.approx(best, abs=1e-8)
    assert result.holdout_terms == 2
    assert result.holdout_before == pytest.approx(sum(t**2 for t in held_targets))
    assert result.holdout_after == pytest.approx(sum((best - t) ** 2 for t in held_targets))
    assert result.terms == 2  # the held-out terms are not in the fit
    # and their own scores, before and after, are reported too
    for t in held_targets:
        assert result.scores_before[f"test_t{t}"] == pytest.approx(t**2)
        assert result.scores_after[f"test_t{t}"] == pytest.approx((best - t) ** 2)


# -- the result -----------------------------------------------------------------------------


def test_apply_puts_the_tuned_values_in_and_save_writes_them(load):
    model = load()
    result = fit([line_term(model)])
    assert model.theta.a == 0.0

    changed = result.apply()
    assert changed == [model.theta]
    assert model.theta.a == pytest.approx(A_TRUE) and model.theta.b == pytest.approx(B_TRUE)
    assert model.theta.never_read == 5.0
    assert not model.theta.path.exists()  # apply() writes nothing; save() does
    model.theta.save()
    stored = json.loads(model.theta.path.read_text())["parameters"]
    assert stored["a"] == model.theta.a and stored["b"] == model.theta.b


def test_refitting_at_the_optimum_does_not_count_as_an_improvement(load):
    model = load()
    fit([line_term(model)]).apply()
    with warnings.catch_warnings():
        # a gradient of 0 at an optimum is no reason to call the parameters unused
        warnings.simplefilter("error", SoftWarning)
        refit = fit([line_term(model)])
    assert not refit.improved
    assert not refit.warnings
    assert refit.loss_after <= refit.loss_before


@pytest.mark.parametrize(
    ("before", "after_", "expected"),
    [
        (1.0, 0.5, True),
        (1.0, 1.0, False),
        (1.0, 1.5, False),
        (1.0, 1.0 - 0.5 * MIN_IMPROVEMENT_REL, False),  # rounding noise
        (1.0, 1.0 - 10 * MIN_IMPROVEMENT_REL, True),
        (1e6, 1e6 - 1e-4, False),  # the margin is relative to the loss before
        (1e-30, 0.0, False),  # below the absolute floor
        (10 * MIN_IMPROVEMENT_ABS, 0.0, True),
        (-5.0, -6.0, True),  # negative losses (lbfgs objectives) too
        (-5.0, -5.0 - 1e-12, False),
    ],
)
def test_improved_enough(before, after_, expected):
    assert improved_enough(before, after_) is expected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "bogus"}, "unknown fit method 'bogus'"),
        ({"max_iter": 0}, "iteration limit must be at least 1"),
        ({"tol": 0.0}, "tolerance must be positive"),
        ({"restarts": -1}, "restarts must be 0 or more"),
    ],
)
def test_bad_arguments_are_clear_errors(load, options, message):
    model = load()
    with pytest.raises(FitError, match=message):
        fit([line_term(model)], **options)


def test_the_engine_works_in_a_plain_python_process(tmp_path):
    """As in a notebook: no pytest session, values fitted, applied and saved."""
    (tmp_path / "curve.py").write_text(
        textwrap.dedent(
            """
            from pytest_soft import Parameters

            theta = Parameters(k=1.0)

            def f(x):
                return theta.k * x
            """
        ),
        encoding="utf-8",
    )
    script = textwrap.dedent(
        """
        import curve
        from pytest_soft.fit import Term, fit

        result = fit([Term("twice", lambda: (curve.f(2.0) - 3.0) ** 2)])
        for group in result.apply():
            group.save()
        print(result.method, result.parameters[0].after, curve.f(2.0))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["lsq", "1.5", "3.0"]
    stored = json.loads((tmp_path / "curve.params.json").read_text(encoding="utf-8"))
    assert stored["parameters"] == {"k": 1.5}


def test_independent_groups_are_fitted_separately_each_to_its_own_convergence(load):
    # Two models that share no parameter, with losses of wildly different scale, and a term
    # that reads no parameter at all: each group converges on its own terms.
    big = load(
        """
        from pytest_soft import Parameters
        theta = Parameters(k=1.0)
        """,
        name="big",
    )
    small = load(
        """
        from pytest_soft import Parameters
        theta = Parameters(k=1.0)
        """,
        name="small",
    )
    terms = [
        Term(f"big{x}", lambda x=x: (big.theta.k * x - 1e4 * x) ** 2) for x in (1.0, 2.0, 3.0)
    ] + [
        Term(f"small{x}", lambda x=x: (small.theta.k * x - 3e-5 * x) ** 2) for x in (1.0, 2.0, 3.0)
    ]
    terms.append(Term("constant", lambda: 0.5))
    result = fit(terms)
    assert result.blocks == 2
    assert "2 independent parameter groups fitted one after another" in result.stop_reason
    assert after(result, "big.k") == pytest.approx(1e4, rel=1e-12)
    assert after(result, "small.k") == pytest.approx(3e-5, rel=1e-9)
    assert result.loss_after == pytest.approx(0.5, rel=1e-12)  # the constant term stays
    assert result.scores_after["constant"] == 0.5
    assert result.terms == 7
    assert result.history[-1] == pytest.approx(result.loss_after, rel=1e-6)


def test_terms_that_share_a_parameter_are_fitted_together(load):
    model = load()
    terms = [
        Term("a_only", lambda: (model.theta.a - 2.0) ** 2),
        Term("a_and_b", lambda: (model.theta.a + model.theta.b - 2.5) ** 2),
    ]
    result = fit(terms)
    assert result.blocks == 1
    assert "independent" not in result.stop_reason
    assert after(result, "model.a") == pytest.approx(2.0, abs=1e-8)
    assert after(result, "model.b") == pytest.approx(0.5, abs=1e-8)


# -- the score check of every evaluation -------------------------------------------------------

# What a fit's evaluations reject: what check_score rejects, less real scores that are merely
# NaN or infinite (the optimisers step back from those). 1-d float scores take a shortcut
# (pytest_soft.fit._problem.check); these straddle it.
EVALUATION_REJECTS = [
    ("sum-overflows", np.array([1e308, 1e308]), "sum is too large for a float"),
    # Exactly 0 in any order but the first, which overflows on its way (math.fsum's order).
    ("partial-sum-overflows", np.array([1e308, 1e308, -1e308, -1e308] + [0.0] * 12), "too large"),
    ("empty", np.zeros(0), "an empty array"),
    ("2-d", np.zeros((2, 3)), "an array of shape (2, 3)"),
    ("ints-2-d", np.zeros((2, 2), dtype=int), "an array of shape (2, 2)"),
    ("complex", np.array([1.0 + 0j]), "a complex value"),
    ("list", [0.1, 0.2], "a list"),
]
EVALUATION_ACCEPTS = [
    ("ordinary", np.array([0.0, 0.5, 2.0])),
    ("nan-case", np.array([0.0, np.nan])),
    ("inf-case", np.array([np.inf, 1.0])),
    ("-inf-case", np.array([-np.inf, 1.0])),
    ("huge-but-summable", np.array([1e300, 1e300, -1e300])),
    ("float32", np.array([0.5, 1.5], dtype=np.float32)),
    ("ints", np.array([1, 2])),
    ("scalar-nan", math.nan),
]


@pytest.mark.parametrize(
    ("returned", "message"), [pytest.param(*c[1:], id=c[0]) for c in EVALUATION_REJECTS]
)
def test_an_evaluation_rejects_a_malformed_score_as_check_score_does(returned, message):

    term = Term("test_mod.py::test_bad", lambda: returned)
    with pytest.raises(ScoreError) as expected:
        check_score(returned, term.name)
    with pytest.raises(ScoreError) as info:
        score_vector(term, returned)
    assert str(info.value) == str(expected.value)
    assert message in str(info.value)


@pytest.mark.parametrize("returned", [pytest.param(c[1], id=c[0]) for c in EVALUATION_ACCEPTS])
def test_an_evaluation_lets_a_real_score_through_finite_or_not(returned):

    term = Term("test_mod.py::test_wild", lambda: returned)
    got = score_vector(term, returned)
    assert got.dtype == float and got.ndim == 1
    np.testing.assert_array_equal(got, np.atleast_1d(np.asarray(returned, dtype=float)))
    if not np.all(np.isfinite(got)):  # the start of a fit (strict) rejects it
        with pytest.raises(ScoreError, match="finite"):
            score_vector(term, returned, strict=True)
