"""Ctrl-C (SIGINT) during a fit, during a plain run and while the files are written.

An interrupted run ends with pytest's "interrupted" exit status (2), says what was and was not
written, and leaves every file whole: the old one, or (a report) the new one. Each run is a child
process that sends itself a real SIGINT, as a terminal's Ctrl-C does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_soft import tracking
from pytest_soft._files import TEMP_MARKER

INTERRUPTED = 2

IMPL = """\
import autograd.numpy as np
from pytest_soft import Param, Parameters

theta = Parameters(a=Param(1.0, bounds=(-10.0, 10.0)), w=np.zeros(2))


def f(x):
    return theta.a * x + np.sum(theta.w)
"""

# The soft test sends SIGINT on its Nth call (N from the environment): in a plain run each
# case is one call; in a fit the first calls record the tests and the later ones are the fit's.
TESTS = """\
import os
import signal
import time

import pytest
from pytest_soft import soft_test
import impl

calls = 0


@soft_test(batch=False)
@pytest.mark.parametrize("x", [1.0, 2.0, 3.0, 4.0])
def test_f(x):
    global calls
    calls += 1
    if calls == int(os.environ.get("SIGINT_AT_CALL", "0")):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the signal arrives here
    return (impl.f(x) - 2.0 * x) ** 2
"""

OLD_PARAMS = (
    '{\n  "format": "pytest-soft parameters",\n  "version": 1,\n  "module": "impl",\n'
    '  "parameters": {\n    "a": 1.5,\n    "w": [0.25, -0.25]\n  }\n}\n'
)
OLD_BASELINE = (
    json.dumps(
        {
            "format": "pytest-soft baseline",
            "version": 1,
            "loss": 1.0,
            "tests": {"test_soft.py::test_f[1.0]": {"score": 1.0, "weight": 1.0}},
        },
        indent=2,
    )
    + "\n"
)
OLD_HISTORY = '{"format":"pytest-soft history","version":1,"loss":1.0,"tests":{}}\n'
OLD_FILES = {
    "impl.params.json": OLD_PARAMS,
    "base.json": OLD_BASELINE,
    "hist.jsonl": OLD_HISTORY,
    "out.json": "the previous JSON report\n",
    "report.md": "the previous Markdown summary\n",
    "report.html": "the previous HTML report\n",
}
OUTPUTS = (
    "--soft-baseline", "base.json", "--soft-update-baseline", "--soft-history", "hist.jsonl",
    "--soft-json", "out.json", "--soft-md", "report.md", "--soft-html", "report.html",
)  # fmt: skip


def project(directory: Path, conftest: str | None = None) -> None:
    (directory / "impl.py").write_text(IMPL, encoding="utf-8")
    (directory / "test_soft.py").write_text(TESTS, encoding="utf-8")
    for name, content in OLD_FILES.items():
        (directory / name).write_text(content, encoding="utf-8")
    if conftest is not None:
        (directory / "conftest.py").write_text(conftest, encoding="utf-8")


def run(directory: Path, *args: str, sigint_at_call: int = 0) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "SIGINT_AT_CALL": str(sigint_at_call),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTEST_ADDOPTS": "-p no:hypothesispytest",
        },
    )
    return done.returncode, " ".join((done.stdout + done.stderr).split())


def content(directory: Path, name: str) -> str:
    return (directory / name).read_text(encoding="utf-8")


def no_temporaries(directory: Path) -> bool:
    return not [p for p in directory.iterdir() if p.name.endswith(TEMP_MARKER)]


def test_sigint_during_a_fit_writes_no_parameter_file(tmp_path: Path) -> None:
    project(tmp_path)
    # Calls 1-4 record the four cases; call 6 is inside the fit.
    status, output = run(tmp_path, "--fit", "--fit-method", "sgd", *OUTPUTS, sigint_at_call=6)

    assert status == INTERRUPTED, output
    assert "fit interrupted: no parameter file was written." in output
    assert "baseline not updated: the run did not complete" in output
    assert "history not appended: the run did not complete" in output
    for name in ("impl.params.json", "base.json", "hist.jsonl"):
        assert content(tmp_path, name) == OLD_FILES[name], name
    # The reports describe the run as far as it went, and are whole.
    assert "soft JSON report: out.json" in output
    assert tracking.load_snapshot(tmp_path / "out.json").tests == {}
    assert no_temporaries(tmp_path)


def test_sigint_during_a_plain_run_updates_no_baseline_and_no_history(tmp_path: Path) -> None:
    project(tmp_path)
    status, output = run(tmp_path, *OUTPUTS, sigint_at_call=3)

    assert status == INTERRUPTED, output
    assert "KeyboardInterrupt" in output
    assert "baseline not updated: the run did not complete" in output
    assert "history not appended: the run did not complete" in output
    for name in ("impl.params.json", "base.json", "hist.jsonl"):
        assert content(tmp_path, name) == OLD_FILES[name], name
    # The report holds the two soft tests that ran before the interrupt, whole.
    report = tracking.load_snapshot(tmp_path / "out.json")
    assert sorted(report.tests) == ["test_soft.py::test_f[1.0]", "test_soft.py::test_f[2.0]"]
    # and it says the run was interrupted
    assert json.loads(content(tmp_path, "out.json"))["run"]["interrupted"] is True
    assert no_temporaries(tmp_path)


# SIGINT just as the Markdown summary is about to replace the old one.
INTERRUPT_THE_MARKDOWN = """\
import os
import signal
import time
from pathlib import Path

import pytest_soft._files as files

real_replace = files.os.replace


def replace(source, target):
    if Path(target).name == "report.md":
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the signal arrives here
    return real_replace(source, target)


files.os.replace = replace
"""


def test_sigint_while_writing_the_reports_says_what_was_and_was_not_written(
    tmp_path: Path,
) -> None:
    project(tmp_path, conftest=INTERRUPT_THE_MARKDOWN)
    status, output = run(tmp_path, *OUTPUTS)

    assert status == INTERRUPTED, output
    assert (
        "interrupted while writing the soft files: written: baseline base.json, history "
        "hist.jsonl, JSON report out.json; not written (left as they were): Markdown summary "
        "report.md, HTML report report.html"
    ) in output
    # Written: whole, with this run's four soft tests.
    assert len(tracking.load_snapshot(tmp_path / "base.json").tests) == 4
    assert len(tracking.load_history(tmp_path / "hist.jsonl")) == 2
    assert len(tracking.load_snapshot(tmp_path / "out.json").tests) == 4
    # Not written: exactly as they were, and the interrupted save left no temporary file.
    for name in ("report.md", "report.html", "impl.params.json"):
        assert content(tmp_path, name) == OLD_FILES[name], name
    assert no_temporaries(tmp_path)


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_sigint_while_appending_to_the_history_leaves_no_half_line(
    tmp_path: Path, where: str
) -> None:
    conftest = f"""\
import os
import signal
import time

from pytest_soft.tracking import _storage

where = {where!r}
real = getattr(_storage.os, where)


def interrupted(fd, *args):
    if os.readlink(f"/proc/self/fd/{{fd}}").endswith("hist.jsonl"):
        if where == "write":
            real(fd, args[0][: len(args[0]) // 2])  # half the line is out when the signal comes
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the signal arrives here
    return real(fd, *args)


setattr(_storage.os, where, interrupted)
"""
    project(tmp_path, conftest=conftest)
    status, output = run(tmp_path, "--soft-history", "hist.jsonl", "--soft-md", "report.md")

    assert status == INTERRUPTED, output
    assert (
        "interrupted while writing the soft files: not written (left as they were): history "
        "hist.jsonl, Markdown summary report.md"
    ) in output
    assert content(tmp_path, "hist.jsonl") == OLD_HISTORY
    assert content(tmp_path, "report.md") == OLD_FILES["report.md"]
