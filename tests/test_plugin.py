"""The pytest plugin end to end: soft tests written into a fresh project and run with pytester."""

from __future__ import annotations

import re
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest

SUMMARY = "soft scores"
REPORT = "soft report"


def loss_line(count: int, loss: float) -> str:
    tests = "soft test" if count == 1 else "soft tests"
    return f"{count} {tests}, suite loss {loss:.6g} (sum of weight x score)"


# -- declaring soft tests -----------------------------------------------------------------------


@pytest.mark.compat
def test_bare_soft_test_records_its_score(pytester, soft_project, section):
    soft_project(
        """
        from pytest_soft import soft_test

        @soft_test
        def test_half():
            return 0.5
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["test_soft.py::test_half PASSED (score 0.5)*"])
    assert section(result, SUMMARY) == [loss_line(1, 0.5)]


def test_soft_test_with_weight_and_threshold(pytester, soft_project, section):
    soft_project(
        """
        from pytest_soft import soft_test

        @soft_test(weight=2.0, threshold=1.0)
        def test_weighted():
            return 0.75

        @soft_test(threshold=0.5)
        def test_at_its_threshold():
            return 0.5
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    assert section(result, SUMMARY)[0] == loss_line(2, 2.0 * 0.75 + 0.5)


def test_pytest_mark_soft_test_is_a_registered_marker(pytester, soft_project, section):
    soft_project(
        """
        import pytest

        @pytest.mark.soft_test
        def test_bare_mark():
            return 1.0

        @pytest.mark.soft_test(weight=3, threshold=10)
        def test_mark_with_arguments():
            return 2.0
        """
    )
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=2)
    assert section(result, SUMMARY)[0] == loss_line(2, 1.0 + 3 * 2.0)

    markers = pytester.runpytest("--markers")
    markers.stdout.fnmatch_lines(
        ["@pytest.mark.soft_test(weight=1.0, threshold=None*): the test returns a score*"]
    )


@pytest.mark.compat
def test_soft_tests_use_fixtures(pytester, soft_project, section):
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def offset():
            return 0.25

        @pytest.fixture
        def events(tmp_path):
            log = []
            yield log
            with open("teardown.log", "w") as out:
                out.write(",".join(log))
        """
    )
    soft_project(
        """
        import pytest
        from pytest_soft import soft_test

        @pytest.fixture
        def target(offset):
            return 1.0 + offset

        @soft_test
        def test_with_fixtures(target, offset, tmp_path, events):
            events.append("called")
            assert tmp_path.is_dir()
            return target - offset
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_with_fixtures PASSED (score 1)*"])
    assert (pytester.path / "teardown.log").read_text() == "called"  # fixtures torn down
    assert section(result, SUMMARY)[0] == loss_line(1, 1.0)


@pytest.mark.compat
def test_each_parametrized_case_is_one_soft_test(pytester, soft_project, section):
    soft_project(
        """
        import pytest
        from pytest_soft import soft_test

        @soft_test(weight=0.5)
        @pytest.mark.parametrize("x, y", [(1.0, 1.5), (2.0, 2.0), (3.0, 1.0)])
        def test_curve(x, y):
            return (x - y) ** 2
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*test_curve[[]1.0-1.5[]] PASSED (score 0.25)*",
            "*test_curve[[]2.0-2.0[]] PASSED (score 0)*",
            "*test_curve[[]3.0-1.0[]] PASSED (score 4)*",
        ]
    )
    assert section(result, SUMMARY) == [
        loss_line(3, 0.5 * (0.25 + 0.0 + 4.0)),
        "worst 2:",
        "      2  test_soft.py::test_curve[3.0-1.0]",
        "  0.125  test_soft.py::test_curve[1.0-1.5]",
    ]


def test_soft_tests_in_classes(pytester, soft_project, section):
    soft_project(
        """
        import pytest
        from pytest_soft import soft_test

        @soft_test(weight=2.0)
        class TestAllSoft:
            def test_one(self):
                return 1.0

            @pytest.mark.parametrize("v", [0.5, 0.25])
            def test_param(self, v):
                return v

        class TestMixed:
            base = 0.125

            @soft_test
            def test_soft(self):
                return self.base

            def test_hard(self):
                assert self.base == 0.125
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*TestMixed::test_soft PASSED (score 0.125)*"])
    result.stdout.fnmatch_lines(["*TestMixed::test_hard PASSED*"])
    assert "test_hard PASSED (score" not in result.stdout.str()
    assert section(result, SUMMARY)[0] == loss_line(4, 2.0 * (1.0 + 0.5 + 0.25) + 0.125)


@pytest.mark.compat
def test_vectorised_soft_test_counts_as_the_sum_of_its_cases(pytester, soft_project, section):
    soft_project(
        """
        import numpy as np
        from pytest_soft import soft_test

        @soft_test(weight=2.0)
        def test_many():
            return np.array([0.25, 0.5, 1.0, 0.0])
        """
    )
    result = pytester.runpytest("-v", "--soft-report")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_many PASSED (score 1.75)*"])
    assert section(result, REPORT)[1].split() == [
        "1.75", "2", "3.5", "-", "4", "passed", "test_soft.py::test_many"
    ]  # fmt: skip
    assert section(result, SUMMARY)[0] == loss_line(1, 3.5)


def test_async_soft_test_is_refused(pytester, soft_project):
    soft_project(
        """
        from pytest_soft import soft_test

        @soft_test
        async def test_later():
            return 0.0
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*soft test test_soft.py::test_later is async*"])


# -- returned values ----------------------------------------------------------------------------


@pytest.mark.compat
def test_only_ordinary_tests_warn_about_returning_a_value(pytester, soft_project):
    soft_project(
        """
        from pytest_soft import soft_test

        @soft_test
        def test_scored():
            return 0.5

        def test_plain():
            return 3
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(
        ["*PytestReturnNotNoneWarning: *test_soft.py::test_plain returned*"]
    )  # fmt: skip
    assert "test_scored returned" not in result.stdout.str()

    strict = pytester.runpytest("-W", "error::pytest.PytestReturnNotNoneWarning")
    strict.assert_outcomes(passed=1, failed=1)
    strict.stdout.fnmatch_lines(["FAILED test_soft.py::test_plain*"])


@pytest.mark.compat
def test_invalid_score_fails_the_test_naming_test_and_value(pytester, soft_project, section):
    soft_project(
        """
        import math
        import numpy as np
        from pytest_soft import soft_test

        @soft_test
        def test_none():
            0.5

        @soft_test
        def test_text():
            return "0.5"

        @soft_test
        def test_nan():
            return math.nan

        @soft_test
        def test_bool():
            return True

        @soft_test
        def test_matrix():
            return np.zeros((2, 2))

        @soft_test
        def test_nan_case():
            return np.array([0.0, 1.0, np.nan])

        @soft_test
        def test_fine():
            return 0.5
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=6)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines_random(
        [
            "soft test test_soft.py::test_none returned None;*Did you forget `return`?",
            "soft test test_soft.py::test_text returned a string '0.5'*",
            "soft test test_soft.py::test_nan returned nan; scores must be finite*",
            "soft test test_soft.py::test_bool returned a bool (True)*",
            "soft test test_soft.py::test_matrix returned an array of shape (2, 2)*",
            "soft test test_soft.py::test_nan_case returned a non-finite per-case score "
            "(nan at case 2 of 3)*",
        ]
    )
    # no traceback into the plugin: the message is the whole story
    assert "pytest_soft/" not in result.stdout.str()
    assert section(result, SUMMARY) == [loss_line(7, 0.5), "6 gave no score (errors above)"]


def test_huge_scores_do_not_break_the_summary(pytester, soft_project, section):
    soft_project(
        """
        import pytest
        from pytest_soft import soft_test

        @soft_test
        @pytest.mark.parametrize("i", [1, 2])
        def test_huge(i):
            return 1e308
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    assert "INTERNALERROR" not in result.stdout.str()
    assert section(result, SUMMARY)[0] == "2 soft tests, suite loss inf (sum of weight x score)"


# -- thresholds ---------------------------------------------------------------------------------


@pytest.mark.compat
def test_score_above_threshold_fails_with_both_numbers(pytester, soft_project, section):
    soft_project(
        """
        from pytest_soft import soft_test

        @soft_test(threshold=0.5)
        def test_equal():
            return 0.5

        @soft_test(weight=2.0, threshold=0.5)
        def test_above():
            return 0.75
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*test_equal PASSED (score 0.5)*",
            "*test_above FAILED (score 0.75)*",
            "soft test test_soft.py::test_above: score 0.75 is above its threshold 0.5",
        ]
    )
    assert section(result, SUMMARY) == [
        loss_line(2, 0.5 + 2.0 * 0.75),
        "1 above threshold",
        "worst 2:",
        "  1.5  test_soft.py::test_above",
        "  0.5  test_soft.py::test_equal",
    ]


def test_soft_tests_without_threshold_never_fail_on_their_score(pytester, soft_project):
    soft_project(
        """
        from pytest_soft import soft_test

        @soft_test
        def test_terrible():
            return 1e300
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK


# -- what the run shows -------------------------------------------------------------------------

MIXED = """
    import numpy as np
    import pytest
    from pytest_soft import soft_test

    @soft_test(weight=0.1)
    def test_light():
        return 3.0

    @soft_test(weight=4.0, threshold=1.0)
    def test_heavy():
        return 0.375

    @soft_test(threshold=0.001)
    def test_over():
        return 0.0625

    @soft_test
    def test_perfect():
        return 0

    @soft_test
    def test_cases():
        return np.array([0.5, 0.25])

    @soft_test
    def test_broken():
        raise RuntimeError("boom")

    @soft_test
    @pytest.mark.skip(reason="not today")
    def test_skipped():
        return 1.0

    def test_ordinary():
        assert True
"""
# weighted: light 0.3, heavy 1.5, over 0.0625, perfect 0, cases 0.75, broken -
MIXED_LOSS = 0.1 * 3.0 + 4.0 * 0.375 + 0.0625 + 0.0 + 0.75


def test_summary_shows_count_suite_loss_and_worst_tests(pytester, soft_project, section):
    soft_project(MIXED)
    result = pytester.runpytest()
    result.assert_outcomes(passed=5, failed=2, skipped=1)
    assert section(result, SUMMARY) == [
        "6 soft tests, suite loss 2.6125 (sum of weight x score)",
        "1 gave no score (errors above)",
        "1 above threshold",
        "worst 4:",  # a test that adds nothing to the loss is not among the worst
        "     1.5  test_soft.py::test_heavy",
        "    0.75  test_soft.py::test_cases",
        "     0.3  test_soft.py::test_light",
        "  0.0625  test_soft.py::test_over",
    ]


def test_summary_lists_as_many_worst_tests_as_configured(pytester, soft_project, section):
    soft_project(MIXED)
    pytester.makeini("[pytest]\nsoft_summary_worst = 2\n")
    result = pytester.runpytest()
    lines = section(result, SUMMARY)
    assert lines[3:] == [
        "worst 2:",
        "   1.5  test_soft.py::test_heavy",
        "  0.75  test_soft.py::test_cases",
    ]


def test_bad_soft_summary_worst_setting_is_a_usage_error(pytester, soft_project):
    soft_project(MIXED)
    pytester.makeini("[pytest]\nsoft_summary_worst = many\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*soft_summary_worst must be a whole number, got 'many'*"])


def test_soft_report_lists_every_soft_test_worst_first(pytester, soft_project, section):
    soft_project(MIXED)
    result = pytester.runpytest("--soft-report")
    table = section(result, REPORT)
    assert [line.split() for line in table] == [
        ["score", "weight", "weighted", "threshold", "cases", "outcome", "test"],
        ["-", "1", "-", "-", "-", "error", "test_soft.py::test_broken"],
        ["0.375", "4", "1.5", "1", "-", "passed", "test_soft.py::test_heavy"],
        ["0.75", "1", "0.75", "-", "2", "passed", "test_soft.py::test_cases"],
        ["3", "0.1", "0.3", "-", "-", "passed", "test_soft.py::test_light"],
        ["0.0625", "1", "0.0625", "0.001", "-", "above", "threshold", "test_soft.py::test_over"],
        ["0", "1", "0", "-", "-", "passed", "test_soft.py::test_perfect"],
        ["suite", "loss", f"{MIXED_LOSS:.6g}"],
    ]
    # the five numeric columns are right-aligned under their headers
    for line in table[:-1]:
        ends = [m.end() for m in re.finditer(r"\S+", line)][:5]
        assert ends == [m.end() for m in re.finditer(r"\S+", table[0])][:5], line
    # the summary still follows the table
    assert section(result, SUMMARY)[0] == loss_line(6, MIXED_LOSS)


def test_no_soft_section_in_a_run_without_soft_tests(pytester):
    pytester.makepyfile(
        """
        def test_plain():
            assert 1 + 1 == 2
        """
    )
    result = pytester.runpytest("--soft-report")
    result.assert_outcomes(passed=1)
    titles = [line for line in result.outlines if line.startswith("=")]
    assert not [title for title in titles if "soft" in title]
    assert "suite loss" not in result.stdout.str()


def test_plugin_can_be_disabled(pytester, soft_project, section):
    soft_project(
        """
        from pytest_soft import soft_test

        @soft_test
        def test_scored():
            return 0.5
        """
    )
    enabled = pytester.runpytest("-v")
    assert section(enabled, SUMMARY) is not None

    result = pytester.runpytest("-v", "-p", "no:soft")
    result.assert_outcomes(passed=1)
    assert section(result, SUMMARY) is None
    assert "(score" not in result.stdout.str()
    # an ordinary test again: pytest warns about the returned value
    result.stdout.fnmatch_lines(["*PytestReturnNotNoneWarning*test_scored returned*"])
    assert "--soft-report" in pytester.runpytest("--help").stdout.str()
    assert "--soft-report" not in pytester.runpytest("--help", "-p", "no:soft").stdout.str()


# -- JUnit XML ----------------------------------------------------------------------------------


@pytest.mark.compat
def test_junitxml_carries_scores_at_full_precision(pytester, soft_project):
    soft_project(
        """
        import numpy as np
        from pytest_soft import soft_test

        @soft_test(weight=1 / 3, threshold=0.30000000000000004)
        def test_tricky():
            return 0.1 + 0.2

        @soft_test
        def test_cases():
            return np.array([1e-310, 5e-324, 2.0 / 3.0])

        def test_plain():
            pass
        """
    )
    result = pytester.runpytest("--junitxml=report.xml")
    result.assert_outcomes(passed=3)
    tree = ET.parse(pytester.path / "report.xml")
    props = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in tree.iter("testcase")
    }
    tricky = props["test_tricky"]
    assert set(tricky) == {"soft_score", "soft_weight", "soft_threshold"}
    assert float(tricky["soft_score"]) == 0.1 + 0.2
    assert float(tricky["soft_weight"]) == 1 / 3
    assert float(tricky["soft_threshold"]) == 0.30000000000000004

    cases = props["test_cases"]
    assert float(cases["soft_score"]) == 1e-310 + 5e-324 + 2.0 / 3.0
    assert float(cases["soft_weight"]) == 1.0
    assert int(cases["soft_cases"]) == 3
    assert props["test_plain"] == {}


# -- bad marker arguments -----------------------------------------------------------------------


@pytest.mark.compat
def test_bad_marker_arguments_are_errors_naming_the_test(pytester, soft_project, section):
    soft_project(
        """
        import math
        import pytest

        @pytest.mark.soft_test(wieght=2.0)
        def test_typo():
            return 0.0

        @pytest.mark.soft_test(weight=-1.0)
        def test_negative():
            return 0.0

        @pytest.mark.soft_test(weight="heavy")
        def test_words():
            return 0.0

        @pytest.mark.soft_test(threshold=math.nan)
        def test_nan_threshold():
            return 0.0

        @pytest.mark.soft_test(2.0)
        def test_positional():
            return 0.0

        @pytest.mark.soft_test(weight=True)
        def test_bool_weight():
            return 0.0
        """
    )
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(errors=6)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines_random(
        [
            "test_soft.py::test_typo: soft_test got unknown argument(s) wieght; it accepts "
            "weight, threshold*",
            "test_soft.py::test_negative: soft_test: weight must be 0 or more, got -1.0.",
            "test_soft.py::test_words: soft_test: weight must be a real number, got 'heavy'.",
            "test_soft.py::test_nan_threshold: soft_test: threshold must be finite, got nan.",
            "test_soft.py::test_positional: soft_test takes keyword arguments only*",
            "test_soft.py::test_bool_weight: soft_test: weight must be a real number, got True.",
        ]
    )
    # they never ran, so they have no score to report
    assert section(result, SUMMARY) is None


@pytest.mark.parametrize(
    ("decorator", "message"),
    [
        ("@soft_test(weight=-1.0)", "weight must be 0 or more, got -1.0"),
        ("@soft_test(weight='1')", "weight must be a real number, got '1'"),
        ("@soft_test(treshold=0.5)", "unknown argument(s) treshold"),
        ("@soft_test(0.5)", "soft_test decorates a test function or class; got 0.5"),
    ],
)
def test_bad_decorator_arguments_fail_where_they_are_written(
    pytester, soft_project, decorator, message
):
    soft_project(
        f"""
        from pytest_soft import soft_test

        def test_fine():
            pass

        {decorator}
        def test_wrong():
            return 0.0
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting test_soft.py*",
            "test_soft.py:*: in <module>",
            f"*{decorator}*",
            f"E   pytest_soft.errors.SoftError: *{message}*",
        ]
    )


# -- cost when unused ---------------------------------------------------------------------------


@pytest.mark.compat
def test_plugin_does_not_import_numpy_autograd_or_scipy(pytester, monkeypatch):
    pytester.makepyfile(
        """
        def test_plain():
            assert sum([1, 2]) == 3
        """
    )
    code = textwrap.dedent(
        """
        import sys
        import pytest

        code = pytest.main(["-q", "-p", "no:cacheprovider", "-p", "pytest_soft.plugin"])
        heavy = sorted(m for m in ("numpy", "autograd", "scipy") if m in sys.modules)
        print("exit", int(code), "plugin", "pytest_soft.plugin" in sys.modules, "heavy", heavy)
        """
    )
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = pytester.run(sys.executable, "-c", code)
    result.stdout.fnmatch_lines(["exit 0 plugin True heavy []"])
