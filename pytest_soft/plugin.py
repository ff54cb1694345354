"""The pytest glue of pytest-soft: options, the ``soft_test`` marker, capture of returned scores,
the fit step in the run loop, and the terminal summary. The work itself happens in the core
modules (parameters, scores, fit, report), which know nothing of pytest.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import pytest

from ._marker import MARKER, MARKER_HELP, SoftSpec, make_spec
from .errors import SoftError
from .report import ABOVE_THRESHOLD, ERROR, PASSED, SoftResult

SPEC_KEY = pytest.StashKey["SoftSpec | SoftError"]()
STATE_KEY = pytest.StashKey["SoftState"]()

# Names under which a soft test's numbers travel in report.user_properties: to xdist's
# controller, and into JUnit XML as <property> elements.
P_WEIGHT = "soft_weight"
P_THRESHOLD = "soft_threshold"
P_SCORE = "soft_score"
P_CASES = "soft_cases"


@dataclass
class SoftState:
    """What the plugin knows about this run, kept on ``config.stash``."""

    results: dict[str, SoftResult] = field(default_factory=dict)


# -- options ------------------------------------------------------------------------------------


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise pytest.UsageError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise pytest.UsageError(f"expected 0 or more, got {value}")
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("soft", "soft unit tests (pytest-soft)")
    group.addoption(
        "--soft-report",
        action="store_true",
        dest="soft_report",
        help="print the full table of soft scores at the end of the run: every soft test, "
        "worst first, with score, weight, weighted contribution, threshold and outcome.",
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
    config.pluginmanager.register(SoftSession(config), "soft-session")


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


def call_soft_test(item: pytest.Function) -> Any:
    """Call the test function with its fixture values and return what it returned."""
    function = item.obj
    if inspect.iscoroutinefunction(function):
        pytest.fail(f"soft test {item.nodeid} is async; soft tests are plain functions.",
                    pytrace=False)
    kwargs = {name: item.funcargs[name] for name in item._fixtureinfo.argnames}
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


class SoftSession:
    """The hooks that need this run's state. Registered once per run, in pytest_configure."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.state: SoftState = config.stash[STATE_KEY]

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
        )

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.state.results:
            return
        from .report import render_summary, render_table

        results = list(self.state.results.values())
        write = terminalreporter.write_line
        if self.config.option.soft_report:
            terminalreporter.write_sep("=", "soft report")
            for line in render_table(results):
                write(line)
        terminalreporter.write_sep("=", "soft scores")
        for line in render_summary(results, worst=_ini_int(self.config, "soft_summary_worst")):
            write(line)


def _ini_int(config: pytest.Config, name: str) -> int:
    text = config.getini(name)
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"ini setting {name} must be a whole number, got {text!r}") from None
    if value < 0:
        raise pytest.UsageError(f"ini setting {name} must be 0 or more, got {value}")
    return value
