"""Scale smoke tests, part of every run: a soft suite of 10,000 parametrized cases scores, fits
and reports; a long fit's memory does not grow with its iteration count."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np

from pytest_soft.fit import Term, fit

CASES = 10_000

IMPL = """\
import autograd.numpy as np
from pytest_soft import Param, Parameters

theta = Parameters(a=Param(1.0, bounds=(-10.0, 10.0)), b=0.0)


def f(x):
    return theta.a * x + theta.b
"""

TESTS = f"""\
import pytest
from pytest_soft import soft_test
import impl

CASES = [(i / {CASES}, 2.0 * i / {CASES} + 0.5) for i in range({CASES})]


@soft_test
@pytest.mark.parametrize("x, y", CASES)
def test_line(x, y):
    return (impl.f(x) - y) ** 2
"""


def test_ten_thousand_soft_tests_score_fit_and_report(tmp_path: Path) -> None:
    (tmp_path / "impl.py").write_text(IMPL, encoding="utf-8")
    (tmp_path / "test_soft.py").write_text(TESTS, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--fit",
         "--fit-max-iter", "3", "--soft-json", "report.json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-5000:]
    assert f"batched test_soft.py::test_line: {CASES} cases in one call" in output
    assert f"{CASES} soft tests, 2 parameters (2 values)" in output
    assert "stopped: iteration limit (3)" in output
    assert "wrote impl.params.json" in output
    assert f"{CASES} passed" in output
    fitted = re.search(r"^loss (\S+) -> (\S+)", output, re.MULTILINE)
    assert fitted and float(fitted[2]) < float(fitted[1])
    # The run afterwards scores every case with the fitted values: its suite loss is the fit's.
    summary = re.search(rf"^{CASES} soft tests, suite loss (\S+) ", output, re.MULTILINE)
    assert summary and summary[1] == fitted[2]
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["counts"]["tests"] == CASES and len(report["tests"]) == CASES


def _peak_memory_of_a_fit(iterations: int) -> tuple[int, int]:
    """The peak of traced memory during an Adam fit of ``iterations`` steps on one batched term,
    and the number of iterations it ran."""
    from pytest_soft.parameters import Parameters

    theta = Parameters(a=1.0, b=0.0)
    xs = np.linspace(0.0, 1.0, 2000)
    ys = 2.0 * xs + 0.5
    names = [f"test_line[{i}]" for i in range(xs.size)]
    term = Term("test_line", lambda: (theta.a * xs + theta.b - ys) ** 2, case_names=names)

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline, _ = tracemalloc.get_traced_memory()
        result = fit([term], method="adam", lr=1e-4, max_iter=iterations, check_gradient=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - baseline, result.iterations


def test_a_long_fit_uses_no_more_memory_than_a_short_one() -> None:
    short, short_iterations = _peak_memory_of_a_fit(50)
    long, long_iterations = _peak_memory_of_a_fit(500)
    assert (short_iterations, long_iterations) == (50, 500)  # both ran to their limit
    # Ten times the iterations: the per-iteration loss history (a few KB) may grow, nothing else.
    assert long < 1.5 * short + 1_000_000, (short, long)
