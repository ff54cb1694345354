"""The catalogue of bad input: every way a user's test, file or option can be wrong, one row each.

Each row lays out a small project (an implementation ``impl.py`` with two parameters, soft tests
in ``test_soft.py``, and whatever files the row adds or replaces), runs one command, and checks
what the user sees: the exit status, a message that names the thing at fault and says what to
do, and every file of the project unchanged byte for byte (except the files the row says the
command writes). The "Bad input" tables of docs/troubleshooting.md are this catalogue in prose.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

OK, FAILED, INTERRUPTED, USAGE = 0, 1, 2, 4

IMPL = """\
import autograd.numpy as np
from pytest_soft import Param, Parameters

theta = Parameters(a=Param(1.0, bounds=(-10.0, 10.0)), w=np.zeros(2))


def f(x):
    return theta.a * x + np.sum(theta.w)
"""

TESTS = """\
import pytest
from pytest_soft import soft_test
import impl


@soft_test
@pytest.mark.parametrize("x", [1.0, 2.0, 3.0])
def test_f(x):
    return (impl.f(x) - 2.0 * x) ** 2
"""


def params(parameters: Any, version: int = 1, fmt: str = "pytest-soft parameters") -> str:
    """A parameter file holding ``parameters`` (a dict, or any JSON text given as a str)."""
    body = parameters if isinstance(parameters, str) else json.dumps(parameters)
    return f'{{"format": "{fmt}", "version": {version}, "module": "impl", "parameters": {body}}}\n'


GOOD_PARAMS = params({"a": 1.5, "w": [0.25, -0.25]})


def returns(expression: str, imports: str = "import numpy as np") -> str:
    """A test module whose one soft test returns ``expression``."""
    return (
        f"{imports}\nfrom pytest_soft import soft_test\n\n\n"
        f"@soft_test\ndef test_bad():\n    return {expression}\n"
    )


def baseline(tests: Any, version: int = 1, loss: Any = 0.0) -> str:
    return json.dumps(
        {"format": "pytest-soft baseline", "version": version, "loss": loss, "tests": tests}
    )


def history_line(loss: Any = 1.0, version: int = 1) -> str:
    record = {"format": "pytest-soft history", "version": version, "loss": loss, "tests": {}}
    return json.dumps(record) + "\n"


class Dir:
    """A directory where a file is expected."""


@dataclass(frozen=True)
class Link:
    """A symbolic link (to nowhere, unless the target exists)."""

    to: str


@dataclass(frozen=True)
class ReadOnly:
    """A file without write permission."""

    content: str


@dataclass(frozen=True)
class BadInput:
    id: str
    #: Files of the project besides impl.py and test_soft.py (which these may replace).
    files: Mapping[str, str | bytes | Dir | Link | ReadOnly | None] = field(default_factory=dict)
    #: ("pytest", args...) runs pytest in-process; ("pytest-subprocess", args...) in a child;
    #: ("python", args...) runs python in the project directory.
    command: tuple[str, ...] = ("pytest",)
    exit: int = OK
    #: A regular expression that must match the output (stdout and stderr together).
    message: str = ""
    #: Files the command may write; every other file must stay byte for byte as it was.
    writes: tuple[str, ...] = ()
    #: Files the command may only append to: their old bytes stay, at the start.
    appends: tuple[str, ...] = ()


# fmt: off
CATALOGUE = [
    # -- what a soft test returns or does ---------------------------------------------------------
    BadInput("score None", {"test_soft.py": returns("None")}, exit=FAILED,
             message=r"soft test test_soft.py::test_bad returned None; .*Did you forget "
                     r"`return`\?"),
    BadInput("score bool", {"test_soft.py": returns("True")}, exit=FAILED,
             message=r"test_bad returned a bool \(True\); a soft test returns a score, not "
                     r"pass/fail"),
    BadInput("score complex", {"test_soft.py": returns("1 + 2j")}, exit=FAILED,
             message=r"test_bad returned a complex value .*return its magnitude squared"),
    BadInput("score str", {"test_soft.py": returns("'0.5'")}, exit=FAILED,
             message=r"test_bad returned a string '0.5' .*return a real number"),
    BadInput("score list", {"test_soft.py": returns("[0.5, 0.25]")}, exit=FAILED,
             message=r"test_bad returned a list .*1-d numpy array of per-case scores"),
    BadInput("score 2-d array", {"test_soft.py": returns("np.ones((2, 3))")}, exit=FAILED,
             message=r"test_bad returned an array of shape \(2, 3\); return a scalar or a 1-d "
                     r"array"),
    BadInput("score empty array", {"test_soft.py": returns("np.zeros(0)")}, exit=FAILED,
             message=r"test_bad returned an empty array; return at least one per-case score"),
    BadInput("score NaN", {"test_soft.py": returns("float('nan')")}, exit=FAILED,
             message=r"test_bad returned nan; scores must be finite numbers"),
    BadInput("score inf", {"test_soft.py": returns("np.inf")}, exit=FAILED,
             message=r"test_bad returned inf; scores must be finite numbers"),
    BadInput("score NaN in one case", {"test_soft.py": returns("np.array([0.0, np.nan])")},
             exit=FAILED, message=r"non-finite per-case score \(nan at case 1 of 2\)"),
    BadInput("score too large an int", {"test_soft.py": returns("10 ** 400")}, exit=FAILED,
             message=r"test_bad returned an int too large for a float"),
    BadInput("soft test raises", {"test_soft.py": returns("1 / 0")}, exit=FAILED,
             message=r"(?s)ZeroDivisionError.*1 gave no score.*FAILED test_soft.py::test_bad"),
    BadInput("soft test hangs (pytest-timeout)",
             {"test_soft.py": returns("time.sleep(60)", imports="import time")},
             command=("pytest-subprocess", "--timeout", "2", "--timeout-method", "signal"),
             exit=FAILED,
             # pytest-timeout 2.2 (the floor) words it "Timeout >2.0s"
             message=r"(?s)Failed: Timeout \(?>2.0s.*"
                     r"1 gave no score.*FAILED test_soft.py::test_bad"),
    BadInput("soft test prints 5 MB",
             {"test_soft.py": returns("print('x' * 5_000_000) or 0.5")},
             command=("pytest", "-v"),
             message=r"test_soft.py::test_bad PASSED \(score 0.5\).*\n(.*\n)*"
                     r"1 soft test, suite loss 0.5 "),
    BadInput("soft_test with a negative weight",
             {"test_soft.py": "from pytest_soft import soft_test\n\n\n"
                              "@soft_test(weight=-1)\ndef test_bad():\n    return 0.5\n"},
             exit=INTERRUPTED, message=r"soft_test: weight must be 0 or more, got -1"),
    BadInput("fit: a soft test that reads no parameter", {"test_soft.py": returns("0.5")},
             command=("pytest", "--fit"), exit=USAGE,
             message=r"read no declared parameter, so there is nothing to tune"),
    # -- the parameter file --------------------------------------------------------------------
    BadInput("params empty", {"impl.params.json": ""}, exit=INTERRUPTED,
             message=r"impl.params.json is empty. Fix it, or delete it to start from the "
                     r"declared values"),
    BadInput("params truncated", {"impl.params.json": GOOD_PARAMS[:50]}, exit=INTERRUPTED,
             message=r"impl.params.json is not valid JSON \(line 1, column \d+: .*\)\. Fix it, "
                     r"or delete it"),
    BadInput("params not UTF-8", {"impl.params.json": b"\xff\xfe{\x00"}, exit=INTERRUPTED,
             message=r"impl.params.json is not UTF-8 text \(byte 0\)\. Fix it, or delete it"),
    BadInput("params JSON of the wrong shape", {"impl.params.json": "[1.5, [0, 0]]"},
             exit=INTERRUPTED,
             message=r"impl.params.json is not a pytest-soft parameter file \(expected a JSON "
                     r"object with \"format\""),
    BadInput("params without a parameters object",
             {"impl.params.json": params("[1.5]")}, exit=INTERRUPTED,
             message=r"impl.params.json has no \"parameters\" object"),
    BadInput("params from a newer format version",
             {"impl.params.json": params({"a": 1.5}, version=2)}, exit=INTERRUPTED,
             message=r"impl.params.json was written by a newer pytest-soft \(format version 2;"
                     r" this one reads version 1\)\. Upgrade pytest-soft"),
    BadInput("params nested too deep", {"impl.params.json": "[" * 100_000}, exit=INTERRUPTED,
             message=r"impl.params.json cannot be used: maximum recursion depth"),
    BadInput("params with a duplicate name",
             {"impl.params.json": params('{"a": 1.5, "a": 2.5}')}, exit=INTERRUPTED,
             message=r"impl.params.json cannot be used: the key 'a' appears twice"),
    BadInput("params with an extra name",
             {"impl.params.json": params({"a": 2.0, "w": [0, 0], "old": 3.0})},
             command=("pytest", "-v"),
             message=r"(?s)PASSED \(score 0\).*impl.params.json: 1 parameter no longer declared"
                     r" in module 'impl': old\. They are ignored, and dropped the next time"),
    BadInput("params with a missing name (declared value used)",
             {"impl.params.json": params({"a": 2.0})}, command=("pytest", "-v"),
             message=r"test_f\[3.0\] PASSED \(score 0\)"),
    BadInput("params NaN", {"impl.params.json": params('{"a": NaN}')}, exit=INTERRUPTED,
             message=r"parameter 'impl.a' in .*impl.params.json holds a value that is not "
                     r"finite \(nan\)\. Fix the entry, or delete it"),
    BadInput("params Infinity in an array",
             {"impl.params.json": params('{"w": [1.0, -Infinity]}')}, exit=INTERRUPTED,
             message=r"parameter 'impl.w' in .*impl.params.json holds a value that is not "
                     r"finite \(\[1.0, -inf\]\)"),
    BadInput("params number beyond a float", {"impl.params.json": params('{"a": 1e400}')},
             exit=INTERRUPTED, message=r"parameter 'impl.a' in .*holds a value that is not "
                                       r"finite \(inf\)"),
    BadInput("params string", {"impl.params.json": params({"a": "1.5"})}, exit=INTERRUPTED,
             message=r"parameter 'impl.a' in .*impl.params.json is '1.5', not a number or an "
                     r"array of numbers"),
    BadInput("params string inside an array",
             {"impl.params.json": params({"w": [1.0, "2"]})}, exit=INTERRUPTED,
             message=r"parameter 'impl.w' in .*holds something that is not a number"),
    BadInput("params huge array of the wrong shape",
             {"impl.params.json": params({"w": [0.5] * 200_000})}, exit=INTERRUPTED,
             message=r"parameter 'impl.w' in .*impl.params.json has shape \(200000,\), but the "
                     r"code declares shape \(2,\)\. Delete the entry to start from the declared"
                     r" value, or fix the declaration"),
    BadInput("params reshaped in the code (file holds the old shape)",
             {"impl.params.json": params({"a": 1.0, "w": [[1.0, 2.0], [3.0, 4.0]]})},
             exit=INTERRUPTED, message=r"parameter 'impl.w' in .* has shape \(2, 2\), but the "
                                       r"code declares shape \(2,\)"),
    BadInput("params renamed in the code (file holds the old name)",
             {"impl.params.json": params({"alpha": 2.0, "w": [0.0, 0.0]})},
             message=r"1 parameter no longer declared in module 'impl': alpha"),
    BadInput("params renamed, then a fit drops the old name",
             {"impl.params.json": params({"alpha": 2.0, "w": [0.0, 0.0]})},
             command=("pytest", "--fit"), writes=("impl.params.json",),
             message=r"(?s)wrote impl.params.json.*no longer declared in module 'impl': alpha"),
    BadInput("params a directory", {"impl.params.json": Dir()}, exit=INTERRUPTED,
             message=r"impl.params.json is a directory, not a parameter file\. Fix it, or "
                     r"delete it"),
    BadInput("params a link to nowhere", {"impl.params.json": Link("gone.json")},
             exit=INTERRUPTED,
             message=r"impl.params.json cannot be opened \(it does not exist, or it is a link "
                     r"to nowhere\)"),
    BadInput("params read-only: a plain run reads it",
             {"impl.params.json": ReadOnly(params({"a": 2.0}))}, command=("pytest", "-v"),
             message=r"test_f\[1.0\] PASSED \(score 0\)"),
    BadInput("params read-only: the fit refuses to replace it",
             {"impl.params.json": ReadOnly(GOOD_PARAMS)}, command=("pytest", "--fit"),
             exit=FAILED,
             message=r"(?s)cannot write the parameters of module 'impl' to .*impl.params.json: "
                     r"the file is read-only, so pytest-soft leaves it alone \(make it writable"
                     r".*no parameter file was written"),
    BadInput("two Parameters groups in one module",
             {"impl.py": IMPL + "\nextra = Parameters(b=1.0)\n"}, exit=INTERRUPTED,
             message=r"module 'impl' declares a second Parameters group; a module holds one "
                     r"group\. Put every parameter of the module into one Parameters"),
    BadInput("a module without a file (__main__) saves without a path",
             command=("python", "-c", "from pytest_soft import Parameters\n"
                                      "theta = Parameters(a=1.0)\ntheta.save()"),
             exit=FAILED,
             message=r"ParameterFileError: module '__main__' has no file, so its parameters "
                     r"have no file beside it; pass a path: save\('my.params.json'\)"),
    # -- the baseline ---------------------------------------------------------------------------
    *[
        BadInput(f"baseline {what}", {"base.json": content},
                 command=("pytest", "--soft-baseline", "base.json"), exit=USAGE,
                 message=r"--soft-baseline: \S*base.json: " + message)
        for what, content, message in [
            ("empty", "", r"not a pytest-soft report or baseline file: invalid JSON at line 1 "
                          r"column 1 .*Restore it from version control"),
            ("truncated", baseline({"test_soft.py::test_f[1.0]": {"score": 1.0}})[:40],
             r"not a pytest-soft report or baseline file: invalid JSON"),
            ("not UTF-8", b"\xff\xfe\x00", r"not a pytest-soft report or baseline file \(not "
                                            r"UTF-8 text\)"),
            ("JSON of the wrong shape", "[1, 2]",
             r"not a pytest-soft report or baseline file \(a JSON object with \"format\""),
            ("of another format", params({"a": 1.0}),
             r"this is a 'pytest-soft parameters' file, but a 'pytest-soft report' or "
             r"'pytest-soft baseline' file was expected"),
            ("from a newer format version", baseline({}, version=7),
             r"pytest-soft report or baseline format version 7 is newer than this pytest-soft"
             r" reads \(version 1\)\. Upgrade pytest-soft"),
            ("with tests not an object", baseline([1, 2]),
             r"\"tests\" must be an object of node id -> entry"),
            ("with a string score", baseline({"test_soft.py::test_f[1.0]": {"score": "low"}}),
             r"soft test 'test_soft.py::test_f\[1.0\]': score must be a number or null, got "
             r"'low'"),
            ("with a bad tolerance",
             baseline({"test_soft.py::test_f[1.0]": {"score": 1, "tolerance": "5 %"}}),
             r"soft test 'test_soft.py::test_f\[1.0\]': a tolerance is"),
            ("nested too deep", "[" * 100_000, r"not a pytest-soft report or baseline file: "
                                               r"maximum recursion depth"),
            ("a directory", Dir(), r"is a directory, not a pytest-soft report or baseline"),
            ("a link to nowhere", Link("gone.json"),
             r"no such pytest-soft report or baseline file\. Check the path"),
        ]
    ],
    BadInput("baseline NaN and huge scores are read (a regression, not a crash)",
             {"base.json": '{"format": "pytest-soft baseline", "version": 1, "loss": NaN, '
                           '"tests": {"test_soft.py::test_f[1.0]": {"score": NaN}, '
                           '"test_soft.py::test_f[2.0]": {"score": 1e400}}}'},
             command=("pytest", "--soft-baseline", "base.json"),
             message=r"compared with base.json"),
    BadInput("baseline read-only: --soft-update-baseline refuses to replace it",
             {"base.json": ReadOnly(baseline({"test_soft.py::test_f[1.0]": {"score": 1.0}}))},
             command=("pytest", "--soft-baseline", "base.json", "--soft-update-baseline"),
             exit=FAILED,
             message=r"base.json: cannot write the baseline: the file is read-only, so "
                     r"pytest-soft leaves it alone"),
    BadInput("baseline file name is a directory: --soft-update-baseline cannot write it",
             {"base": Dir()},
             command=("pytest", "--soft-baseline", "base", "--soft-update-baseline"),
             exit=USAGE, message=r"--soft-baseline: \S*base: is a directory"),
    # -- the history ----------------------------------------------------------------------------
    *[
        BadInput(f"history {what}", {"hist.jsonl": content},
                 command=("python", "-m", "pytest_soft", "history", "hist.jsonl"), exit=2,
                 message=r"python -m pytest_soft history: error: hist.jsonl" + message)
        for what, content, message in [
            ("truncated last line", history_line() + history_line()[:30],
             r", line 2: not a JSON line\. Delete or fix that line"),
            ("with a line of the wrong shape", history_line() + "[1, 2]\n",
             r", line 2: not a pytest-soft history file"),
            ("from a newer format version", history_line(version=3),
             r", line 1: pytest-soft history format version 3 is newer than this pytest-soft "
             r"reads \(version 1\)\. Upgrade pytest-soft"),
            ("with a string loss", history_line(loss="low"),
             r", line 1: the suite loss must be a number or null, got 'low'"),
            ("with a line nested too deep", history_line() + "[" * 100_000 + "\n",
             r", line 2: not a JSON line"),
            ("a directory", Dir(), r": cannot read the history file: Is a directory"),
            ("a link to nowhere", Link("gone.jsonl"), r": no such history file"),
        ]
    ],
    BadInput("history not UTF-8", {"hist.jsonl": history_line().encode() + b"\xff\xfe\n"},
             command=("python", "-m", "pytest_soft", "history", "hist.jsonl"), exit=2,
             message=r"hist.jsonl, line 2: not a JSON line"),
    BadInput("history with a broken last line: a run appends on a line of its own",
             {"hist.jsonl": history_line() + '{"format": "pytest-soft hi'},
             command=("pytest", "--soft-history", "hist.jsonl"), appends=("hist.jsonl",),
             message=r"soft history: hist.jsonl"),
    BadInput("history read-only: a run refuses to append",
             {"hist.jsonl": ReadOnly(history_line())},
             command=("pytest", "--soft-history", "hist.jsonl"), exit=FAILED,
             message=r"hist.jsonl: cannot open the history file for appending: the file is "
                     r"read-only, so pytest-soft leaves it alone"),
    BadInput("history a directory: a run cannot append",
             {"hist.jsonl": Dir()}, command=("pytest", "--soft-history", "hist.jsonl"),
             exit=FAILED,
             message=r"hist.jsonl: cannot open the history file for appending: Is a directory"),
    # -- reports --------------------------------------------------------------------------------
    BadInput("report path is a directory", {"out.json": Dir()},
             command=("pytest", "--soft-json", "out.json"), exit=FAILED,
             message=r"cannot write the JSON report out.json: Is a directory"),
    BadInput("report read-only", {"out.md": ReadOnly("# my notes\n")},
             command=("pytest", "--soft-md", "out.md"), exit=FAILED,
             message=r"cannot write the Markdown summary out.md: the file is read-only"),
    # -- options --------------------------------------------------------------------------------
    BadInput("--fit-max-iter -1", command=("pytest", "--fit", "--fit-max-iter", "-1"),
             exit=USAGE, message=r"argument --fit-max-iter: expected a whole number of 1 or "
                                 r"more, got '-1'"),
    BadInput("--fit-max-iter 2.5", command=("pytest", "--fit", "--fit-max-iter", "2.5"),
             exit=USAGE, message=r"argument --fit-max-iter: expected a whole number"),
    BadInput("--soft-fail-regression '5 %'",
             command=("pytest", "--soft-baseline", "b.json", "--soft-fail-regression", "5 %"),
             exit=USAGE, message=r"argument --soft-fail-regression: .*Write it without spaces: "
                                 r"'5%'"),
    BadInput("--soft-fail-regression without --soft-baseline",
             command=("pytest", "--soft-fail-regression", "5%"), exit=USAGE,
             message=r"--soft-fail-regression compares with a baseline: add --soft-baseline"),
    BadInput("--fit-method unknown", command=("pytest", "--fit", "--fit-method", "newton"),
             exit=USAGE, message=r"argument --fit-method: invalid choice: 'newton' \(choose "
                                 r"from .*auto.*lsq.*lbfgs.*adam.*sgd"),
    BadInput("--fit-lr nan", command=("pytest", "--fit", "--fit-lr", "nan"), exit=USAGE,
             message=r"argument --fit-lr: expected a positive number, got 'nan'"),
    BadInput("--fit-holdout 1", command=("pytest", "--fit", "--fit-holdout", "1"), exit=USAGE,
             message=r"argument --fit-holdout: expected a fraction from 0 up to \(not "
                     r"including\) 1"),
    BadInput("--fit-lock-timeout 0", command=("pytest", "--fit", "--fit-lock-timeout", "0"),
             exit=USAGE, message=r"argument --fit-lock-timeout: expected a positive number"),
    BadInput("--fit-seed -1", command=("pytest", "--fit", "--fit-seed", "-1"), exit=USAGE,
             message=r"argument --fit-seed: expected a whole number of 0 or more, got '-1'"),
    BadInput("--soft-update-baseline with --fit-dry-run",
             command=("pytest", "--fit", "--fit-dry-run", "--soft-baseline", "b.json",
                      "--soft-update-baseline"), exit=USAGE,
             message=r"--soft-update-baseline with --fit-dry-run would record the scores of "
                     r"tuned values that no parameter file holds"),
    BadInput("--fit-params naming nothing read",
             command=("pytest", "--fit", "--fit-params", "impl.b"), exit=USAGE,
             message=r"--fit-params names impl.b, which no selected soft test reads \("
                     r"parameters they read: impl.a, impl.w\)"),
    BadInput("--soft-update-baseline without --soft-baseline",
             command=("pytest", "--soft-update-baseline"), exit=USAGE,
             message=r"--soft-update-baseline writes the file given with --soft-baseline PATH"),
    BadInput("--soft-json ''", command=("pytest", "--soft-json", ""), exit=USAGE,
             message=r"argument --soft-json: expected a file path, got an empty string"),
    BadInput("ini soft_summary_worst not a number",
             {"pytest.ini": "[pytest]\nsoft_summary_worst = many\n"}, exit=USAGE,
             message=r"ini setting soft_summary_worst must be a whole number, got 'many'"),
    BadInput("any other ini setting malformed (`soft_fit_max_iter = 2.5`)",
             {"pytest.ini": "[pytest]\nsoft_fit_max_iter = 2.5\n"}, exit=USAGE,
             message=r"ini setting soft_fit_max_iter in \S*pytest.ini: expected a whole number "
                     r"of 1 or more, got '2.5'"),
]
# fmt: on


def _lay_out(root: Path, row: BadInput) -> None:
    files: dict[str, Any] = {"impl.py": IMPL, "test_soft.py": TESTS, **row.files}
    for name, content in files.items():
        path = root / name
        if content is None:
            continue
        if isinstance(content, Dir):
            path.mkdir()
            (path / "keep.txt").write_text("the user's\n")
        elif isinstance(content, Link):
            path.symlink_to(content.to)
        elif isinstance(content, ReadOnly):
            path.write_text(content.content, encoding="utf-8")
            path.chmod(0o444)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", errors="surrogateescape")


def snapshot(root: Path) -> dict[str, Any]:
    """Every file, directory and link under ``root`` (caches aside): bytes, modes, targets."""
    seen: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in ("__pycache__", ".pytest_cache")]
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            key = path.relative_to(root).as_posix()
            if path.is_symlink():
                seen[key] = ("link", os.readlink(path))
            elif path.is_dir():
                seen[key] = ("dir",)
            else:
                seen[key] = ("file", path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
    return seen


def _run(pytester: pytest.Pytester, row: BadInput) -> tuple[int, str]:
    kind, *args = row.command
    if kind == "pytest":
        result = pytester.runpytest("-p", "no:cacheprovider", *args)
        return int(result.ret), "\n".join(result.outlines + result.errlines)
    if kind == "pytest-subprocess":
        args = ["-m", "pytest", "-p", "no:cacheprovider", *args]
    else:
        assert kind == "python"
    done = subprocess.run(
        [sys.executable, *args],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("row", CATALOGUE, ids=[row.id for row in CATALOGUE])
def test_bad_input(pytester: pytest.Pytester, row: BadInput) -> None:
    _lay_out(pytester.path, row)
    before = snapshot(pytester.path)

    status, output = _run(pytester, row)

    shown = output if len(output) < 20_000 else output[:10_000] + "\n...\n" + output[-10_000:]
    assert re.search(row.message, output), f"no match for {row.message!r} in:\n{shown}"
    assert status == row.exit, shown
    after = snapshot(pytester.path)
    for name, old in before.items():
        if name in row.writes or name.startswith(tuple(f"{w}/" for w in row.writes)):
            continue
        if name in row.appends:
            assert after[name][1].startswith(old[1]), f"{name}: the old lines changed"
            continue
        assert after.get(name) == old, f"{name} changed"
    created = set(after) - set(before) - set(row.writes)
    assert not created, f"files created: {sorted(created)}"
    if "5 MB" not in row.id:
        # An error names the thing at fault; it does not dump the file or the value.
        assert len(output) < 100_000, shown


def test_the_catalogue_ids_are_unique() -> None:
    ids = [row.id for row in CATALOGUE]
    assert len(ids) == len(set(ids))


def test_a_fit_over_a_renamed_parameter_writes_only_the_declared_names(
    pytester: pytest.Pytester,
) -> None:
    row = next(r for r in CATALOGUE if r.id == "params renamed, then a fit drops the old name")
    _lay_out(pytester.path, row)
    _run(pytester, row)
    written = json.loads((pytester.path / "impl.params.json").read_text(encoding="utf-8"))
    assert sorted(written["parameters"]) == ["a", "w"]


def test_a_read_only_parameter_file_keeps_its_mode_and_bytes_after_a_refused_fit(
    pytester: pytest.Pytester,
) -> None:
    # The row above checks the bytes; the permission bits are the user's too.
    row = next(r for r in CATALOGUE if r.id.startswith("params read-only: the fit"))
    _lay_out(pytester.path, row)
    _run(pytester, row)
    path = pytester.path / "impl.params.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444


def test_the_docs_list_every_row_of_the_catalogue_with_its_exit_status() -> None:
    page = Path(__file__).parent.parent / "docs" / "troubleshooting.md"
    text = page.read_text(encoding="utf-8")
    section = text.split("\n## Bad input\n", 1)[1].split("\n## ", 1)[0]
    documented = {}
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith("| situation |"):
            continue
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        documented[cells[0]] = int(cells[2])
    assert documented == {row.id: row.exit for row in CATALOGUE}


HANGS_IN_THE_FIT = """\
import time
from pytest_soft import soft_test
import impl

calls = 0


@soft_test
def test_hangs_in_the_fit():
    global calls
    calls += 1
    if calls == 2:  # the first call records the test; the second is the fit's
        time.sleep(4)
    return (impl.theta.a - 2.0) ** 2
"""


def test_a_soft_test_that_hangs_during_the_fit_is_stopped_by_pytest_timeout(tmp_path):
    (tmp_path / "impl.py").write_text(IMPL, encoding="utf-8")
    (tmp_path / "test_soft.py").write_text(HANGS_IN_THE_FIT, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--fit", "--timeout", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        "Timeout: soft test test_soft.py::test_hangs_in_the_fit ran longer than 1 s "
        "(pytest-timeout's limit) while the fit evaluated it" in done.stdout
    )
    assert "no parameter file was written" in done.stdout
    assert not (tmp_path / "impl.params.json").exists()
