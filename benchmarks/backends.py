"""The JAX backend against autograd and numpy on the sine example, side by side in one run.

One loss + gradient of sin(omega x) fitted to n points (n = 200, 2,000, 20,000), computed

  (a) by numpy with the analytic gradient (the floor),
  (b) by the engine through the autograd backend (the batched term pytest_soft.batch builds),
  (c) by the engine through the JAX backend (the jax.vmap batch, compiled),
  (d) by JAX written by hand, the floor of (c): jax.jit(jax.value_and_grad(...)) of the same
      vmapped function, called with the parameters as a numpy float64 vector,

(b) and (c) as the optimisers call them (pytest_soft.fit._optimisers.loss_and_grad on the
problem).
The JAX path's compile time is measured apart (compiled once per fit, then reused). Prints
the median microseconds per call and the ratios to numpy. Targets (not tests): JAX at most 6x
numpy at 200 cases, at most 2x at 20,000.

Then the MLP example (examples/mlp and examples/jax/mlp: 200 cases, 337 parameters): one loss +
gradient (one L-BFGS iteration's evaluation) through each backend, the ratio autograd/JAX
(target: JAX at least 3x faster) and JAX's compile time apart.

Run: python benchmarks/backends.py [--quick]
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import print_environment  # noqa: E402

OMEGA = 1.3

IMPLEMENTATIONS = {
    "sine_ag": """
        import autograd.numpy as np
        from pytest_soft import Param, Parameters

        theta = Parameters(omega=Param(1.0, bounds=(0.0, 5.0)))

        def f(x):
            return np.sin(theta.omega * x)
    """,
    "sine_jx": """
        import jax.numpy as jnp
        from pytest_soft import Param, Parameters

        theta = Parameters(omega=Param(1.0, bounds=(0.0, 5.0)))

        def f(x):
            return jnp.sin(theta.omega * x)
    """,
}


def bench(functions: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median seconds per call of each function, interleaved round by round."""
    loops = {}
    for name, fn in functions.items():
        fn()
        n, start = 1, time.perf_counter()
        while time.perf_counter() - start < 0.05:
            fn()
            n += 1
        loops[name] = max(1, n)
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(rounds):
        for name, fn in functions.items():
            start = time.perf_counter()
            for _ in range(loops[name]):
                fn()
            times[name].append((time.perf_counter() - start) / loops[name])
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    rounds = 5 if args.quick else 15

    import jax
    import numpy as np

    from pytest_soft.batch import Case, build_terms
    from pytest_soft.fit._layout import choose_slots
    from pytest_soft.fit._optimisers import loss_and_grad
    from pytest_soft.fit._problem import Problem, fit_backends, initial_reads

    print_environment()
    print(f"jax         {jax.__version__}, devices {jax.devices()}")
    print()

    folder = Path(tempfile.mkdtemp(prefix="soft-jax-bench-"))
    for name, source in IMPLEMENTATIONS.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    sys.path.insert(0, str(folder))
    modules = {name: importlib.import_module(name) for name in IMPLEMENTATIONS}

    print(
        f"{'cases':>7} {'numpy':>10} {'autograd':>10} {'jax':>10} {'by hand':>10} {'ag/np':>7}"
        f" {'jax/np':>7} {'hand/np':>7} {'compile':>9}"
    )
    for n in (200, 2_000, 20_000):
        rng = np.random.default_rng(20261127)
        xs = np.sort(rng.uniform(-20.0, 20.0, size=n))
        ys = np.sin(1.5 * xs)
        omega = OMEGA

        def numpy_loss_and_grad(xs=xs, ys=ys, omega=omega) -> tuple[float, float]:
            s = np.sin(omega * xs)
            r = s - ys
            return float(np.sum(r * r)), float(2.0 * np.sum(r * np.cos(omega * xs) * xs))

        functions: dict[str, Callable[[], object]] = {"numpy": numpy_loss_and_grad}
        compile_seconds = 0.0
        contexts = []
        for label, module in (("autograd", modules["sine_ag"]), ("jax", modules["sine_jx"])):
            module.theta.update({"omega": omega})

            def test(x: float, y: float, module=module) -> object:
                return (module.f(x) - y) ** 2

            cases = [
                Case(
                    f"t[{i}]",
                    test,
                    {"x": float(x), "y": float(y)},
                    1.0,
                    None,
                    float(np.asarray(test(float(x), float(y)))),
                    batch_key="t",
                )
                for i, (x, y) in enumerate(zip(xs, ys))
            ]
            terms, notes = build_terms(cases)
            assert len(terms) == 1 and not notes, notes
            context = fit_backends("auto")
            backends = context.__enter__()
            contexts.append(context)
            _, reads = initial_reads(terms)
            problem = Problem(terms, choose_slots(set().union(*reads), None))
            problem.cases = [n]
            x0 = problem.current()
            loss_and_grad(problem, x0)  # compiles (JAX) once, as a fit's first evaluation
            if label == "jax":
                compile_seconds = backends.jax.compile_seconds
            functions[label] = lambda problem=problem, x0=x0: loss_and_grad(problem, x0)
            expected = numpy_loss_and_grad()
            got = loss_and_grad(problem, x0)
            assert np.isclose(got[0], expected[0], rtol=1e-9), (label, got[0], expected[0])
            assert np.isclose(got[1][0], expected[1], rtol=1e-7), (label, got[1], expected[1])
        functions["hand"] = by_hand(xs, ys, np.array([omega]))
        value, grad = functions["hand"]()  # type: ignore[misc]
        expected = numpy_loss_and_grad()
        assert np.isclose(value, expected[0], rtol=1e-9) and np.isclose(grad[0], expected[1])
        medians = bench(functions, rounds)
        for context in reversed(contexts):
            context.__exit__(None, None, None)
        us = {k: v * 1e6 for k, v in medians.items()}
        print(
            f"{n:>7} {us['numpy']:>9.1f}µ {us['autograd']:>9.1f}µ {us['jax']:>9.1f}µ "
            f"{us['hand']:>9.1f}µ {us['autograd'] / us['numpy']:>6.1f}x "
            f"{us['jax'] / us['numpy']:>6.1f}x {us['hand'] / us['numpy']:>6.1f}x "
            f"{compile_seconds:>8.2f}s"
        )
    print()
    print("median microseconds per loss + gradient (the optimisers' call); compile time is the")
    print("JAX backend's one-off cost per fit (scores + gradient functions), not in the medians.")
    print("by hand: JAX written by hand (jit of value_and_grad), the floor of the jax column.")
    print("targets: jax/np at most 6x at 200 cases, at most 2x at 20,000")
    print()
    mlp_section(folder, rounds)


def by_hand(xs: Any, ys: Any, p: Any) -> Callable[[], object]:
    """Loss + gradient of the sine written with JAX by hand: one jitted value_and_grad of the
    vmapped squared error, the data on the device once, the parameters a numpy vector."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    def loss(p: Any, xs: Any, ys: Any) -> Any:
        return jnp.sum(jax.vmap(lambda x, y: (jnp.sin(p[0] * x) - y) ** 2)(xs, ys))

    # Called while the engine's fit contexts hold JAX in float64, as the engine's calls are.
    assert jax.config.read("jax_enable_x64")
    device_xs, device_ys = jnp.asarray(xs), jnp.asarray(ys)
    compiled = jax.jit(jax.value_and_grad(loss))

    def call() -> tuple[float, np.ndarray]:
        value, grad = compiled(p, device_xs, device_ys)
        return float(value), np.asarray(grad)

    return call


def mlp_section(folder: Path, rounds: int) -> None:
    """The MLP example per loss + gradient on both backends, from copies of its modules (so no
    parameter file a fit wrote beside them is read)."""
    import runpy
    import shutil

    import numpy as np

    from pytest_soft.batch import Case, build_terms
    from pytest_soft.fit._layout import choose_slots
    from pytest_soft.fit._optimisers import loss_and_grad
    from pytest_soft.fit._problem import Problem, fit_backends, initial_reads

    examples = HERE.parent / "examples"
    functions: dict[str, Callable[[], object]] = {}
    values = {}
    compile_seconds = 0.0
    contexts = []
    for label, source in (("autograd", examples / "mlp"), ("jax", examples / "jax" / "mlp")):
        copy = folder / f"mlp_{label}"
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("*.params.json", "__pycache__"))
        sys.path.insert(0, str(copy))
        test_file = next(copy.glob("test_*.py"))
        module = runpy.run_path(str(test_file))
        test = module["test_point"]
        cases = [
            Case(
                f"point[{i}]",
                test,
                {"x": x, "label": label_},
                1.0,
                None,
                float(np.asarray(test(x, label_))),
                batch_key="point",
            )
            for i, (x, label_) in enumerate(module["TRAIN"])
        ]
        terms, notes = build_terms(cases)
        assert len(terms) == 1 and not notes, notes
        context = fit_backends("auto")
        backends = context.__enter__()
        contexts.append(context)
        _, reads = initial_reads(terms)
        problem = Problem(terms, choose_slots(set().union(*reads), None))
        problem.cases = [len(cases)]
        x0 = problem.current()
        start = time.perf_counter()
        values[label] = loss_and_grad(problem, x0)  # JAX compiles here, once per fit
        first = time.perf_counter() - start
        if label == "jax":
            compile_seconds = backends.jax.compile_seconds
        functions[label] = lambda problem=problem, x0=x0: loss_and_grad(problem, x0)
        print(f"mlp {label:8}: first call {first:.2f} s (includes compiling for jax)")
    # Both backends compute the same loss and gradient from the same initial weights.
    assert np.isclose(values["jax"][0], values["autograd"][0], rtol=1e-9)
    assert np.allclose(values["jax"][1], values["autograd"][1], rtol=1e-7, atol=1e-12)
    medians = bench(functions, rounds)
    for context in reversed(contexts):
        context.__exit__(None, None, None)
    ag, jx = medians["autograd"] * 1e6, medians["jax"] * 1e6
    print(
        f"mlp 200 cases, 337 parameters: autograd {ag:.0f}µ, jax {jx:.0f}µ per loss + gradient,"
        f" autograd/jax {ag / jx:.1f}x; jax compile {compile_seconds:.2f} s once per fit"
    )
    print("target: jax at least 3x faster per iteration than autograd")


if __name__ == "__main__":
    main()
