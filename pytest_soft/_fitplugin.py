"""The ``--fit`` step of a run, registered only with ``--fit`` (as pytest's stepwise plugin is
only with ``--sw``): the fit lock, the record pass (each soft test called once, directly where
it needs no fixture, else through pytest's protocol), the fit itself, the parameter files, and
the end-of-run check that the run measured what the fit reported.

The work is the core's: :mod:`pytest_soft.batch` builds terms, :mod:`pytest_soft.fit` fits.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from _pytest.runner import runtestprotocol  # no public way to run an item without reporting it

from ._marker import MARKER, SoftSpec
from ._state import SPEC_KEY, STATE_KEY, SoftRecord, SoftState
from ._text import visible
from .errors import NothingToFit, SoftError, SoftTestTimeout, SoftWarning

if TYPE_CHECKING:
    from .fit import FitResult, Progress


def register(config: pytest.Config) -> None:
    """Register the fit's plugins (called from pytest_configure when --fit is given): the fit
    in this process, or its part in a fit spread over pytest-xdist workers."""
    from . import _xdistfit

    if _xdistfit.active(config):
        _xdistfit.register(config)
        return
    config.pluginmanager.register(FitSession(config), "soft-fit")
    config.pluginmanager.register(FitLock(config), "soft-fit-lock")


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


class FitSession:
    """Record the soft tests, fit, save; then let pytest run every test with the result."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.state: SoftState = config.stash[STATE_KEY]

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        """With --fit: record the soft tests, fit, save; then let pytest run every test."""
        config = self.config
        if config.option.collectonly:
            return None
        if session.testsfailed and not config.option.continue_on_collection_errors:
            return None  # pytest's own loop reports the collection errors
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        self.state.fit_written = []
        try:
            self._run(session, reporter)
        except NothingToFit as exc:
            self._abandon(str(exc))
            raise pytest.UsageError(f"--fit: {exc}") from None
        except SoftError as exc:
            self._abandon(str(exc))
            self._write(reporter, "", None)
            for line in str(exc).splitlines():
                self._write(reporter, line, {"red": True, "bold": True})
            pytest.exit(
                f"pytest-soft: the fit stopped (see above); {self._written_so_far()}",
                returncode=pytest.ExitCode.TESTS_FAILED,
            )
        except KeyboardInterrupt:
            self._abandon("interrupted")
            self._write(reporter, "")
            self._write(
                reporter,
                f"fit interrupted: {self._written_so_far()}",
                {"yellow": True, "bold": True},
            )
            raise
        return None

    def _run(self, session: pytest.Session, reporter: Any) -> None:
        """Record this process's soft tests, fit them, save."""
        items = soft_items(session)
        if not items:
            raise pytest.UsageError(
                "--fit: no soft tests selected, so there is nothing to fit. Mark tests with "
                "@soft_test, or check the paths, -k and -m you gave."
            )
        cases: list[Any] = []
        try:
            cases, failed, skipped = self._record(items)
            self._show_left_out(reporter, failed, skipped)
            held_cases: list[Any] = []
            if self.config.option.soft_fit_holdout:
                from .fit import split_holdout

                option = self.config.option
                cases, held_cases = split_holdout(
                    cases, option.soft_fit_holdout, option.soft_fit_seed
                )
            terms, holdout, notes = self._build(cases, held_cases)
            self._fit_and_save(terms, holdout, notes, reporter)
        finally:
            _undo_patches(cases)

    def _abandon(self, why: str) -> None:
        """The fit stopped before its end (an error, Ctrl-C): let go of whatever it holds."""

    def _written_so_far(self) -> str:
        written = self.state.fit_written
        if not written:
            return "no parameter file was written."
        return "written before it stopped: " + ", ".join(str(p) for p in written) + "."

    def _write(self, reporter: Any, line: str, markup: dict[str, bool] | None = None) -> None:
        if reporter is not None:
            # Test ids and parameter names may hold newlines and terminal escapes: show them.
            reporter.write_line(visible(line), **(markup or {}))

    def _record(self, items: list[pytest.Function]) -> tuple[list[Any], list[str], list[str]]:
        """Call each soft test once, quietly, to capture its body and score: directly where it
        needs no fixture, else through pytest's protocol, which sets its fixtures up."""
        from .batch import Case

        state = self.state
        state.capturing = {}
        skipped: list[str] = []
        failed: list[str] = []
        cases = []
        limit = _per_test_timeout(self.config)
        direct = [_direct_arguments(item) for item in items]
        # The protocol's next item is the next one run through it (a test called directly sits
        # outside it): its fixtures' teardown at a module's end depends on that.
        following: dict[int, pytest.Function | None] = {}
        upcoming: pytest.Function | None = None
        for index in reversed(range(len(items))):
            if direct[index] is None:
                following[index], upcoming = upcoming, items[index]
        try:
            for index, item in enumerate(items):
                spec = item.stash[SPEC_KEY]
                assert isinstance(spec, SoftSpec)
                arguments = direct[index]
                body: functools.partial[Any] | None
                if arguments is not None:
                    body = functools.partial(item.obj, **arguments)
                    outcome, score, cases_returned = _call_directly(item, body, limit)
                else:
                    body, outcome, score, cases_returned = self._record_by_protocol(
                        item, following[index]
                    )
                if outcome != "scored":
                    (skipped if outcome == "skipped" else failed).append(item.nodeid)
                    continue
                assert body is not None and score is not None
                batch_key = None if cases_returned else batch_key_of(item)
                cases.append(
                    Case(
                        name=item.nodeid,
                        function=body.func,
                        kwargs=body.keywords,
                        weight=spec.weight,
                        threshold=spec.threshold,
                        score=score,
                        batch_key=batch_key,
                        index=index,
                    )
                )
        finally:
            state.capturing = None
        return cases, failed, skipped

    def _record_by_protocol(
        self, item: pytest.Function, nextitem: pytest.Function | None
    ) -> tuple[functools.partial[Any] | None, str, float | None, bool]:
        """Run one soft test through pytest's protocol (fixtures set up and torn down, skips,
        marks, timeouts) without reporting it; return its body, outcome and score."""
        saved_properties = list(item.user_properties)
        try:
            reports = runtestprotocol(item, log=False, nextitem=nextitem)
        finally:
            item.user_properties[:] = saved_properties
        call = next((r for r in reports if r.when == "call"), None)
        record = SoftRecord.from_properties(call.user_properties) if call is not None else None
        body = self.state.capturing.pop(item.nodeid, None) if self.state.capturing else None
        if body is None or record is None or record.score is None:
            return None, "skipped" if any(r.skipped for r in reports) else "failed", None, False
        return body, "scored", record.score, record.cases is not None

    def _backend(self) -> str:
        """What differentiates the terms fitted here (--fit-backend)."""
        return str(self.config.option.soft_fit_backend)

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
            backend=self._backend(),
        )

    def _show_left_out(self, reporter: Any, failed: list[str], skipped: list[str]) -> None:
        """Open the fit section, naming the soft tests that gave no score."""
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

    def _build(
        self, cases: list[Any], held_cases: list[Any]
    ) -> tuple[list[Any], list[Any], list[str]]:
        """The fit's terms and hold-out terms from recorded soft tests, and notes on the batches
        that fell back to case-by-case evaluation and the tests left out."""
        from .batch import build_terms

        limit = _per_test_timeout(self.config)
        if limit:
            wrapped: dict[Any, Callable[..., Any]] = {}
            for case in [*cases, *held_cases]:
                if case.function not in wrapped:
                    name = case.name.split("[", 1)[0]
                    wrapped[case.function] = _time_limited(case.function, name, limit)
                case.function = wrapped[case.function]
        backend = self.config.option.soft_fit_backend
        terms, notes = build_terms(cases, backend)
        holdout, _ = build_terms(held_cases, backend)
        return terms, holdout, notes

    def _fit_and_save(
        self, terms: list[Any], holdout: list[Any], notes: list[str], reporter: Any
    ) -> FitResult:
        """Fit, put the result in, write the parameter files (unless a dry run) and show the
        fit section."""
        from .report import render_fit

        option = self.config.option
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
        self._fitted(result)
        self.state.fit = result
        for line in render_fit(
            result, written=written, dry_run=option.soft_fit_dry_run, root=self.config.rootpath
        ):
            self._write(reporter, line)
        return result

    def _fitted(self, result: FitResult) -> None:
        """After the result is in and written, before the fit section shows it."""

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """After the scores: does this run measure what the fit reported?"""
        fit = self.state.fit
        if fit is None or not self.state.results:
            return
        from .report import render_fit_check

        lines, agree = render_fit_check(fit, self.state.results)
        for line in lines:
            terminalreporter.write_line(visible(line), **({} if agree else {"yellow": True}))
        if not fit.converged and self.config.option.soft_fit_require_convergence:
            terminalreporter.write_line(
                "the fit did not converge and convergence is required "
                "(--fit-require-convergence): the run fails",
                red=True,
                bold=True,
            )


def soft_items(session: pytest.Session) -> list[pytest.Function]:
    """The session's soft tests (a bad @soft_test mark is not one: it fails in the run)."""
    return [
        i
        for i in session.items
        if isinstance(i, pytest.Function) and isinstance(i.stash.get(SPEC_KEY, None), SoftSpec)
    ]


def batch_key_of(item: pytest.Function) -> tuple[str, str] | None:
    """The key under which a soft test's cases may be batched (a parametrized test's cases, in
    one module or class), or None."""
    spec = item.stash[SPEC_KEY]
    assert isinstance(spec, SoftSpec)
    if spec.batch and getattr(item, "callspec", None) is not None and item.parent is not None:
        return (item.parent.nodeid, item.originalname)
    return None


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
    timeout_plugin = config.pluginmanager.get_plugin("timeout")
    if timeout_plugin is None:
        return None
    # Its own reading of its option, ini setting and environment variable.
    seconds = timeout_plugin.get_env_settings(config).timeout
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


def _is_terminal(reporter: Any) -> bool:
    # pytest 7 has isatty as a plain bool attribute; pytest 8 and later make it callable.
    isatty = reporter.isatty
    return bool(isatty() if callable(isatty) else isatty)


class _ProgressLine:
    """The fit's progress: a live line on a terminal, a plain line every few seconds in logs."""

    def __init__(self, reporter: Any, every: float = 2.0) -> None:
        self.reporter = reporter
        self.live = reporter is not None and _is_terminal(reporter)
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
