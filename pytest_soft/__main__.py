"""``python -m pytest_soft``: the run history and the comparison of two runs, outside a test run.

    python -m pytest_soft history PATH [--last N] [--html OUT] [--svg OUT] [--png OUT]
    python -m pytest_soft compare OLD NEW [--fail-regression TOL]

Exit status: 0 when all is well, 1 when ``compare --fail-regression`` finds a regression, 2 for
a usage error or a file that cannot be read or written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import SoftError

EXIT_OK, EXIT_REGRESSED, EXIT_ERROR = 0, 1, 2


def _tolerance(text: str) -> Any:
    from .tracking import tolerance_type

    return tolerance_type(text)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_soft",
        description="pytest-soft's tools outside a test run: the trend of a run history, and "
        "the comparison of two JSON reports or baselines.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    history = commands.add_parser(
        "history",
        help="print the trend of a --soft-history file, one row per run; optionally chart it",
        description="Print the trend of a history file written with --soft-history: one row "
        "per run (when, commit, number of soft tests, suite loss, change from the run before).",
    )
    history.add_argument("path", metavar="PATH", help="the history file (JSON lines)")
    history.add_argument("--last", type=_positive, metavar="N", help="only the last N runs")
    history.add_argument(
        "--html", metavar="OUT", help="also write a self-contained HTML page with the chart"
    )
    history.add_argument("--svg", metavar="OUT", help="also write the chart as an SVG image")
    history.add_argument(
        "--png",
        metavar="OUT",
        help="also write the chart as a PNG image (needs matplotlib: pip install "
        "'pytest-soft[plot]')",
    )

    compare = commands.add_parser(
        "compare",
        help="compare two JSON reports or baselines; exit 1 on a regression",
        description="Compare the scores in NEW with those in OLD (each a --soft-json report or "
        "a --soft-baseline file): improved, regressed, new, changed, missing. With "
        "--fail-regression, exit with status 1 when NEW regressed.",
    )
    compare.add_argument("old", metavar="OLD", help="the earlier report or baseline")
    compare.add_argument("new", metavar="NEW", help="the later report or baseline")
    compare.add_argument(
        "--fail-regression",
        type=_tolerance,
        metavar="TOL",
        help="exit 1 when the suite loss or a soft test is worse by more than TOL: 5%% "
        "(relative), 0.01 (absolute) or 5%%,0.01 (worse by more than both). A test's own "
        "tolerance (soft_test(tolerance=...)) overrides it.",
    )
    return parser


def _history(args: argparse.Namespace) -> int:
    from ._files import atomic_write_bytes, atomic_write_text
    from .report import history_png, history_svg, render_history, render_history_html
    from .tracking import load_history

    runs = load_history(args.path)
    if args.last:
        runs = runs[-args.last :]
    if not runs:
        print(f"{args.path}: no runs recorded yet")
    else:
        print(f"{args.path}: {len(runs)} run{'s' if len(runs) != 1 else ''}")
        for line in render_history(runs):
            print(line)
    outputs: list[tuple[str, str]] = []
    if args.png:
        try:
            data = history_png(runs)
        except ImportError:
            raise SoftError(
                "--png draws with matplotlib, which is not installed: "
                "pip install 'pytest-soft[plot]' (or use --svg or --html, which need nothing)."
            ) from None
        _write(args.png, lambda: atomic_write_bytes(args.png, data))
        outputs.append(("PNG chart", args.png))
    if args.svg:
        labels = [str(run.get("time")) for run in runs]
        svg = history_svg(runs, labels)
        if not svg:
            svg = '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"></svg>'
        _write(args.svg, lambda: atomic_write_text(args.svg, svg + "\n"))
        outputs.append(("SVG chart", args.svg))
    if args.html:
        page = render_history_html(runs, source=args.path)
        _write(args.html, lambda: atomic_write_text(args.html, page))
        outputs.append(("HTML page", args.html))
    for kind, path in outputs:
        print(f"wrote {kind}: {path}")
    return EXIT_OK


def _write(path: str, write) -> None:  # type: ignore[no-untyped-def]
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write()
    except OSError as exc:
        raise SoftError(f"{path}: cannot write: {exc.strerror or exc}.") from None


def _compare(args: argparse.Namespace) -> int:
    from .report import render_comparison, render_regressions
    from .tracking import compare, disappeared_between, load_snapshot

    old = load_snapshot(args.old)
    new = load_snapshot(args.new)
    gone = disappeared_between(old, new)
    comparison = compare(old, new, args.fail_regression, disappeared=gone)
    print(f"{args.new} against {args.old}")
    if new.meta.get("interrupted"):
        print(f"{args.new} is from an interrupted run: the tests it did not reach count as not run")
    missing = f"in {args.old} but not in {args.new}"
    if "complete_files" in new.meta:  # the new report says which of them it did not run
        missing = f"in {args.old}, not run in {args.new}"
    for line in render_comparison(comparison, missing=missing):
        print(line)
    if args.fail_regression is not None and comparison.regressed:
        print()
        print(
            f"REGRESSION: {args.new} is worse than {args.old} by more than the tolerance "
            f"({args.fail_regression})"
        )
        for line in render_regressions(comparison):
            print(line)
        return EXIT_REGRESSED
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "history":
            return _history(args)
        return _compare(args)
    except SoftError as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # `... | head`
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
