"""What ``--fit`` costs beyond the fit itself: the record pass.

Generates the sine example with N parametrized cases (default 2,000) in a temporary directory
and runs it, alternating, as a plain run (``pytest -q``) and as ``pytest -q --fit
--fit-dry-run``, each in a subprocess. From each fit run it takes the fit's own seconds (the
fit section's clock, which starts after scipy is imported) and measures scipy's import apart;
it prints the medians and the overhead ratio

    (fit run - fit's own seconds - scipy import) / plain run        (target: at most 1.25x)

Run: python benchmarks/record.py [--runs 5] [--cases 2000]
Compare with another checkout: PYTHONPATH=/path/to/other/checkout python benchmarks/record.py
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _common import print_environment

IMPL = """
    import autograd.numpy as np
    from pytest_soft import Param, Parameters

    theta = Parameters(omega=Param(1.0, bounds=(0.0, 5.0)))

    def f(x):
        return np.sin(theta.omega * x)
"""

TESTS = """
    import numpy as np
    import pytest
    from pytest_soft import soft_test
    import sine

    XS = np.linspace(-8.0, 8.0, {cases})
    CASES = [(float(x), float(np.sin(1.5 * x))) for x in XS]

    @soft_test
    @pytest.mark.parametrize("x, y", CASES)
    def test_sine(x, y):
        return (sine.f(x) - y) ** 2
"""


def run(root: Path, *args: str) -> tuple[float, str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    t0 = time.perf_counter()
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout


def scipy_import_seconds() -> float:
    code = (
        "import time, numpy, autograd; t = time.perf_counter(); import scipy.optimize; "
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cases", type=int, default=2000)
    options = parser.parse_args()
    print_environment()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "sine.py").write_text(textwrap.dedent(IMPL))
        (root / "test_sine.py").write_text(textwrap.dedent(TESTS.format(cases=options.cases)))
        run(root)  # warm the file system cache and numpy's first import
        plain, fitted, fit_own, scipy = [], [], [], []
        for _ in range(options.runs):
            plain.append(run(root)[0])
            seconds, out = run(root, "--fit", "--fit-dry-run")
            fitted.append(seconds)
            found = re.search(r"evaluations, ([0-9.]+) s$", out, re.MULTILINE)
            if found is None:
                raise SystemExit(f"no fit time in the fit section:\n{out}")
            fit_own.append(float(found.group(1)))
            scipy.append(scipy_import_seconds())
    p, f = statistics.median(plain), statistics.median(fitted)
    own, imp = statistics.median(fit_own), statistics.median(scipy)
    print(f"{options.cases} parametrized soft cases, median of {options.runs} runs each")
    print(f"plain run            {p:7.2f} s")
    print(f"--fit --fit-dry-run  {f:7.2f} s")
    print(f"  the fit itself     {own:7.2f} s (fit section's clock)")
    print(f"  scipy's import     {imp:7.2f} s")
    ratio = (f - own - imp) / p
    print(f"overhead ratio       {ratio:7.2f}x  (fit run less the fit and scipy's import, over the")
    print("                               plain run; target at most 1.25x)")


if __name__ == "__main__":
    main()
