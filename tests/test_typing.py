"""The package is typed for its users (it ships py.typed): mypy checks a user's soft tests and
implementation against pytest-soft's annotations. Its version is the one pyproject.toml holds."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pytest_soft

ROOT = Path(__file__).resolve().parent.parent

USER_CODE = """
    from pytest_soft import Param, Parameters, scores, soft_test

    theta = Parameters(a=Param(1.0, bounds=(0.0, 2.0)), b=0.5)

    @soft_test(weight=2.0, threshold=0.1)
    def test_close() -> float:
        return float(scores.squared_error(theta.a, 1.5))

    reveal_type(test_close)
    reveal_type(theta.module)
    count: int = theta.module
    soft_test(weight="heavy")
"""


def test_version_is_the_one_pyproject_declares():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    declared = re.search(r'^version = "([^"]+)"$', text, re.MULTILINE)
    assert declared is not None
    assert pytest_soft.__version__ == declared.group(1)


def test_mypy_checks_user_code_against_the_annotations(tmp_path):
    pytest.importorskip("mypy", reason="mypy comes with the dev extra")
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_CODE), encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--no-incremental",
            "--strict",
            "--follow-imports=silent",
            "test_user.py",
        ],
        cwd=tmp_path,
        # An editable install is an import hook mypy cannot follow: point it at the source.
        env={**os.environ, "MYPYPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = done.stdout
    assert "import-not-found" not in out, out
    assert re.search(r':10: note: Revealed type is "def \(\) -> (builtins\.)?float"', out), out
    assert re.search(r':11: note: Revealed type is "(builtins\.)?str"', out), out
    assert re.search(r':12: error: Incompatible types in assignment .*"str".*"int"', out), out
    assert re.search(r':13: error: No overload variant of "soft_test"', out), out
    assert "Found 2 errors in 1 file" in out, out
    assert done.returncode == 1
