"""The pytest glue of reports, baselines and history: their options, and a plugin class
registered only when one of them is given. The work happens in the report and tracking
packages, which know nothing of pytest."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ._files import atomic_write_text
from ._marker import MARKER
from ._state import STATE_KEY, SoftState
from ._text import shown_path
from .errors import SoftError
from .report._model import SoftResult

# -- reports, baselines and history ------------------------------------------------------------
# Registered only when one of their options is given. Workers (pytest-xdist) send scores,
# tolerances and fingerprints in user_properties and the ids they collected in workeroutput;
# only the controller (or the single process) compares and writes files.

FINGERPRINTS_KEY = pytest.StashKey[dict[Any, "str | None"]]()
WORKER_COLLECTED = "pytest_soft_collected"
WORKER_SOFT_COLLECTED = "pytest_soft_collected_soft"
_OUTPUT_OPTIONS = {
    "soft_json": "JSON report",
    "soft_md": "Markdown summary",
    "soft_html": "HTML report",
    "soft_benchmark_json": "benchmark JSON",
}


def _tolerance_option(text: str) -> Any:
    from .tracking import tolerance_type  # imported when the option is given, not at startup

    return tolerance_type(text)


_tolerance_option.__name__ = "tolerance"


def _path_option(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a file path, got an empty string")
    return text


def _add_output_options(group: Any) -> None:
    group.addoption(
        "--soft-json",
        type=_path_option,
        dest="soft_json",
        metavar="PATH",
        help="write a JSON report of the soft tests to PATH: run metadata (time, git commit, "
        "versions), suite loss, every soft test, the fit, the baseline comparison.",
    )
    group.addoption(
        "--soft-md",
        type=_path_option,
        dest="soft_md",
        metavar="PATH",
        help="write a Markdown summary to PATH (suite loss, worst tests, changes against the "
        "baseline), e.g. for $GITHUB_STEP_SUMMARY or a pull-request comment.",
    )
    group.addoption(
        "--soft-html",
        type=_path_option,
        dest="soft_html",
        metavar="PATH",
        help="write a self-contained HTML report to PATH: tables, a chart of the worst scores, "
        "the fit's loss curve, the trend of --soft-history.",
    )
    group.addoption(
        "--soft-benchmark-json",
        type=_path_option,
        dest="soft_benchmark_json",
        metavar="PATH",
        help="write the suite loss and every soft test's score to PATH in github-action-"
        "benchmark's customSmallerIsBetter format.",
    )
    group.addoption(
        "--soft-baseline",
        type=_path_option,
        dest="soft_baseline",
        metavar="PATH",
        help="compare this run's scores with the baseline file PATH (commit it): improved, "
        "regressed, new, changed, not run. A missing file is not an error.",
    )
    group.addoption(
        "--soft-update-baseline",
        action="store_true",
        dest="soft_update_baseline",
        help="write this run's scores (after the fit, if any) into the --soft-baseline file; "
        "tests not run keep their entries.",
    )
    group.addoption(
        "--soft-fail-regression",
        type=_tolerance_option,
        dest="soft_fail_regression",
        metavar="TOL",
        help="fail the run when the suite loss or a soft test's score is worse than the "
        "baseline by more than TOL: 5%% (relative), 0.01 (absolute) or 5%%,0.01 (worse by "
        "more than both). A soft_test(tolerance=...) overrides it for that test.",
    )
    group.addoption(
        "--soft-history",
        type=_path_option,
        dest="soft_history",
        metavar="PATH",
        help="append this run (time, commit, suite loss, every score) as one JSON line to PATH; "
        "`python -m pytest_soft history PATH` shows the trend.",
    )


def _wants_outputs(config: pytest.Config) -> bool:
    option = config.option
    return bool(
        any(getattr(option, name, None) for name in _OUTPUT_OPTIONS)
        or getattr(option, "soft_baseline", None)
        or getattr(option, "soft_history", None)
    )


def _wants_fingerprints(config: pytest.Config) -> bool:
    option = config.option
    return bool(
        getattr(option, "soft_baseline", None)
        or getattr(option, "soft_json", None)
        or getattr(option, "soft_history", None)
    )


def _fingerprint(item: pytest.Item) -> str | None:
    """The fingerprint of the test function's source, computed once per function."""
    from .tracking import source_fingerprint

    function = getattr(item, "obj", None)
    function = getattr(function, "__func__", function)
    code = getattr(function, "__code__", None)
    if function is None or code is None:
        return None
    cache = item.config.stash.setdefault(FINGERPRINTS_KEY, {})
    if code not in cache:
        cache[code] = source_fingerprint(function)
    return cache[code]


def _register_outputs(config: pytest.Config) -> None:
    option = config.option
    if option.soft_update_baseline and not option.soft_baseline:
        raise pytest.UsageError(
            "--soft-update-baseline writes the file given with --soft-baseline PATH; "
            "add --soft-baseline."
        )
    if option.soft_update_baseline and getattr(option, "soft_fit_dry_run", False):
        raise pytest.UsageError(
            "--soft-update-baseline with --fit-dry-run would record the scores of tuned values "
            "that no parameter file holds, and the next run would regress against them. Drop "
            "--fit-dry-run to keep the fit, or update the baseline in a run without it."
        )
    if option.soft_fail_regression is not None and not option.soft_baseline:
        raise pytest.UsageError(
            "--soft-fail-regression compares with a baseline: add --soft-baseline PATH."
        )
    if _wants_outputs(config):
        config.pluginmanager.register(SoftOutputs(config), "soft-outputs")


class SoftOutputs:
    """File reports, the baseline comparison and its verdict, and the run history."""

    def __init__(self, config: pytest.Config) -> None:
        from .tracking import load_baseline

        self.config = config
        self.state: SoftState = config.stash[STATE_KEY]
        self.worker = hasattr(config, "workerinput")
        self.started = time.time()
        self.meta: dict[str, Any] = {}
        self.collected: set[str] = set()
        self.soft_collected: set[str] = set()  # soft tests among them
        self.baseline: Any = None
        self.comparison: Any = None
        self.fails = False
        self.lines: list[tuple[str, dict[str, bool]]] = []
        self.written: list[tuple[str, Path]] = []
        option = config.option
        here = config.invocation_params.dir
        self.paths = {
            name: here / getattr(option, name)
            for name in (*_OUTPUT_OPTIONS, "soft_baseline", "soft_history")
            if getattr(option, name, None)
        }
        if not self.worker and "soft_baseline" in self.paths:
            try:
                self.baseline = load_baseline(self.paths["soft_baseline"])
            except SoftError as exc:
                raise pytest.UsageError(f"--soft-baseline: {exc}") from None
            if self.baseline is not None:
                self.baseline.path = option.soft_baseline  # shown as the user wrote it

    # -- what was collected (tells "disappeared" from "not run") ---------------------------------

    def _note_collected(self, items: list[pytest.Item]) -> None:
        self.collected.update(item.nodeid for item in items)
        self.soft_collected.update(
            item.nodeid for item in items if item.get_closest_marker(MARKER) is not None
        )

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self._note_collected(items)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._note_collected(session.items)
        if self.worker and ("soft_baseline" in self.paths or "soft_json" in self.paths):
            output = self.config.workeroutput  # type: ignore[attr-defined]
            output[WORKER_COLLECTED] = sorted(self.collected)
            output[WORKER_SOFT_COLLECTED] = sorted(self.soft_collected)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", None) or {}
        self.collected.update(output.get(WORKER_COLLECTED, ()))
        self.soft_collected.update(output.get(WORKER_SOFT_COLLECTED, ()))

    def _complete_files(self) -> set[str]:
        """The test files (as node ids name them) this run collected in full: every test in
        them was collected, selected or not. A file narrowed to some of its tests by a
        ``file::test`` argument is not among them."""
        root = self.config.rootpath
        here = self.config.invocation_params.dir
        narrowed = {
            os.path.normcase(os.path.abspath(here / arg.split("::")[0]))
            for arg in self.config.args
            if "::" in arg
        }
        return {
            file
            for file in {nodeid.split("::")[0] for nodeid in self.collected}
            if os.path.normcase(os.path.abspath(root / file)) not in narrowed
        }

    def _disappeared(self, missing: set[str]) -> set[str]:
        """Baseline tests that no longer exist: their file is gone, or their file was collected
        in full in this run and they were not among its tests (removed or renamed)."""
        root = self.config.rootpath
        complete = self._complete_files()
        gone = set()
        for nodeid in missing:
            file = nodeid.split("::")[0]
            if not (root / file).exists():
                gone.add(nodeid)
            elif file in complete and nodeid not in self.collected:
                gone.add(nodeid)
        return gone

    # -- the end of the run -----------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        from .tracking import run_metadata

        self.started = time.time()
        if not self.worker:
            # Before the fit writes parameter files: the commit and dirtiness of the code tested.
            self.meta = run_metadata(self.config.rootpath, self.started)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.worker or self.config.option.collectonly:
            return
        complete = session.exitstatus not in (
            pytest.ExitCode.INTERRUPTED,
            pytest.ExitCode.INTERNAL_ERROR,
            pytest.ExitCode.USAGE_ERROR,
        )
        self.meta["interrupted"] = session.exitstatus == pytest.ExitCode.INTERRUPTED
        try:
            problems = self._finish(complete)
        except KeyboardInterrupt:
            # Ctrl-C while the files are written: each file is the old one or the new one
            # (atomic writes); say which are which, and end as pytest ends an interrupted run.
            wanted = self._wanted()
            done = [f"{kind} {self._shown(path)}" for kind, path in self.written]
            left = [
                f"{kind} {self._shown(path)}"
                for kind, path in wanted
                if (kind, path) not in self.written
            ]
            self._say(
                "interrupted while writing the soft files: "
                + (f"written: {', '.join(done)}; " if done else "")
                + f"not written (left as they were): {', '.join(left) or 'none'}",
                {"yellow": True, "bold": True},
            )
            session.exitstatus = pytest.ExitCode.INTERRUPTED
            return
        if (self.fails or problems) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _wanted(self) -> list[tuple[str, Path]]:
        """The files this run was asked to write, as (kind, path), in the order written."""
        option = self.config.option
        wanted = []
        if option.soft_update_baseline and "soft_baseline" in self.paths:
            wanted.append(("baseline", self.paths["soft_baseline"]))
        if "soft_history" in self.paths:
            wanted.append(("history", self.paths["soft_history"]))
        wanted += [
            (kind, self.paths[name]) for name, kind in _OUTPUT_OPTIONS.items() if name in self.paths
        ]
        return wanted

    def _finish(self, complete: bool) -> bool:
        from .errors import TrackingFileError
        from .report import to_snapshot
        from .tracking import compare, updated_entries, write_baseline

        option = self.config.option
        results = list(self.state.results.values())
        snapshot = to_snapshot(results)
        self.meta.update(
            duration=round(time.time() - self.started, 3),
            args=list(self.config.invocation_params.args),
            workers=_worker_count(self.config),
        )
        if "soft_json" in self.paths:
            # What an offline comparison needs to tell a removed test from one not run.
            self.meta["complete_files"] = sorted(self._complete_files())
            self.meta["not_run"] = sorted(self.soft_collected - set(snapshot.tests))
        problems = False
        baseline_path = self.paths.get("soft_baseline")
        if baseline_path is not None and self.baseline is not None:
            missing = set(self.baseline.tests) - set(snapshot.tests)
            self.comparison = compare(
                self.baseline,
                snapshot,
                option.soft_fail_regression,
                disappeared=self._disappeared(missing),
            )
            self.fails = option.soft_fail_regression is not None and self.comparison.regressed
        elif baseline_path is not None:
            hint = "" if option.soft_update_baseline else " (--soft-update-baseline creates it)"
            self._say(f"no baseline at {option.soft_baseline} yet: nothing to compare{hint}", {})
        if option.soft_update_baseline and baseline_path is not None:
            if self.fails:
                self._say("baseline not updated: the scores regressed (see above)", {"red": True})
            elif not complete:
                self._say("baseline not updated: the run did not complete", {"yellow": True})
            elif not any(r.score is not None for r in results):
                self._say("baseline not updated: no soft test gave a score", {"yellow": True})
            else:
                gone = self.comparison.by_status("disappeared") if self.comparison else []
                entries = updated_entries(self.baseline, snapshot, [c.nodeid for c in gone])
                try:
                    write_baseline(baseline_path, entries, self.meta)
                    verb = "updated" if self.baseline is not None else "created"
                    self._say(f"baseline {verb}: {len(entries)} soft tests", {"green": True})
                    self.written.append(("baseline", baseline_path))
                except TrackingFileError as exc:
                    problems = True
                    self._say(str(exc), {"red": True})
        history = None
        history_path = self.paths.get("soft_history")
        if history_path is not None and complete and results:
            problems |= self._append_history(history_path, snapshot)
            if "soft_html" in self.paths:
                history = self._load_history(history_path)
        elif history_path is not None and not complete:
            self._say("history not appended: the run did not complete", {"yellow": True})
        if any(name in self.paths for name in _OUTPUT_OPTIONS):
            problems |= self._write_reports(results, history)
        return problems

    def _append_history(self, path: Path, snapshot: Any) -> bool:
        from .errors import TrackingFileError
        from .tracking import append_history, history_record

        try:
            append_history(path, history_record(snapshot, self.meta, self.state.fit))
        except TrackingFileError as exc:
            self._say(str(exc), {"red": True})
            return True
        self.written.append(("history", path))
        return False

    def _load_history(self, path: Path) -> list[dict[str, Any]] | None:
        from .errors import TrackingFileError
        from .tracking import load_history

        try:
            return load_history(path)
        except TrackingFileError as exc:
            self._say(f"the HTML report has no trend: {exc}", {"yellow": True})
            return None

    def _write_reports(self, results: list[SoftResult], history: Any) -> bool:
        from .report import build_report, render_benchmark, render_json, render_markdown

        report = build_report(
            results,
            self.meta,
            fit=self.state.fit,
            fit_written=self.state.fit_written,
            dry_run=bool(self.config.option.soft_fit_dry_run),
            comparison=self.comparison,
            root=self.config.rootpath,
        )

        def html() -> str:
            from .report import render_html

            return render_html(report, history=history)

        renderers: dict[str, Callable[[], str]] = {
            "soft_json": lambda: render_json(report),
            "soft_md": lambda: render_markdown(report),
            "soft_html": html,
            "soft_benchmark_json": lambda: render_benchmark(report),
        }
        problems = False
        for name, kind in _OUTPUT_OPTIONS.items():
            path = self.paths.get(name)
            if path is None:
                continue
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(path, renderers[name]())
            except OSError as exc:
                problems = True
                self._say(
                    f"cannot write the {kind} {self._shown(path)}: {exc.strerror or exc}",
                    {"red": True},
                )
                continue
            self.written.append((kind, path))
        return problems

    def _say(self, line: str, markup: dict[str, bool]) -> None:
        self.lines.append((line, markup))

    def _shown(self, path: Path) -> str:
        return str(shown_path(path, self.config.invocation_params.dir, resolve=False))

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.worker:
            return
        from .report import render_comparison, render_regressions

        write = terminalreporter.write_line
        if self.comparison is not None or self.lines:
            terminalreporter.write_sep(
                "=", "soft baseline" if "soft_baseline" in self.paths else "soft files"
            )
        if self.comparison is not None:
            for line in render_comparison(self.comparison, list_regressed=not self.fails):
                write(line)
        for line, markup in self.lines:
            write(line, **markup)
        if self.fails:
            tolerance = self.config.option.soft_fail_regression
            terminalreporter.write_sep("=", "soft regression", red=True, bold=True)
            write(
                f"the run fails: scores are worse than the baseline by more than the tolerance "
                f"(--soft-fail-regression {tolerance})",
                red=True,
                bold=True,
            )
            for line in render_regressions(self.comparison):
                write(line, red=True)
        for kind, path in self.written:
            terminalreporter.write_sep("-", f"soft {kind}: {self._shown(path)}")


def _worker_count(config: pytest.Config) -> int:
    count = getattr(config.option, "numprocesses", None)
    return count if isinstance(count, int) else 0
