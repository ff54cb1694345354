"""``pytest --fit -n N``: the fit spread over pytest-xdist workers gives the one process's answer,
and every way a worker can fail ends the fit with a message and nothing written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def copy_example(name: str, target: Path) -> Path:
    shutil.copytree(
        EXAMPLES / name,
        target,
        ignore=shutil.ignore_patterns("*.params.json", "__pycache__", "*.md"),
    )
    return target


def params(directory: Path) -> dict[str, bytes]:
    """Every parameter file under a directory, by name, byte for byte."""
    return {p.name: p.read_bytes() for p in sorted(directory.rglob("*.params.json"))}


def values(directory: Path) -> dict[str, dict[str, object]]:
    return {name: json.loads(text)["parameters"] for name, text in params(directory).items()}


def run(
    directory: Path, *args: str, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess:
    """pytest in a fresh process, in ``directory`` (as a user runs it)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:hypothesispytest",
            *args,
        ],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**outside_xdist(), "PYTHONDONTWRITEBYTECODE": "1", **env},
    )


def outside_xdist() -> dict[str, str]:
    """This environment without what an xdist worker running these tests sets (the runs
    below are their own sessions, with workers of their own or none)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}


def close(a: object, b: object, rel: float = 1e-10) -> bool:
    if isinstance(a, list):
        return (
            isinstance(b, list) and len(a) == len(b) and all(close(x, y, rel) for x, y in zip(a, b))
        )
    return abs(float(a) - float(b)) <= rel * max(abs(float(a)), abs(float(b)), 1e-300)


def assert_same_fit(one: Path, many: Path) -> None:
    """The same tuned values to rel 1e-10 (the issue's parity), file by file."""
    single, parallel = values(one), values(many)
    assert single and set(single) == set(parallel)
    for name in single:
        assert set(single[name]) == set(parallel[name])
        for key in single[name]:
            assert close(single[name][key], parallel[name][key]), (name, key, single, parallel)


OSCILLATOR_IMPL = '''
"""A damped oscillator x(t) = a exp(-d t) cos(w t + p), integrated by its closed form."""
import autograd.numpy as np
from pytest_soft import Param, Parameters

theta = Parameters(
    a=Param(1.0, bounds=(0.1, 5.0)),
    d=Param(0.3, bounds=(0.0, 2.0)),
    w=Param(2.2, bounds=(0.5, 4.0)),
    p=Param(0.1, bounds=(-3.2, 3.2)),
)


def position(t):
    return theta.a * np.exp(-theta.d * t) * np.cos(theta.w * t + theta.p)
'''

OSCILLATOR_TESTS = '''
"""Recorded positions, one soft test each (not batched: each a test of its own), and one test
that scores a whole trajectory."""
import numpy as np
import pytest
import oscillator
from pytest_soft import soft_test

T = np.linspace(0.0, 6.0, 24)
X = 1.3 * np.exp(-0.25 * T) * np.cos(2.0 * T + 0.4) + 0.01 * np.sin(7.0 * T)


@soft_test(batch=False)
@pytest.mark.parametrize("i", range(len(T)))
def test_position(i):
    return (oscillator.position(T[i]) - X[i]) ** 2


@soft_test(weight=0.5)
def test_trajectory():
    import autograd.numpy as anp
    return anp.mean((oscillator.position(T) - X) ** 2)
'''


def oscillator(target: Path) -> Path:
    target.mkdir()
    (target / "oscillator.py").write_text(textwrap.dedent(OSCILLATOR_IMPL))
    (target / "test_oscillator.py").write_text(textwrap.dedent(OSCILLATOR_TESTS))
    return target


@pytest.mark.parametrize(
    ("problem", "args"),
    [
        ("sine", ["--fit-restarts", "10"]),
        ("linear", []),
        ("linear", ["--fit-method", "lbfgs"]),
        ("mlp", []),
        ("oscillator", []),
        ("oscillator", ["--fit-method", "lbfgs"]),
        ("oscillator", ["--fit-method", "nelder-mead", "--fit-max-iter", "300"]),
    ],
)
def test_a_fit_over_two_workers_gives_the_single_process_fit(tmp_path, problem, args):
    make = oscillator if problem == "oscillator" else lambda t: copy_example(problem, t)
    one, many = make(tmp_path / "one"), make(tmp_path / "many")

    single = run(one, "--fit", *args)
    parallel = run(many, "--fit", "-n", "2", *args)

    assert single.returncode == 0, single.stdout + single.stderr
    assert parallel.returncode == 0, parallel.stdout + parallel.stderr
    assert "evaluated on 2 pytest-xdist workers" in parallel.stdout
    assert_same_fit(one, many)
    # the same optimiser path here: the same bytes
    assert params(one) == params(many)
    # the run that follows uses the tuned values on every worker
    assert "match the fit's after scores" in parallel.stdout


@pytest.mark.compat
def test_explicit_gateways_fit_as_n_does(tmp_path):
    one, many = copy_example("linear", tmp_path / "one"), copy_example("linear", tmp_path / "many")
    single = run(one, "--fit")
    parallel = run(many, "--fit", "--tx", "2*popen", "--dist", "load")
    assert parallel.returncode == 0, parallel.stdout + parallel.stderr
    # the 100 cases are one batch: one worker evaluates it, whole
    assert "evaluated on 2 pytest-xdist workers (soft test cases each: gw0 100, gw1 0)" in (
        parallel.stdout
    )
    assert single.returncode == 0
    assert params(one) == params(many)


@pytest.mark.parametrize(
    "args",
    [
        ["--fit-holdout", "0.25"],
        ["--fit-params", "linear.b"],
        ["--fit-method", "adam", "--fit-batch-size", "16", "--fit-max-iter", "300"],
        ["--fit-dry-run"],
    ],
    ids=["holdout", "fit-params", "minibatches", "dry-run"],
)
def test_fit_options_work_the_same_over_workers(tmp_path, args):
    one, many = copy_example("linear", tmp_path / "one"), copy_example("linear", tmp_path / "many")
    single = run(one, "--fit", *args, "--soft-json", "report.json")
    parallel = run(many, "--fit", "-n", "2", *args, "--soft-json", "report.json")
    assert single.returncode == 0, single.stdout + single.stderr
    assert parallel.returncode == 0, parallel.stdout + parallel.stderr
    a = json.loads((one / "report.json").read_text())["fit"]
    b = json.loads((many / "report.json").read_text())["fit"]
    for key in ("loss_before", "loss_after", "iterations", "holdout", "stop_reason"):
        if isinstance(a[key], float):
            assert close(a[key], b[key]), key
        else:
            assert a[key] == b[key], key
    for x, y in zip(a["parameters"], b["parameters"]):
        assert x["name"] == y["name"]
        assert close(x["after"], y["after"])
    assert sum(b["workers"]["cases"].values()) == a["tests"]
    assert params(one) == params(many)
    # the run after the fit uses the tuned values (with --fit-dry-run: only in memory)
    assert "match the fit's after scores" in parallel.stdout


def test_terms_go_to_the_workers_costliest_first_each_to_the_least_loaded():
    from pytest_soft._xdistfit import owners

    assert owners([1.0, 5.0, 2.0, 2.0, 1.0], 2) == [1, 0, 1, 1, 0]
    # equal costs alternate; one worker takes everything; more workers than terms
    assert owners([1.0] * 5, 2) == [0, 1, 0, 1, 0]
    assert owners([3.0, 1.0], 1) == [0, 0]
    assert owners([3.0, 1.0], 4) == [0, 1]


def test_a_worker_path_maps_to_this_project_s_copy_of_the_module(tmp_path):
    from pytest_soft.errors import WorkerError
    from pytest_soft.fit._remote import Shard, _here

    project = tmp_path / "project"
    (project / "pkg").mkdir(parents=True)
    (project / "pkg" / "model.py").write_text("")
    shard = Shard("gw3", channel=None)
    shard.root = project
    # a worker on this machine, in this project: its own path, wherever the module is
    mine = str(project / "pkg" / "model.params.json")
    assert _here(shard, "model", mine, str(project / "pkg" / "model.py")) == Path(mine)
    outside = str(tmp_path / "lib" / "model.params.json")
    assert _here(shard, "model", outside, str(tmp_path / "lib" / "model.py")) == Path(outside)
    # a worker running a copy elsewhere (xdist's --rsyncdir, another machine): this project's
    shard.local = False
    elsewhere = "/remote/cache/project/pkg/model"
    assert _here(shard, "model", elsewhere + ".params.json", elsewhere + ".py") == (
        project / "pkg" / "model.params.json"
    )
    # a module without a file has no parameter file
    assert _here(shard, "model", None, None) is None
    # nowhere to be found here: an error naming the worker and the module
    with pytest.raises(WorkerError, match=r"worker gw3 imports module 'other' from /x/other\.py"):
        _here(shard, "other", "/x/other.params.json", "/x/other.py")


# -- faults -----------------------------------------------------------------------------------

FAULTY_IMPL = """
import autograd.numpy as np
from pytest_soft import Parameters

theta = Parameters(a=0.0, b=0.0)


def line(x):
    return theta.a * x + theta.b
"""

FAULTY_TESTS = '''
import os
import signal
import numpy as np
import pytest
import impl
from pytest_soft import soft_test

CALLS = {"n": 0}
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def fault():
    """What this test run does to the worker named in FAULT_WORKER, on its FAULT_AT-th call."""
    CALLS["n"] += 1
    what = os.environ["FAULT"]
    if WORKER != os.environ.get("FAULT_WORKER") or CALLS["n"] < int(os.environ["FAULT_AT"]):
        return
    if CALLS["n"] > int(os.environ["FAULT_AT"]) and what != "raise":
        return  # once; an error stays
    if what == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if what == "raise":
        raise ValueError("the solver diverged")
    if what == "skip":
        pytest.skip("not on this worker")
    if what == "sigint-controller":
        os.kill(os.getppid(), signal.SIGINT)
        time.sleep(5)


import time


@soft_test(batch=False)
@pytest.mark.parametrize("x", [0.0, 1.0, 2.0, 3.0])
def test_line(x):
    with open(f"pid-{WORKER or 'main'}", "w") as f:
        f.write(str(os.getpid()))
    fault()
    return (impl.line(x) - (2.0 * x + 1.0)) ** 2
'''


@pytest.fixture
def faulty(tmp_path: Path) -> Path:
    (tmp_path / "impl.py").write_text(textwrap.dedent(FAULTY_IMPL))
    (tmp_path / "test_faulty.py").write_text(textwrap.dedent(FAULTY_TESTS))
    # a parameter file from an earlier fit: it must come out of a failed fit byte for byte
    (tmp_path / "impl.params.json").write_text(
        '{"format": "pytest-soft parameters", "version": 1, "module": "impl", '
        '"parameters": {"a": 0.5, "b": 0.25}}\n'
    )
    return tmp_path


@pytest.mark.compat
def test_a_worker_killed_mid_fit_ends_it_with_nothing_written(faulty):
    before = params(faulty)
    result = run(faulty, "--fit", "-n", "2", FAULT="kill", FAULT_WORKER="gw1", FAULT_AT="20")
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    assert "pytest-xdist worker gw1 stopped answering during the fit" in result.stdout
    assert "its soft tests: test_faulty.py::test_line[" in result.stdout
    assert "the fit stopped (see above); no parameter file was written." in (
        result.stdout + result.stderr
    )
    assert params(faulty) == before


def test_a_test_that_errors_on_one_worker_only_names_the_test_and_the_worker(faulty):
    before = params(faulty)
    result = run(faulty, "--fit", "-n", "2", FAULT="raise", FAULT_WORKER="gw0", FAULT_AT="20")
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    assert "pytest-xdist worker gw0: soft test test_faulty.py::test_line[" in result.stdout
    assert "raised ValueError: the solver diverged while the fit evaluated it (at " in (
        result.stdout
    )
    assert "INTERNALERROR" not in result.stdout + result.stderr
    assert params(faulty) == before


def test_a_test_that_errors_mid_fit_in_one_process_is_named_too(faulty):
    before = params(faulty)
    result = run(faulty, "--fit", FAULT="raise", FAULT_WORKER="", FAULT_AT="30")
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    assert "soft test test_faulty.py::test_line[" in result.stdout
    assert "raised ValueError: the solver diverged while the fit evaluated it (at " in (
        result.stdout
    )
    assert "test_faulty.py:" in result.stdout  # the line that raised
    assert "INTERNALERROR" not in result.stdout + result.stderr
    assert params(faulty) == before


def test_a_test_that_behaves_differently_on_one_worker_stops_the_fit(faulty):
    before = params(faulty)
    result = run(faulty, "--fit", "-n", "2", FAULT="skip", FAULT_WORKER="gw1", FAULT_AT="1")
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    assert (
        "pytest-xdist workers gw0 and gw1 recorded the soft tests differently "
        "(test_faulty.py::test_line[0.0] scored on gw0, skipped on gw1)"
    ) in result.stdout
    assert "some soft test behaves differently from one worker to another" in result.stdout
    assert params(faulty) == before


def test_workers_that_collect_different_tests_stop_the_fit(faulty):
    (faulty / "conftest.py").write_text(
        textwrap.dedent(
            """
            import os

            def pytest_collection_modifyitems(items):
                if os.environ.get("PYTEST_XDIST_WORKER") == "gw1":
                    del items[-1]
            """
        )
    )
    before = params(faulty)
    result = run(faulty, "--fit", "-n", "2", FAULT="none")
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    assert (
        "pytest-xdist workers gw0 and gw1 collected different tests (4 and 3: only gw0 has "
        "test_faulty.py::test_line[3.0])"
    ) in result.stdout
    assert params(faulty) == before


def test_ctrl_c_during_a_distributed_fit_stops_every_worker_and_writes_nothing(faulty):
    before = params(faulty)
    started = time.monotonic()
    result = run(
        faulty, "--fit", "-n", "2", FAULT="sigint-controller", FAULT_WORKER="gw0", FAULT_AT="20"
    )
    assert result.returncode == pytest.ExitCode.INTERRUPTED, result.stdout + result.stderr
    assert "fit interrupted: no parameter file was written." in result.stdout
    assert params(faulty) == before
    assert time.monotonic() - started < 120
    # every worker is gone
    for pid_file in faulty.glob("pid-gw*"):
        pid = int(pid_file.read_text())
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"worker process {pid} ({pid_file.name}) outlived the interrupted run")


def test_a_plain_run_with_workers_is_unchanged_by_the_fit_plugin(faulty):
    result = run(faulty, "-n", "2", FAULT="none")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "soft fit" not in result.stdout


def test_a_worker_xdist_restarts_after_the_fit_runs_with_the_tuned_values(tmp_path):
    """--fit-dry-run keeps the tuned values in memory only: a worker xdist starts after the
    fit, to replace one that crashed, must get them too."""
    project = copy_example("linear", tmp_path / "linear")
    (project / "test_crash.py").write_text(
        textwrap.dedent(
            """
            import os
            from pathlib import Path

            def test_crash_once():
                marker = Path(__file__).with_name("crashed")
                if not marker.exists():
                    marker.write_text("once")
                    os._exit(3)
            """
        )
    )
    result = run(
        project, "--fit", "--fit-dry-run", "-n", "2", "--max-worker-restart", "2",
        "--soft-json", "report.json",
    )  # fmt: skip
    assert "crashed while running" in result.stdout, result.stdout
    assert result.returncode == pytest.ExitCode.TESTS_FAILED
    assert "match the fit's after scores" in result.stdout
    report = json.loads((project / "report.json").read_text())
    assert len(report["tests"]) == 100
    assert params(project) == {}


def test_a_jax_suite_fits_over_workers_as_in_one_process(tmp_path):
    if os.environ.get("SOFT_REQUIRE_JAX") != "1":
        pytest.importorskip("jax")
    one, many = tmp_path / "one", tmp_path / "many"
    for target in (one, many):
        target.mkdir()
        shutil.copy(EXAMPLES / "jax" / "conftest.py", target)
        for name in ("sine", "linear"):
            copy_example(f"jax/{name}", target / name)
    single = run(one, "--fit")
    parallel = run(many, "--fit", "-n", "2")
    assert single.returncode == 0, single.stdout + single.stderr
    assert parallel.returncode == 0, parallel.stdout + parallel.stderr
    assert "backend jax: JAX compiled" in parallel.stdout
    assert "evaluated on 2 pytest-xdist workers" in parallel.stdout
    assert_same_fit(one, many)
    assert "match the fit's after scores" in parallel.stdout
