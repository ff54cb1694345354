"""Overhead of the fit engine on the seed example (examples/sine), side by side in one run.

One loss + gradient of the sine example (200 points of sin(omega x), one parameter) computed

  (a) by the engine with the batched term (pytest_soft.batch.build_terms over Case objects),
  (b) by the engine case by case (200 terms),
  (c) by a hand-written autograd loop (value_and_grad of each of the 200 cases, summed),
  (d) by one hand-written vectorised autograd call,
  (e) by numpy with the analytic gradient,

then the least-squares Jacobian pass the engine's default method (lsq) uses, the L-BFGS-B fit
of the one-parameter problem with and without a one-thread BLAS limit (threadpoolctl), and
``pytest examples/sine --fit --fit-restarts 10`` end to end in a temporary copy.

Run: python benchmarks/overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SINE = ROOT / "examples" / "sine"


from _common import print_environment  # noqa: E402  (benchmarks/ is on sys.path)

# -- helpers ----------------------------------------------------------------------------


def bench(
    functions: dict[str, Callable[[], object]], rounds: int, round_seconds: float = 0.05
) -> dict[str, list[float]]:
    """Seconds per call of each function: ``rounds`` timings each, the functions interleaved
    round by round (so that a noisy neighbour hits all of them alike)."""
    loops = {}
    for name, fn in functions.items():
        fn()  # warm up: imports, caches
        n, elapsed = 1, 0.0
        while True:
            t = time.perf_counter()
            for _ in range(n):
                fn()
            elapsed = time.perf_counter() - t
            if elapsed >= round_seconds / 4 or n >= 1 << 20:
                break
            n *= 2
        loops[name] = max(1, math.ceil(n * round_seconds / max(elapsed, 1e-9)))
    out: dict[str, list[float]] = {name: [] for name in functions}
    names = list(functions)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            fn, n = functions[name], loops[name]
            t = time.perf_counter()
            for _ in range(n):
                fn()
            out[name].append((time.perf_counter() - t) / n)
    return out


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    """The interquartile range as a share of the median."""
    if len(values) < 4:
        return ""
    q = statistics.quantiles(values, n=4)
    return f"±{(q[2] - q[0]) / 2 / statistics.median(values):.0%}"


# -- the seed example -----------------------------------------------------------------------


def load_example():
    """The example's own implementation and test modules, imported from a temporary copy (so
    that a sine.params.json left in examples/sine by a fit cannot change the starting point)."""
    tmp = Path(tempfile.mkdtemp(prefix="soft-overhead-"))
    for name in ("sine.py", "test_sine.py"):
        shutil.copy(SINE / name, tmp / name)
    sys.path.insert(0, str(tmp))
    import sine
    import test_sine

    return tmp, sine, test_sine


def engine_problem(cases):
    """The engine's problem for the given cases, as pytest_soft.fit.fit builds it."""
    from pytest_soft.batch import build_terms
    from pytest_soft.fit._layout import choose_slots
    from pytest_soft.fit._problem import Problem, initial_reads

    terms, notes = build_terms(cases)
    assert not notes, notes
    values0, reads = initial_reads(terms)
    slots = choose_slots(set().union(*reads), None)
    problem = Problem(terms, slots)
    problem.cases = [int(v.shape[0]) for v in values0]
    return problem, terms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--rounds", type=int, default=None, help="timings per variant")
    args = parser.parse_args()
    rounds = args.rounds or (7 if args.quick else 25)
    runs = 3 if args.quick else 7

    print_environment()
    import autograd.numpy as anp
    import numpy as np
    from autograd import value_and_grad

    from pytest_soft.batch import Case
    from pytest_soft.fit._optimisers import loss_and_grad

    tmp, sine, test_sine = load_example()
    body = test_sine.test_sine  # the example's soft test, called as the plugin records it
    points = test_sine.CASES
    X = np.array([x for x, _ in points])
    Y = np.array([y for _, y in points])
    omega0 = float(sine.theta.omega)
    w0 = np.array([omega0])

    def cases(batch: bool) -> list[Case]:
        return [
            Case(
                name=f"test_sine.py::test_sine[{i}]",
                function=body,
                kwargs={"x": x, "y": y},
                weight=1.0,
                threshold=None,
                score=float(body(x=x, y=y)),
                batch_key=("test_sine.py", "test_sine") if batch else None,
            )
            for i, (x, y) in enumerate(points)
        ]

    batched, batched_terms = engine_problem(cases(batch=True))
    single, single_terms = engine_problem(cases(batch=False))
    assert len(batched_terms) == 1 and batched_terms[0].case_names is not None
    assert len(single_terms) == len(points)

    # (c) a hand-written autograd loop over the same 200 test functions: value_and_grad of
    # each case, with the traced omega put where theta.omega reads it (as the engine does).
    from pytest_soft._binding import substituted

    theta = sine.theta

    def with_omega(w, x, y):
        with substituted({theta: {"omega": w}}):
            return body(x=x, y=y)

    case_grad = value_and_grad(with_omega)

    def hand_loop() -> tuple[float, float]:
        loss = grad = 0.0
        for x, y in points:
            v, g = case_grad(omega0, x, y)
            loss += v
            grad += g
        return loss, grad

    # (c1) the same loop differentiating with respect to a 1-vector, as the engine lays out
    # its parameters (x[0] is a traced index, with its own backward step, in every pass).
    def with_vector(w, x, y):
        return with_omega(w[0], x, y)

    vector_grad = value_and_grad(with_vector)
    w_vec = np.array([omega0])

    def vector_loop() -> tuple[float, float]:
        loss = 0.0
        grad = np.zeros(1)
        for x, y in points:
            v, g = vector_grad(w_vec, x, y)
            loss += v
            grad = grad + g
        return loss, grad

    # (c0) the same loop written without Parameters: a closure per case.
    def closure(x: float, y: float) -> Callable:
        return value_and_grad(lambda w: (anp.sin(w * x) - y) ** 2)

    closures = [closure(x, y) for x, y in points]

    def closure_loop() -> tuple[float, float]:
        loss = grad = 0.0
        for vg in closures:
            v, g = vg(omega0)
            loss += v
            grad += g
        return loss, grad

    # (d) one vectorised autograd call of the same test function, the cases stacked.
    batch_grad = value_and_grad(lambda w: anp.sum(with_omega(w, X, Y)))

    # (d0) the vectorised loss written directly.
    direct_grad = value_and_grad(lambda w: anp.sum((anp.sin(w * X) - Y) ** 2))

    # (e) numpy, analytic gradient.
    def analytic() -> tuple[float, float]:
        s = np.sin(omega0 * X)
        r = s - Y
        return float(r @ r), float(2.0 * np.dot(r, np.cos(omega0 * X) * X))

    # Every variant computes the same loss and gradient.
    reference = analytic()
    results = {
        "a": loss_and_grad(batched, w0)[:2],
        "b": loss_and_grad(single, w0)[:2],
        "c": hand_loop(),
        "c0": closure_loop(),
        "c1": vector_loop(),
        "d": batch_grad(omega0),
        "d0": direct_grad(omega0),
    }
    for key, (loss, grad) in results.items():
        assert math.isclose(loss, reference[0], rel_tol=1e-9), (key, loss, reference)
        assert math.isclose(float(np.ravel(grad)[0]), reference[1], rel_tol=1e-7), (key, grad)

    variants = {
        "(a) engine, batched term: loss_and_grad": lambda: loss_and_grad(batched, w0),
        "(a') engine, batched term: Problem.gradients": lambda: batched.gradients(w0),
        "(b) engine, 200 terms: loss_and_grad": lambda: loss_and_grad(single, w0),
        "(c) autograd loop, 200 value_and_grad": hand_loop,
        "(c0) same, closures without Parameters": closure_loop,
        "(c1) same, omega as a 1-vector (engine layout)": vector_loop,
        "(d) autograd, one vectorised value_and_grad": lambda: batch_grad(omega0),
        "(d0) same, loss written without Parameters": lambda: direct_grad(omega0),
        "(e) numpy, analytic gradient": analytic,
    }
    print(f"== loss + gradient of the sine example ({len(points)} cases, 1 parameter)")
    print(f"   median of {rounds} timings, interleaved; ± is half the interquartile range")
    times = bench(variants, rounds)
    med = {name: median(ts) for name, ts in times.items()}
    d = med["(d) autograd, one vectorised value_and_grad"]
    e = med["(e) numpy, analytic gradient"]
    print(f"{'variant':<46} {'µs/call':>10} {'':>6} {'/(d)':>8} {'/(e)':>8}")
    for name, ts in times.items():
        m = med[name]
        print(f"{name:<46} {m * 1e6:>10.1f} {spread(ts):>6} {m / d:>8.2f} {m / e:>8.1f}")
    a = med["(a) engine, batched term: loss_and_grad"]
    b = med["(b) engine, 200 terms: loss_and_grad"]
    c = med["(c) autograd loop, 200 value_and_grad"]
    c1 = med["(c1) same, omega as a 1-vector (engine layout)"]
    print()
    print("targets")
    targets = [
        ("batched (a) within 3x of vectorised autograd (d)", a / d, a / d <= 3.0, "x"),
        ("batched (a) >= 50x faster than case by case (b)", b / a, b / a >= 50.0, "x faster"),
        ("case by case (b) within 1.2x of the autograd loop (c)", b / c, b / c <= 1.2, "x"),
    ]
    for text, ratio, ok, unit in targets:
        print(f"  {text:<56} {ratio:>7.2f}{unit:<9} {'met' if ok else 'NOT MET'}")
    print(
        f"  (b)/(c1), the engine's bookkeeping alone (same parameter layout): {b / c1:.2f}x; "
        f"per case {(b - c1) / len(points) * 1e6:.0f} µs over (c1), "
        f"{(b - c) / len(points) * 1e6:.0f} µs over (c)"
    )

    # The default method (lsq) differentiates with Jacobians: one forward pass per parameter.
    print()
    print("== Jacobian pass used by the least-squares method (lsq, the default here)")
    jac_times = bench(
        {
            "engine, batched term: Problem.jacobians": lambda: batched.jacobians(w0),
            "engine, batched term: Problem.scores": lambda: batched.scores(w0),
            "engine, 200 terms: Problem.jacobians": lambda: single.jacobians(w0),
            "engine, 200 terms: Problem.scores": lambda: single.scores(w0),
        },
        rounds,
    )
    for name, ts in jac_times.items():
        m = median(ts)
        print(f"{name:<46} {m * 1e6:>10.1f} {spread(ts):>6} {m / d:>8.2f}x (d)")

    lbfgs_threads(batched_terms, runs)
    end_to_end(runs)
    shutil.rmtree(tmp, ignore_errors=True)


def lbfgs_threads(terms, runs: int) -> None:
    """L-BFGS-B on the one-parameter problem with BLAS threads as they are (the engine's own
    one-thread limit around L-BFGS-B switched off), limited to 1 around the whole fit, and as
    the engine runs it; then what entering threadpool_limits(1) costs."""
    import pytest_soft.fit._optimisers as engine
    from pytest_soft.fit import fit

    print()
    print("== L-BFGS-B fit of the one-parameter problem (engine, batched term, 10 restarts)")
    try:
        from threadpoolctl import ThreadpoolController, threadpool_limits
    except ImportError:
        print("   threadpoolctl not installed: skipped")
        return
    controller = ThreadpoolController()
    own = getattr(engine, "_one_blas_thread", None)

    def once(variant: str) -> tuple[float, int, int]:
        outer = (
            controller.limit(limits=1, user_api="blas")
            if variant == "BLAS limited to 1 around the fit"
            else contextlib.nullcontext()
        )
        if own is not None and variant == "BLAS threads as they are":
            engine._one_blas_thread = contextlib.nullcontext
        try:
            t = time.perf_counter()
            with outer:
                r = fit(terms, method="lbfgs", restarts=10, check_gradient=False)
            return time.perf_counter() - t, r.iterations, r.gradient_evaluations
        finally:
            if own is not None:
                engine._one_blas_thread = own

    variants = ["BLAS threads as they are", "BLAS limited to 1 around the fit"]
    if own is not None:
        variants.append("the engine as it is (1 thread in L-BFGS-B)")
    samples: dict[str, list[tuple[float, int, int]]] = {v: [] for v in variants}
    once(variants[0])
    for _ in range(max(runs, 5) * 2):
        for variant in variants:
            samples[variant].append(once(variant))
    free = median([s for s, _, _ in samples[variants[0]]])
    for variant in variants:
        secs = [s for s, _, _ in samples[variant]]
        _, iters, grads = samples[variant][0]
        per = median(secs) / grads * 1e6
        print(
            f"  {variant:<44} {median(secs) * 1e3:8.2f} ms {spread(secs):>6}  "
            f"(as they are / this {free / median(secs):.2f}; {iters} iterations, {grads} "
            f"gradient evaluations, {per:.0f} µs each)"
        )

    def enter_limits() -> None:
        with threadpool_limits(1):
            pass

    def enter_controller() -> None:
        with controller.limit(limits=1, user_api="blas"):
            pass

    cost = bench({"threadpool_limits(1)": enter_limits, "controller.limit(1)": enter_controller}, 7)
    for name, ts in cost.items():
        print(f"  cost of entering and leaving {name:<22} {median(ts) * 1e6:8.0f} µs")


FIT_LINE = re.compile(r"(\d+) iterations.*?(\d+) loss and (\d+) gradient evaluations, ([0-9.]+) s")
PASSED = re.compile(r"(\d+) passed in ([0-9.]+)s")


def end_to_end(runs: int) -> None:
    """pytest examples/sine --fit --fit-restarts 10 in a fresh temporary copy, as a subprocess."""
    print()
    print(f"== end to end: pytest examples/sine --fit --fit-restarts 10 ({runs} runs, subprocess)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    commands = {
        "plain run (pytest -q)": ["-q"],
        "--fit --fit-restarts 10": ["-q", "--fit", "--fit-restarts", "10"],
    }
    samples: dict[str, list[float]] = {name: [] for name in commands}
    fit_seconds: list[float] = []
    fit_line = ""
    for _ in range(runs):
        for name, extra in commands.items():
            with tempfile.TemporaryDirectory(prefix="soft-sine-") as tmp:
                for file in ("sine.py", "test_sine.py"):
                    shutil.copy(SINE / file, Path(tmp) / file)
                t = time.perf_counter()
                proc = subprocess.run(
                    [sys.executable, "-m", "pytest", tmp, "-p", "no:cacheprovider", *extra],
                    capture_output=True,
                    text=True,
                    env=env,
                    cwd=tmp,
                )
                samples[name].append(time.perf_counter() - t)
                if proc.returncode != 0:
                    print(proc.stdout[-3000:], proc.stderr[-3000:])
                    raise SystemExit(f"pytest failed ({proc.returncode}): {name}")
                if "--fit" in extra:
                    match = FIT_LINE.search(proc.stdout)
                    if match is None:
                        raise SystemExit("no fit line in the output:\n" + proc.stdout)
                    fit_seconds.append(float(match.group(4)))
                    fit_line = match.group(0)
    for name, secs in samples.items():
        print(f"  {name:<28} {median(secs):7.2f} s wall {spread(secs):>6}")
    fit = median(fit_seconds)
    wall = median(samples["--fit --fit-restarts 10"])
    plain = median(samples["plain run (pytest -q)"])
    print(f"  the fit's own time (fit section) {fit:7.2f} s {spread(fit_seconds):>6}")
    print(f"  last fit line: {fit_line}")
    print(
        f"  --fit costs {wall - plain:.2f} s over a plain run, of which the fit itself {fit:.2f} s"
    )
    # The fit's own time includes importing scipy.optimize, once per process.
    code = (
        "import time, numpy, autograd; t = time.perf_counter(); import scipy.optimize; "
        "print(time.perf_counter() - t)"
    )
    imports = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)
        for _ in range(runs)
    ]
    print(
        "  of which importing scipy.optimize (fresh process, numpy and autograd loaded): "
        f"{median(imports):.2f} s {spread(imports):>6}"
    )


if __name__ == "__main__":
    main()
