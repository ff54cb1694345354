"""The NIST StRD nonlinear regression problems of examples/nist: pytest-soft's fit with its
default settings against scipy's least_squares, by the parameters' accuracy.

    python benchmarks/nist.py [--repeats N] [PROBLEM ...]

For each problem and NIST start it prints the minimum log relative error (LRE, about the number
of correct significant digits of the worst parameter against NIST's certified values) of each
fit, the loss + Jacobian evaluations and the seconds, then how many runs reached LRE >= 6 and
the worst ratio of evaluations.

The fits are those of benchmarks/problem_set.py (which also runs these problems, judged by the
certified residual sum of squares): pytest-soft's fit with its defaults on one soft test per
observation scoring the squared residual (as ``pytest --fit test_<problem>.py`` batches them),
and scipy's least_squares (trf) with its defaults and with ``ftol = xtol = gtol = 1e-15``, the
Jacobian from autograd in the same mode on both sides. The parameter files beside the example
modules are ignored: every fit starts from the NIST starting values. Exit status 1 when
pytest-soft misses LRE 6 anywhere.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_environment
from problem_set import MAX_RATIO, TIGHT, evals, measure
from problems import nist_problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("problems", nargs="*", help="problem names (default: all ten)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per fit (median)")
    args = parser.parse_args(argv)
    problems = nist_problems()
    if args.problems:
        known = {p.name.lower(): p for p in problems}
        unknown = [n for n in args.problems if n.lower() not in known]
        if unknown:
            parser.error(f"unknown problem(s) {', '.join(unknown)}; choose from {list(known)}")
        problems = [known[n.lower()] for n in args.problems]

    print_environment()
    labels = ("pytest-soft (defaults)", "scipy trf, defaults", f"scipy trf, tol {TIGHT:g}")
    print(f"{'problem':9} {'start':>5}  " + "  ".join(f"{label:^27}" for label in labels))
    sub = f"{'LRE':>6} {'evals f+J':>11} {'seconds':>8}"
    print(f"{'':9} {'':>5}  {sub}  {sub}  {sub}  {'ratio':>5}")
    sides = ("soft", "default", "tight")
    ok = dict.fromkeys(sides, 0)
    worst = dict.fromkeys(sides, 99.0)
    runs, worst_ratio, worst_at = 0, 0.0, ""
    for problem in problems:
        for start in problem.starts:
            results = measure(problem, start, args.repeats)
            runs += 1
            cells = []
            for side in sides:
                lre = problem.extra["lre"](results[side]["x"])
                ok[side] += lre >= 6
                worst[side] = min(worst[side], lre)
                r = results[side]
                evals_text = f"{r['nfev']}+{r['njev']}"
                cells.append(f"{lre:6.2f} {evals_text:>11} {r['seconds']:8.3f}")
            ratio = evals(results["soft"]) / evals(results["tight"])
            if ratio > worst_ratio:
                worst_ratio, worst_at = ratio, f"{problem.name} start {start}"
            print(f"{problem.name:9} {start:>5}  " + "  ".join(cells) + f"  {ratio:5.2f}")
    print(
        "LRE: min over the parameters of -log10(relative error against the certified value); "
        "evals: loss + Jacobian\nevaluations; ratio: pytest-soft's evals / scipy tight's; "
        "seconds: median of the repeats"
    )
    print(
        "reached LRE >= 6: "
        + ", ".join(
            f"{label} {ok[side]} of {runs} (worst {worst[side]:.2f})"
            for label, side in zip(("pytest-soft", "scipy defaults", "scipy tight"), sides)
        )
    )
    print(
        f"evaluations: pytest-soft at most {worst_ratio:.2f}x scipy tight's ({worst_at}); "
        f"target <= {MAX_RATIO:g}x: {'met' if worst_ratio <= MAX_RATIO else 'NOT MET'}"
    )
    return 0 if ok["soft"] == runs else 1


if __name__ == "__main__":
    sys.exit(main())
