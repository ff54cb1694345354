"""The pytest glue of pytest-soft: options, the ``soft_test`` marker, capture of returned scores,
the fit step in the run loop, and the terminal summary. The work itself happens in the core
modules (parameters, scores, fit, report), which know nothing of pytest.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import inspect
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from _pytest.runner import runtestprotocol

from ._marker import MARKER, MARKER_HELP, SoftSpec, make_spec
from ._outputs import _add_output_options, _fingerprint, _register_outputs, _wants_fingerprints
from ._state import (
    P_CASES,
    P_FINGERPRINT,
    P_SCORE,
    P_THRESHOLD,
    P_TOLERANCE,
    P_WEIGHT,
    SPEC_KEY,
    STATE_KEY,
    SoftState,
)
from ._text import visible
from .errors import SoftError, SoftWarning
from .report._model import ABOVE_THRESHOLD, ERROR, PASSED, SoftResult

if TYPE_CHECKING:
    from .fit import FitResult, Progress

# -- options ------------------------------------------------------------------------------------


def _number(kind: Callable[[str], Any], check: Callable[[Any], bool], wanted: str):
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
    group.addoption(
        "--fit-method",
        choices=["auto", "lsq", "lbfgs", "adam", "sgd", "powell", "nelder-mead"],
        default="auto",
        dest="soft_fit_method",
        help="optimiser: auto (default; least squares when every score is 0 or more, there are "
        "at least as many scores as fitted values and the Jacobian is cheap, else L-BFGS-B), "
        "lsq (trust-region least squares on square-root scores), lbfgs, adam, sgd, or without "
        "any gradient (for code autograd cannot trace) powell or nelder-mead.",
    )
    group.addoption(
        "--fit-tol",
        type=_positive_float,
        default=1e-12,
        dest="soft_fit_tol",
        metavar="TOL",
        help="convergence tolerance on the loss change, step and gradient (default 1e-12).",
    )
    group.addoption(
        "--fit-max-iter",
        type=_positive_int,
        default=1000,
        dest="soft_fit_max_iter",
        metavar="N",
        help="iteration limit of each start (default 1000).",
    )
    group.addoption(
        "--fit-timeout",
        type=_positive_float,
        default=None,
        dest="soft_fit_timeout",
        metavar="SECONDS",
        help="wall-time budget of the fit, counted from after scipy is imported (the record "
        "pass before it is not counted); when it runs out, the best parameters seen are kept, "
        "checked and reported as not converged.",
    )
    group.addoption(
        "--fit-restarts",
        type=_non_negative_int,
        default=0,
        dest="soft_fit_restarts",
        metavar="N",
        help="run N more starts from a screen of the bounds: a seeded sample of the loss "
        "there (within 2 x max(|initial value|, 1) of it where unbounded), the best point "
        "of each of its N best valleys; the best result wins (default 0).",
    )
    group.addoption(
        "--fit-seed",
        type=_non_negative_int,
        default=0,
        dest="soft_fit_seed",
        metavar="N",
        help="seed for restarts, the hold-out split and the gradient check (default 0).",
    )
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
        "--fit-holdout",
        type=_fraction,
        default=0.0,
        dest="soft_fit_holdout",
        metavar="FRACTION",
        help="keep this share of the soft tests (drawn with --fit-seed) out of the fit and "
        "report their loss separately, before and after.",
    )
    group.addoption(
        "--fit-dry-run",
        action="store_true",
        dest="soft_fit_dry_run",
        help="fit and run the tests with the tuned values, but write no parameter file.",
    )
    group.addoption(
        "--fit-require-convergence",
        action="store_true",
        default=None,
        dest="soft_fit_require_convergence",
        help="make the run fail (exit status 1) when the fit stops before it converges, for "
        "CI. Also the ini setting soft_fit_require_convergence.",
    )
    group.addoption(
        "--fit-lock-timeout",
        type=_positive_float,
        default=600.0,
        dest="soft_fit_lock_timeout",
        metavar="SECONDS",
        help="how long a fit waits for another fit of the same project to finish (default 600).",
    )
    _add_output_options(group)
    parser.addini(
        "soft_fit_require_convergence",
        "fail the run when --fit stops before it converges (as --fit-require-convergence).",
        type="bool",
        default=False,
    )
    parser.addini(
        "soft_summary_worst",
        "how many of the worst soft tests the end-of-run summary lists (default 5).",
        default="5",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    config.stash[STATE_KEY] = SoftState()
    _ini_int(config, "soft_summary_worst")  # a bad value is reported now, not after the run
    if config.option.soft_fit and _xdist_workers(config):
        raise pytest.UsageError(
            "--fit runs in one process: the fit needs every soft test in the process that "
            "tunes the parameters. Drop -n (pytest-xdist) for the fit; a later plain run can "
            "use -n again."
        )
    if config.option.soft_fit_batch_size and config.option.soft_fit_method not in ("adam", "sgd"):
        raise pytest.UsageError(
            "--fit-batch-size takes minibatches for --fit-method adam or sgd; the "
            f"{config.option.soft_fit_method} method takes every soft test at each step."
        )
    config.pluginmanager.register(SoftSession(config), "soft-session")
    if config.option.soft_fit and not hasattr(config, "workerinput"):
        config.pluginmanager.register(FitLock(config), "soft-fit-lock")
    _register_outputs(config)


def _xdist_workers(config: pytest.Config) -> bool:
    numprocesses = getattr(config.option, "numprocesses", None)
    dist = getattr(config.option, "dist", "no")
    return bool(numprocesses) or dist not in (None, "no")


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
    item.user_properties.append((P_WEIGHT, spec.weight))
    if spec.threshold is not None:
        item.user_properties.append((P_THRESHOLD, spec.threshold))
    if spec.tolerance is not None:
        item.user_properties.append((P_TOLERANCE, spec.tolerance))
    if _wants_fingerprints(item.config):
        fingerprint = _fingerprint(item)
        if fingerprint is not None:
            item.user_properties.append((P_FINGERPRINT, fingerprint))


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
    pyfuncitem.user_properties.append((P_SCORE, score.value))
    if score.cases is not None:
        pyfuncitem.user_properties.append((P_CASES, score.cases))
    if spec.threshold is not None and score.value > spec.threshold:
        pytest.fail(
            f"soft test {pyfuncitem.nodeid}: score {score.value!r} is above its threshold "
            f"{spec.threshold!r}",
            pytrace=False,
        )
    return True


# -- reporting ----------------------------------------------------------------------------------


def _soft_properties(report: pytest.TestReport) -> dict[str, Any] | None:
    props = report.user_properties
    if not props or not any(name == P_WEIGHT for name, _ in props):
        return None
    return dict(props)


def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
    if report.when != "call" or hasattr(report, "wasxfail"):
        return None
    props = _soft_properties(report)
    if props is None or P_SCORE not in props:
        return None
    score = f"score {props[P_SCORE]:.6g}"
    if report.passed:
        return "passed", ".", (f"PASSED ({score})", {"green": True})
    if report.failed:
        return "failed", "F", (f"FAILED ({score})", {"red": True})
    return None


class FitLock:
    """Two fits of one project never overlap: the second waits (saying so) for the first to
    finish, so that it starts from the first one's parameter files. Taken before collection,
    since importing the implementation reads its parameter file."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.held: contextlib.ExitStack | None = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        from ._files import LockTimeout, exclusive_lock, project_lock_path

        timeout = self.config.option.soft_fit_lock_timeout
        path = project_lock_path(self.config.rootpath)
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")

        def on_wait(holder: str) -> None:
            message = (
                f"pytest-soft: another fit of this project ({holder}) is running; waiting up "
                f"to {timeout:g} s for it to finish (--fit-lock-timeout, lock file {path})"
            )
            if reporter is not None:
                reporter.write_line(message, yellow=True)

        stack = contextlib.ExitStack()
        try:
            stack.enter_context(exclusive_lock(path, timeout, on_wait))
        except LockTimeout as exc:
            pytest.exit(
                f"pytest-soft: gave up after waiting {timeout:g} s for the fit lock {path}, "
                f"held by {exc.holder}. Let that fit finish, or give --fit-lock-timeout more "
                "time. Nothing was written.",
                returncode=pytest.ExitCode.INTERRUPTED,
            )
        self.held = stack

    def pytest_unconfigure(self) -> None:
        if self.held is not None:
            self.held.close()
            self.held = None


class SoftSession:
    """The hooks that need this run's state. Registered once per run, in pytest_configure."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.state: SoftState = config.stash[STATE_KEY]

    # -- the fit ----------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        """With --fit: record the soft tests, fit, save; then let pytest run every test."""
        config = self.config
        if not config.option.soft_fit or config.option.collectonly:
            return None
        if session.testsfailed and not config.option.continue_on_collection_errors:
            return None  # pytest's own loop reports the collection errors
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        items = [i for i in session.items if isinstance(i.stash.get(SPEC_KEY, None), SoftSpec)]
        if not items:
            raise pytest.UsageError(
                "--fit: no soft tests selected, so there is nothing to fit. Mark tests with "
                "@soft_test, or check the paths, -k and -m you gave."
            )
        from .errors import SoftError
        from .fit import NothingToFit

        self.state.fit_written = []
        cases: list[Any] = []
        try:
            cases, failed, skipped = self._record(items)
            self._fit(cases, failed, skipped, reporter)
        except NothingToFit as exc:
            raise pytest.UsageError(f"--fit: {exc}") from None
        except SoftError as exc:
            self._write(reporter, "", None)
            for line in str(exc).splitlines():
                self._write(reporter, line, {"red": True, "bold": True})
            pytest.exit(
                f"pytest-soft: the fit stopped (see above); {self._written_so_far()}",
                returncode=pytest.ExitCode.TESTS_FAILED,
            )
        except KeyboardInterrupt:
            self._write(reporter, "")
            self._write(
                reporter,
                f"fit interrupted: {self._written_so_far()}",
                {"yellow": True, "bold": True},
            )
            raise
        finally:
            _undo_patches(cases)
        return None

    def _written_so_far(self) -> str:
        written = self.state.fit_written
        if not written:
            return "no parameter file was written."
        return "written before it stopped: " + ", ".join(str(p) for p in written) + "."

    def _write(self, reporter: Any, line: str, markup: dict[str, bool] | None = None) -> None:
        if reporter is not None:
            # Test ids and parameter names may hold newlines and terminal escapes: show them.
            reporter.write_line(visible(line), **(markup or {}))

    def _record(self, items: list[pytest.Item]) -> tuple[list[Any], list[str], list[str]]:
        """Call each soft test once, quietly, to capture its body and score: directly where it
        needs no fixture, else through pytest's protocol, which sets its fixtures up."""
        from .batch import Case

        state = self.state
        state.capturing = {}
        skipped: list[str] = []
        failed: list[str] = []
        cases = []
        limit = _per_test_timeout(self.config)
        try:
            for index, item in enumerate(items):
                spec = item.stash[SPEC_KEY]
                assert isinstance(spec, SoftSpec)
                arguments = _direct_arguments(item)
                if arguments is not None:
                    assert isinstance(item, pytest.Function)
                    body = functools.partial(item.obj, **arguments)
                    outcome, score, cases_returned = _call_directly(item, body, limit)
                else:
                    body, outcome, score, cases_returned = self._record_by_protocol(items, index)
                if outcome != "scored":
                    (skipped if outcome == "skipped" else failed).append(item.nodeid)
                    continue
                assert body is not None and score is not None
                batchable = (
                    spec.batch
                    and not cases_returned
                    and getattr(item, "callspec", None) is not None
                )
                cases.append(
                    Case(
                        name=item.nodeid,
                        function=body.func,
                        kwargs=body.keywords,
                        weight=spec.weight,
                        threshold=spec.threshold,
                        score=score,
                        batch_key=(item.parent.nodeid, item.originalname) if batchable else None,
                    )
                )
        finally:
            state.capturing = None
        return cases, failed, skipped

    def _record_by_protocol(
        self, items: list[pytest.Item], index: int
    ) -> tuple[functools.partial[Any] | None, str, float | None, bool]:
        """Run one soft test through pytest's protocol (fixtures set up and torn down, skips,
        marks, timeouts) without reporting it; return its body, outcome and score."""
        item = items[index]
        nextitem = items[index + 1] if index + 1 < len(items) else None
        saved_properties = list(item.user_properties)
        try:
            reports = runtestprotocol(item, log=False, nextitem=nextitem)
        finally:
            item.user_properties[:] = saved_properties
        call = next((r for r in reports if r.when == "call"), None)
        props = dict(call.user_properties) if call is not None else {}
        body = self.state.capturing.pop(item.nodeid, None) if self.state.capturing else None
        if body is None or P_SCORE not in props:
            return None, "skipped" if any(r.skipped for r in reports) else "failed", None, False
        return body, "scored", float(props[P_SCORE]), P_CASES in props

    def _run_fit(self, terms: list[Any], holdout: list[Any], progress: Any) -> FitResult:
        from .fit import fit

        option = self.config.option
        return fit(
            terms,
            params=option.soft_fit_params,
            method=option.soft_fit_method,
            tol=option.soft_fit_tol,
            max_iter=option.soft_fit_max_iter,
            timeout=option.soft_fit_timeout,
            restarts=option.soft_fit_restarts,
            seed=option.soft_fit_seed,
            lr=option.soft_fit_lr,
            batch_size=option.soft_fit_batch_size,
            holdout=holdout,
            progress=progress,
        )

    def _fit(self, cases: list[Any], failed: list[str], skipped: list[str], reporter: Any) -> None:
        from .batch import build_terms
        from .fit import split_holdout
        from .report import render_fit

        option = self.config.option
        self._write(reporter, "")
        if reporter is not None:
            reporter.write_sep("=", "soft fit")
        for names, why in (
            (failed, "gave no score and are left out of the fit (they fail in the run below)"),
            (skipped, "were skipped and are left out of the fit"),
        ):
            if names:
                shown = ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")
                self._write(reporter, f"{len(names)} soft test(s) {why}: {shown}", {"yellow": True})
        held_cases: list[Any] = []
        if option.soft_fit_holdout:
            cases, held_cases = split_holdout(cases, option.soft_fit_holdout, option.soft_fit_seed)
        limit = _per_test_timeout(self.config)
        if limit:
            wrapped: dict[Any, Callable[..., Any]] = {}
            for case in [*cases, *held_cases]:
                if case.function not in wrapped:
                    name = case.name.split("[", 1)[0]
                    wrapped[case.function] = _time_limited(case.function, name, limit)
                case.function = wrapped[case.function]
        terms, notes = build_terms(cases)
        holdout, _ = build_terms(held_cases)
        for note in notes:
            self._write(reporter, note, {"yellow": True})
        progress = _ProgressLine(reporter)
        with warnings.catch_warnings():
            # The fit section shows the fit's own warnings (result.warnings), in place.
            warnings.simplefilter("ignore", SoftWarning)
            result = self._run_fit(terms, holdout, progress)
        progress.done()
        for message in result.warnings:
            self._write(reporter, f"warning: {message}", {"yellow": True})
        written = self.state.fit_written
        if result.improved:
            groups = result.apply()
            if not option.soft_fit_dry_run:
                for group in groups:
                    written.append(group.save())
        self.state.fit = result
        for line in render_fit(
            result, written=written, dry_run=option.soft_fit_dry_run, root=self.config.rootpath
        ):
            self._write(reporter, line)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown" or report.skipped:
            return
        if report.when == "setup" and not report.failed:
            return
        props = _soft_properties(report)
        if props is None:
            return
        score = props.get(P_SCORE)
        if report.passed:
            outcome = PASSED
        elif score is not None:
            outcome = ABOVE_THRESHOLD
        else:
            outcome = ERROR
        self.state.results[report.nodeid] = SoftResult(
            nodeid=report.nodeid,
            weight=float(props[P_WEIGHT]),
            threshold=props.get(P_THRESHOLD),
            score=None if score is None else float(score),
            cases=props.get(P_CASES),
            outcome=outcome,
            fingerprint=props.get(P_FINGERPRINT),
            tolerance=props.get(P_TOLERANCE),
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
        fit = self.state.fit
        if fit is not None:
            from .report import render_fit_check

            lines, agree = render_fit_check(fit, self.state.results)
            for line in lines:
                write(visible(line), **({} if agree else {"yellow": True}))
            if not fit.converged and self._require_convergence():
                write(
                    "the fit did not converge and convergence is required "
                    "(--fit-require-convergence): the run fails",
                    red=True,
                    bold=True,
                )

    def _require_convergence(self) -> bool:
        option = self.config.option.soft_fit_require_convergence
        return bool(
            self.config.getini("soft_fit_require_convergence") if option is None else option
        )

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        fit = self.state.fit
        if fit is not None and not fit.converged and self._require_convergence():
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _direct_arguments(item: pytest.Item) -> dict[str, Any] | None:
    """The arguments of a soft test that needs nothing from pytest's protocol: each one a
    value of a direct ``parametrize``, no fixture (autouse ones included) and no mark besides
    ``parametrize`` and ``soft_test`` (other marks may act at run time: skip, xfail,
    usefixtures, timeout, a plugin's own). None for every other test."""
    if not isinstance(item, pytest.Function) or inspect.iscoroutinefunction(item.obj):
        return None
    direct: set[str] = set()
    for mark in item.iter_markers():
        if mark.name == MARKER:
            continue
        if mark.name != "parametrize":
            return None
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(names, str):
            names = [name.strip() for name in names.split(",") if name.strip()]
        indirect = mark.kwargs.get("indirect", False)
        if indirect is True:
            continue
        direct.update(
            n for n in names if not (isinstance(indirect, (list, tuple)) and n in indirect)
        )
    wanted = list(item.fixturenames)
    if not set(wanted) <= direct:
        return None
    callspec = getattr(item, "callspec", None)
    # pytest 7 keeps direct values in callspec.funcargs; pytest 8 and later in callspec.params.
    values = {**getattr(callspec, "funcargs", {}), **getattr(callspec, "params", {})}
    if not set(wanted) <= set(values):
        return None
    return {name: values[name] for name in wanted}


def _call_directly(
    item: pytest.Function, body: functools.partial[Any], limit: float | None
) -> tuple[str, float | None, bool]:
    """Call a soft test that needs no fixture, quietly: (outcome, score, returned per-case
    scores). Its output and warnings belong to the real run that follows."""
    import io

    from .errors import ScoreError
    from .scores import check_score

    call = _time_limited(body, item.nodeid, limit) if limit else body
    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        try:
            returned = call()
        except pytest.skip.Exception:
            return "skipped", None, False
        except (Exception, pytest.fail.Exception, pytest.xfail.Exception):
            return "failed", None, False
    try:
        score = check_score(returned, item.nodeid)
    except ScoreError:
        return "failed", None, False
    return "scored", score.value, score.cases is not None


def _undo_patches(cases: list[Any]) -> None:
    """Undo what test bodies patched during the fit through their (already torn down)
    ``monkeypatch`` fixture, so that nothing leaks into the tests that run after it."""
    for case in cases:
        for value in case.kwargs.values():
            if isinstance(value, pytest.MonkeyPatch):
                value.undo()


def _per_test_timeout(config: pytest.Config) -> float | None:
    """pytest-timeout's per-test limit, when that plugin is active and one is set."""
    seconds = getattr(config, "_env_timeout", None)  # its option, ini or environment setting
    if not seconds:
        return None
    import signal
    import threading

    if (
        not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        return None
    return float(seconds)


class SoftTestTimeout(SoftError):
    """A soft test body ran past pytest-timeout's limit while the fit evaluated it."""


def _time_limited(body: Callable[..., Any], name: str, seconds: float) -> Callable[..., Any]:
    """A test body with pytest-timeout's limit applied to each call the fit makes
    (pytest-timeout itself only watches the test run, not the fit's own evaluations)."""
    import signal

    def expired(signum: int, frame: Any) -> None:
        raise SoftTestTimeout(
            f"Timeout: soft test {name} ran longer than {seconds:g} s (pytest-timeout's "
            "limit) while the fit evaluated it; the fit stopped. Make the test faster, or raise "
            "--timeout."
        )

    def call(*args: Any, **kwargs: Any) -> Any:
        previous = signal.signal(signal.SIGALRM, expired)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return body(*args, **kwargs)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    return call


class _ProgressLine:
    """The fit's progress: a live line on a terminal, a plain line every few seconds in logs."""

    def __init__(self, reporter: Any, every: float = 2.0) -> None:
        self.reporter = reporter
        self.live = reporter is not None and reporter.isatty()
        self.every = every
        self.last = -float("inf")
        self.shown = False

    def __call__(self, p: Progress) -> None:
        if self.reporter is None:
            return
        now = time.monotonic()
        text = (
            f"fit: start {p.start + 1}/{p.starts}  iteration {p.iteration}  loss {p.loss:.6g}  "
            f"best {p.best_loss:.6g}  "
            # A derivative-free method has no gradient to show (NaN).
            + (f"|gradient| {p.grad_norm:.3g}  " if p.grad_norm == p.grad_norm else "")
            + f"{p.seconds:.1f}s"
        )
        if self.live:
            if now - self.last >= 0.1:
                self.reporter.rewrite(text)
                self.last, self.shown = now, True
        elif now - self.last >= self.every:
            self.reporter.write_line(text)
            self.last = now

    def done(self) -> None:
        if self.live and self.shown:
            self.reporter.rewrite("")
            self.reporter.write("\r")


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
