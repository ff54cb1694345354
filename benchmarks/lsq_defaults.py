"""How the least-squares method's settings fare on the whole problem set: the evidence for the
defaults of pytest_soft.fit._optimisers.run_lsq.

    python benchmarks/lsq_defaults.py [--variants NAME,...]

Each variant replaces some arguments the engine passes to scipy's least_squares (scaling and
tolerances), through a wrapper around scipy.optimize.least_squares, and fits every problem and
start of benchmarks/problem_set.py with pytest_soft.fit.fit. It prints, per variant, how many
fits reached a published minimum, the worst and median ratio of evaluations to scipy's with
tight tolerances, and the fits that missed or took more than twice as many; then, per problem,
the evaluations of each variant.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import warnings
from pathlib import Path

import scipy.optimize

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_environment
from problem_set import MAX_RATIO, engine_fit, evals, scipy_fit
from problems import all_problems, reached

EPS = 2.220446049250313e-16

#: What each variant passes to least_squares in place of the engine's own arguments
#: (None: the engine's own, whatever fit.py says).
VARIANTS: dict[str, dict | None] = {
    "engine": None,
    # The defaults before this study:
    "jac, xtol 1e-12, ftol=gtol eps": {"x_scale": "jac", "xtol": 1e-12, "ftol": EPS, "gtol": EPS},
    "unit, xtol 1e-12, ftol=gtol eps": {"x_scale": 1.0, "xtol": 1e-12, "ftol": EPS, "gtol": EPS},
    "unit, all 1e-15": {"x_scale": 1.0, "xtol": 1e-15, "ftol": 1e-15, "gtol": 1e-15},
    # The defaults chosen (what "engine" runs since):
    "unit, xtol 1e-12, ftol=gtol 1e-15": {
        "x_scale": 1.0,
        "xtol": 1e-12,
        "ftol": 1e-15,
        "gtol": 1e-15,
    },
    "jac, all 1e-15": {"x_scale": "jac", "xtol": 1e-15, "ftol": 1e-15, "gtol": 1e-15},
}


def with_overrides(overrides: dict | None):
    original = scipy.optimize.least_squares

    def patched(*args, **kwargs):
        kwargs.update(overrides or {})
        return original(*args, **kwargs)

    return original, patched


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", help="comma-separated variant names (default: all)")
    args = parser.parse_args(argv)
    chosen = args.variants.split(",") if args.variants else list(VARIANTS)
    print_environment()
    runs = [(p, s) for p in all_problems() for s in p.starts]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = {(p.name, s): evals(scipy_fit(p, s, tight=True)) for p, s in runs}
    table: dict[str, dict[tuple[str, str], tuple[int, bool]]] = {}
    for name in chosen:
        original, patched = with_overrides(VARIANTS[name])
        scipy.optimize.least_squares = patched
        try:
            results = {}
            for p, s in runs:
                side = engine_fit(p, s)
                results[(p.name, s)] = (evals(side), reached(p, side["f"]) is not None)
        finally:
            scipy.optimize.least_squares = original
        table[name] = results
        ratios = {k: n / reference[k] for k, (n, _) in results.items()}
        missed = [f"{k[0]} {k[1]}" for k, (_, ok) in results.items() if not ok]
        over = [f"{k[0]} {k[1]} {r:.2f}x" for k, r in ratios.items() if r > MAX_RATIO]
        worst = max(ratios.items(), key=lambda kv: kv[1])
        print(
            f"{name:36} reached {sum(ok for _, ok in results.values())}/{len(runs)}, "
            f"ratio worst {worst[1]:.2f}x ({worst[0][0]} {worst[0][1]}), median "
            f"{statistics.median(ratios.values()):.2f}x, total evals "
            f"{sum(n for n, _ in results.values())}"
        )
        for line in missed:
            print(f"    missed {line}")
        for line in over:
            print(f"    over {MAX_RATIO:g}x: {line}")
    print()
    numbers = "  ".join(f"{i:>7}" for i in range(len(chosen)))
    print(f"{'problem':17} {'start':>5} {'scipy tight':>11}  {numbers}")
    for p, s in runs:
        cells = []
        for name in chosen:
            n, ok = table[name][(p.name, s)]
            cells.append(f"{n:>6}{'' if ok else '!'}".ljust(7))
        print(f"{p.name:17} {s:>5} {reference[(p.name, s)]:>11}  " + "  ".join(cells))
    print("columns: " + "; ".join(f"{i} = {name}" for i, name in enumerate(chosen)))
    print("evals: loss + Jacobian evaluations; ! missed the published minimum")
    return 0


if __name__ == "__main__":
    sys.exit(main())
