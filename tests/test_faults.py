"""Faults while writing: a crash at any point of a save, a disk that fills up, a permission
denied, concurrent writers, two fits at once, a fit lock that never comes free.

Whatever happens, a parameter, baseline, history or report file is the old one or the new one,
never a mix; a failed write leaves no temporary file behind and says what went wrong.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import pytest_soft._files as files
from pytest_soft import tracking
from pytest_soft._files import TEMP_MARKER
from pytest_soft.errors import ParameterFileError, TrackingFileError
from pytest_soft.parameters import load_parameter_file
from pytest_soft.tracking import _storage

IMPL = """\
import autograd.numpy as np
from pytest_soft import Param, Parameters

theta = Parameters(a=Param(1.0, bounds=(-10.0, 10.0)), w=np.zeros(2))


def f(x):
    return theta.a * x + np.sum(theta.w)
"""

OLD_PARAMS = (
    '{\n  "format": "pytest-soft parameters",\n  "version": 1,\n  "module": "impl",\n'
    '  "parameters": {\n    "a": 1.5,\n    "w": [0.25, -0.25]\n  }\n}\n'
)
OLD_BASELINE = json.dumps(
    {
        "format": "pytest-soft baseline",
        "version": 1,
        "loss": 1.0,
        "tests": {"test_soft.py::test_old": {"score": 1.0, "weight": 1.0}},
    },
    indent=2,
)
OLD_HISTORY = (
    '{"format":"pytest-soft history","version":1,"loss":1.0,"tests":{"t.py::t":1.0}}\n' * 3
)
OLD_REPORT = "the previous report\n"

OLD = {
    "params": ("impl.params.json", OLD_PARAMS),
    "baseline": ("base.json", OLD_BASELINE),
    "history": ("hist.jsonl", OLD_HISTORY),
    "report": ("report.md", OLD_REPORT),
}

# The child performs one save of one kind of file; the fault point (a function of the os module)
# is replaced so that it says "blocked" and sleeps until the parent kills it.
CHILD = """\
import os, sys, time
from pathlib import Path

writer, where, directory = sys.argv[1], sys.argv[2], Path(sys.argv[3])
sys.path.insert(0, str(directory))

import pytest_soft._files as files
from pytest_soft import tracking


def block(*args, **kwargs):
    print("blocked", flush=True)
    time.sleep(600)


def save():
    if writer == "params":
        import impl

        impl.theta.a = 2.5
        impl.theta.save()
    elif writer == "baseline":
        entries = {"test_soft.py::test_new": tracking.Entry(0.25)}
        tracking.write_baseline(directory / "base.json", entries, {})
    elif writer == "history":
        record = {"format": "pytest-soft history", "version": 1, "loss": 0.25, "tests": {}}
        tracking.append_history(directory / "hist.jsonl", record)
    else:
        files.atomic_write_text(directory / "report.md", "the new report\\n")


setattr(files.os, where, block)
save()
print("finished", flush=True)
"""


def lay_out(directory: Path) -> None:
    (directory / "impl.py").write_text(IMPL, encoding="utf-8")
    for name, content in OLD.values():
        (directory / name).write_text(content, encoding="utf-8")


def temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(TEMP_MARKER))


def save_in_this_process(writer: str, directory: Path, import_module: Any) -> None:
    """The same save as the child's, here (used to see a later save sweep up)."""
    if writer == "params":
        impl = import_module("impl")
        impl.theta.a = 2.5
        impl.theta.save()
    elif writer == "baseline":
        entries = {"test_soft.py::test_new": tracking.Entry(0.25)}
        tracking.write_baseline(directory / "base.json", entries, {})
    elif writer == "history":
        record = {"format": "pytest-soft history", "version": 1, "loss": 0.25, "tests": {}}
        tracking.append_history(directory / "hist.jsonl", record)
    else:
        files.atomic_write_text(directory / "report.md", "the new report\n")


def check_new(writer: str, directory: Path) -> None:
    """The file holds the new save, whole."""
    name = OLD[writer][0]
    if writer == "params":
        assert load_parameter_file(directory / name)["a"] == 2.5
    elif writer == "baseline":
        assert list(tracking.load_snapshot(directory / name).tests) == ["test_soft.py::test_new"]
    elif writer == "history":
        runs = tracking.load_history(directory / name)
        assert [run["loss"] for run in runs] == [1.0, 1.0, 1.0, 0.25]
    else:
        assert (directory / name).read_text(encoding="utf-8") == "the new report\n"


# -- a crash in the middle of a save ------------------------------------------------------------

CRASH_POINTS = [
    # atomic writes: while the temporary file is flushed to disk, and just before it replaces
    # the target
    *[
        (writer, where)
        for writer in ("params", "baseline", "report")
        for where in ("fsync", "replace")
    ],
    # the history: before the line is written, and after it is written but before it is synced
    ("history", "write"),
    ("history", "fsync"),
]


@pytest.mark.parametrize(("writer", "where"), CRASH_POINTS)
def test_a_save_killed_at_any_point_leaves_the_old_file_or_the_new_one(
    tmp_path: Path, import_module: Any, writer: str, where: str
) -> None:
    lay_out(tmp_path)
    name, old = OLD[writer]
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, writer, where, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    try:
        line = child.stdout.readline()
        assert line == "blocked\n", child.stderr.read()
        child.kill()  # SIGKILL: no cleanup of any kind runs
    finally:
        child.kill()
        child.wait(timeout=60)

    content = (tmp_path / name).read_text(encoding="utf-8")
    if writer == "history" and where == "fsync":
        # The line went out in one write before the crash: the old lines and one whole new one.
        assert content.startswith(old)
        assert [run["loss"] for run in tracking.load_history(tmp_path / name)][-1] == 0.25
    else:
        assert content == old
    if writer != "history":
        assert len(temporaries(tmp_path)) == 1  # what the killed save left behind

    # A later save (another process: this one) replaces the file and sweeps the leftover.
    if writer == "history" and where == "fsync":
        (tmp_path / name).write_text(old, encoding="utf-8")
    save_in_this_process(writer, tmp_path, import_module)
    check_new(writer, tmp_path)
    assert temporaries(tmp_path) == []


def test_a_sweep_leaves_the_temporary_files_of_live_writers_alone(tmp_path: Path) -> None:
    live = tmp_path / f".report.md.{os.getppid()}.abc{TEMP_MARKER}"
    live.write_text("someone else's save in progress", encoding="utf-8")
    files.atomic_write_text(tmp_path / "report.md", "new\n")
    assert live.exists()


# -- a write that fails: disk full, permission denied --------------------------------------------


def _raise(error: int) -> Any:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise OSError(error, os.strerror(error))

    return fail


class _HalfWriter:
    """A file object that writes half of what it is given, then finds the disk full."""

    def __init__(self, handle: Any):
        self.handle = handle

    def write(self, data: bytes) -> int:
        self.handle.write(data[: len(data) // 2])
        self.handle.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)

    def __enter__(self) -> _HalfWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.handle.close()


def _half_fdopen(real: Any) -> Any:
    return lambda *args, **kwargs: _HalfWriter(real(*args, **kwargs))


FAULTS = {
    "disk full while writing": lambda mp: mp.setattr(files.os, "fdopen", _half_fdopen(os.fdopen)),
    "disk full at fsync": lambda mp: mp.setattr(files.os, "fsync", _raise(errno.ENOSPC)),
    "permission denied creating the temporary file": lambda mp: mp.setattr(
        files.tempfile, "mkstemp", _raise(errno.EACCES)
    ),
    "permission denied replacing the file": lambda mp: mp.setattr(
        files.os, "replace", _raise(errno.EACCES)
    ),
}
REASONS = {
    "disk full while writing": "No space left on device",
    "disk full at fsync": "No space left on device",
    "permission denied creating the temporary file": "Permission denied",
    "permission denied replacing the file": "Permission denied",
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_parameter_save_that_fails_keeps_the_old_file_and_says_why(
    tmp_path: Path, import_module: Any, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    lay_out(tmp_path)
    impl = import_module("impl")
    impl.theta.a = 2.5
    FAULTS[fault](monkeypatch)
    with pytest.raises(ParameterFileError) as caught:
        impl.theta.save()
    monkeypatch.undo()
    assert str(caught.value) == (
        f"cannot write the parameters of module 'impl' to {tmp_path / 'impl.params.json'}: "
        f"{REASONS[fault]}. The previous file, if any, is unchanged."
    )
    assert (tmp_path / "impl.params.json").read_text(encoding="utf-8") == OLD_PARAMS
    assert temporaries(tmp_path) == []


@pytest.mark.parametrize("fault", FAULTS)
def test_a_baseline_write_that_fails_keeps_the_old_file_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    lay_out(tmp_path)
    FAULTS[fault](monkeypatch)
    with pytest.raises(TrackingFileError) as caught:
        tracking.write_baseline(tmp_path / "base.json", {"t.py::t": tracking.Entry(0.5)}, {})
    monkeypatch.undo()
    assert f"cannot write the baseline: {REASONS[fault]}" in str(caught.value)
    assert (tmp_path / "base.json").read_text(encoding="utf-8") == OLD_BASELINE
    assert temporaries(tmp_path) == []


def _half_os_write(real: Any) -> Any:
    def write(fd: int, data: bytes) -> int:
        real(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return write


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(
            lambda mp: mp.setattr(_storage.os, "write", _half_os_write(os.write)),
            id="disk full half-way",
        ),
        pytest.param(
            lambda mp: mp.setattr(_storage.os, "fsync", _raise(errno.ENOSPC)),
            id="disk full at fsync",
        ),
        pytest.param(
            lambda mp: mp.setattr(_storage.os, "open", _raise(errno.EACCES)), id="permission denied"
        ),
    ],
)
def test_a_history_append_that_fails_leaves_no_half_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: Any
) -> None:
    lay_out(tmp_path)
    record = {"format": "pytest-soft history", "version": 1, "loss": 0.25, "tests": {}}
    fault(monkeypatch)
    with pytest.raises(
        TrackingFileError,
        match=r"hist.jsonl: cannot (open the history file for appending|append to the history "
        r"file): ",
    ):
        tracking.append_history(tmp_path / "hist.jsonl", record)
    monkeypatch.undo()
    assert (tmp_path / "hist.jsonl").read_text(encoding="utf-8") == OLD_HISTORY


TESTS = """\
import pytest
from pytest_soft import soft_test
import impl


@soft_test
@pytest.mark.parametrize("x", [1.0, 2.0, 3.0])
def test_f(x):
    return (impl.f(x) - 2.0 * x) ** 2
"""


def soft_project(directory: Path) -> None:
    lay_out(directory)
    (directory / "test_soft.py").write_text(TESTS, encoding="utf-8")


def test_a_fit_on_a_full_disk_stops_and_keeps_the_parameter_file(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    soft_project(pytester.path)
    monkeypatch.setattr(files.os, "fsync", _raise(errno.ENOSPC))
    result = pytester.runpytest("-p", "no:cacheprovider", "--fit")
    monkeypatch.undo()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "cannot write the parameters of module 'impl' to *impl.params.json: No space left on "
            "device. The previous file, if any, is unchanged.",
        ]
    )
    assert "the fit stopped (see above); no parameter file was written." in (
        result.stdout.str() + result.stderr.str()
    )
    assert (pytester.path / "impl.params.json").read_text(encoding="utf-8") == OLD_PARAMS
    assert temporaries(pytester.path) == []


def test_reports_and_baseline_on_a_full_disk_fail_the_run_and_keep_the_old_files(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    soft_project(pytester.path)
    monkeypatch.setattr(files.os, "fsync", _raise(errno.ENOSPC))
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--soft-md", "report.md", "--soft-baseline", "base.json",
        "--soft-update-baseline",
    )  # fmt: skip
    monkeypatch.undo()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*base.json: cannot write the baseline: No space left on device.*",
            "cannot write the Markdown summary report.md: No space left on device",
        ],
        consecutive=False,
    )
    assert (pytester.path / "report.md").read_text(encoding="utf-8") == OLD_REPORT
    assert (pytester.path / "base.json").read_text(encoding="utf-8") == OLD_BASELINE
    assert temporaries(pytester.path) == []


# -- concurrent writers ---------------------------------------------------------------------------

APPENDER = """\
import sys
from pytest_soft.tracking import append_history

path, writer = sys.argv[1], int(sys.argv[2])
payload = "x" * 70_000  # far beyond PIPE_BUF: one write() alone would not be atomic everywhere
for n in range(60):
    tests = {f"t.py::t[{writer}-{n}-{k}]": float(k) for k in range(3)}
    record = {"format": "pytest-soft history", "version": 1, "loss": float(n), "tests": tests,
              "writer": writer, "n": n, "payload": payload}
    append_history(path, record)
"""


def test_two_processes_appending_many_long_lines_keep_every_line_whole(tmp_path: Path) -> None:
    path = tmp_path / "hist.jsonl"
    children = [
        subprocess.Popen([sys.executable, "-c", APPENDER, str(path), str(w)]) for w in range(2)
    ]
    assert [child.wait(timeout=120) for child in children] == [0, 0]
    runs = tracking.load_history(path)  # raises on any line that is not whole JSON
    assert len(runs) == 120
    for writer in range(2):
        mine = [run for run in runs if run["writer"] == writer]
        assert [run["n"] for run in mine] == list(range(60))  # in order, none lost
        assert all(len(run["payload"]) == 70_000 and len(run["tests"]) == 3 for run in mine)


GATE = """\
import os
import time
from pathlib import Path


def pytest_sessionstart(session):
    # Runs after the fit lock is taken: hold it until the test opens the gate.
    gate = os.environ.get("PYTEST_SOFT_TEST_GATE")
    if gate:
        Path(gate + ".held").write_text("", encoding="utf-8")
        deadline = time.monotonic() + 60
        while not Path(gate).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
"""


def _pytest(directory: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", **env},
    )


def _wait_for(path: Path, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_two_fits_at_once_the_second_waits_and_starts_from_the_first(tmp_path: Path) -> None:
    soft_project(tmp_path)
    (tmp_path / "impl.params.json").unlink()
    (tmp_path / "conftest.py").write_text(GATE, encoding="utf-8")
    gate = tmp_path / "gate"

    first = _pytest(tmp_path, "--fit", PYTEST_SOFT_TEST_GATE=str(gate))
    try:
        _wait_for(Path(str(gate) + ".held"))  # the first fit holds the lock
        second = _pytest(tmp_path, "--fit", "--fit-lock-timeout", "60")
        try:
            lines = []
            for line in second.stdout:
                lines.append(line)
                if "another fit of this project" in line:
                    break
            gate.write_text("", encoding="utf-8")  # let the first fit go on
            out_second = "".join(lines) + second.stdout.read()
            assert second.wait(timeout=120) == 0, out_second
        finally:
            second.kill()
        out_first = first.stdout.read()
        assert first.wait(timeout=120) == 0, out_first
    finally:
        gate.write_text("", encoding="utf-8")
        first.kill()

    assert "wrote impl.params.json" in out_first
    assert f"another fit of this project (process {first.pid}) is running; waiting up to 60 s" in (
        out_second
    )
    # The second fit read the first one's result: nothing left to improve, nothing written.
    assert "the loss did not improve beyond rounding noise: no parameter file written" in out_second
    stored = load_parameter_file(tmp_path / "impl.params.json")
    assert stored["a"] == pytest.approx(2.0)
    assert temporaries(tmp_path) == []


HOLDER = """\
import sys
from pathlib import Path
from pytest_soft._files import exclusive_lock, project_lock_path

with exclusive_lock(project_lock_path(Path(sys.argv[1])), timeout=10):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes our stdin
"""


def test_a_fit_that_cannot_get_the_lock_gives_up_clearly_and_writes_nothing(
    pytester: pytest.Pytester,
) -> None:
    soft_project(pytester.path)
    before = {p.name: p.read_bytes() for p in pytester.path.iterdir() if p.is_file()}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(pytester.path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        result = pytester.runpytest("-p", "no:cacheprovider", "--fit", "--fit-lock-timeout", "0.5")
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)

    assert result.ret == pytest.ExitCode.INTERRUPTED
    output = result.stdout.str() + result.stderr.str()
    assert (
        f"another fit of this project (process {holder.pid}) is running; waiting up to 0.5 s"
        in (output)
    )
    assert (
        f"gave up after waiting 0.5 s for the fit lock {files.project_lock_path(pytester.path)}, "
        f"held by process {holder.pid}. Let that fit finish, or give --fit-lock-timeout more time. "
        "Nothing was written." in " ".join(output.split())
    )
    assert "soft fit" not in output
    after = {p.name: p.read_bytes() for p in pytester.path.iterdir() if p.is_file()}
    assert after == before


def test_the_lock_is_free_again_when_its_holder_is_killed(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline() == "held\n"
    holder.kill()
    holder.wait(timeout=60)
    with files.exclusive_lock(files.project_lock_path(tmp_path), timeout=5):
        pass
