"""End to end, the JAX sine example against the autograd one: what `pytest --fit` costs more
with JAX, and how much of it is JAX's own (importing jax, evaluating each soft test op by op).

Runs, alternately and each in a fresh subprocess from the repository's root,

  pytest examples/sine      -q -p no:cacheprovider -p no:hypothesispytest [--fit --fit-dry-run]
  pytest examples/jax/sine  -q -p no:cacheprovider -p no:hypothesispytest [--fit --fit-dry-run]

(without --fit too: the plain runs show what JAX costs before any fit), and prints the median
wall times, their differences, the compile time and the fit's own time the fit section
reports, the time `import jax` takes in a fresh process, and the verdict against issue 12's
target: the JAX run adds at most the compile time + 0.2 s over the autograd run.

Run: python benchmarks/jax_end_to_end.py [--runs N]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _common import print_environment  # noqa: E402

COMPILED = re.compile(r"JAX compiled (\d+) functions? in ([0-9.]+) s")
FIT_LINE = re.compile(r"(\d+) iterations, .*? ([0-9.]+) s\n")
MARGIN = 0.2
#: Both runs without the cache plugin (no files written) and without hypothesis's pytest
#: plugin, which a dev install has: it imports hypothesis at the end of every run (~1.5 s here),
#: the same for both, and only adds noise.
PLUGINS_OFF = ["-p", "no:cacheprovider", "-p", "no:hypothesispytest"]


def spread(values: list[float]) -> str:
    return f"[{min(values):.2f}-{max(values):.2f}]"


def run(
    folder: str, fit: bool, python: str = sys.executable, root: Path = ROOT
) -> tuple[float, str]:
    """One pytest run in a fresh process: (wall seconds, output)."""
    extra = ["--fit", "--fit-dry-run"] if fit else []
    command = [python, "-m", "pytest", folder, "-q", *PLUGINS_OFF, *extra]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=root)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:])
        raise SystemExit(f"pytest failed ({proc.returncode}): {' '.join(command[2:])}")
    return seconds, proc.stdout


def import_seconds(module: str) -> float:
    """`import <module>` in a fresh process that already loaded numpy (as pytest-soft has)."""
    code = (
        f"import time, numpy; t = time.perf_counter(); import {module}; "
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each command (default 5)")
    args = parser.parse_args()
    import jax

    print_environment()
    print(f"jax         {jax.__version__}")
    print()
    commands = {
        ("autograd", False): "examples/sine",
        ("jax", False): "examples/jax/sine",
        ("autograd", True): "examples/sine",
        ("jax", True): "examples/jax/sine",
    }
    wall: dict[tuple[str, bool], list[float]] = {key: [] for key in commands}
    fit_seconds: dict[str, list[float]] = {"autograd": [], "jax": []}
    compile_seconds: list[float] = []
    imports: list[float] = []
    for _ in range(args.runs):
        for key, folder in commands.items():
            seconds, out = run(folder, key[1])
            wall[key].append(seconds)
            if key[1]:
                match = FIT_LINE.search(out)
                if match is None:
                    raise SystemExit("no fit line in the output:\n" + out)
                fit_seconds[key[0]].append(float(match.group(2)))
                if key[0] == "jax":
                    compiled = COMPILED.search(out)
                    if compiled is None:
                        raise SystemExit("no compile line in the JAX fit's output:\n" + out)
                    compile_seconds.append(float(compiled.group(2)))
        imports.append(import_seconds("jax"))

    print(f"median wall seconds of {args.runs} runs each, alternated [min-max]")
    for (backend, fit), folder in commands.items():
        what = "--fit --fit-dry-run" if fit else "(no --fit)"
        print(
            f"  pytest {folder:<18} {what:<20} {median(wall[backend, fit]):6.2f} s "
            f"{spread(wall[backend, fit])}"
        )
    # Each round's JAX run against the autograd run next to it: steadier than the difference
    # of the medians on a busy machine.
    plain = median(j - a for j, a in zip(wall["jax", False], wall["autograd", False]))
    fitted = median(j - a for j, a in zip(wall["jax", True], wall["autograd", True]))
    compiled = median(compile_seconds)
    rows = [
        ("import jax (fresh process, numpy loaded)", median(imports), spread(imports)),
        ("JAX run - autograd run, without --fit", plain, "(median of the rounds' pairs)"),
        ("JAX run - autograd run, --fit --fit-dry-run", fitted, "(median of the rounds' pairs)"),
        ("  of which more than without --fit", fitted - plain, ""),
        ("the fit's own time (fit section), autograd", median(fit_seconds["autograd"]), ""),
        ("the fit's own time (fit section), JAX", median(fit_seconds["jax"]), ""),
        ("  of which compiling (fit section)", compiled, spread(compile_seconds)),
    ]
    print()
    for label, seconds, note in rows:
        print(f"  {label:<46} {seconds:6.2f} s {note}")
    verdict = "met" if fitted <= compiled + MARGIN else "missed"
    print()
    print(
        f"target: the JAX run adds at most compile + {MARGIN} s = {compiled + MARGIN:.2f} s; "
        f"it adds {fitted:.2f} s: {verdict}"
    )


if __name__ == "__main__":
    main()
