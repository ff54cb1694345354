"""A fit spread over pytest-xdist workers against the same fit in one process.

Generates a soft suite whose soft tests each run a small numerical simulation written with
autograd.numpy (a damped pendulum integrated step by step, a thousand steps: about 10 ms a
call), one soft test per scenario, and fits its two parameters with ``pytest --fit`` and with
``pytest --fit -n N``, alternating, each in a subprocess, from the same start. From each run's
JSON report it takes the fit's own seconds, iterations and evaluations and, with workers, the
requests and the seconds spent waiting for them beyond the workers' own work (messaging). It
prints the medians, the per-iteration time, the messaging per request and worker in
microseconds, and the speedup.

Targets (issue 13, 2 workers on a 2-core machine): at least 1.7x faster than one process, and
messaging under 2 ms per iteration per worker.

Run: python benchmarks/distributed.py [--runs 3] [--workers 2] [--scenarios 16] [--steps 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _common import print_environment

IMPL = """
    '''A damped pendulum, integrated by semi-implicit Euler steps (its own loop: a simulation
    written the plain way, not vectorised over scenarios).'''
    import autograd.numpy as np
    from pytest_soft import Param, Parameters

    theta = Parameters(
        stiffness=Param(6.0, bounds=(0.5, 30.0)),
        damping=Param(0.05, bounds=(0.0, 2.0)),
    )

    def swing(angle, speed, steps, dt=0.01, every=20):
        samples = []
        for k in range(steps):
            speed = speed + dt * (-theta.stiffness * np.sin(angle) - theta.damping * speed)
            angle = angle + dt * speed
            if k % every == every - 1:
                samples.append(angle)
        return np.stack(samples)
"""

TESTS = """
    import numpy as np
    import pytest
    import pendulum
    from pytest_soft import soft_test

    STEPS = {steps}
    rng = np.random.default_rng(20261201)
    SCENARIOS = [(float(a), float(s)) for a, s in rng.uniform(-1.2, 1.2, size=({scenarios}, 2))]


    def reference(angle, speed):
        # the same integration with the true constants, in plain numpy
        samples = []
        for k in range(STEPS):
            speed = speed + 0.01 * (-9.0 * np.sin(angle) - 0.3 * speed)
            angle = angle + 0.01 * speed
            if k % 20 == 19:
                samples.append(angle)
        return np.array(samples)


    TARGETS = [reference(a, s) for a, s in SCENARIOS]


    # One scenario per soft test, each with its own loop: nothing to batch.
    @soft_test(batch=False)
    @pytest.mark.parametrize("i", range(len(SCENARIOS)))
    def test_scenario(i):
        angle, speed = SCENARIOS[i]
        simulated = pendulum.swing(angle, speed, STEPS)
        return np.mean((simulated - TARGETS[i]) ** 2)
"""


def run(root: Path, *args: str) -> tuple[float, dict]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for stale in root.glob("*.params.json"):
        stale.unlink()
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
        "--fit", "--soft-json", "report.json", *args,
    ]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds, json.loads((root / "report.json").read_text())["fit"]


def body_seconds(root: Path) -> float:
    """One plain call of a scenario's body, median of 20."""
    code = textwrap.dedent(
        """
        import statistics, sys, time
        sys.path.insert(0, ".")
        import test_pendulum as t
        times = []
        for _ in range(20):
            t0 = time.perf_counter(); t.test_scenario(0); times.append(time.perf_counter() - t0)
        print(statistics.median(times))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    return float(out.stdout)


PING = """
while True:
    message = channel.receive()
    if message is None:
        break
    channel.send(message)
"""


def execnet_floor(workers: int, rounds: int = 2000) -> float:
    """execnet's own round trip, the floor under the fit's messaging: one small message to
    each of ``workers`` popen gateways and back, sent together, median seconds a round."""
    import execnet

    group = execnet.Group()
    try:
        channels = [group.makegateway("popen").remote_exec(PING) for _ in range(workers)]
        message = ("eval", "scores", b"x" * 64, b"\0" * 16)
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            for channel in channels:
                channel.send(message)
            for channel in channels:
                channel.receive()
            times.append(time.perf_counter() - t0)
        for channel in channels:
            channel.send(None)
        return statistics.median(times)
    finally:
        group.terminate(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scenarios", type=int, default=16)
    parser.add_argument("--steps", type=int, default=1000)
    options = parser.parse_args()
    print_environment()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pendulum.py").write_text(textwrap.dedent(IMPL))
        tests = TESTS.format(steps=options.steps, scenarios=options.scenarios)
        (root / "test_pendulum.py").write_text(textwrap.dedent(tests))
        body = body_seconds(root)
        one: list[tuple[float, dict]] = []
        many: list[tuple[float, dict]] = []
        for _ in range(options.runs):
            one.append(run(root))
            many.append(run(root, "-n", str(options.workers)))
    single, parallel = one[0][1], many[0][1]
    same = all(
        abs(a["after"] - b["after"]) <= 1e-10 * abs(a["after"])
        for a, b in zip(single["parameters"], parallel["parameters"])
    )
    fit1 = statistics.median(r["seconds"] for _, r in one)
    fitn = statistics.median(r["seconds"] for _, r in many)
    wall1 = statistics.median(s for s, _ in one)
    walln = statistics.median(s for s, _ in many)
    iterations = single["iterations"]
    evaluations = single["loss_evaluations"] + single["gradient_evaluations"]
    messaging = statistics.median(
        (r["workers"]["wait_seconds"] - r["workers"]["busy_seconds"]) / r["workers"]["rounds"]
        for _, r in many
    )
    rounds_per_iteration = statistics.median(
        r["workers"]["rounds"] / max(r["iterations"], 1) for _, r in many
    )
    n = options.workers
    print()
    print(
        f"{options.scenarios} soft tests, one simulation each ({options.steps} steps; one plain "
        f"call {body * 1e3:.1f} ms), 2 parameters; median of {options.runs} runs each"
    )
    print(
        f"fit: {single['method']}, {iterations} iterations, {evaluations} evaluations "
        f"(loss + gradient); the same tuned values with and without -n: {'yes' if same else 'NO'}"
    )
    print(f"{'':26s}{'one process':>14s}{f'-n {n}':>14s}{'speedup':>10s}")
    print(f"{'the fit (its own clock)':26s}{fit1:13.2f}s{fitn:13.2f}s{fit1 / fitn:9.2f}x")
    print(
        f"{'per iteration':26s}{fit1 / iterations * 1e3:12.1f}ms"
        f"{fitn / iterations * 1e3:12.1f}ms{fit1 / fitn:9.2f}x"
    )
    print(f"{'whole pytest run':26s}{wall1:13.2f}s{walln:13.2f}s{wall1 / walln:9.2f}x")
    floor = execnet_floor(n)
    print(
        f"execnet's own round trip to {n} popen gateways (a small message each, sent "
        f"together): {floor * 1e6:.0f} µs, the floor under a round"
    )
    print(
        f"messaging: {messaging * 1e6:.0f} µs per round of requests (one request per worker, "
        f"sent together) beyond the slowest worker's own work; {rounds_per_iteration:.1f} "
        f"rounds per iteration: {messaging * rounds_per_iteration * 1e3:.2f} ms per iteration"
    )
    verdict = "met" if fit1 / fitn >= 1.7 else "MISSED"
    print(f"target: at least 1.7x with 2 workers: {verdict}")
    verdict = "met" if messaging * rounds_per_iteration < 2e-3 else "MISSED"
    print(f"target: messaging under 2 ms per iteration per worker: {verdict}")


if __name__ == "__main__":
    main()
