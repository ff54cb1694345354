"""Ini settings: every option a project sets once can also live in pytest's configuration
(pyproject.toml, pytest.ini, tox.ini, setup.cfg); the command line wins; a bad value is a usage
error with the option's own message; relative paths start at the ini file's folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

IMPL = """
    from pytest_soft import Param, Parameters

    theta = Parameters(a=Param(0.0, bounds=(-10.0, 10.0)))
"""

# Four soft tests pulling a towards 0, 1, 2 and 3: the fit ends at their mean.
TESTS = """
    import pytest
    from pytest_soft import soft_test
    import impl

    @soft_test
    @pytest.mark.parametrize("t", [0.0, 1.0, 2.0, 3.0])
    def test_target(t):
        return (impl.theta.a - t) ** 2
"""

SETTINGS = {
    "soft_fit_method": "--fit-method",
    "soft_fit_tol": "--fit-tol",
    "soft_fit_max_iter": "--fit-max-iter",
    "soft_fit_timeout": "--fit-timeout",
    "soft_fit_restarts": "--fit-restarts",
    "soft_fit_seed": "--fit-seed",
    "soft_fit_holdout": "--fit-holdout",
    "soft_json": "--soft-json",
    "soft_md": "--soft-md",
    "soft_html": "--soft-html",
    "soft_benchmark_json": "--soft-benchmark-json",
    "soft_baseline": "--soft-baseline",
    "soft_fail_regression": "--soft-fail-regression",
    "soft_history": "--soft-history",
}


def fit_lines(result: pytest.RunResult) -> list[str]:
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if re.match(r"=+ soft fit =+$", line))
    end = next(i for i in range(start + 1, len(lines)) if re.match(r"^\S+\.py [.FEsx]+", lines[i]))
    return lines[start + 1 : end]


def matching(lines: list[str], pattern: str) -> str:
    found = [line for line in lines if re.search(pattern, line)]
    assert found, f"no line matches {pattern!r} in:\n" + "\n".join(lines)
    return found[0]


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(impl=IMPL, test_soft=TESTS)
    return pytester


def ini(pytester: pytest.Pytester, kind: str, **settings: str) -> Path:
    """Write the settings into a configuration file of this kind, as a team would."""
    if kind == "pyproject.toml":
        body = "[tool.pytest.ini_options]\n" + "".join(
            f"{name} = {json.dumps(value)}\n" for name, value in settings.items()
        )
    else:
        section = "[pytest]" if kind in ("pytest.ini", "tox.ini") else "[tool:pytest]"
        body = section + "\n" + "".join(f"{name} = {value}\n" for name, value in settings.items())
    path = pytester.path / kind
    path.write_text(body, encoding="utf-8")
    return path


@pytest.mark.compat
@pytest.mark.parametrize("kind", ["pyproject.toml", "pytest.ini", "tox.ini", "setup.cfg"])
def test_fit_settings_come_from_the_ini_file(project, kind):
    ini(project, kind, soft_fit_method="sgd", soft_fit_max_iter="3", soft_fit_restarts="2")
    result = project.runpytest("--fit", "--fit-dry-run")
    fit = fit_lines(result)
    matching(fit, r"^method sgd\b")
    matching(fit, r"^9 iterations over 3 of 3 starts")
    matching(fit, r"^stopped: iteration limit \(3\)")


def test_the_command_line_wins_over_the_ini_file(project):
    ini(project, "pytest.ini", soft_fit_method="adam", soft_fit_max_iter="2")
    result = project.runpytest(
        "--fit", "--fit-dry-run", "--fit-method", "lsq", "--fit-max-iter", "50"
    )
    fit = fit_lines(result)
    matching(fit, r"^method lsq\b")
    # The line reads "  impl.a  0 -> 1.5", with "± error" after it where the method gives one.
    fitted = re.search(r"-> (\S+)", matching(fit, r"^  impl\.a "))
    assert fitted is not None
    assert float(fitted.group(1)) == pytest.approx(1.5)


def test_holdout_seed_and_tolerance_come_from_the_ini_file(project):
    ini(project, "pytest.ini", soft_fit_holdout="0.5", soft_fit_seed="7", soft_fit_tol="1e-3")
    from_ini = fit_lines(project.runpytest("--fit", "--fit-dry-run"))
    given = fit_lines(
        project.runpytest(
            "--fit", "--fit-dry-run", "--fit-holdout", "0.5", "--fit-seed", "7", "--fit-tol", "1e-3"
        )
    )
    matching(from_ini, r"^held-out loss \(2 soft tests kept out of the fit\)")

    def without_time(lines: list[str]) -> list[str]:
        return [re.sub(r"\d+\.\d+ s$", "", line) for line in lines]

    assert without_time(from_ini) == without_time(given)


def test_fit_timeout_comes_from_the_ini_file(project):
    ini(project, "pytest.ini", soft_fit_method="adam", soft_fit_timeout="1e-9")
    matching(fit_lines(project.runpytest("--fit", "--fit-dry-run")), r"^stopped: time budget$")


@pytest.mark.compat
def test_report_paths_in_the_ini_file_are_relative_to_its_folder(project, monkeypatch):
    ini(
        project,
        "pyproject.toml",
        soft_json="out/report.json",
        soft_md="out/report.md",
        soft_html="out/report.html",
        soft_benchmark_json="out/bench.json",
        soft_history="out/history.jsonl",
        soft_baseline="baseline.json",
    )
    elsewhere = project.mkdir("elsewhere")
    monkeypatch.chdir(elsewhere)
    result = project.runpytest(str(project.path), "--soft-update-baseline")
    result.assert_outcomes(passed=4)
    out = project.path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "bench.json",
        "history.jsonl",
        "report.html",
        "report.json",
        "report.md",
    ]
    assert list(elsewhere.iterdir()) == []
    # shown as a path from where pytest ran, as a command-line path would be
    result.stdout.fnmatch_lines(["*soft JSON report: ../out/report.json*"])
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["loss"] == pytest.approx(14.0)
    baseline = json.loads((project.path / "baseline.json").read_text(encoding="utf-8"))
    assert len(baseline["tests"]) == 4


def test_a_report_path_on_the_command_line_wins_and_is_relative_to_where_pytest_runs(project):
    ini(project, "pytest.ini", soft_md="ini.md")
    project.runpytest("--soft-md", "given.md").assert_outcomes(passed=4)
    assert (project.path / "given.md").is_file()
    assert not (project.path / "ini.md").exists()


def test_regression_tolerance_from_the_ini_file_fails_the_run(project):
    ini(project, "pytest.ini", soft_baseline="baseline.json", soft_fail_regression="5%")
    project.runpytest("--soft-update-baseline").assert_outcomes(passed=4)
    # The baseline says every score was 1% of what it is now.
    path = project.path / "baseline.json"
    baseline = json.loads(path.read_text(encoding="utf-8"))
    for entry in baseline["tests"].values():
        entry["score"] *= 0.01
    path.write_text(json.dumps(baseline), encoding="utf-8")

    failed = project.runpytest()
    assert failed.ret == pytest.ExitCode.TESTS_FAILED
    failed.stdout.fnmatch_lines(["*worse than the baseline*(--soft-fail-regression 5%)*"])

    passed = project.runpytest("--soft-fail-regression", "10000%")
    assert passed.ret == pytest.ExitCode.OK


@pytest.mark.compat
@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "soft_fit_method",
            "newton",
            "invalid choice: 'newton' (choose from auto, lsq, lbfgs, adam, sgd, powell, "
            "nelder-mead)",
        ),
        ("soft_fit_tol", "0", "expected a positive number, got '0'"),
        ("soft_fit_max_iter", "2.5", "expected a whole number of 1 or more, got '2.5'"),
        ("soft_fit_timeout", "nan", "expected a positive number, got 'nan'"),
        ("soft_fit_restarts", "-1", "expected a whole number of 0 or more, got '-1'"),
        ("soft_fit_seed", "x", "expected a whole number of 0 or more, got 'x'"),
        ("soft_fit_holdout", "1", "expected a fraction from 0 up to (not including) 1, got '1'"),
        ("soft_fail_regression", "5 %", "*Write it without spaces*"),
    ],
)
def test_a_bad_ini_value_gets_the_same_message_as_the_bad_option(project, name, value, message):
    path = ini(project, "pytest.ini", **{name: value})
    from_ini = project.runpytest()
    assert from_ini.ret == pytest.ExitCode.USAGE_ERROR
    from_ini.stderr.fnmatch_lines([f"*ini setting {name} in {path}: {message}"])

    path.unlink()
    from_option = project.runpytest(f"{SETTINGS[name]}={value}")
    assert from_option.ret == pytest.ExitCode.USAGE_ERROR
    from_option.stderr.fnmatch_lines([f"*argument {SETTINGS[name]}: {message}"])


@pytest.mark.compat
def test_help_lists_every_setting_with_its_option(pytester):
    result = pytester.runpytest("--help")
    text = "\n".join(result.outlines)
    for name, flag in [
        *SETTINGS.items(),
        ("soft_fit_require_convergence", "--fit-require-convergence"),
    ]:
        assert re.search(rf"^  {name} \(string\):", text, re.MULTILINE), name
        assert flag in text
        assert re.search(rf"\(ini: {name}\)", re.sub(r"\s+", " ", text)), name


@pytest.mark.compat
@pytest.mark.parametrize(
    ("text", "required"),
    [("true", True), ("Yes", True), ("on", True), ("1", True), ("false", False), ("off", False)],
)
def test_require_convergence_reads_a_yes_no_ini_value(project, text, required):
    ini(project, "pytest.ini", soft_fit_require_convergence=text)
    # Two iterations of sgd stop at the iteration limit, far from converged.
    result = project.runpytest(
        "--fit", "--fit-dry-run", "--fit-method", "sgd", "--fit-max-iter", "2"
    )
    message = "*the fit did not converge and convergence is required*"
    if required:
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.stdout.fnmatch_lines([message])
    else:
        assert result.ret == pytest.ExitCode.OK
        result.stdout.no_fnmatch_line(message)


def test_require_convergence_takes_a_toml_boolean(project):
    (project.path / "pyproject.toml").write_text(
        "[tool.pytest.ini_options]\nsoft_fit_require_convergence = true\n", encoding="utf-8"
    )
    result = project.runpytest(
        "--fit", "--fit-dry-run", "--fit-method", "sgd", "--fit-max-iter", "2"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*the fit did not converge and convergence is required*"])


def test_a_bad_require_convergence_ini_value_is_a_usage_error(project):
    path = ini(project, "pytest.ini", soft_fit_require_convergence="maybe")
    result = project.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"*ini setting soft_fit_require_convergence in {path}: expected true or false "
            "(yes/no, on/off, 1/0), got 'maybe'"
        ]
    )


def test_an_empty_ini_value_leaves_the_default(project):
    ini(project, "pytest.ini", soft_fit_method="", soft_json="")
    result = project.runpytest("--fit", "--fit-dry-run")
    matching(fit_lines(result), r"^method lsq\b")
    assert not [line for line in result.outlines if "soft JSON report" in line]
