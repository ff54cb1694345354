"""The pytest glue of pytest-soft: options and ini settings, the ``soft_test`` marker, capture
of returned scores, the end-of-run summary and the exit status. The ``--fit`` step lives in
``_fitplugin`` (registered only with ``--fit``), report files in ``_outputs``. The work itself
happens in the core modules (parameters, scores, fit, report), which know nothing of pytest.
"""

from __future__ import annotations

import argparse
import functools
import inspect
from collections.abc import Callable
from typing import Any

import pytest

from . import _ini
from ._marker import MARKER, MARKER_HELP, SoftSpec, make_spec
from ._outputs import (
    OUTPUT_INI_OPTIONS,
    _add_output_options,
    _fingerprint,
    _register_outputs,
    _wants_fingerprints,
)
from ._state import SPEC_KEY, STATE_KEY, SoftRecord, SoftState
from .errors import SoftError
from .report._model import ABOVE_THRESHOLD, ERROR, PASSED, SoftResult

# -- options ------------------------------------------------------------------------------------


def _number(
    kind: Callable[[str], Any], check: Callable[[Any], bool], wanted: str
) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if not check(value):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    parse.__name__ = wanted  # argparse names the type in some messages
    return parse


_positive_int = _number(int, lambda v: v >= 1, "a whole number of 1 or more")
_non_negative_int = _number(int, lambda v: v >= 0, "a whole number of 0 or more")
_positive_float = _number(float, lambda v: v > 0 and v != float("inf"), "a positive number")
_fraction = _number(float, lambda v: 0 <= v < 1, "a fraction from 0 up to (not including) 1")


def _name_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(
            "expected parameter names separated by commas, e.g. sine.omega,linear"
        )
    return names


def _method(text: str) -> str:
    if text not in FIT_METHODS:
        raise argparse.ArgumentTypeError(
            f"invalid choice: {text!r} (choose from {', '.join(FIT_METHODS)})"
        )
    return text


_method.__name__ = "method"


def _backend(text: str) -> str:
    """--fit-backend: one of the choices (whether JAX is installed is checked at configure)."""
    from .fit._problem import BACKENDS

    choice = text.strip()
    if choice not in BACKENDS:
        raise argparse.ArgumentTypeError(
            f"invalid choice: {choice!r} (choose from {', '.join(BACKENDS)})"
        )
    return choice


def _check_jax_installed(config: pytest.Config) -> None:
    from .fit._problem import INSTALL_JAX

    if config.option.soft_fit_backend != "jax":
        return
    try:
        import jax  # noqa: F401  (only for a fit that asked for JAX)
    except ImportError:
        raise pytest.UsageError(
            f"--fit-backend jax needs JAX, which is not installed. Install the extra: {INSTALL_JAX}"
        ) from None


FIT_METHODS = ("auto", "lsq", "lbfgs", "adam", "sgd", "powell", "nelder-mead")

# The fit options a project sets once: each is also an ini setting named after its dest.
FIT_INI_OPTIONS = [
    _ini.IniOption(
        "--fit-method",
        "soft_fit_method",
        _method,
        "optimiser: auto (default; least squares when every score is 0 or more, there are "
        "at least as many scores as fitted values and the Jacobian is cheap, else L-BFGS-B), "
        "lsq (trust-region least squares on square-root scores), lbfgs, adam, sgd, or without "
        "any gradient (for code autograd cannot trace) powell or nelder-mead.",
        metavar="{" + ",".join(FIT_METHODS) + "}",
        default="auto",
    ),
    _ini.IniOption(
        "--fit-tol",
        "soft_fit_tol",
        _positive_float,
        "convergence tolerance on the loss change, step and gradient (default 1e-12).",
        metavar="TOL",
        default=1e-12,
    ),
    _ini.IniOption(
        "--fit-max-iter",
        "soft_fit_max_iter",
        _positive_int,
        "iteration limit of each start (default 1000).",
        metavar="N",
        default=1000,
    ),
    _ini.IniOption(
        "--fit-timeout",
        "soft_fit_timeout",
        _positive_float,
        "wall-time budget of the fit, counted from after scipy is imported (the record "
        "pass before it is not counted); when it runs out, the best parameters seen are kept, "
        "checked and reported as not converged.",
        metavar="SECONDS",
    ),
    _ini.IniOption(
        "--fit-restarts",
        "soft_fit_restarts",
        _non_negative_int,
        "run N more starts from a screen of the bounds: a seeded sample of the loss "
        "there (within 2 x max(|initial value|, 1) of it where unbounded), the best point "
        "of each of its N best valleys; the best result wins (default 0).",
        metavar="N",
        default=0,
    ),
    _ini.IniOption(
        "--fit-seed",
        "soft_fit_seed",
        _non_negative_int,
        "seed for restarts, the hold-out split and the gradient check (default 0).",
        metavar="N",
        default=0,
    ),
    _ini.IniOption(
        "--fit-holdout",
        "soft_fit_holdout",
        _fraction,
        "keep this share of the soft tests (drawn with --fit-seed) out of the fit and "
        "report their loss separately, before and after.",
        metavar="FRACTION",
        default=0.0,
    ),
    _ini.IniOption(
        "--fit-backend",
        "soft_fit_backend",
        _backend,
        "what differentiates the soft tests: auto (default; JAX for the soft tests whose "
        "score is a JAX array, autograd for the others), autograd, or jax (needs the extra: "
        "pip install 'pytest-soft[jax]').",
        metavar="{auto,autograd,jax}",
        default="auto",
    ),
    _ini.IniOption(
        "--fit-require-convergence",
        "soft_fit_require_convergence",
        _ini.boolean,
        "make the run fail (exit status 1) when the fit stops before it converges, for CI.",
        default=False,
        switch=True,
    ),
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("soft", "soft unit tests (pytest-soft)")
    group.addoption(
        "--soft-report",
        action="store_true",
        dest="soft_report",
        help="print the full table of soft scores at the end of the run: every soft test, "
        "worst first, with score, weight, weighted contribution, threshold and outcome.",
    )
    group.addoption(
        "--fit",
        action="store_true",
        dest="soft_fit",
        help="tune the parameters the selected soft tests read so that the suite loss is "
        "smallest, write them beside their modules (when the loss improved), then run the "
        "tests with them.",
    )
    group.addoption(
        "--fit-params",
        type=_name_list,
        dest="soft_fit_params",
        metavar="NAMES",
        help="fit only these parameters: full names (sine.omega) or module names for a whole "
        "group, separated by commas. Default: every parameter the selected soft tests read.",
    )
    for option in FIT_INI_OPTIONS:
        _ini.add(parser, group, option)
    group.addoption(
        "--fit-lr",
        type=_positive_float,
        default=None,
        dest="soft_fit_lr",
        metavar="RATE",
        help="learning rate of adam and sgd (default 0.01).",
    )
    group.addoption(
        "--fit-batch-size",
        type=_positive_int,
        default=None,
        dest="soft_fit_batch_size",
        metavar="N",
        help="adam and sgd: take each step on N soft test cases drawn at random (seeded with "
        "--fit-seed), every case once an epoch, instead of the whole suite.",
    )
    group.addoption(
        "--fit-dry-run",
        action="store_true",
        dest="soft_fit_dry_run",
        help="fit and run the tests with the tuned values, but write no parameter file.",
    )
    group.addoption(
        "--fit-lock-timeout",
        type=_positive_float,
        default=600.0,
        dest="soft_fit_lock_timeout",
        metavar="SECONDS",
        help="how long a fit waits for another fit of the same project to finish (default 600).",
    )
    _add_output_options(parser, group)
    parser.addini(
        "soft_summary_worst",
        "how many of the worst soft tests the end-of-run summary lists (default 5).",
        default="5",
    )


def pytest_configure(config: pytest.Config) -> None:
    _ini.apply(config, [*FIT_INI_OPTIONS, *OUTPUT_INI_OPTIONS])
    config.addinivalue_line("markers", MARKER_HELP)
    config.stash[STATE_KEY] = SoftState()
    _ini_int(config, "soft_summary_worst")  # a bad value is reported now, not after the run
    if config.option.soft_fit_batch_size and config.option.soft_fit_method not in ("adam", "sgd"):
        raise pytest.UsageError(
            "--fit-batch-size takes minibatches for --fit-method adam or sgd; the "
            f"{config.option.soft_fit_method} method takes every soft test at each step."
        )
    config.pluginmanager.register(SoftSession(config), "soft-session")
    if config.option.soft_fit:
        _check_jax_installed(config)
        from . import _fitplugin

        _fitplugin.register(config)
    _register_outputs(config)


# -- collection and running ---------------------------------------------------------------------


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        marker = item.get_closest_marker(MARKER)
        if marker is None:
            continue
        try:
            spec: SoftSpec | SoftError = make_spec(*marker.args, **marker.kwargs)
        except SoftError as exc:
            spec = SoftError(f"{item.nodeid}: {exc}")
        item.stash[SPEC_KEY] = spec


def _spec(item: pytest.Item) -> SoftSpec | None:
    spec = item.stash.get(SPEC_KEY, None)
    if isinstance(spec, SoftError):
        pytest.fail(str(spec), pytrace=False)
    return spec


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    spec = _spec(item)
    if spec is None:
        return
    fingerprint = _fingerprint(item) if _wants_fingerprints(item.config) else None
    item.user_properties.extend(SoftRecord.spec_properties(spec, fingerprint))


def call_soft_test(item: pytest.Function) -> Any:
    """Call the test function with its fixture values and return what it returned."""
    function = item.obj
    if inspect.iscoroutinefunction(function):
        pytest.fail(
            f"soft test {item.nodeid} is async; soft tests are plain functions.", pytrace=False
        )
    kwargs = {name: item.funcargs[name] for name in item._fixtureinfo.argnames}
    capturing = item.config.stash[STATE_KEY].capturing
    if capturing is not None:
        # The fit calls the body again with the fixture values set up now, once for all steps.
        capturing[item.nodeid] = functools.partial(function, **kwargs)
    return function(**kwargs)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    spec = pyfuncitem.stash.get(SPEC_KEY, None)
    if spec is None:
        return None  # an ordinary test: pytest calls it
    assert isinstance(spec, SoftSpec)  # setup failed the test otherwise
    returned = call_soft_test(pyfuncitem)

    from .errors import ScoreError
    from .scores import check_score

    try:
        score = check_score(returned, pyfuncitem.nodeid)
    except ScoreError as exc:
        pytest.fail(str(exc), pytrace=False)
    pyfuncitem.user_properties.extend(SoftRecord.score_properties(score.value, score.cases))
    if spec.threshold is not None and score.value > spec.threshold:
        pytest.fail(
            f"soft test {pyfuncitem.nodeid}: score {score.value!r} is above its threshold "
            f"{spec.threshold!r}",
            pytrace=False,
        )
    return True


# -- reporting ----------------------------------------------------------------------------------


def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
    if report.when != "call" or hasattr(report, "wasxfail"):
        return None
    record = SoftRecord.from_properties(report.user_properties)
    if record is None or record.score is None:
        return None
    score = f"score {record.score:.6g}"
    if report.passed:
        return "passed", ".", (f"PASSED ({score})", {"green": True})
    if report.failed:
        return "failed", "F", (f"FAILED ({score})", {"red": True})
    return None


class SoftSession:
    """Every run's soft results: collected from the reports, summarised at the end, and turned
    into the exit status. Registered once per run, in pytest_configure."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.state: SoftState = config.stash[STATE_KEY]

    # -- the fit ----------------------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown" or report.skipped:
            return
        if report.when == "setup" and not report.failed:
            return
        record = SoftRecord.from_properties(report.user_properties)
        if record is None:
            return
        if report.passed:
            outcome = PASSED
        elif record.score is not None:
            outcome = ABOVE_THRESHOLD
        else:
            outcome = ERROR
        self.state.results[report.nodeid] = SoftResult(
            nodeid=report.nodeid,
            weight=record.weight,
            threshold=record.threshold,
            score=record.score,
            cases=record.cases,
            outcome=outcome,
            fingerprint=record.fingerprint,
            tolerance=record.tolerance,
        )

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.state.results:
            return
        from .report import render_summary, render_table

        results = list(self.state.results.values())
        write = terminalreporter.write_line
        if self.config.option.soft_report:
            terminalreporter.write_sep("=", "soft report")
            before = self.state.fit.scores_before if self.state.fit is not None else None
            for line in render_table(results, before=before):
                write(line)
            if self.state.fit is not None:
                from .report import render_parameters, render_uncertainty

                write("fitted parameters (± standard error where the fit gives one):")
                for line in render_parameters(self.state.fit) + render_uncertainty(self.state.fit):
                    write(line)
        terminalreporter.write_sep("=", "soft scores")
        for line in render_summary(results, worst=_ini_int(self.config, "soft_summary_worst")):
            write(line)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """The one place that turns what pytest-soft found into the run's exit status (after
        the report files are written, which records what failed in the state)."""
        session.exitstatus = verdict(session.exitstatus, self.state, self.config)


def verdict(
    status: int | pytest.ExitCode, state: SoftState, config: pytest.Config
) -> int | pytest.ExitCode:
    """The run's exit status: pytest's own, unless the soft files were interrupted while being
    written (interrupted), or a run that pytest found fine has a regression beyond tolerance, a
    report it could not write, or a fit that did not converge where convergence is required
    (tests failed)."""
    if state.writing_interrupted:
        return pytest.ExitCode.INTERRUPTED
    if status != pytest.ExitCode.OK:
        return status
    fit = state.fit
    unconverged = fit is not None and not fit.converged
    if state.soft_failures or (unconverged and config.option.soft_fit_require_convergence):
        return pytest.ExitCode.TESTS_FAILED
    return status


def _ini_int(config: pytest.Config, name: str) -> int:
    text = config.getini(name)
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise pytest.UsageError(
            f"ini setting {name} must be a whole number, got {text!r}"
        ) from None
    if value < 0:
        raise pytest.UsageError(f"ini setting {name} must be 0 or more, got {value}")
    return value
