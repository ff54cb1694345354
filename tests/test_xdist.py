"""Scores and reports under pytest-xdist, on a copy of the sine example."""

from __future__ import annotations

import importlib
import math
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def sine(pytester: pytest.Pytester) -> pytest.Pytester:
    """pytester with examples/sine copied in as ./sine, without any tuned parameter file."""
    shutil.copytree(
        EXAMPLES / "sine",
        pytester.path / "sine",
        ignore=shutil.ignore_patterns("*.params.json", "__pycache__", "*.md"),
    )
    return pytester


def junit_scores(path) -> dict[str, float]:
    scores = {}
    for case in ET.parse(path).iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        scores[case.get("name")] = float(props["soft_score"])
    return scores


@pytest.mark.compat
def test_parallel_run_reports_exactly_what_a_single_process_run_does(sine, section):
    single = sine.runpytest("--soft-report", "--junitxml=single.xml")
    single.assert_outcomes(passed=200)

    parallel = sine.runpytest_subprocess("-n", "2", "--soft-report", "--junitxml=parallel.xml")
    parallel.assert_outcomes(passed=200)
    parallel.stdout.fnmatch_lines(["*2 workers*"])

    table = section(single, "soft report")
    assert len(table) == 1 + 200 + 1  # header, every soft test, suite loss
    assert section(parallel, "soft report") == table
    assert section(parallel, "soft scores") == section(single, "soft scores")
    assert section(single, "soft scores")[0].startswith("200 soft tests, suite loss ")
    # and the scores themselves, to the last bit
    assert junit_scores(sine.path / "parallel.xml") == junit_scores(sine.path / "single.xml")


def test_sine_example_suite_loss_matches_numpy(sine, section, monkeypatch):
    monkeypatch.syspath_prepend(str(sine.path / "sine"))
    try:
        cases = importlib.import_module("test_sine").CASES
    finally:
        for name in ("test_sine", "sine"):
            sys.modules.pop(name, None)
    expected = math.fsum((np.sin(1.0 * x) - y) ** 2 for x, y in cases)

    result = sine.runpytest("--junitxml=run.xml")
    result.assert_outcomes(passed=len(cases))
    assert section(result, "soft scores")[0] == (
        f"{len(cases)} soft tests, suite loss {expected:.6g} (sum of weight x score)"
    )
    assert math.fsum(junit_scores(sine.path / "run.xml").values()) == expected
