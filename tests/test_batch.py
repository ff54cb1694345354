"""Batched evaluation of parametrized soft tests: the equivalence check, the fallback with its
reason, and the opt-out."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import autograd.numpy as anp
import numpy as np
import pytest

from pytest_soft.batch import Case, build_terms
from pytest_soft.errors import FitError
from pytest_soft.fit import fit

IMPL = """
    import autograd.numpy as np
    from pytest_soft import Param, Parameters

    theta = Parameters(a=Param(1.0, bounds=(0.0, 5.0)), b=0.0)

    def f(x):
        return theta.a * x + theta.b
"""


@pytest.fixture
def impl(import_module):
    return import_module("batchimpl", IMPL)


def _cases(function, xs, **extra):
    return [
        Case(
            name=f"test_f[{i}]",
            function=function,
            kwargs={"x": x, **extra},
            weight=1.0,
            threshold=None,
            score=float(function(x=x, **extra)),
            batch_key="test_f",
        )
        for i, x in enumerate(xs)
    ]


def test_elementwise_cases_become_one_term_with_the_same_scores(impl):
    def body(x):
        return (impl.f(x) - (2.0 * x + 1.0)) ** 2

    xs = [float(x) for x in np.linspace(-1, 1, 7)]
    terms, notes = build_terms(_cases(body, xs))
    assert notes == []
    assert len(terms) == 1
    (term,) = terms
    assert term.name == "test_f"
    assert list(term.case_names) == [f"test_f[{i}]" for i in range(7)]
    np.testing.assert_allclose(term.score(), [body(x) for x in xs], rtol=1e-12)


def test_batched_fit_matches_case_by_case_fit(impl):
    def body(x):
        return (impl.f(x) - (2.0 * x + 1.0)) ** 2

    xs = [float(x) for x in np.linspace(-1, 1, 9)]
    batched, _ = build_terms(_cases(body, xs))
    singles = [c.__class__(**{**c.__dict__, "batch_key": None}) for c in _cases(body, xs)]
    one_by_one, _ = build_terms(singles)
    assert len(batched) == 1 and len(one_by_one) == 9
    r1 = fit(batched)
    r2 = fit(one_by_one)
    assert r1.terms == r2.terms == 9
    for c1, c2 in zip(r1.parameters, r2.parameters):
        assert c1.after == pytest.approx(c2.after, abs=1e-9)
    assert [c.after for c in r1.parameters] == pytest.approx([2.0, 1.0], abs=1e-8)
    # per-case scores stay visible, by soft test name
    assert set(r1.scores_before) == {f"test_f[{i}]" for i in range(9)}
    assert r1.scores_before == pytest.approx(r2.scores_before, rel=1e-12)


def test_control_flow_on_inputs_falls_back_and_says_why(impl):
    def body(x):
        if x > 0:  # fine for one case, ambiguous for an array
            return (impl.f(x) - 1.0) ** 2
        return impl.f(x) ** 2

    terms, notes = build_terms(_cases(body, [-1.0, 0.5, 2.0]))
    assert len(terms) == 3 and all(t.case_names is None for t in terms)
    assert len(notes) == 1
    assert "test_f: 3 cases evaluated one by one" in notes[0]
    assert "raised ValueError" in notes[0]


def test_reduction_across_cases_falls_back(impl):
    def body(x):
        return anp.mean((impl.f(x) - 2.0) ** 2)  # the mean of one case is that case

    terms, notes = build_terms(_cases(body, [0.0, 1.0, 3.0]))
    assert len(terms) == 3
    assert "not one score per case" in notes[0] or "not elementwise" in notes[0]


def test_non_numeric_arguments_fall_back(impl):
    def body(x, label):
        return (impl.f(x) - len(label)) ** 2

    cases = _cases(lambda x, label="": body(x, label), [1.0, 2.0])
    cases = [
        Case(f"test_f[{i}]", body, {"x": x, "label": lab}, 1.0, None, body(x, lab), "k")
        for i, (x, lab) in enumerate([(1.0, "a"), (2.0, "bb")])
    ]
    terms, notes = build_terms(cases)
    assert len(terms) == 2
    assert "argument 'label' is not numeric" in notes[0]


def test_cases_with_different_weights_are_not_batched(impl):
    def body(x):
        return (impl.f(x) - x) ** 2

    cases = _cases(body, [1.0, 2.0])
    cases[1].weight = 3.0
    terms, notes = build_terms(cases)
    assert len(terms) == 2
    assert "different weights" in notes[0]


SINE_TESTS = """
    import numpy as np
    import pytest
    import sineimpl
    from pytest_soft import soft_test

    XS = np.linspace(-3.0, 3.0, 40)
    CASES = [(float(x), float(np.sin(1.3 * x))) for x in XS]

    @soft_test{marker_args}
    @pytest.mark.parametrize("x, y", CASES)
    def test_sine(x, y):
        return (sineimpl.f(x) - y) ** 2
"""

SINE_IMPL = """
    import autograd.numpy as np
    from pytest_soft import Param, Parameters

    theta = Parameters(omega=Param(1.0, bounds=(0.0, 5.0)))

    def f(x):
        return np.sin(theta.omega * x)
"""


@pytest.mark.parametrize("marker_args", ["", "(batch=False)"])
def test_plugin_batches_parametrized_cases_unless_opted_out(pytester, marker_args):
    pytester.makepyfile(sineimpl=textwrap.dedent(SINE_IMPL))
    pytester.makepyfile(test_sine=textwrap.dedent(SINE_TESTS.format(marker_args=marker_args)))
    result = pytester.runpytest_subprocess("--fit", "-p", "no:cacheprovider")
    assert result.ret == 0
    out = result.stdout.str()
    batched_line = "batched test_sine.py::test_sine: 40 cases in one call"
    if marker_args:
        assert batched_line not in out
    else:
        assert batched_line in out
    assert "40 soft tests, 1 parameter" in out
    params = json.loads(Path(pytester.path, "sineimpl.params.json").read_text())
    assert params["parameters"]["omega"] == pytest.approx(1.3, abs=1e-9)


def test_plugin_says_once_why_a_test_is_not_batched(pytester):
    pytester.makepyfile(sineimpl=textwrap.dedent(SINE_IMPL))
    pytester.makepyfile(
        test_sine=textwrap.dedent(
            """
            import pytest
            import sineimpl
            from pytest_soft import soft_test

            @soft_test
            @pytest.mark.parametrize("x", [0.5, 1.0, 1.5])
            def test_branchy(x):
                if x > 1.0:
                    return (sineimpl.f(x) - 0.5) ** 2
                return (sineimpl.f(x) - 0.25) ** 2
            """
        )
    )
    result = pytester.runpytest_subprocess("--fit", "--fit-dry-run", "-p", "no:cacheprovider")
    assert result.ret == 0
    notes = [line for line in result.outlines if "test_branchy: 3 cases" in line]
    assert notes == [
        "test_sine.py::test_branchy: 3 cases evaluated one by one (the batched call raised "
        "ValueError: The truth value of an array with more than one element is ambiguous. Use "
        "a.any() or a.all())"
    ]
    assert not Path(pytester.path, "sineimpl.params.json").exists()


# -- minibatches (--fit-batch-size) --------------------------------------------------------------


def _linear_cases(impl, n=64):
    rng = np.random.default_rng(3)
    xs = [float(x) for x in rng.uniform(-2, 2, size=n)]

    def body(x):
        return (impl.f(x) - (2.0 * x + 1.0)) ** 2

    return _cases(body, xs)


@pytest.mark.parametrize("batched", [True, False])
def test_adam_on_minibatches_reaches_the_optimum_and_repeats_with_a_seed(impl, batched):
    cases = _linear_cases(impl)
    if not batched:
        cases = [c.__class__(**{**c.__dict__, "batch_key": None}) for c in cases]
    terms, _ = build_terms(cases)
    assert len(terms) == (1 if batched else 64)
    options = dict(method="adam", lr=0.05, batch_size=8, max_iter=3000, seed=7, tol=1e-12)
    first = fit(terms, **options)
    again = fit(terms, **options)
    assert [c.after for c in first.parameters] == [c.after for c in again.parameters]
    assert [c.after for c in first.parameters] == pytest.approx([2.0, 1.0], abs=2e-3)
    assert first.loss_after < 1e-3 * first.loss_before
    other = fit(terms, **{**options, "seed": 8})
    assert [c.after for c in other.parameters] != [c.after for c in first.parameters]


def test_a_batch_term_selects_its_cases_for_a_minibatch(impl):
    (term,), _ = build_terms(_linear_cases(impl, n=6))
    part = term.select(np.array([1, 4]))
    assert list(part.case_names) == [term.case_names[1], term.case_names[4]]
    np.testing.assert_allclose(part.score(), np.asarray(term.score())[[1, 4]])


def test_minibatches_are_only_for_adam_and_sgd(impl):
    terms, _ = build_terms(_linear_cases(impl, n=4))
    with pytest.raises(
        FitError, match=r"minibatches \(batch size 2\) are for the adam and sgd methods"
    ):
        fit(terms, method="lbfgs", batch_size=2)


def test_fit_batch_size_end_to_end(pytester):
    pytester.makepyfile(sineimpl=textwrap.dedent(SINE_IMPL))
    pytester.makepyfile(test_sine=textwrap.dedent(SINE_TESTS.format(marker_args="")))
    refused = pytester.runpytest_subprocess("--fit", "--fit-batch-size", "8")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    assert "--fit-batch-size takes minibatches for --fit-method adam or sgd" in refused.stderr.str()
    assert not Path(pytester.path, "sineimpl.params.json").exists()

    result = pytester.runpytest_subprocess(
        "--fit",
        "--fit-method",
        "adam",
        "--fit-lr",
        "0.02",
        "--fit-batch-size",
        "8",
        "--fit-max-iter",
        "2000",
        "-p",
        "no:cacheprovider",
    )
    assert result.ret == 0
    params = json.loads(Path(pytester.path, "sineimpl.params.json").read_text())
    assert params["parameters"]["omega"] == pytest.approx(1.3, abs=1e-3)


@pytest.mark.parametrize("score", ["squared_error", "absolute_error", "relative_error", "huber"])
def test_the_shipped_score_functions_keep_batching(impl, score):
    from pytest_soft import scores

    function = getattr(scores, score)

    def body(x):
        return function(impl.f(x), 2.0 * x + 1.0)

    xs = [float(x) for x in np.linspace(-1.0, 2.0, 6)]
    terms, notes = build_terms(_cases(body, xs))
    assert notes == []
    (term,) = terms
    np.testing.assert_allclose(term.score(), [body(x) for x in xs], rtol=1e-12)
    # outside a batched call the functions sum over everything, as documented
    assert np.ndim(function(np.ones(3), np.zeros(3))) == 0
