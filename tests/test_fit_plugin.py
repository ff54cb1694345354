"""``pytest --fit`` end to end: soft-test projects laid out in pytester's directory and run the
way a user runs them; assertions are on what the user sees (the terminal, the exit status, the
parameter files)."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest

from pytest_soft import SoftWarning
from pytest_soft.parameters import dumps_parameters

# An implementation with two parameters: line(x) = a * x + b.
IMPL = """
    import autograd.numpy as np
    from pytest_soft import Param, Parameters

    theta = Parameters(a=Param(0.0, bounds=(-10.0, 10.0)), b=0.0)

    def line(x):
        return theta.a * x + theta.b
"""

# Two soft tests that together pin a = 1.25, b = 0.5 (loss 0 there). test_slope has a threshold
# it fails with the initial values (score 9).
TESTS = """
    from pytest_soft import soft_test
    import impl

    @soft_test(threshold=1e-6)
    def test_slope():
        return (impl.line(2.0) - 3.0) ** 2

    @soft_test(weight=2.0)
    def test_origin():
        return (impl.line(0.0) - 0.5) ** 2

    def test_plain():
        assert True
"""


def project(pytester: pytest.Pytester, tests: str = TESTS, impl: str | None = IMPL, **more):
    """Write impl.py (unless None), test_soft.py, and any more modules given by name."""
    files = {"test_soft": tests, **more}
    if impl is not None:
        files["impl"] = impl
    pytester.makepyfile(**files)


def write_params(pytester: pytest.Pytester, module: str, **values: float) -> Path:
    """A parameter file for ``module`` with these values, as an earlier fit would leave it."""
    path = pytester.path / f"{module}.params.json"
    path.write_text(dumps_parameters(module, values), encoding="utf-8")
    return path


def parameter_files(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every parameter file (and leftover temporary file) by name: its bytes and its inode (an
    atomic rewrite with the same bytes still shows as a new inode)."""
    return {
        p.name: (p.read_bytes(), p.stat().st_ino)
        for p in directory.iterdir()
        if "params.json" in p.name
    }


def stored(path: Path) -> dict[str, float]:
    return json.loads(path.read_text(encoding="utf-8"))["parameters"]


def fit_section(result: pytest.RunResult) -> list[str]:
    """The lines of the ``soft fit`` section, up to the first test progress line or section."""
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if re.match(r"=+ soft fit =+$", line))
    out = []
    for line in lines[start + 1 :]:
        if line.startswith("=") or re.match(r"^\S+\.py [.FEsx]+", line):
            break
        if not line.startswith("fit: start "):  # progress lines, shown every few seconds
            out.append(line)
    return out


def section(result: pytest.RunResult, title: str) -> list[str]:
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if re.match(rf"=+ {title} =+$", line))
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].startswith("=====")), len(lines)
    )
    return lines[start + 1 : end]


def line_matching(lines: list[str], pattern: str) -> str:
    found = [line for line in lines if re.search(pattern, line)]
    assert found, f"no line matches {pattern!r} in:\n" + "\n".join(lines)
    return found[0]


# -- the fit and the run after it ---------------------------------------------------------------


@pytest.mark.compat
def test_fit_tunes_writes_and_then_runs_with_the_tuned_values(pytester):
    project(pytester)
    plain = pytester.runpytest()
    plain.assert_outcomes(passed=2, failed=1)
    assert plain.ret == pytest.ExitCode.TESTS_FAILED

    result = pytester.runpytest("--fit")

    # the thresholded soft test that failed before the fit passes after it
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.OK
    fit = fit_section(result)
    line_matching(fit, r"^method lsq \(")
    line_matching(fit, r"^2 soft tests, 2 parameters \(2 values\)$")
    line_matching(fit, r"^loss 9.5 -> \S+ \(-100\.0%\)$")
    line_matching(fit, r"^  impl\.a  0 -> 1\.25$")
    line_matching(fit, r"^  impl\.b  0 -> 0\.5$")
    line_matching(fit, r"^\d+ iterations, \d+ loss and \d+ gradient evaluations, \d+\.\d+ s$")
    line_matching(fit, r"^stopped: converged")
    line_matching(fit, r"^wrote impl\.params\.json$")
    values = stored(pytester.path / "impl.params.json")
    assert values["a"] == pytest.approx(1.25) and values["b"] == pytest.approx(0.5)
    # the scores shown are those of the tuned values
    line_matching(section(result, "soft scores"), r"^2 soft tests, suite loss (0|\d(\.\d+)?e-\d+) ")

    # and a plain run now loads them
    again = pytester.runpytest()
    again.assert_outcomes(passed=3)


def test_refitting_at_the_optimum_leaves_the_file_byte_for_byte_unchanged(pytester):
    project(pytester)
    pytester.runpytest("--fit").assert_outcomes(passed=3)
    before = parameter_files(pytester.path)
    assert list(before) == ["impl.params.json"]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = pytester.runpytest("--fit")

    result.assert_outcomes(passed=3)
    line_matching(
        fit_section(result),
        r"^the loss did not improve beyond rounding noise: no parameter file written$",
    )
    assert parameter_files(pytester.path) == before
    # a gradient of 0 at the optimum is no reason to call the parameters unused
    assert not [w for w in caught if issubclass(w.category, SoftWarning)]
    assert "SoftWarning" not in result.stdout.str()


def test_dry_run_writes_nothing_but_runs_with_the_tuned_values(pytester):
    project(pytester)
    path = write_params(pytester, "impl", a=-1.0, b=0.0)
    before = parameter_files(pytester.path)

    result = pytester.runpytest("--fit", "--fit-dry-run")

    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.OK
    fit = fit_section(result)
    line_matching(fit, r"^  impl\.a  -1 -> 1\.25$")
    line_matching(fit, r"^dry run: no parameter file written")
    assert not any(line.startswith("wrote ") for line in fit)
    assert parameter_files(pytester.path) == before
    assert stored(path) == {"a": -1.0, "b": 0.0}


def test_soft_report_shows_a_before_column_after_a_fit(pytester):
    project(pytester)
    plain = pytester.runpytest("--soft-report")
    assert "before" not in section(plain, "soft report")[0]

    result = pytester.runpytest("--fit", "--soft-report")

    table = section(result, "soft report")
    header = table[0].split()
    assert "before" in header

    def column(test: str, name: str) -> str:
        return line_matching(table, rf"test_soft\.py::{test}$").split()[header.index(name)]

    assert column("test_slope", "before") == "9"
    assert column("test_origin", "before") == "0.25"
    assert line_matching(table, r"test_soft\.py::test_slope$").split()[-2] == "passed"


@pytest.mark.compat
def test_progress_is_printed_as_plain_lines_when_output_is_not_a_terminal(pytester):
    project(pytester)
    result = pytester.runpytest("--fit")
    progress = [line for line in result.outlines if line.startswith("fit: start 1/1")]
    assert progress
    assert re.match(
        r"fit: start 1/1  iteration 1  loss 9.5  best \S+  \|gradient\| \S+", progress[0]
    )
    assert "\r" not in result.stdout.str()


# -- what is fitted -----------------------------------------------------------------------------

ALPHA = """
    from pytest_soft import Parameters

    theta = Parameters(x=0.0, y=0.0)
"""
BETA = """
    from pytest_soft import Parameters

    theta = Parameters(z=0.0)
"""
TWO_MODULES = """
    import pytest
    from pytest_soft import soft_test
    import alpha, beta

    @soft_test
    def test_alpha_x():
        return (alpha.theta.x - 1.0) ** 2

    @soft_test
    @pytest.mark.slow
    def test_alpha_y():
        return (alpha.theta.y - 2.0) ** 2

    @soft_test
    def test_beta():
        return (beta.theta.z - 3.0) ** 2
"""


def two_modules(pytester: pytest.Pytester) -> None:
    project(pytester, TWO_MODULES, impl=None, alpha=ALPHA, beta=BETA)
    pytester.makeini("[pytest]\nmarkers = slow")


def fitted_names(result: pytest.RunResult) -> list[str]:
    return [line.split()[0] for line in fit_section(result) if line.startswith("  ")]


@pytest.mark.parametrize(
    ("args", "fitted", "written"),
    [
        (["-k", "beta"], ["beta.z"], ["beta.params.json"]),
        (["-m", "slow"], ["alpha.y"], ["alpha.params.json"]),
        (["test_soft.py::test_alpha_x"], ["alpha.x"], ["alpha.params.json"]),
        (["--fit-params", "alpha.x,beta.z"], ["alpha.x", "beta.z"], None),
        (["--fit-params", "alpha"], ["alpha.x", "alpha.y"], ["alpha.params.json"]),
    ],
)
def test_only_parameters_the_selected_tests_read_are_tuned(pytester, args, fitted, written):
    two_modules(pytester)
    result = pytester.runpytest("--fit", *args)

    assert result.ret == pytest.ExitCode.OK
    assert fitted_names(result) == fitted
    if written is not None:
        assert sorted(parameter_files(pytester.path)) == written
    if args[0] == "--fit-params" and args[1] == "alpha":
        # a whole group: both of alpha's parameters move, beta's does not
        assert stored(pytester.path / "alpha.params.json") == pytest.approx({"x": 1.0, "y": 2.0})
    if "alpha.x,beta.z" in args:
        # every parameter in the file is written; the one left out keeps its value
        assert stored(pytester.path / "alpha.params.json") == pytest.approx({"x": 1.0, "y": 0.0})


FIXTURES = """
    import pytest
    from pytest_soft import soft_test
    import impl

    @pytest.fixture
    def target(request, pytestconfig):
        with open(pytestconfig.rootpath / "setups.txt", "a") as log:
            log.write(request.node.name + "\\n")
        return request.param

    @soft_test
    @pytest.mark.parametrize("target", [(1.0, 3.0), (2.0, 5.0), (3.0, 7.0)], indirect=True)
    def test_point(target, pytestconfig):
        with open(pytestconfig.rootpath / "calls.txt", "a") as log:
            log.write("call\\n")
        x, y = target
        return (impl.line(x) - y) ** 2

    @soft_test
    @pytest.mark.parametrize("x", [0.0, 1.0, 2.0])
    def test_vector(x):
        import autograd.numpy as np
        xs = np.array([x, x + 0.5])
        return (impl.line(xs) - (2.0 * xs + 1.0)) ** 2
"""


def test_fixtures_and_parametrize_work_and_fixtures_are_set_up_once_for_the_fit(pytester):
    project(pytester, FIXTURES)
    log = pytester.path / "setups.txt"
    pytester.runpytest().assert_outcomes(passed=6)
    assert len(log.read_text().splitlines()) == 3  # one set-up per case in a plain run
    log.unlink()
    (pytester.path / "calls.txt").unlink()

    result = pytester.runpytest("--fit", "--fit-method", "lbfgs")

    result.assert_outcomes(passed=6)
    fit = fit_section(result)
    # 3 scalar cases and 3 vectorised ones of 2 cases each: 9 scores in the loss
    line_matching(fit, r"^6 soft tests \(9 cases\), 2 parameters")
    line_matching(fit, r"^  impl\.a  0 -> 2$")
    line_matching(fit, r"^  impl\.b  0 -> 1$")
    # The fit called the bodies many times, but set the fixtures up once for each case to
    # record it, and once more for the run after the fit: none per optimiser step.
    assert len((pytester.path / "calls.txt").read_text().splitlines()) > 20
    setups = log.read_text().splitlines()
    assert sorted(setups) == sorted(2 * [f"test_point[target{i}]" for i in range(3)])


# -- optimiser options --------------------------------------------------------------------------


@pytest.mark.compat
@pytest.mark.parametrize(
    ("args", "method"),
    [
        ([], "lsq"),
        (["--fit-method", "lbfgs"], "lbfgs"),
        (["--fit-method", "adam", "--fit-lr", "0.2", "--fit-max-iter", "400"], "adam"),
        (["--fit-method", "sgd", "--fit-lr", "0.05", "--fit-max-iter", "400"], "sgd"),
        (["--fit-method", "powell"], "powell"),
        (["--fit-method", "nelder-mead"], "nelder-mead"),
    ],
)
def test_fit_method_is_used_and_shown(pytester, args, method):
    project(pytester)
    result = pytester.runpytest("--fit", "--fit-tol", "1e-10", *args)
    fit = fit_section(result)
    # A fit stopped by its iteration limit opens with the NOT CONVERGED line, then the method.
    shown = fit[1:] if fit[0].startswith("NOT CONVERGED: ") else fit
    assert shown[0].startswith(f"method {method}")
    a = float(re.search(r"-> (\S+)", line_matching(fit, r"^  impl\.a ")).group(1))
    assert a == pytest.approx(1.25, abs=1e-2)


NEGATIVE = """
    from pytest_soft import soft_test
    import impl

    @soft_test
    def test_log_likelihood_like():
        return (impl.theta.a - 2.0) ** 2 - 1.0
"""


@pytest.mark.compat
def test_auto_method_is_lbfgs_when_a_score_is_negative(pytester):
    project(pytester, NEGATIVE)
    result = pytester.runpytest("--fit")
    fit = fit_section(result)
    assert fit[0].startswith("method lbfgs")
    line_matching(fit, r"^loss 3 -> -1 ")


def test_iteration_limit_is_the_stop_reason_and_the_best_point_is_kept(pytester):
    project(pytester)
    result = pytester.runpytest(
        "--fit", "--fit-method", "sgd", "--fit-lr", "0.001", "--fit-max-iter", "3"
    )
    fit = fit_section(result)
    line_matching(fit, r"^3 iterations, ")
    line_matching(fit, r"^stopped: iteration limit \(3\)$")
    loss_after = float(line_matching(fit, r"^loss 9.5 -> ").split()[3])
    assert 0 < loss_after < 9.5
    line_matching(fit, r"^wrote impl\.params\.json$")


def test_time_budget_is_the_stop_reason(pytester):
    project(pytester)
    result = pytester.runpytest("--fit", "--fit-method", "adam", "--fit-timeout", "1e-9")
    assert result.ret == 1  # test_slope fails its threshold with the values it started from
    fit = fit_section(result)
    assert fit[0] == (
        "NOT CONVERGED: the time budget (--fit-timeout) ran out before the fit converged (time "
        "budget); the best parameters seen are kept. Give --fit-timeout more time and fit again."
    )
    line_matching(fit, r"^stopped: time budget$")
    line_matching(fit, r"^loss 9\.5 -> 9\.5 \(\+0\.0%\)$")
    line_matching(
        fit, r"^the loss did not improve beyond rounding noise: no parameter file written$"
    )
    assert not (pytester.path / "impl.params.json").exists()


# A sine with one parameter, started where a single start gets stuck in a local minimum.
WAVE = """
    import autograd.numpy as np
    from pytest_soft import Param, Parameters

    theta = Parameters(omega=Param(4.0, bounds=(0.0, 5.0)))

    def f(x):
        return np.sin(theta.omega * x)
"""
WAVE_TESTS = """
    import numpy as onp
    from pytest_soft import soft_test
    import wave

    XS = onp.linspace(-6.0, 6.0, 25)
    YS = onp.sin(1.5 * XS) + 0.05 * onp.cos(7.0 * XS)

    @soft_test
    def test_wave():
        return (wave.f(XS) - YS) ** 2
"""


@pytest.mark.compat
def test_restarts_are_reproducible_with_a_seed_and_report_how_many_reached_the_best(pytester):
    project(pytester, WAVE_TESTS, impl=None, wave=WAVE)
    args = ["--fit", "--fit-dry-run", "--fit-max-iter", "50", "--fit-restarts", "5"]

    first = pytester.runpytest(*args, "--fit-seed", "3")
    again = pytester.runpytest(*args, "--fit-seed", "3")

    fit = fit_section(first)
    omega = float(re.search(r"-> (\S+)", line_matching(fit, r"^  wave\.omega  4 -> ")).group(1))
    assert omega == pytest.approx(1.5, abs=0.01)
    starts = line_matching(fit, r" over 6 of 6 starts \((\d) reached the best, start (\d) first\)")
    reached = int(re.search(r"\((\d) reached", starts).group(1))
    assert 1 <= reached < 6

    def without_time(lines: list[str]) -> list[str]:
        return [re.sub(r"\d+\.\d+ s$", "", line) for line in lines]

    assert without_time(fit_section(again)) == without_time(fit)


def test_restarts_stop_early_when_the_loss_cannot_improve(pytester):
    project(pytester)
    result = pytester.runpytest("--fit", "--fit-restarts", "4")
    fit = fit_section(result)
    line_matching(fit, r" over 1 of 5 starts ")
    line_matching(fit, r"^stopped: .*; the loss is 0 to rounding, so 4 more start\(s\) skipped$")


def test_restarts_stop_early_when_every_threshold_holds(pytester):
    project(
        pytester,
        """
        from pytest_soft import soft_test
        import impl

        @soft_test(threshold=0.5)
        def test_slope():
            return (impl.line(2.0) - 3.0) ** 2 + 0.1

        @soft_test(threshold=0.5)
        def test_origin():
            return (impl.line(0.0) - 0.5) ** 2 + 0.1
        """,
    )
    result = pytester.runpytest("--fit", "--fit-restarts", "4")
    fit = fit_section(result)
    line_matching(fit, r" over 1 of 5 starts ")
    line_matching(
        fit,
        r"^stopped: .*; every soft test is within its threshold, so 4 more start\(s\) skipped$",
    )


HOLDOUT_TESTS = """
    import pytest
    from pytest_soft import soft_test
    import impl

    @soft_test
    @pytest.mark.parametrize("t", [0.0, 1.0, 2.0, 3.0])
    def test_target(t):
        return (impl.theta.a - t) ** 2
"""


@pytest.mark.compat
def test_holdout_reports_training_and_held_out_loss_before_and_after(pytester):
    project(pytester, HOLDOUT_TESTS)
    result = pytester.runpytest("--fit", "--fit-holdout", "0.5", "--fit-seed", "0")

    result.assert_outcomes(passed=4)
    fit = fit_section(result)
    line_matching(fit, r"^2 soft tests, 1 parameter")
    train = re.search(r"^loss (\S+) -> (\S+)", line_matching(fit, r"^loss "))
    held = re.search(
        r"^held-out loss \(2 soft tests kept out of the fit\) (\S+) -> (\S+)$",
        line_matching(fit, r"^held-out loss"),
    )
    assert held is not None
    a = float(re.search(r"-> (\S+)", line_matching(fit, r"^  impl\.a ")).group(1))
    # a is the mean of the two training targets; the four targets split into two pairs
    targets = {0.0, 1.0, 2.0, 3.0}
    train_before = float(train.group(1))
    train_targets = next(
        {s, t} for s in targets for t in targets if s < t and s * s + t * t == train_before
    )
    held_targets = targets - train_targets
    assert a == pytest.approx(sum(train_targets) / 2)
    assert float(train.group(2)) == pytest.approx(sum((a - t) ** 2 for t in train_targets))
    assert float(held.group(1)) == pytest.approx(sum(t * t for t in held_targets))
    assert float(held.group(2)) == pytest.approx(sum((a - t) ** 2 for t in held_targets))


# -- errors: each names what is at fault and leaves every parameter file alone -----------------


@pytest.fixture
def protected(pytester):
    """A project whose impl.params.json holds values of an earlier fit (a = -1) that a failed
    fit must leave alone; yields a check that every parameter file is as it was."""
    project(pytester)
    write_params(pytester, "impl", a=-1.0, b=0.0)
    before = parameter_files(pytester.path)

    def unchanged() -> bool:
        return parameter_files(pytester.path) == before

    return unchanged


def test_no_soft_tests_selected_is_a_usage_error(pytester, protected):
    result = pytester.runpytest("--fit", "-k", "test_plain")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--fit: no soft tests selected, so there is nothing to fit.*"])
    assert protected()


def test_soft_tests_that_read_no_parameter_are_a_usage_error(pytester, protected):
    pytester.makepyfile(
        test_constant="""
        from pytest_soft import soft_test

        @soft_test
        def test_constant():
            return 1.0
        """
    )
    result = pytester.runpytest("--fit", "test_constant.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*read no declared parameter*"])
    assert "test_constant.py::test_constant" in result.stderr.str()
    assert protected()


def test_fit_params_naming_an_unread_parameter_is_a_usage_error(pytester, protected):
    result = pytester.runpytest("--fit", "--fit-params", "impl.c")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--fit-params names impl.c, which no selected soft test reads*impl.a, impl.b*"]
    )
    assert protected()


def test_a_parameter_no_score_depends_on_is_warned_about_by_name(pytester):
    project(
        pytester,
        """
        from pytest_soft import soft_test
        import impl

        @soft_test
        def test_slope_only():
            return (impl.theta.a - 2.0) ** 2 + 0.0 * impl.theta.b
        """,
        impl="""
        from pytest_soft import Parameters

        theta = Parameters(a=0.0, b=0.0)  # unbounded: scipy's unbounded least squares
        """,
    )
    result = pytester.runpytest_subprocess("--fit")
    assert result.ret == pytest.ExitCode.OK
    fit = fit_section(result)
    line_matching(fit, r"^warning: no selected soft test's score depends on parameter 'impl\.b'")
    assert "SoftWarning" not in result.stderr.str()  # shown once, in the fit section
    line_matching(fit, r"^  impl\.b  0 -> 0$")
    line_matching(fit, r"^  impl\.a  0 -> 2$")  # the other parameter is still fitted


BROKEN = {
    "float": ("float(impl.theta.a) * 2.0", "float()"),
    "int": ("int(impl.theta.a + 3.5) * 2.0", "float() or int()"),
    "math.sin": ("math.sin(impl.theta.a)", "math module"),
    "asarray": ("np.asarray(impl.theta.a) * 2.0", "np.asarray"),
    "in-place": ("inplace()", "in place"),
    ".dot": ("impl.theta.v.dot(np.ones(2))", "np.dot(a, b) for a.dot(b)"),
}


@pytest.mark.compat
@pytest.mark.parametrize("construct", list(BROKEN))
def test_code_that_breaks_autograd_is_an_error_naming_the_test(pytester, construct):
    expression, hint = BROKEN[construct]
    pytester.makepyfile(
        impl="""
        import autograd.numpy as np
        from pytest_soft import Parameters

        theta = Parameters(a=0.0, v=np.zeros(2))
        """,
        test_soft=f"""
        import math
        import autograd.numpy as np
        from pytest_soft import soft_test
        import impl

        def inplace():
            out = np.zeros(2)
            out[0] = impl.theta.a
            return out.sum()

        @soft_test
        def test_broken():
            return ({expression} - 1.0) ** 2
        """,
    )
    write_params(pytester, "impl", a=0.5, v=[0.5, 0.5])
    before = parameter_files(pytester.path)

    result = pytester.runpytest("--fit")

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert "soft test test_soft.py::test_broken: autograd cannot differentiate" in out
    assert hint in out
    assert "import autograd.numpy as np" in out
    result.stdout.fnmatch_lines(["*the fit stopped (see above); no parameter file was written.*"])
    assert parameter_files(pytester.path) == before


def test_code_that_silently_loses_the_gradient_is_warned_about(pytester):
    project(
        pytester,
        """
        import numpy as onp
        from autograd.tracer import getval
        from pytest_soft import soft_test
        import impl

        def scaled(a):
            if isinstance(a, onp.ndarray | float):  # autograd's traced values are neither
                return 2.0 * a
            return 2.0 * onp.float64(getval(a))  # runs, but the gradient is lost

        @soft_test
        def test_lossy():
            return (scaled(impl.theta.a) + impl.theta.a - 3.0) ** 2
        """,
    )
    result = pytester.runpytest_subprocess("--fit", "--fit-max-iter", "5")
    warning = re.search(
        r"warning: autograd's gradient disagrees with a finite difference for 1 soft "
        r"test\(s\): test_soft\.py::test_lossy \(autograd (\S+), finite difference (\S+)\)",
        result.stdout.str(),
    )
    assert warning is not None, result.stdout.str()
    # autograd sees only a + ..., the finite difference all of a + 2 a
    assert float(warning.group(2)) == pytest.approx(3 * float(warning.group(1)), rel=1e-3)


def test_a_loss_turning_nan_mid_fit_keeps_the_best_finite_point(pytester):
    project(
        pytester,
        """
        import autograd.numpy as np
        from pytest_soft import soft_test
        import impl

        @soft_test
        def test_nan_beyond_two():
            # smallest at a = 3, but NaN from a = 2 on
            a = impl.theta.a
            return (a - 3.0) ** 2 + 0.0 * np.sqrt(2.0 - a)
        """,
    )
    result = pytester.runpytest("--fit", "--fit-params", "impl.a", "-W", "ignore::RuntimeWarning")

    result.assert_outcomes(passed=1)
    fit = fit_section(result)
    line_matching(fit, r"non-finite")
    line_matching(fit, r"^wrote impl\.params\.json$")
    text = (pytester.path / "impl.params.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert 1.9 < stored(pytester.path / "impl.params.json")["a"] < 2.0


def test_ctrl_c_during_the_fit_leaves_parameter_files_unchanged(pytester):
    project(
        pytester,
        """
        from pytest_soft import soft_test
        import impl

        calls = 0

        @soft_test
        def test_interrupted():
            global calls
            calls += 1
            if calls == 6:  # well inside the fit: the first call records the test
                raise KeyboardInterrupt
            return (impl.line(2.0) - 3.0) ** 2 + (impl.theta.b - 0.5) ** 2
        """,
    )
    write_params(pytester, "impl", a=-1.0, b=0.0)
    before = parameter_files(pytester.path)

    result = pytester.runpytest_subprocess("--fit", "--fit-method", "sgd", "--fit-lr", "0.001")

    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*fit interrupted: no parameter file was written.*"])
    assert parameter_files(pytester.path) == before


@pytest.mark.compat
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fit-max-iter", "-1"], "*--fit-max-iter: expected a whole number of 1 or more*"),
        (["--fit-max-iter", "many"], "*--fit-max-iter: expected a whole number of 1 or more*"),
        (["--fit-method", "bogus"], "*--fit-method: invalid choice: 'bogus'*"),
        (["--fit-holdout", "1.5"], "*--fit-holdout: expected a fraction from 0 up to*1*"),
        (["--fit-tol", "0"], "*--fit-tol: expected a positive number*"),
        (["--fit-restarts", "-2"], "*--fit-restarts: expected a whole number of 0 or more*"),
        (["--fit-params", ","], "*--fit-params: expected parameter names separated by commas*"),
    ],
)
def test_malformed_options_are_usage_errors(pytester, protected, args, message):
    result = pytester.runpytest("--fit", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert protected()


def test_a_test_whose_fixture_teardown_changes_its_data_is_left_out_of_the_fit(pytester):
    pytester.makepyfile(
        impl="""
        from pytest_soft import Parameters
        theta = Parameters(a=0.0)
        """,
        test_soft="""
        import pytest
        from pytest_soft import soft_test
        import impl

        @pytest.fixture
        def data():
            values = [1.0, 2.0, 3.0]
            yield values
            values.clear()  # the teardown empties what the body reads

        @soft_test
        def test_with_data(data):
            return sum((impl.theta.a - v) ** 2 for v in data) + 0.0 * impl.theta.a

        @soft_test
        def test_plain():
            return (impl.theta.a - 2.0) ** 2
        """,
    )
    result = pytester.runpytest("--fit")
    assert result.ret == 0
    out = result.stdout.str()
    assert (
        "test_soft.py::test_with_data: left out of the fit: called again after its fixtures' "
        "teardown it scored 0.0 instead of 14.0" in out
    )
    params = json.loads((pytester.path / "impl.params.json").read_text())
    assert params["parameters"]["a"] == pytest.approx(2.0, abs=1e-8)


def test_what_a_body_patches_through_monkeypatch_is_undone_after_the_fit(pytester):
    pytester.makepyfile(
        impl="""
        from pytest_soft import Parameters
        theta = Parameters(a=0.0)
        SCALE = {"k": 1.0}
        """,
        test_soft="""
        from pytest_soft import soft_test
        import impl

        @soft_test
        def test_patches(monkeypatch):
            monkeypatch.setitem(impl.SCALE, "k", 3.0)
            return (impl.SCALE["k"] * impl.theta.a - 3.0) ** 2

        def test_zz_no_leak():
            assert impl.SCALE["k"] == 1.0
        """,
    )
    result = pytester.runpytest("--fit", "--fit-dry-run")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=2)
