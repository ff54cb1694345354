"""The examples do what their READMEs say: each is copied into a fresh directory and fitted there
as a user would (``pytest --fit`` in a subprocess), and the test checks what the user sees: the
exit status, the fit section and the parameter file the fit writes.
"""

from __future__ import annotations

import functools
import json
import math
import re
import runpy
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_soft.fit import Term, fit

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NIST_PROBLEMS = (
    "Misra1a",
    "Chwirut2",
    "Lanczos3",
    "DanWood",
    "Kirby2",
    "Gauss3",
    "ENSO",
    "MGH09",
    "Thurber",
    "Rat42",
)


def copy_example(name: str, dest: Path) -> Path:
    """Copy examples/<name> into dest, without parameter files or caches from earlier runs."""
    shutil.copytree(
        EXAMPLES / name,
        dest,
        ignore=shutil.ignore_patterns("*.params.json", "__pycache__", ".pytest_cache"),
        dirs_exist_ok=True,
    )
    return dest


def run(pytester: pytest.Pytester, example: str, *args: str) -> pytest.RunResult:
    """Copy the example into pytester's directory and run pytest there in a subprocess (a
    parameter file an earlier run wrote there stays)."""
    copy_example(example, pytester.path)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def fit_section(result: pytest.RunResult) -> list[str]:
    """The lines of the "soft fit" section, up to the test outcomes that follow it."""
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if re.fullmatch(r"=+ soft fit =+", line))
    end = start + 1
    while end < len(lines) and not (
        lines[end] == ""
        or lines[end].startswith("=" * 5)
        or re.fullmatch(r"[.FEsxX]+ *(\[ *\d+%\])?", lines[end])
    ):
        end += 1
    return lines[start + 1 : end]


def numbers(section: list[str], pattern: str) -> tuple[float, ...]:
    """The groups of the first line of the section matching pattern, as floats."""
    for line in section:
        match = re.search(pattern, line)
        if match:
            return tuple(float(g) for g in match.groups())
    raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(section))


LOSS = r"^loss (\S+) -> (\S+)"


def written_parameters(path: Path) -> dict[str, object]:
    return json.loads(path.read_text(encoding="utf-8"))["parameters"]


def forget_modules_from(folder: Path) -> None:
    """Drop the modules imported from folder (an example's copy) from sys.modules."""
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve().is_relative_to(folder.resolve()):
            del sys.modules[name]


@pytest.fixture
def example_globals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str, str], dict[str, Any]]]:
    """``load(example, file)``: the globals of an example's file, run from a copy of the example
    (importing its implementation modules from there); they are forgotten afterwards."""

    def load(example: str, file: str) -> dict[str, Any]:
        folder = copy_example(example, tmp_path / example)
        monkeypatch.syspath_prepend(str(folder))
        return runpy.run_path(str(folder / file))

    yield load
    forget_modules_from(tmp_path)


# -- sine ---------------------------------------------------------------------------------------


@pytest.mark.compat
def test_sine_plain_fit_is_stuck_and_restarts_find_omega(pytester: pytest.Pytester) -> None:
    # The README's story: a plain fit from omega = 1 ends in a local minimum ...
    stuck = run(pytester, "sine", "--fit")
    assert stuck.ret == 0
    before, after = numbers(fit_section(stuck), LOSS)
    assert before == pytest.approx(210.786, abs=1e-3)
    assert after > 100
    omega = written_parameters(pytester.path / "sine.params.json")["omega"]
    assert abs(omega - 1.5) > 0.05

    # ... restarts (the quick start's command) find omega = 1.5, from a fresh copy.
    (pytester.path / "sine.params.json").unlink()
    fixed = run(pytester, "sine", "--fit", "--fit-restarts", "10")
    assert fixed.ret == 0
    section = fit_section(fixed)
    assert (
        "batched test_sine.py::test_sine: 200 cases in one call "
        "(checked against their own calls at 3 points)"
    ) in section
    _, after = numbers(section, LOSS)
    assert after < 1e-10
    omega = written_parameters(pytester.path / "sine.params.json")["omega"]
    assert omega == pytest.approx(1.5, abs=1e-6)

    # A following plain run shows that loss.
    plain = run(pytester, "sine")
    assert plain.ret == 0
    plain.assert_outcomes(passed=200)
    (loss_line,) = [line for line in plain.outlines if "soft tests, suite loss" in line]
    loss = float(re.search(r"suite loss (\S+)", loss_line).group(1))
    assert loss < 1e-10


# -- linear -------------------------------------------------------------------------------------


def test_linear_fit_matches_numpy_lstsq(pytester: pytest.Pytester, example_globals) -> None:
    result = run(pytester, "linear", "--fit")
    assert result.ret == 0
    result.assert_outcomes(passed=100)
    section = fit_section(result)

    data = example_globals("linear", "test_linear.py")
    design = np.column_stack([data["X"], np.ones(len(data["Y"]))])
    expected, rss, *_ = np.linalg.lstsq(design, data["Y"], rcond=None)

    fitted = written_parameters(pytester.path / "linear.params.json")
    got = np.append(fitted["w"], fitted["b"])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    # The noise keeps the fit from the true values, and lstsq says how far.
    np.testing.assert_allclose(got, np.append(data["TRUE_W"], data["TRUE_B"]), atol=0.05)

    assert section[-1] == "wrote linear.params.json"
    before, after = numbers(section, LOSS)
    assert after == pytest.approx(float(rss[0]), rel=1e-5)
    assert before > 100 * after
    result.stdout.fnmatch_lines([f"100 soft tests, suite loss {after:.6g} *"])


# -- mlp ----------------------------------------------------------------------------------------


def test_mlp_accuracy_fails_before_the_fit_and_passes_after(pytester: pytest.Pytester) -> None:
    plain = run(pytester, "mlp")
    assert plain.ret == 1
    plain.assert_outcomes(passed=200, failed=1)
    plain.stdout.fnmatch_lines(["FAILED test_mlp.py::test_accuracy - AssertionError: accuracy *"])

    fitted = run(pytester, "mlp", "--fit", "--fit-holdout", "0.2")
    assert fitted.ret == 0
    fitted.assert_outcomes(passed=201)
    section = fit_section(fitted)
    assert "160 soft tests, 6 parameters (337 values)" in section
    assert section[-1] == "wrote mlp.params.json"
    before, after = numbers(section, LOSS)
    assert after < 0.01 * before
    held_before, held_after = numbers(
        section, r"^held-out loss \(40 soft tests kept out of the fit\) (\S+) -> (\S+)"
    )
    assert held_after < 0.1 * held_before

    params = written_parameters(pytester.path / "mlp.params.json")
    shapes = {name: np.shape(value) for name, value in params.items()}
    assert shapes == {
        "W1": (2, 16),
        "b1": (16,),
        "W2": (16, 16),
        "b2": (16,),
        "W3": (16, 1),
        "b3": (1,),
    }

    # The written weights are what later plain runs use: the accuracy test keeps passing.
    again = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "accuracy")
    assert again.ret == 0
    again.assert_outcomes(passed=1, deselected=200)


# -- adder --------------------------------------------------------------------------------------


def test_adder_learns_to_add(pytester: pytest.Pytester) -> None:
    result = run(pytester, "adder", "--fit", "-v")
    assert result.ret == 0
    result.assert_outcomes(passed=5)
    section = fit_section(result)
    assert section[-1] == "wrote adder.params.json"
    before, after = numbers(section, LOSS)
    assert before == 428  # 2+2=-11 alone scores 225
    assert after < 1e-20
    params = written_parameters(pytester.path / "adder.params.json")
    assert params["w1"] == pytest.approx(1.0, abs=1e-9)
    assert params["w2"] == pytest.approx(1.0, abs=1e-9)
    assert params["c"] == pytest.approx(0.0, abs=1e-9)


def two_plus_two(pytester: pytest.Pytester, w1: float, w2: float, c: float) -> pytest.RunResult:
    copy_example("adder", pytester.path)
    (pytester.path / "adder.params.json").write_text(
        json.dumps(
            {
                "format": "pytest-soft parameters",
                "version": 1,
                "module": "adder",
                "parameters": {"w1": w1, "w2": w2, "c": c},
            }
        ),
        encoding="utf-8",
    )
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", "-k", "two_plus_two")


def test_adder_scores_four_point_one_far_better_than_minus_eleven(pytester):
    close = two_plus_two(pytester, 1.0, 1.0, 0.1)  # 2 + 2 = 4.1
    far = two_plus_two(pytester, -3.0, -3.0, 1.0)  # 2 + 2 = -11
    pattern = r"test_two_plus_two (PASSED|FAILED) \(score (\S+)\)"
    close_outcome, close_score = re.search(pattern, close.stdout.str()).groups()
    far_outcome, far_score = re.search(pattern, far.stdout.str()).groups()
    assert float(close_score) == pytest.approx(0.01)
    assert float(far_score) == 225
    assert float(close_score) < float(far_score)
    # The test's threshold, 0.01, passes 4.1 and fails -11.
    assert (close_outcome, far_outcome) == ("PASSED", "FAILED")
    assert (close.ret, far.ret) == (0, 1)


# -- nist ---------------------------------------------------------------------------------------


def lre(fitted: dict[str, float], problem) -> dict[str, float]:
    """Log relative error of each fitted parameter against its certified value."""
    out = {}
    for name, certified in zip(problem.names, problem.certified):
        error = abs(fitted[name] - certified) / abs(certified)
        out[name] = math.inf if error == 0 else -math.log10(error)
    return out


@pytest.mark.parametrize("name", NIST_PROBLEMS)
def test_nist_default_fit_reaches_certified_values_from_both_starts(nist, name: str) -> None:
    module = nist[name]
    test = getattr(nist["test_" + name], f"test_{name.lower()}")
    problem = module.PROBLEM
    x = np.array([o[0] for o in problem.observations])
    y = np.array([o[1] for o in problem.observations])
    for start in (1, 2):
        module.theta.update(problem.start_values(start))
        # The term pytest --fit builds from the parametrized soft test: every case in one call.
        term = Term(f"test_{name.lower()}", functools.partial(test, x, y))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = fit([term])
        fitted = {c.full_name.split(".", 1)[1]: c.after for c in result.parameters}
        errors = lre(fitted, problem)
        assert min(errors.values()) >= 6, (
            f"{name} from start {start}: LRE {errors}, {result.stop_reason}"
        )
        assert result.converged, result.stop_reason
        assert result.loss_after == pytest.approx(problem.certified_rss, rel=1e-9)


@pytest.mark.parametrize(("name", "start"), [("MGH09", "1"), ("ENSO", "2")])
def test_nist_pytest_fit_end_to_end(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, nist, name: str, start: str
) -> None:
    monkeypatch.setenv("NIST_START", start)
    module = name.lower()
    result = run(pytester, "nist", "--fit", f"test_{module}.py")
    assert result.ret == 0
    result.stdout.fnmatch_lines([f"nist: NIST start {start} (NIST_START=1 or 2)"])
    problem = nist[name].PROBLEM
    result.assert_outcomes(passed=len(problem.observations))
    section = fit_section(result)
    assert any(line.startswith("stopped: converged") for line in section), section
    _, after = numbers(section, LOSS)
    assert after == pytest.approx(problem.certified_rss, rel=1e-5)  # shown to 6 digits
    fitted = written_parameters(pytester.path / f"{module}.params.json")
    errors = lre(fitted, problem)
    assert min(errors.values()) >= 6, errors


@pytest.mark.parametrize("start", ["1", "2"])
def test_nist_whole_folder_fits_each_problem_on_its_own(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, nist, start: str
) -> None:
    # The problems share no parameter: one `pytest --fit` fits them as independent groups,
    # each to its own convergence, rather than one sum of losses from 1.6e-08 to 5642.
    monkeypatch.setenv("NIST_START", start)
    result = run(pytester, "nist", "--fit")
    assert result.ret == 0
    section = fit_section(result)
    stopped = next(line for line in section if line.startswith("stopped:"))
    assert "10 independent parameter groups fitted one after another" in stopped
    for name in NIST_PROBLEMS:
        fitted = written_parameters(pytester.path / f"{name.lower()}.params.json")
        errors = lre(fitted, nist[name].PROBLEM)
        assert min(errors.values()) >= 6, (name, errors)


def test_nist_benchmark_prints_both_fits_and_the_summary() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "nist.py"), "Misra1a", "DanWood"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines() if line.startswith(("Misra", "Dan"))]
    assert [(r[0], r[1]) for r in rows] == [
        ("Misra1a", "1"),
        ("Misra1a", "2"),
        ("DanWood", "1"),
        ("DanWood", "2"),
    ]
    for row in rows:
        # LRE, evaluations (loss+Jacobian) and seconds: pytest-soft, scipy defaults, scipy tight
        assert float(row[2]) >= 6 and float(row[8]) >= 6
        assert all(re.fullmatch(r"\d+\+\d+", row[i]) for i in (3, 6, 9)), row
    assert "reached LRE >= 6: pytest-soft 4 of 4" in out.stdout
    # The BLAS library in use, read once numpy is loaded (threadpoolctl sees none before).
    assert re.search(r"^blas +(?!unknown|none)\S+ .* threads, ", out.stdout, re.M), out.stdout
