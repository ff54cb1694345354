"""How pytest-soft scales: 1k, 10k and 100k parametrized soft cases, and a 10k-parameter MLP.

Part 1 generates a project per size N (an implementation module ``model.py`` declaring
``Parameters`` for a line a x + b, and ``test_model.py`` with one ``@soft_test``
``@pytest.mark.parametrize`` test over N points) and runs, each in a subprocess:

  * ``pytest -q --collect-only``: collection alone,
  * ``pytest -q``: collection and scoring (a plain run),
  * ``pytest -q --fit --fit-max-iter 5 --fit-dry-run``: recording, the fit, and the run,

reporting wall time and the child's peak RSS (os.wait4), and for the fit the iterations and the
fit's own seconds parsed from the fit section. Then the engine alone on the same N cases, in
this process: build_terms (which batches the cases into one call after checking it scores
them alike), one loss + gradient, one Jacobian pass, and a 5-iteration fit's time per
iteration.

Part 2 fits an MLP of 10,401 parameters (1 -> 100 -> 100 -> 1, tanh) to 1,000 cases with the
engine directly (a batched term, L-BFGS-B, 100 iterations): time per iteration, and memory at
iteration 10 against iteration 100 (RSS, and Python allocations with tracemalloc in a second
run), to show that memory stays flat across iterations.

Run: python benchmarks/scale.py [--quick] [--sizes 1000,10000,100000] [--pytest-max N]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import importlib.metadata
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from _common import load, print_environment

# -- helpers ----------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values)


def rss_mib() -> float:
    """This process's current resident set size, in MiB (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


def run_child(argv: list[str], cwd: Path) -> tuple[float, float, str, int]:
    """Run a subprocess; return its wall seconds, peak RSS in MiB, output and exit code."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryFile("w+") as out:
        t = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    return wall, usage.ru_maxrss / 1024, text, proc.returncode


# -- part 1: N parametrized soft cases --------------------------------------------------------

MODEL = '''\
"""A line a x + b, for the fit to find a = 2, b = 1."""

import autograd.numpy as np  # noqa: F401

from pytest_soft import Param, Parameters

theta = Parameters(a=Param(0.5, bounds=(-10.0, 10.0)), b=Param(0.0))


def f(x):
    return theta.a * x + theta.b
'''

TESTS = '''\
"""N soft cases: points of y = 2 x + 1 with a little noise."""

import numpy as np
import pytest

import model
from pytest_soft import soft_test

N = {n}
rng = np.random.default_rng(1)
XS = np.linspace(-1.0, 1.0, N)
CASES = [(float(x), float(2.0 * x + 1.0 + 0.01 * e)) for x, e in zip(XS, rng.normal(size=N))]


@soft_test
@pytest.mark.parametrize("x, y", CASES)
def test_model(x, y):
    return (model.f(x) - y) ** 2
'''

BASELINE = '''\
"""The same N cases as ordinary tests (an assert, no soft test): what pytest itself costs."""

import numpy as np
import pytest

import model

N = {n}
rng = np.random.default_rng(1)
XS = np.linspace(-1.0, 1.0, N)
CASES = [(float(x), float(2.0 * x + 1.0 + 0.01 * e)) for x, e in zip(XS, rng.normal(size=N))]


@pytest.mark.parametrize("x, y", CASES)
def test_model(x, y):
    assert (model.f(x) - y) ** 2 >= 0
'''

FIT_LINE = re.compile(r"(\d+) iterations.*?gradient evaluations, ([0-9.]+) s")
OUTCOME = re.compile(r"(\d+) passed")


def make_project(root: Path, n: int) -> Path:
    project = root / f"n{n}"
    project.mkdir()
    (project / "model.py").write_text(MODEL)
    (project / "test_model.py").write_text(TESTS.format(n=n))
    (project / "baseline").mkdir()
    (project / "baseline" / "test_baseline.py").write_text(BASELINE.format(n=n))
    return project


def pytest_runs(project: Path, n: int, repeats: int, baseline: bool) -> dict[str, dict[str, float]]:
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    commands = {
        "collect only": [*base, "--collect-only", "test_model.py"],
        "plain run": [*base, "test_model.py"],
        "--fit --fit-max-iter 5": [
            *base,
            "test_model.py",
            "--fit",
            "--fit-max-iter",
            "5",
            "--fit-dry-run",
        ],
    }
    if baseline:
        commands["baseline"] = [*base, "-p", "no:soft", "baseline"]
    samples: dict[str, dict[str, list[float]]] = {
        name: {"wall": [], "rss": [], "fit_s": [], "iterations": []} for name in commands
    }
    for _ in range(repeats):
        for name, argv in commands.items():
            wall, rss, text, code = run_child(argv, project)
            if code != 0:
                print(text[-3000:])
                raise SystemExit(f"pytest exited {code}: {name} at N={n}")
            if name != "collect only":
                passed = OUTCOME.search(text)
                if passed is None or int(passed.group(1)) != n:
                    raise SystemExit(f"expected {n} passed: {name}\n{text[-2000:]}")
            s = samples[name]
            s["wall"].append(wall)
            s["rss"].append(rss)
            if "--fit" in argv:
                match = FIT_LINE.search(text)
                if match is None:
                    raise SystemExit("no fit line in the output:\n" + text[-3000:])
                s["iterations"].append(float(match.group(1)))
                s["fit_s"].append(float(match.group(2)))
    return {
        name: {key: median(values) for key, values in s.items() if values}
        for name, s in samples.items()
    }


def engine_at(project: Path, n: int, repeats: int) -> dict[str, float]:
    """The engine alone on the project's N cases (imported here, as the plugin records them)."""
    from pytest_soft.batch import Case, build_terms
    from pytest_soft.fit import fit
    from pytest_soft.fit._layout import choose_slots
    from pytest_soft.fit._optimisers import loss_and_grad
    from pytest_soft.fit._problem import Problem, initial_reads

    sys.path.insert(0, str(project))
    for name in ("model", "test_model"):
        sys.modules.pop(name, None)
    try:
        tests = importlib.import_module("test_model")
    finally:
        sys.path.remove(str(project))
    body = tests.test_model.__wrapped__ if hasattr(tests.test_model, "__wrapped__") else None
    body = body or tests.test_model
    t = time.perf_counter()
    cases = [
        Case(
            name=f"test_model.py::test_model[{i}]",
            function=body,
            kwargs={"x": x, "y": y},
            weight=1.0,
            threshold=None,
            score=float(body(x=x, y=y)),
            batch_key=("test_model.py", "test_model"),
        )
        for i, (x, y) in enumerate(tests.CASES)
    ]
    record = time.perf_counter() - t
    t = time.perf_counter()
    terms, notes = build_terms(cases)
    build = time.perf_counter() - t
    assert len(terms) == 1 and not notes, notes

    values0, reads = initial_reads(terms)
    slots = choose_slots(set().union(*reads), None)
    problem = Problem(terms, slots)
    problem.cases = [int(v.shape[0]) for v in values0]
    x0 = problem.current()

    def timed(fn) -> float:
        out = []
        for _ in range(max(repeats, 5)):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
        return median(out)

    grad = timed(lambda: loss_and_grad(problem, x0))
    jac = timed(lambda: problem.jacobians(x0))
    scores = timed(lambda: problem.scores(x0))

    def fit_per_iteration() -> tuple[float, object]:
        stamps: list[float] = []
        result = fit(
            terms,
            max_iter=5,
            check_gradient=False,
            progress=lambda p: stamps.append(time.perf_counter()),
        )
        if len(stamps) < 2:
            return float("nan"), result
        return (stamps[-1] - stamps[0]) / (len(stamps) - 1), result

    # The same fit with BLAS threads as they are and limited to one (held around the fit).
    per_iteration: list[float] = []
    one_thread: list[float] = []
    with blas_limit() as limit:
        for _ in range(max(repeats, 3)):
            seconds, result = fit_per_iteration()
            per_iteration.append(seconds)
            if limit is not None:
                with limit():
                    one_thread.append(fit_per_iteration()[0])
    return {
        "record": record,
        "build": build,
        "grad": grad,
        "jac": jac,
        "scores": scores,
        "iter": median(per_iteration),
        "iter1": median(one_thread) if one_thread else float("nan"),
        "iterations": result.iterations,
        "method": result.method,
    }


@contextlib.contextmanager
def blas_limit():
    """A function giving a context that limits BLAS to one thread, or None without
    threadpoolctl. The controller is made once: threadpool_limits() scans the loaded
    libraries on every call, which costs milliseconds."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        yield None
        return
    controller = ThreadpoolController()
    yield lambda: controller.limit(limits=1, user_api="blas")


def part1(sizes: list[int], repeats: int, pytest_max: int, baseline_max: int) -> None:
    print("== part 1: N parametrized soft cases (a line a x + b, 2 parameters)")
    print(f"   subprocess runs: median of {repeats} (1 at N > 10,000); peak RSS of the child")
    root = Path(tempfile.mkdtemp(prefix="soft-scale-"))
    rows = []
    engine_rows = []
    try:
        for n in sizes:
            project = make_project(root, n)
            if n <= pytest_max:
                r = pytest_runs(
                    project, n, repeats if n <= 10_000 else 1, baseline=n <= baseline_max
                )
                rows.append((n, r))
                print_pytest_row(n, r)
            else:
                print(f"   N={n:,}: pytest runs skipped (--pytest-max {pytest_max:,})")
            e = engine_at(project, n, repeats)
            engine_rows.append((n, e))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print()
    print("pytest (subprocess)")
    head = (
        f"{'N':>8} {'collect s':>10} {'plain s':>9} {'µs/test':>8} {'RSS MiB':>8} "
        f"{'--fit s':>8} {'RSS MiB':>8} {'fit s':>7} {'iters':>6} {'s/iter':>8} "
        f"{'baseline s':>10} {'RSS MiB':>8}"
    )
    print(head)
    for n, r in rows:
        co, plain, fitrun = r["collect only"], r["plain run"], r["--fit --fit-max-iter 5"]
        iters = fitrun["iterations"]
        print(
            f"{n:>8,} {co['wall']:>10.2f} {plain['wall']:>9.2f} "
            f"{plain['wall'] / n * 1e6:>8.0f} {plain['rss']:>8.0f} {fitrun['wall']:>8.2f} "
            f"{fitrun['rss']:>8.0f} {fitrun['fit_s']:>7.2f} {iters:>6.0f} "
            f"{fitrun['fit_s'] / max(iters, 1):>8.3f} "
            + (
                f"{r['baseline']['wall']:>10.2f} {r['baseline']['rss']:>8.0f}"
                if "baseline" in r
                else f"{'-':>10} {'-':>8}"
            )
        )
    print()
    print("engine alone, in process (one batched term of N cases)")
    print(
        f"{'N':>8} {'record s':>9} {'build_terms s':>14} {'loss+grad ms':>13} "
        f"{'jacobian ms':>12} {'scores ms':>10} {'ms/iter':>8} {'1 BLAS thread':>14} "
        f"{'method':>7}"
    )
    for n, e in engine_rows:
        print(
            f"{n:>8,} {e['record']:>9.2f} {e['build']:>14.2f} {e['grad'] * 1e3:>13.2f} "
            f"{e['jac'] * 1e3:>12.2f} {e['scores'] * 1e3:>10.2f} {e['iter'] * 1e3:>8.2f} "
            f"{e['iter1'] * 1e3:>14.2f} {e['method']:>7}"
        )


def print_pytest_row(n: int, r: dict[str, dict[str, float]]) -> None:
    fitrun = r["--fit --fit-max-iter 5"]
    print(
        f"   N={n:,}: collect {r['collect only']['wall']:.2f} s, plain {r['plain run']['wall']:.2f}"
        f" s ({r['plain run']['rss']:.0f} MiB), --fit {fitrun['wall']:.2f} s "
        f"({fitrun['rss']:.0f} MiB, fit {fitrun['fit_s']:.2f} s)",
        flush=True,
    )


# -- part 2: an MLP of 10,401 parameters --------------------------------------------------------

MLP = '''\
"""A small MLP, 1 -> H -> H -> 1 with tanh, its weights declared as Parameters."""

import autograd.numpy as np
import numpy

from pytest_soft import Parameters

H = {hidden}
_rng = numpy.random.default_rng(0)
theta = Parameters(
    w1=_rng.normal(size=H),
    b1=numpy.zeros(H),
    w2=_rng.normal(size=(H, H)) / numpy.sqrt(H),
    b2=numpy.zeros(H),
    w3=_rng.normal(size=H) / numpy.sqrt(H),
    b3=0.0,
)


def f(x):
    """Elementwise in x: a scalar gives a scalar, an array of points an array."""
    column = np.reshape(x, (-1, 1))
    h = np.tanh(column * theta.w1 + theta.b1)
    h = np.tanh(np.dot(h, theta.w2) + theta.b2)
    return np.reshape(np.dot(h, theta.w3) + theta.b3, np.shape(x))


def test_mlp(x, y):
    return (f(x) - y) ** 2
'''


def part2(cases_n: int, hidden: int, iterations: int) -> None:
    import numpy as np

    from pytest_soft.batch import Case, build_terms
    from pytest_soft.fit import fit

    root = Path(tempfile.mkdtemp(prefix="soft-mlp-"))
    (root / "mlp_bench.py").write_text(MLP.format(hidden=hidden))
    sys.path.insert(0, str(root))
    try:
        mlp = importlib.import_module("mlp_bench")
    finally:
        sys.path.remove(str(root))
    size = sum(np.size(v) for v in mlp.theta.to_dict().values())
    print()
    print(
        f"== part 2: MLP 1 -> {hidden} -> {hidden} -> 1 ({size:,} parameters), "
        f"{cases_n:,} cases in one batched term, L-BFGS-B, {iterations} iterations"
    )
    xs = np.linspace(-3.0, 3.0, cases_n)
    ys = np.sin(2.0 * xs) + 0.3 * xs
    cases = [
        Case(
            name=f"test_mlp[{i}]",
            function=mlp.test_mlp,
            kwargs={"x": float(x), "y": float(y)},
            weight=1.0,
            threshold=None,
            score=float(mlp.test_mlp(float(x), float(y))),
            batch_key="mlp",
        )
        for i, (x, y) in enumerate(zip(xs, ys))
    ]
    terms, notes = build_terms(cases)
    assert len(terms) == 1 and not notes, notes
    marks = sorted({1, 10, 25, 50, iterations})

    def run(trace: bool) -> tuple[dict[int, tuple[float, float, float]], object]:
        seen: dict[int, tuple[float, float, float]] = {}

        def progress(p) -> None:
            if p.iteration in marks:
                traced = tracemalloc.get_traced_memory()[0] / 2**20 if trace else 0.0
                seen[p.iteration] = (time.perf_counter(), rss_mib(), traced)

        gc.collect()
        if trace:
            tracemalloc.start()
        try:
            result = fit(
                terms,
                method="lbfgs",
                max_iter=iterations,
                tol=1e-300,
                check_gradient=False,
                progress=progress,
            )
        finally:
            if trace:
                tracemalloc.stop()
        return seen, result

    seen, result = run(trace=False)
    t1 = seen[1][0]
    print(
        f"   loss {result.loss_before:.4g} -> {result.loss_after:.4g}, {result.iterations} "
        f"iterations, {result.gradient_evaluations} gradient evaluations, "
        f"{result.seconds:.2f} s; stopped: {result.stop_reason}"
    )
    per_eval = (seen[max(seen)][0] - t1) / max(result.gradient_evaluations - 2, 1)
    print(
        "   (the engine as it is: where threadpoolctl is installed, BLAS runs on 1 thread "
        "inside L-BFGS-B)"
    )
    print(
        f"   time per iteration {(seen[max(seen)][0] - t1) / (max(seen) - 1) * 1e3:.1f} ms "
        f"(about {per_eval * 1e3:.1f} ms per loss + gradient)"
    )
    traced_seen, _ = run(trace=True)
    print(f"   {'iteration':>9} {'seconds':>8} {'RSS MiB':>8} {'tracemalloc MiB':>16}")
    for it in marks:
        if it in seen:
            traced = traced_seen.get(it, (0, 0, float("nan")))[2]
            print(
                f"   {it:>9} {seen[it][0] - t1:>8.2f} {seen[it][1]:>8.1f} {traced:>16.2f}"
                "  (traced run)"
            )
    blas_threads(terms)
    if 10 in seen and iterations in seen:
        rss10, rss100 = seen[10][1], seen[iterations][1]
        tm10 = traced_seen.get(10, (0, 0, float("nan")))[2]
        tm100 = traced_seen.get(iterations, (0, 0, float("nan")))[2]
        print(
            f"   iteration {iterations} vs 10: RSS {rss100 - rss10:+.1f} MiB, "
            f"Python allocations {tm100 - tm10:+.2f} MiB"
        )
    shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def engine_blas_limit(enabled: bool):
    """With ``enabled=False``, switch off the engine's own one-thread BLAS limit around
    L-BFGS-B (pytest_soft.fit._optimisers._one_blas_thread), to measure what it saves."""
    import pytest_soft.fit._optimisers as engine

    original = getattr(engine, "_one_blas_thread", None)
    if enabled or original is None:
        yield
        return
    engine._one_blas_thread = contextlib.nullcontext
    try:
        yield
    finally:
        engine._one_blas_thread = original


def blas_threads(terms, iterations: int = 20, rounds: int = 3) -> None:
    """The MLP's loss + gradient and a short L-BFGS-B fit with BLAS threads as they are and
    limited to one, interleaved; the fit also as the engine runs it (which limits BLAS to one
    thread around L-BFGS-B itself, where threadpoolctl is installed)."""
    import pytest_soft.fit._optimisers as engine
    from pytest_soft.fit import fit
    from pytest_soft.fit._layout import choose_slots
    from pytest_soft.fit._optimisers import loss_and_grad
    from pytest_soft.fit._problem import Problem, initial_reads

    values0, reads = initial_reads(terms)
    slots = choose_slots(set().union(*reads), None)
    problem = Problem(terms, slots)
    problem.cases = [int(v.shape[0]) for v in values0]
    x0 = problem.current()
    before = load()
    has_limit = hasattr(engine, "_one_blas_thread")
    with blas_limit() as limit:
        if limit is None:
            print("   (threadpoolctl not installed: BLAS threads not compared)")
            return
        grads: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(15):
            for one in (False, True):
                with limit() if one else contextlib.nullcontext():
                    t = time.perf_counter()
                    loss_and_grad(problem, x0)
                    grads[one].append(time.perf_counter() - t)
        variants = {
            "BLAS threads as they are": (False, False),
            "BLAS limited to 1 around the whole fit": (True, False),
        }
        if has_limit:
            variants["the engine as it is (1 thread in L-BFGS-B)"] = (False, True)
        fits: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(rounds):
            for name, (outer, own) in variants.items():
                with limit() if outer else contextlib.nullcontext(), engine_blas_limit(own):
                    t = time.perf_counter()
                    fit(
                        terms,
                        method="lbfgs",
                        max_iter=iterations,
                        tol=1e-300,
                        check_gradient=False,
                    )
                    fits[name].append(time.perf_counter() - t)
    g0, g1 = median(grads[False]), median(grads[True])
    print(f"   BLAS threads (load averages {before} -> {load()}):")
    print(
        f"     one loss + gradient: as they are {g0 * 1e3:.1f} ms, limited to 1 "
        f"{g1 * 1e3:.1f} ms (ratio {g0 / g1:.2f})"
    )
    base = median(fits["BLAS threads as they are"])
    for name, values in fits.items():
        m = median(values)
        print(
            f"     L-BFGS-B, {iterations} iterations, {name:<42} {m:7.2f} s "
            f"({base / m:.2f}x faster than as they are; median of {rounds})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 repetition, smaller sizes")
    parser.add_argument("--sizes", default=None, help="comma-separated N (default 1k,10k,100k)")
    parser.add_argument(
        "--pytest-max",
        type=int,
        default=100_000,
        help="skip the pytest subprocess runs above this N (the engine is measured anyway)",
    )
    parser.add_argument(
        "--baseline-max",
        type=int,
        default=10_000,
        help="run the same cases as ordinary tests (-p no:soft) up to this N (default 10,000)",
    )
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--skip-mlp", action="store_true")
    args = parser.parse_args()
    sizes = [
        int(s)
        for s in (args.sizes or ("1000,10000" if args.quick else "1000,10000,100000")).split(",")
    ]
    repeats = args.repeats or (1 if args.quick else 3)
    print_environment()
    t = time.perf_counter()
    part1(sizes, repeats, args.pytest_max, args.baseline_max)
    if not args.skip_mlp:
        part2(cases_n=1000, hidden=100, iterations=100)
    print(f"\n(total {time.perf_counter() - t:.0f} s)")


if __name__ == "__main__":
    main()
