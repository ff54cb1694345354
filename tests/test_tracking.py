"""Baselines, regression tolerances, the run history and `python -m pytest_soft`: the core
functions directly, then the options end to end with pytester, then the CLI in a subprocess."""

from __future__ import annotations

import json
import multiprocessing
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import autograd  # noqa: F401  (in sys.modules before pytester's in-process runs snapshot them)
import numpy  # noqa: F401
import pytest

from pytest_soft.errors import SoftError, ToleranceError, TrackingFileError
from pytest_soft.tracking import (
    CHANGED,
    DISAPPEARED,
    IMPROVED,
    NEW,
    NOT_RUN,
    REGRESSED,
    UNCHANGED,
    WORSE,
    Entry,
    Snapshot,
    Tolerance,
    append_history,
    compare,
    load_baseline,
    load_history,
    load_snapshot,
    parse_tolerance,
    updated_entries,
    write_baseline,
)

# -- the tolerance grammar ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, relative, absolute, shown",
    [
        ("5%", 0.05, None, "5%"),
        ("0.01", None, 0.01, "0.01"),
        ("5%,0.01", 0.05, 0.01, "5%,0.01"),
        ("0.01,5%", 0.05, 0.01, "5%,0.01"),
        ("5%, 0.01", 0.05, 0.01, "5%,0.01"),
        ("0", None, 0.0, "0"),
        ("0%", 0.0, None, "0%"),
        ("1e-3", None, 1e-3, "0.001"),
        ("12.5%", 0.125, None, "12.5%"),
        (".5", None, 0.5, "0.5"),
    ],
)
def test_tolerance_grammar_accepts_relative_absolute_and_both(text, relative, absolute, shown):
    tolerance = parse_tolerance(text)
    assert tolerance.relative == pytest.approx(relative) if relative is not None else True
    assert (tolerance.relative is None) == (relative is None)
    assert tolerance.absolute == absolute
    assert str(tolerance) == shown


@pytest.mark.parametrize(
    "text, hint",
    [
        ("5 %", "Write it without spaces: '5%'"),
        ("-5%", "cannot be negative"),
        ("abc", "'abc' is not a number or a percentage"),
        ("", "a tolerance is a relative tolerance such as 5%"),
        ("5%,6%", "gives two percentages"),
        ("1,2", "gives two absolute values"),
        ("1,2,3", "a tolerance is"),
        ("nan", "is not a number"),
        ("inf", "is not a number"),
        ("5%%", "is not a number"),
    ],
)
def test_tolerance_grammar_rejects_with_a_clear_message(text, hint):
    with pytest.raises(ToleranceError) as info:
        parse_tolerance(text)
    assert hint in str(info.value)
    assert isinstance(info.value, SoftError)


def test_a_number_is_an_absolute_tolerance():
    assert parse_tolerance(0.25) == Tolerance(absolute=0.25)
    with pytest.raises(ToleranceError):
        parse_tolerance(-1.0)
    with pytest.raises(ToleranceError):
        parse_tolerance(True)


def judge(old, new, tolerance=None, own=None):
    """The status of one test scored ``old`` in the baseline and ``new`` now."""
    result = compare(
        Snapshot({"t": Entry(old)}),
        Snapshot({"t": Entry(new, tolerance=own)}),
        None if tolerance is None else parse_tolerance(tolerance),
    )
    return result.changes[0].status


def test_relative_tolerance_is_a_fraction_of_the_old_score():
    assert judge(1.0, 1.04, "5%") == WORSE
    assert judge(1.0, 1.06, "5%") == REGRESSED
    assert judge(-2.0, -1.95, "5%") == WORSE  # |old| for negative scores
    assert judge(1.0, 0.5, "5%") == IMPROVED


def test_absolute_tolerance_is_in_score_units():
    assert judge(1.0, 1.009, "0.01") == WORSE
    assert judge(1.0, 1.011, "0.01") == REGRESSED


def test_with_both_a_score_regresses_only_when_worse_by_more_than_both():
    assert judge(1.0, 1.04, "5%,0.1") == WORSE  # beyond neither
    assert judge(1.0, 1.08, "5%,0.1") == WORSE  # beyond 5% only
    assert judge(0.01, 0.02, "5%,0.1") == WORSE  # +100%, but below 0.1
    assert judge(1.0, 1.2, "5%,0.1") == REGRESSED  # beyond both


def test_against_a_zero_baseline_a_relative_tolerance_allows_nothing():
    assert judge(0.0, 1e-12, "5%") == REGRESSED
    assert judge(0.0, 0.0, "5%") == UNCHANGED
    # an absolute part is what lets a perfect score move a little
    assert judge(0.0, 1e-12, "5%,1e-9") == WORSE
    assert judge(0.0, 1e-6, "5%,1e-9") == REGRESSED


def test_without_a_tolerance_any_worsening_beyond_rounding_noise_is_a_regression():
    assert judge(1.0, 1.0 + 1e-15) == UNCHANGED
    assert judge(1.0, 1.0 + 1e-9) == REGRESSED
    assert judge(1.0, 1.0 - 1e-9) == IMPROVED


def test_a_tests_own_tolerance_overrides_the_global_one():
    assert judge(1.0, 1.5, "5%", own="100%") == WORSE
    assert judge(1.0, 1.02, "5%", own="0.01") == REGRESSED


def test_a_test_that_gives_no_score_now_has_regressed():
    assert judge(1.0, None, "1000%") == REGRESSED


# -- comparing snapshots ------------------------------------------------------------------------


def snapshot(**scores):
    return Snapshot({name: Entry(score) for name, score in scores.items()})


def test_comparison_categories():
    old = Snapshot(
        {
            "better": Entry(1.0),
            "worse": Entry(1.0),
            "same": Entry(2.0),
            "edited": Entry(1.0, fingerprint="sha256:aaaa"),
            "deselected": Entry(1.0),
            "removed": Entry(1.0),
        }
    )
    new = Snapshot(
        {
            "better": Entry(0.5),
            "worse": Entry(3.0),
            "same": Entry(2.0),
            "edited": Entry(9.0, fingerprint="sha256:bbbb"),
            "added": Entry(4.0),
        }
    )
    result = compare(old, new, parse_tolerance("5%"), disappeared=["removed"])
    statuses = {c.nodeid: c.status for c in result.changes}
    assert statuses == {
        "better": IMPROVED,
        "worse": REGRESSED,
        "same": UNCHANGED,
        "edited": CHANGED,
        "added": NEW,
        "deselected": NOT_RUN,
        "removed": DISAPPEARED,
    }
    # regressions come first in the listing
    assert result.changes[0].nodeid == "worse"
    assert result.regressed
    # the suite loss is compared over the tests scored in both with unchanged source
    assert (result.loss_old, result.loss_new, result.loss_tests) == (4.0, 5.5, 3)


def test_a_partial_selection_is_not_a_regression():
    old = snapshot(a=1.0, b=1.0, c=5.0)
    new = snapshot(a=1.0)
    result = compare(old, new, parse_tolerance("0"))
    assert [c.status for c in result.changes] == [NOT_RUN, NOT_RUN, UNCHANGED]
    assert result.loss_status == UNCHANGED
    assert not result.regressed


def test_the_suite_loss_regresses_even_when_no_single_test_does():
    old = snapshot(**{f"t{i}": 1.0 for i in range(10)})
    new = snapshot(**{f"t{i}": 1.04 for i in range(10)})
    result = compare(old, new, parse_tolerance("5%,0.3"))
    assert not result.regressions
    assert result.loss_status == WORSE
    result = compare(old, new, parse_tolerance("0.3"))
    assert result.loss_status == REGRESSED and result.regressed


def test_weights_count_in_the_suite_loss_comparison():
    old = Snapshot({"a": Entry(1.0, weight=3.0)})
    new = Snapshot({"a": Entry(1.0, weight=3.0)})
    assert compare(old, new).loss_old == 3.0


# -- baseline files -----------------------------------------------------------------------------


def test_baseline_round_trip_keeps_scores_exactly(tmp_path):
    path = tmp_path / "baseline.json"
    entries = {
        "t::a": Entry(0.1 + 0.2, weight=2.0, fingerprint="sha256:0123", tolerance="5%"),
        "t::b": Entry(float("inf")),
    }
    write_baseline(path, entries, {"time": "2026-01-01T00:00:00+00:00", "git": None})
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["format"] == "pytest-soft baseline"
    assert document["version"] == 1
    assert document["tests"]["t::b"]["score"] == "inf"  # JSON has no infinity
    loaded = load_baseline(path)
    assert loaded is not None
    assert loaded.tests == entries


def test_a_missing_baseline_is_none_not_an_error(tmp_path):
    assert load_baseline(tmp_path / "nothing-here.json") is None


def test_updating_keeps_tests_not_run_and_drops_disappeared_ones():
    old = snapshot(kept=1.0, gone=2.0, rerun=3.0, broken=4.0)
    new = Snapshot({"rerun": Entry(2.5), "added": Entry(1.0), "broken": Entry(None)})
    entries = updated_entries(old, new, disappeared=["gone"])
    assert {k: e.score for k, e in entries.items()} == {
        "kept": 1.0,
        "rerun": 2.5,
        "broken": 4.0,  # no score now: the old entry stays
        "added": 1.0,
    }


@pytest.mark.parametrize(
    "content, message",
    [
        ("{", "not a pytest-soft report or baseline file: invalid JSON at line 1"),
        ("[1, 2]", 'a JSON object with "format"'),
        ('{"format": "pytest-soft history", "version": 1}', "this is a 'pytest-soft history'"),
        ('{"format": "pytest-soft baseline", "version": 7, "tests": {}}', "Upgrade pytest-soft"),
        ('{"format": "pytest-soft baseline", "tests": {}}', 'no valid "version"'),
        (
            '{"format": "pytest-soft baseline", "version": 1, "tests": {"t": {"score": "x"}}}',
            "soft test 't': score must be a number or null, got 'x'",
        ),
        (
            '{"format": "pytest-soft baseline", "version": 1, "tests": '
            '{"t": {"score": 1, "tolerance": "5 %"}}}',
            "Write it without spaces",
        ),
        ('{"format": "pytest-soft baseline", "version": 1, "tests": []}', '"tests" must be'),
    ],
)
def test_unusable_files_are_errors_that_name_the_file(tmp_path, content, message):
    path = tmp_path / "scores.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TrackingFileError) as info:
        load_snapshot(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_binary_and_missing_files_are_clear_errors(tmp_path):
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(TrackingFileError, match="not UTF-8 text"):
        load_snapshot(binary)
    with pytest.raises(TrackingFileError, match="no such pytest-soft report or baseline file"):
        load_snapshot(tmp_path / "missing.json")
    with pytest.raises(TrackingFileError, match="is a directory"):
        load_snapshot(tmp_path)
    history = tmp_path / "history.jsonl"
    append_history(history, record(1.0))
    append_history(history, record(2.0))
    with pytest.raises(TrackingFileError, match="It is a history file: `python -m pytest_soft"):
        load_snapshot(history)


# -- history files ------------------------------------------------------------------------------


def record(loss):
    return {"format": "pytest-soft history", "version": 1, "loss": loss, "tests": {"t": loss}}


def test_history_appends_one_line_per_run(tmp_path):
    path = tmp_path / "sub" / "history.jsonl"
    append_history(path, record(1.0))
    append_history(path, record(0.5))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["loss"] for line in lines] == [1.0, 0.5]
    assert [run["loss"] for run in load_history(path)] == [1.0, 0.5]


def test_history_keeps_lines_apart_after_a_hand_edit_without_final_newline(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text(json.dumps(record(1.0)), encoding="utf-8")  # no newline at the end
    append_history(path, record(2.0))
    assert [run["loss"] for run in load_history(path)] == [1.0, 2.0]


def _append_many(path: str, worker: int) -> None:
    for i in range(40):
        append_history(
            path, {**record(float(i)), "tests": {f"w{worker}-{j}": 1.0 for j in range(50)}}
        )


def test_concurrent_appends_never_interleave(tmp_path):
    path = tmp_path / "history.jsonl"
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_append_many, args=(str(path), w)) for w in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    assert all(process.exitcode == 0 for process in processes)
    runs = load_history(path)  # every line is whole JSON
    assert len(runs) == 160


def test_a_broken_history_line_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text(json.dumps(record(1.0)) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(TrackingFileError, match=r"history.jsonl, line 2: not a JSON line"):
        load_history(path)


# -- end to end: baselines in a test run --------------------------------------------------------

# The implementation's constants decide the scores; the tests' own source stays the same, so a
# changed constant is a changed score, not a changed test.
IMPL = """
    A = 1.0
    B = 2.0
"""

TESTS = """
    import pytest
    from pytest_soft import soft_test
    import impl

    @soft_test
    def test_a():
        return impl.A

    @soft_test(weight=2.0)
    def test_b():
        return impl.B

    @soft_test(tolerance="50%")
    def test_lenient():
        return impl.A

    @soft_test
    @pytest.mark.parametrize("k", [1, 2])
    def test_cases(k):
        return impl.A * k
"""


@pytest.fixture(autouse=True)
def no_bytecode(monkeypatch):
    """impl.py is rewritten within the same second with the same size: never use a stale .pyc."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")


def write_project(pytester, impl=IMPL, tests=TESTS):
    pytester.makepyfile(impl=impl, test_soft=tests)


def run(pytester, *args):
    # Every run must see the implementation as it is now on disk.
    sys.modules.pop("impl", None)
    pytester.syspathinsert()
    return pytester.runpytest("-p", "no:cacheprovider", *args)


def section(result, title):
    lines = result.outlines
    for index, line in enumerate(lines):
        if line.startswith("=") and line.strip("= ") == title:
            end = index + 1
            while end < len(lines) and not lines[end].startswith("=" * 5):
                end += 1
            return lines[index + 1 : end]
    return None


def test_a_missing_baseline_is_reported_and_created_by_update(pytester):
    write_project(pytester)
    result = run(pytester, "--soft-baseline", "baseline.json")
    assert result.ret == 0
    assert section(result, "soft baseline") == [
        "no baseline at baseline.json yet: nothing to compare (--soft-update-baseline creates it)"
    ]
    assert not (pytester.path / "baseline.json").exists()

    result = run(pytester, "--soft-baseline", "baseline.json", "--soft-update-baseline")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["baseline created: 5 soft tests", "*soft baseline: baseline.json*"]
    )
    document = json.loads((pytester.path / "baseline.json").read_text(encoding="utf-8"))
    assert document["tests"]["test_soft.py::test_b"]["score"] == 2.0
    assert document["tests"]["test_soft.py::test_b"]["weight"] == 2.0
    assert document["tests"]["test_soft.py::test_lenient"]["tolerance"] == "50%"
    assert document["tests"]["test_soft.py::test_a"]["fingerprint"].startswith("sha256:")
    assert document["loss"] == 1.0 + 4.0 + 1.0 + 1.0 + 2.0
    # written atomically: no temporary file is left beside it
    assert sorted(p.name for p in pytester.path.iterdir() if p.name.startswith(".")) == []


def test_a_regression_beyond_the_tolerance_fails_the_run_with_every_regressed_test(pytester):
    write_project(pytester)
    run(pytester, "--soft-baseline", "baseline.json", "--soft-update-baseline")
    before = (pytester.path / "baseline.json").read_bytes()
    write_project(pytester, impl="A = 1.2\nB = 2.0\n")

    result = run(pytester, "--soft-baseline", "baseline.json", "--soft-fail-regression", "5%")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=5)  # every test passed: the verdict is the baseline's
    compared = section(result, "soft baseline")
    assert compared[1] == (
        "suite loss 9 -> 10 (+11.1%) over the 5 soft tests scored in both: regressed"
    )
    assert compared[2] == "3 regressed, 1 worse within tolerance, 1 unchanged"
    # the regressed tests are listed once, in the failure summary
    assert "regressed: 3, listed in the failure summary below" in compared
    assert not any(line.endswith("test_soft.py::test_a") for line in compared)
    failure = section(result, "soft regression")
    assert failure[0] == (
        "the run fails: scores are worse than the baseline by more than the tolerance "
        "(--soft-fail-regression 5%)"
    )
    assert failure[1] == "suite loss 9 -> 10 (+11.1%), worse by more than 5%"
    assert failure[2] == "3 soft tests regressed:"
    rows = [line.split() for line in failure[3:]]
    assert rows == [
        ["old", "new", "delta", "change", "tolerance", "test"],
        ["2", "2.4", "+0.4", "+20.0%", "5%", "test_soft.py::test_cases[2]"],
        ["1", "1.2", "+0.2", "+20.0%", "5%", "test_soft.py::test_a"],
        ["1", "1.2", "+0.2", "+20.0%", "5%", "test_soft.py::test_cases[1]"],
    ]
    # not by raising from the summary: no traceback, no internal error
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    # a failing run does not overwrite the baseline even when asked to
    result = run(
        pytester,
        "--soft-baseline",
        "baseline.json",
        "--soft-fail-regression",
        "5%",
        "--soft-update-baseline",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["baseline not updated: the scores regressed (see above)"])
    assert (pytester.path / "baseline.json").read_bytes() == before


def test_within_the_tolerance_the_run_passes(pytester):
    write_project(pytester)
    run(pytester, "--soft-baseline", "b.json", "--soft-update-baseline")
    write_project(pytester, impl="A = 1.01\nB = 1.0\n")
    result = run(pytester, "--soft-baseline", "b.json", "--soft-fail-regression", "5%")
    assert result.ret == 0
    compared = section(result, "soft baseline")
    assert "4 worse within tolerance, 1 improved" in compared
    assert section(result, "soft regression") is None


def test_without_fail_regression_regressions_are_shown_but_do_not_fail(pytester):
    write_project(pytester)
    run(pytester, "--soft-baseline", "b.json", "--soft-update-baseline")
    write_project(pytester, impl="A = 1.0\nB = 3.0\n")
    result = run(pytester, "--soft-baseline", "b.json")
    assert result.ret == 0
    compared = section(result, "soft baseline")
    assert "regressed (worse by more than the tolerance, exact):" in compared
    assert compared[-1].split() == ["2", "3", "+1", "+50.0%", "exact", "test_soft.py::test_b"]


def test_tests_outside_the_selection_are_not_run_never_regressed(pytester):
    write_project(pytester)
    run(pytester, "--soft-baseline", "b.json", "--soft-update-baseline")
    write_project(pytester, impl="A = 5.0\nB = 2.0\n")  # would regress test_a and test_cases
    result = run(
        pytester, "--soft-baseline", "b.json", "--soft-fail-regression", "0", "-k", "test_b"
    )
    assert result.ret == 0
    compared = section(result, "soft baseline")
    assert compared[2] == "4 not run, 1 unchanged"
    assert compared[-1] == "4 soft test(s) not run in this selection: not compared"
    # updating from a partial selection keeps the entries of the tests not run
    run(pytester, "--soft-baseline", "b.json", "--soft-update-baseline", "-k", "test_b")
    document = json.loads((pytester.path / "b.json").read_text(encoding="utf-8"))
    assert len(document["tests"]) == 5
    assert document["tests"]["test_soft.py::test_a"]["score"] == 1.0


def test_a_test_whose_code_changed_is_changed_not_compared(pytester):
    write_project(pytester)
    run(pytester, "--soft-baseline", "b.json", "--soft-update-baseline")
    write_project(pytester, tests=TESTS.replace("return impl.B", "return impl.B * 10"))
    result = run(pytester, "--soft-baseline", "b.json", "--soft-fail-regression", "0")
    assert result.ret == 0
    compared = section(result, "soft baseline")
    assert compared[2] == "1 changed, 4 unchanged"
    assert compared[3:] == [
        "changed (the test's source changed since the baseline: not compared):",
        "  test_soft.py::test_b",
    ]


def test_removed_tests_disappear_and_new_ones_are_new(pytester):
    write_project(pytester)
    run(pytester, "--soft-baseline", "b.json", "--soft-update-baseline")
    tests = textwrap.dedent(TESTS).replace("[1, 2]", "[1]")
    tests += "\n@soft_test\ndef test_fresh():\n    return 0.0\n"
    write_project(pytester, tests=tests)
    result = run(pytester, "--soft-baseline", "b.json", "--soft-update-baseline")
    compared = section(result, "soft baseline")
    assert compared[2] == "1 new, 1 disappeared, 4 unchanged"
    assert "  test_soft.py::test_cases[2]" in compared
    document = json.loads((pytester.path / "b.json").read_text(encoding="utf-8"))
    assert "test_soft.py::test_cases[2]" not in document["tests"]
    assert "test_soft.py::test_fresh" in document["tests"]


def test_a_node_id_argument_leaves_the_rest_of_the_file_not_run(pytester):
    write_project(pytester)
    run(pytester, "--soft-baseline", "b.json", "--soft-update-baseline")
    result = run(pytester, "--soft-baseline", "b.json", "test_soft.py::test_a")
    assert section(result, "soft baseline")[2] == "4 not run, 1 unchanged"


def test_a_per_test_tolerance_on_the_marker_wins(pytester):
    write_project(pytester)
    run(pytester, "--soft-baseline", "b.json", "--soft-update-baseline")
    write_project(pytester, impl="A = 1.4\nB = 2.0\n")
    result = run(
        pytester, "--soft-baseline", "b.json", "--soft-fail-regression", "5%", "-k", "lenient"
    )
    assert result.ret == 0
    assert section(result, "soft baseline")[2] == "1 worse within tolerance, 4 not run"


def test_a_bad_marker_tolerance_fails_the_test_with_the_grammar(pytester):
    pytester.makepyfile(
        test_soft="""
        import pytest

        @pytest.mark.soft_test(tolerance="5 %")
        def test_x():
            return 1.0
        """
    )
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*soft_test: a tolerance is*Write it without spaces: '5%'*"])


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--soft-fail-regression", "5 %", "--soft-baseline", "b.json"],
            "*Write it without spaces*",
        ),
        (
            ["--soft-fail-regression", "lots", "--soft-baseline", "b.json"],
            "*'lots' is not a number*",
        ),
        (["--soft-update-baseline"], "*--soft-update-baseline writes the file given with*"),
        (["--soft-fail-regression", "5%"], "*--soft-fail-regression compares with a baseline*"),
    ],
)
def test_option_mistakes_are_usage_errors_before_the_run(pytester, args, message):
    write_project(pytester)
    result = run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_an_unusable_baseline_is_a_usage_error_naming_it(pytester):
    write_project(pytester)
    (pytester.path / "b.json").write_text('{"format": "something else"}', encoding="utf-8")
    result = run(pytester, "--soft-baseline", "b.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--soft-baseline:*b.json: this is a 'something else' file*"])


def test_the_fit_updates_the_baseline_with_the_fitted_scores(pytester):
    pytester.makepyfile(
        impl="""
        from pytest_soft import Param, Parameters

        theta = Parameters(a=Param(0.0, bounds=(-10.0, 10.0)))
        """,
        test_soft="""
        from pytest_soft import soft_test
        import impl

        @soft_test
        def test_a():
            return (impl.theta.a - 3.0) ** 2
        """,
    )
    result = run(pytester, "--fit", "--soft-baseline", "b.json", "--soft-update-baseline")
    assert result.ret == 0
    document = json.loads((pytester.path / "b.json").read_text(encoding="utf-8"))
    assert document["tests"]["test_soft.py::test_a"]["score"] < 1e-12


# -- history in a test run, and the CLI ---------------------------------------------------------


def cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "pytest_soft", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_history_grows_by_one_line_per_run_and_the_cli_shows_the_trend(pytester):
    write_project(pytester)
    run(pytester, "--soft-history", "h.jsonl")
    write_project(pytester, impl="A = 0.5\nB = 2.0\n")
    run(pytester, "--soft-history", "h.jsonl", "-k", "not lenient")
    runs = load_history(pytester.path / "h.jsonl")
    assert [(r["loss"], r["count"]) for r in runs] == [(9.0, 5), (6.0, 4)]
    assert runs[1]["tests"]["test_soft.py::test_a"] == 0.5
    assert set(runs[0]["versions"]) >= {"pytest-soft", "pytest", "numpy", "autograd"}

    done = cli(
        "history", "h.jsonl", "--svg", "trend.svg", "--html", "trend.html", cwd=pytester.path
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "h.jsonl: 2 runs"
    assert lines[1].split() == ["when", "commit", "tests", "suite", "loss", "change"]
    assert lines[2].split()[-2:] == ["5", "9"]
    assert lines[3].split()[-5:] == ["4", "6", "-3", "(-33.3%)", "*"]
    assert lines[4].startswith("* another set of soft tests than the run before")
    assert "wrote SVG chart: trend.svg" in lines
    assert (pytester.path / "trend.svg").read_text(encoding="utf-8").startswith("<svg")
    page = (pytester.path / "trend.html").read_text(encoding="utf-8")
    assert "<svg" in page and 'id="history-table"' in page


def test_cli_history_png_needs_matplotlib(pytester, tmp_path):
    path = tmp_path / "h.jsonl"
    append_history(path, record(1.0))
    append_history(path, record(0.5))
    done = cli("history", path, "--png", tmp_path / "trend.png", cwd=tmp_path)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert done.returncode == 2
        assert "pip install 'pytest-soft[plot]'" in done.stderr
    else:
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "trend.png").read_bytes().startswith(b"\x89PNG")


def test_cli_history_errors(tmp_path):
    done = cli("history", tmp_path / "none.jsonl", cwd=tmp_path)
    assert done.returncode == 2
    assert "none.jsonl: no such history file" in done.stderr
    (tmp_path / "bad.jsonl").write_text("{}\n", encoding="utf-8")
    done = cli("history", tmp_path / "bad.jsonl", cwd=tmp_path)
    assert done.returncode == 2
    assert "bad.jsonl, line 1: not a pytest-soft history file" in done.stderr


def test_cli_compare_exit_status_follows_the_verdict(pytester):
    write_project(pytester)
    run(pytester, "--soft-json", "old.json")
    write_project(pytester, impl="A = 1.1\nB = 2.0\n")
    run(pytester, "--soft-json", "new.json")

    done = cli("compare", "old.json", "new.json", cwd=pytester.path)
    assert done.returncode == 0, done.stderr
    assert "suite loss 9 -> 9.5 (+5.6%) over the 5 soft tests scored in both: regressed" in (
        done.stdout
    )

    done = cli("compare", "old.json", "new.json", "--fail-regression", "20%", cwd=pytester.path)
    assert done.returncode == 0, done.stdout
    done = cli("compare", "old.json", "new.json", "--fail-regression", "5%", cwd=pytester.path)
    assert done.returncode == 1
    assert "REGRESSION: new.json is worse than old.json by more than the tolerance (5%)" in (
        done.stdout
    )
    assert "3 soft tests regressed:" in done.stdout

    # a baseline compares with a report just as well
    run(pytester, "--soft-baseline", "b.json", "--soft-update-baseline")
    done = cli("compare", "b.json", "new.json", "--fail-regression", "0", cwd=pytester.path)
    assert done.returncode == 0, done.stdout
    assert "5 unchanged" in done.stdout


def test_cli_compare_tells_a_test_that_disappeared_from_one_not_run(pytester):
    write_project(pytester)
    run(pytester, "--soft-json", "old.json")
    # test_b is deleted; test_lenient is still there but deselected
    write_project(pytester, tests=TESTS.replace("def test_b():", "def unused():"))
    result = run(pytester, "--soft-json", "new.json", "-k", "not lenient")
    assert result.ret == 0
    run_meta = json.loads((pytester.path / "new.json").read_text(encoding="utf-8"))["run"]
    assert run_meta["interrupted"] is False
    assert run_meta["complete_files"] == ["test_soft.py"]
    assert run_meta["not_run"] == ["test_soft.py::test_lenient"]

    done = cli("compare", "old.json", "new.json", cwd=pytester.path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "disappeared (in the baseline, no longer collected):" in lines
    assert lines[lines.index("disappeared (in the baseline, no longer collected):") + 1] == (
        "  test_soft.py::test_b"
    )
    assert "1 soft test(s) in old.json, not run in new.json: not compared" in lines

    # a file narrowed to one test (file::test) says nothing about the tests it left out
    run(pytester, "--soft-json", "narrow.json", "test_soft.py::test_a")
    done = cli("compare", "old.json", "narrow.json", cwd=pytester.path)
    assert "disappeared" not in done.stdout
    assert "4 soft test(s) in old.json, not run in narrow.json: not compared" in done.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["compare", "missing.json", "missing.json"], "missing.json: no such pytest-soft report"),
        (["compare", "broken.json", "broken.json"], "broken.json: not a pytest-soft report"),
        (["compare", "a", "b", "--fail-regression", "5 %"], "Write it without spaces"),
        (["compare", "a"], "the following arguments are required: NEW"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["history", "h.jsonl", "--last", "0"], "expected a whole number of 1 or more"),
    ],
)
def test_cli_usage_and_file_errors_exit_2(tmp_path, args, message):
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    done = cli(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr


# -- pytest-xdist -------------------------------------------------------------------------------


def test_under_xdist_the_controller_compares_and_writes_once(pytester):
    write_project(pytester)
    run(pytester, "--soft-baseline", "b.json", "--soft-update-baseline")
    write_project(pytester, impl="A = 1.5\nB = 2.0\n")
    args = [
        "--soft-baseline",
        "b.json",
        "--soft-fail-regression",
        "5%",
        "--soft-history",
        "h.jsonl",
    ]
    serial = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, "-k", "not test_b")
    parallel = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", *args, "-k", "not test_b"
    )
    assert serial.ret == parallel.ret == pytest.ExitCode.TESTS_FAILED
    assert section(serial, "soft baseline") == section(parallel, "soft baseline")
    assert (
        section(parallel, "soft baseline")[2] == "3 regressed, 1 worse within tolerance, 1 not run"
    )
    assert section(serial, "soft regression") == section(parallel, "soft regression")
    # one history line per run: the workers wrote nothing
    assert len(load_history(pytester.path / "h.jsonl")) == 2
    # a removed test is "disappeared" under xdist too (the workers report what they collected)
    write_project(pytester, impl="A = 1.5\nB = 2.0\n", tests=TESTS.replace("[1, 2]", "[1]"))
    parallel = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", *args[:2])
    assert section(parallel, "soft baseline")[2] == (
        "2 regressed, 1 worse within tolerance, 1 disappeared, 1 unchanged"
    )


def ci_job_command() -> list[str]:
    """The pytest command of the GitHub Actions job in the README, as a list of args."""
    docs = Path(__file__).resolve().parent.parent / "README.md"
    lines = docs.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("pytest -n 2"))
    words = []
    for line in lines[start:]:
        if not line.strip() or line.strip().startswith("- "):
            break
        words += shlex.split(line)
    return words


def test_the_ci_job_in_the_docs_passes_then_fails_on_a_regression(pytester):
    command = ci_job_command()
    assert command[:3] == ["pytest", "-n", "2"]
    write_project(pytester)
    run(pytester, "--soft-baseline", "ci/soft-baseline.json", "--soft-update-baseline")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *command[1:])
    assert result.ret == 0
    summary = (pytester.path / "soft-report" / "summary.md").read_text(encoding="utf-8")
    assert "no regression (tolerance 5%,1e-09)" in summary
    for name in ("report.json", "report.html", "benchmark.json"):
        assert (pytester.path / "soft-report" / name).is_file()

    write_project(pytester, impl="A = 1.0\nB = 2.5\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *command[1:])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    summary = (pytester.path / "soft-report" / "summary.md").read_text(encoding="utf-8")
    assert "**regressed**: 1 soft test worse than the baseline" in summary
    assert "| regressed | test\\_soft.py::test\\_b | 2 | 2.5 | +25.0% |" in summary
