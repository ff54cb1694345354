"""What installing pytest-soft costs a suite without soft tests.

Generates a plain suite of 2,000 trivial tests (20 modules of 100 test functions, no soft
test) in a temporary directory and runs it with the plugin active and with ``-p no:soft``,
alternating the two, each in a subprocess; prints the median wall time of each and their ratio
(target: at most 1.05x). Also runs ``--collect-only`` both ways, which isolates what importing
and registering the plugin costs from its per-test hooks.

Run: python benchmarks/plugin.py [--runs 7] [--tests 2000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import load, print_environment

# -- helpers ----------------------------------------------------------------------------


def spread(values: list[float]) -> str:
    """The interquartile range as a share of the median."""
    if len(values) < 4:
        return ""
    q = statistics.quantiles(values, n=4)
    return f"±{(q[2] - q[0]) / 2 / statistics.median(values):.0%}"


# -- the suite ----------------------------------------------------------------------------------


def make_suite(root: Path, tests: int, per_module: int = 100) -> None:
    for m, first in enumerate(range(0, tests, per_module)):
        lines = [f'"""Plain module {m}: trivial tests, no soft test."""', ""]
        for t in range(min(per_module, tests - first)):
            lines += [f"def test_{t}():", f"    assert {t} + 1 == {t + 1}", "", ""]
        (root / f"test_plain_{m:02d}.py").write_text("\n".join(lines).rstrip() + "\n")


def run(root: Path, extra: list[str]) -> tuple[float, float, str]:
    """Run pytest on the suite; return wall seconds, the child's CPU seconds (user + system,
    less sensitive than wall time to a busy machine) and its output."""
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryFile("w+") as out:
        t = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=root, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        out.seek(0)
        text = out.read()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        print(text[-3000:])
        raise SystemExit(f"pytest exited {code}: {' '.join(extra)}")
    return wall, usage.ru_utime + usage.ru_stime, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each variant (default 7)")
    parser.add_argument("--tests", type=int, default=2000, help="tests in the suite")
    args = parser.parse_args()
    print_environment()

    root = Path(tempfile.mkdtemp(prefix="soft-plugin-"))
    try:
        make_suite(root, args.tests)
        # The plugin must be active by default, and absent with -p no:soft.
        _, _, with_plugin = run(root, ["--co", "--trace-config"])
        _, _, without = run(root, ["--co", "-p", "no:soft", "--trace-config"])
        assert "pytest_soft" in with_plugin, "pytest-soft is not installed as a plugin"
        assert "pytest_soft" not in without, "-p no:soft did not disable the plugin"

        variants = {
            "run, plugin active": [],
            "run, -p no:soft": ["-p", "no:soft"],
            "collect only, plugin active": ["--collect-only"],
            "collect only, -p no:soft": ["--collect-only", "-p", "no:soft"],
        }
        samples: dict[str, list[float]] = {name: [] for name in variants}
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        run(root, [])  # warm the file system cache
        for i in range(args.runs):
            names = list(variants)
            if i % 2:  # alternate which goes first
                names = names[1::-1] + names[:1:-1]
            for name in names:
                wall, seconds, out = run(root, variants[name])
                samples[name].append(wall)
                cpu[name].append(seconds)
                if name.startswith("run") and f"{args.tests} passed" not in out:
                    raise SystemExit(f"expected {args.tests} passed:\n{out[-2000:]}")
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(
        f"== a plain suite of {args.tests:,} trivial tests, median of {args.runs} runs each "
        "(subprocess, alternating; ± is half the interquartile range)"
    )
    print(f"  {'variant':<30} {'wall s':>8} {'':>6} {'CPU s':>8} {'':>6}   wall of each run")
    for name in variants:
        print(
            f"  {name:<30} {statistics.median(samples[name]):8.3f} {spread(samples[name]):>6} "
            f"{statistics.median(cpu[name]):8.3f} {spread(cpu[name]):>6}   "
            + ", ".join(f"{v:.2f}" for v in samples[name])
        )
    print()
    for label, a, b in (
        ("run", "run, plugin active", "run, -p no:soft"),
        ("collect only", "collect only, plugin active", "collect only, -p no:soft"),
    ):
        wall = statistics.median(samples[a]) / statistics.median(samples[b])
        cpu_ratio = statistics.median(cpu[a]) / statistics.median(cpu[b])
        per_test = (statistics.median(cpu[a]) - statistics.median(cpu[b])) / args.tests * 1e6
        print(
            f"  {label + ':':<14} plugin / no plugin = {wall:.3f}x wall, {cpu_ratio:.3f}x CPU "
            f"({per_test:+.1f} µs CPU per test)"
        )
    run_wall = statistics.median(samples["run, plugin active"]) / statistics.median(
        samples["run, -p no:soft"]
    )
    run_cpu = statistics.median(cpu["run, plugin active"]) / statistics.median(
        cpu["run, -p no:soft"]
    )
    verdict = "met" if max(run_wall, run_cpu) <= 1.05 else "NOT MET"
    print(f"  target <= 1.05x (run, wall and CPU): {verdict}")
    print(f"  load averages at the end: {load()}")


if __name__ == "__main__":
    main()
