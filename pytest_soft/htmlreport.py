"""The HTML report: one self-contained page (inline CSS and SVG, no script, nothing fetched at
view time) with the score table, a chart of the worst scores, the fit's loss curve and the trend
of a run history. Charts are drawn here as plain SVG, so they need no plotting library;
matplotlib (the ``pytest-soft[plot]`` extra) is only needed for PNG charts of the history.

Everything that comes from the user's code (test ids, parameter names, paths) is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any, TypeGuard

from .report import baseline_sentences, format_change, format_number, visible

__all__ = ["bar_chart_svg", "history_png", "line_chart_svg", "render_history_html", "render_html"]

WIDTH = 760


def _e(text: Any) -> str:
    return escape(visible(str(text)), quote=True)


def _num(x: Any) -> str:
    return format_number(x) if isinstance(x, (int, float)) else ("-" if x is None else _e(x))


def _finite(x: Any) -> TypeGuard[float]:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# -- charts -------------------------------------------------------------------------------------


def _ellipsis(text: str, limit: int) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def bar_chart_svg(items: Sequence[tuple[str, float]], title: str, unit: str = "") -> str:
    """Horizontal bars, one per (label, value), largest first as given. Labels are shortened from
    the left (the end of a test id is the telling part); the full label is the bar's tooltip."""
    items = [(label, value) for label, value in items if _finite(value)]
    if not items:
        return ""
    row, label_width, top = 22, 330, 28
    height = top + row * len(items) + 24
    low = min(0.0, *(v for _, v in items))
    high = max(0.0, *(v for _, v in items))
    span = (high - low) or 1.0
    plot = WIDTH - label_width - 90

    def x(value: float) -> float:
        return label_width + (value - low) / span * plot

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" class="chart bars">',
        f"<title>{_e(title)}</title>",
        f'<text x="4" y="16" class="chart-title">{_e(title)}</text>',
        f'<line x1="{x(0):.1f}" y1="{top - 4}" x2="{x(0):.1f}" y2="{height - 20}" class="axis"/>',
    ]
    for index, (label, value) in enumerate(items):
        y = top + index * row
        x0, x1 = sorted((x(0.0), x(value)))
        parts.append(
            f"<g><title>{_e(label)}: {format_number(value)}{_e(unit)}</title>"
            f'<text x="{label_width - 6}" y="{y + 14}" text-anchor="end" class="label">'
            f"{_e(_ellipsis(visible(label), 52))}</text>"
            f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 0.5):.1f}" height="{row - 6}" '
            f'class="bar"/>'
            f'<text x="{x1 + 4:.1f}" y="{y + 14}" class="value">{format_number(value)}</text></g>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
        value += step
    return ticks


def line_chart_svg(
    values: Sequence[float | None],
    title: str,
    x_label: str = "",
    y_label: str = "",
    point_labels: Sequence[str] | None = None,
    log: bool | None = None,
) -> str:
    """A line through ``values`` (x = 0, 1, 2, ...). A logarithmic y axis when ``log`` is True,
    or by default when every value is positive and they span more than two decades. Points that
    are not finite numbers are left out. ``point_labels`` become the points' tooltips."""
    points = [(i, float(v)) for i, v in enumerate(values) if _finite(v)]
    if not points:
        return ""
    ys = [y for _, y in points]
    if log is None:
        log = min(ys) > 0 and max(ys) / min(ys) > 100
    if log and min(ys) <= 0:
        log = False
    height, left, right, top, bottom = 300, 78, 18, 30, 46
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    f = math.log10 if log else (lambda v: v)
    lo, hi = f(min(ys)), f(max(ys))
    if hi == lo:
        lo, hi = lo - (abs(lo) * 0.1 or 1.0), hi + (abs(hi) * 0.1 or 1.0)
    n = max(len(values) - 1, 1)

    def px(i: float) -> float:
        return left + i / n * plot_w

    def py(v: float) -> float:
        return top + (1 - (f(v) - lo) / (hi - lo)) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" class="chart line">',
        f"<title>{_e(title)}</title>",
        f'<text x="4" y="16" class="chart-title">{_e(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="frame"/>',
    ]
    if log:
        ticks = [10.0**k for k in range(math.floor(lo), math.ceil(hi) + 1)]
        step = max(1, len(ticks) // 6)
        ticks = [t for t in ticks[::step] if lo - 1e-9 <= math.log10(t) <= hi + 1e-9]
    else:
        ticks = _nice_ticks(lo, hi)
    for tick in ticks:
        y = py(tick)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
            f"{format_number(tick)}</text>"
        )
    for i in sorted({0, n // 2, n} if len(values) > 1 else {0}):
        parts.append(
            f'<text x="{px(i):.1f}" y="{top + plot_h + 16}" text-anchor="middle" class="tick">'
            f"{i + 1 if point_labels is not None else i}</text>"
        )
    if x_label:
        parts.append(
            f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle" '
            f'class="axis-label">{_e(x_label)}</text>'
        )
    if y_label:
        parts.append(
            f'<text x="12" y="{top + plot_h / 2:.1f}" text-anchor="middle" class="axis-label" '
            f'transform="rotate(-90 12 {top + plot_h / 2:.1f})">'
            f"{_e(y_label + (' (log scale)' if log else ''))}</text>"
        )
    path = " ".join(f"{px(i):.1f},{py(v):.1f}" for i, v in points)
    parts.append(f'<polyline points="{path}" class="series"/>')
    if len(points) <= 80:
        for i, v in points:
            tip = f"{point_labels[i]}: " if point_labels is not None else f"{x_label} {i}: "
            parts.append(
                f'<circle cx="{px(i):.1f}" cy="{py(v):.1f}" r="3" class="point">'
                f"<title>{_e(tip)}{format_number(v)}</title></circle>"
            )
    parts.append("</svg>")
    return "\n".join(parts)


# -- the page -----------------------------------------------------------------------------------

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #1b1f24; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { margin-top: 1.6em; font-size: 1.25em; }
.meta { color: #57606a; } .loss { font-size: 1.3em; font-weight: 600; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border-bottom: 1px solid #d0d7de; padding: 3px 10px; text-align: left;
         vertical-align: top; }
th { background: #f6f8fa; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.test { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-all; }
.regressed, .error, .above { color: #cf222e; font-weight: 600; } .improved { color: #1a7f37; }
.chart { display: block; margin: .5em 0; max-width: 100%; height: auto; }
.chart text { font: 11px system-ui, sans-serif; fill: #1b1f24; }
.chart .chart-title { font-size: 13px; font-weight: 600; }
.chart .bar { fill: #5b8def; } .chart .axis { stroke: #57606a; }
.chart .frame { fill: none; stroke: #d0d7de; } .chart .grid { stroke: #eaeef2; }
.chart .series { fill: none; stroke: #0969da; stroke-width: 2; }
.chart .point { fill: #0969da; } .chart .tick, .chart .value { fill: #57606a; }
"""


def _page(title: str, body: list[str]) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)}</title>",
            f"<style>{_CSS}</style>",
            "</head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )


def _table(
    header: Sequence[str], rows: Sequence[Sequence[tuple[str, str]]], table_id: str = ""
) -> str:
    """``rows`` are sequences of (html, css class) cells; the html is already escaped."""
    ident = f' id="{table_id}"' if table_id else ""
    out = [f"<table{ident}>", "<thead><tr>"]
    out += [f"<th>{_e(h)}</th>" for h in header]
    out.append("</tr></thead><tbody>")
    for row in rows:
        cells = "".join(
            f'<td class="{cls}">{html}</td>' if cls else f"<td>{html}</td>" for html, cls in row
        )
        out.append(f"<tr>{cells}</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _meta_line(run: Mapping[str, Any]) -> str:
    git = run.get("git") or {}
    parts = []
    if run.get("time"):
        parts.append(_e(run["time"]))
    if git.get("commit"):
        commit = f"commit <code>{_e(git['commit'][:12])}</code>"
        if git.get("branch"):
            commit += f" on {_e(git['branch'])}"
        if git.get("dirty"):
            commit += " with uncommitted changes"
        parts.append(commit)
    versions = run.get("versions") or {}
    if run.get("python"):
        parts.append(f"Python {_e(run['python'])}")
    parts += [f"{_e(k)} {_e(v)}" for k, v in versions.items() if v]
    return " · ".join(parts)


def _param_value(value: Any) -> str:
    if isinstance(value, list):
        flat = [v for v in _flat(value) if _finite(v)]
        if not flat:
            return "empty array"
        return (
            f"array of {len(flat)} (mean {format_number(sum(flat) / len(flat))}, "
            f"min {format_number(min(flat))}, max {format_number(max(flat))})"
        )
    return _num(value)


def _flat(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [x for v in value for x in _flat(v)]
    return [value]


def _outcome_class(outcome: str) -> str:
    return {"error": "error", "above threshold": "above"}.get(outcome, "")


def render_html(
    report: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]] | None = None,
    worst: int = 20,
) -> str:
    """The HTML page of a JSON report (see report.build_report), with the trend of ``history``
    (runs as from tracking.load_history) when given."""
    run = report.get("run", {})
    counts = report.get("counts", {})
    tests = list(report.get("tests", []))
    fit = report.get("fit")
    body = [
        "<h1>pytest-soft report</h1>",
        f'<p class="meta">{_meta_line(run)}</p>',
        '<section id="summary">',
        f'<p class="loss">suite loss {_num(report.get("loss"))}</p>',
        f"<p>{counts.get('tests', len(tests))} soft tests: {counts.get('passed', 0)} passed, "
        f"{counts.get('above threshold', 0)} above threshold, "
        f"{counts.get('error', 0)} without a score.</p>",
        "</section>",
    ]

    scored = [(t["nodeid"], t["weighted"]) for t in tests if _finite(t.get("weighted"))]
    if scored:
        top = scored[:worst]
        body += [
            '<section id="worst">',
            f"<h2>The {len(top)} largest contributions to the suite loss</h2>",
            bar_chart_svg(top, f"weight x score, {len(top)} worst soft tests"),
            "</section>",
        ]

    if fit:
        body += _fit_section(fit)
    baseline = report.get("baseline")
    if baseline:
        body += _baseline_section(baseline)
    if history:
        body += _trend_section(history)

    has_before = any("before" in t for t in tests)
    header = ["test"] + (["before", "after", "change"] if has_before else ["score"])
    header += ["weight", "weighted", "threshold", "tolerance", "cases", "outcome"]
    rows = []
    for t in tests:
        row = [(_e(t["nodeid"]), "test")]
        if has_before:
            row += [
                (_num(t.get("before")), "num"),
                (_num(t.get("score")), "num"),
                (_e(_change(t.get("before"), t.get("score"))), "num"),
            ]
        else:
            row.append((_num(t.get("score")), "num"))
        row += [
            (_num(t.get("weight")), "num"),
            (_num(t.get("weighted")), "num"),
            (_num(t.get("threshold")), "num"),
            (_e(t.get("tolerance") or "-"), "num"),
            (_num(t.get("cases")), "num"),
            (_e(t.get("outcome", "")), _outcome_class(t.get("outcome", ""))),
        ]
        rows.append(row)
    body += [
        '<section id="tests">',
        "<h2>Every soft test, worst first</h2>",
        _table(header, rows, "score-table"),
        "</section>",
    ]
    return _page(f"pytest-soft report: suite loss {_num(report.get('loss'))}", body)


def _change(old: Any, new: Any) -> str:
    if _finite(old) and _finite(new):
        return format_change(float(old), float(new))
    return "-"


def _fit_section(fit: Mapping[str, Any]) -> list[str]:
    facts = [
        ("method", _e(fit.get("method"))),
        (
            "loss",
            f"{_num(fit.get('loss_before'))} → {_num(fit.get('loss_after'))} "
            f"({_e(_change(fit.get('loss_before'), fit.get('loss_after')))})",
        ),
        ("iterations", _num(fit.get("iterations"))),
        ("stopped", _e(fit.get("stop_reason", ""))),
        ("time", f"{fit['seconds']:.2f} s" if _finite(fit.get("seconds")) else "-"),
    ]
    holdout = fit.get("holdout")
    if holdout:
        facts.append(
            (
                "held-out loss",
                f"{_num(holdout.get('loss_before'))} → {_num(holdout.get('loss_after'))} "
                f"({holdout.get('tests')} soft tests kept out of the fit)",
            )
        )
    written = fit.get("written") or []
    if fit.get("dry_run"):
        facts.append(("written", "dry run: no parameter file written"))
    elif written:
        facts.append(("written", ", ".join(f"<code>{_e(p)}</code>" for p in written)))
    elif not fit.get("improved"):
        facts.append(("written", "the loss did not improve: no parameter file written"))
    out = [
        '<section id="fit">',
        "<h2>Fit</h2>",
        _table(("", ""), [[(_e(k), ""), (v, "")] for k, v in facts], "fit-facts"),
    ]
    params = fit.get("parameters") or []
    if params:
        rows = [
            [
                (_e(p["name"]), "test"),
                (_param_value(p["before"]), "num"),
                (_param_value(p["after"]), "num"),
            ]
            for p in params
        ]
        out.append(_table(("parameter", "before", "after"), rows, "fit-parameters"))
    title = "suite loss per iteration"
    if (fit.get("starts") or 1) > 1:
        title += f" ({fit['starts']} starts, one after another)"
    curve = line_chart_svg(fit.get("history") or [], title, "iteration", "suite loss")
    if curve:
        out += ['<div id="loss-curve">', curve, "</div>"]
    out.append("</section>")
    return out


def _baseline_section(baseline: Mapping[str, Any], listed: int = 50) -> list[str]:
    verdict, compared = baseline_sentences(baseline)
    verdict = _e(verdict)
    if baseline.get("regressed"):
        verdict = verdict.replace("regressed", '<span class="regressed">regressed</span>', 1)
    counts = baseline.get("counts", {})
    out = [
        '<section id="baseline">',
        f"<h2>Against the baseline <code>{_e(baseline.get('path') or '')}</code></h2>",
        f"<p>{verdict}. {_e(compared[0].upper() + compared[1:])}.</p>",
        f"<p>{_e(', '.join(f'{n} {s}' for s, n in counts.items()))}</p>",
    ]
    rows = []
    shown: dict[str, int] = {}
    for t in baseline.get("tests", []):
        if t["status"] in ("unchanged", "not run"):
            continue
        shown[t["status"]] = shown.get(t["status"], 0) + 1
        if t["status"] != "regressed" and shown[t["status"]] > listed:
            continue
        status_class = {"regressed": "regressed", "improved": "improved"}.get(t["status"], "")
        rows.append(
            [
                (_e(t["status"]), status_class),
                (_e(t["nodeid"]), "test"),
                (_num(t.get("old")), "num"),
                (_num(t.get("new")), "num"),
                (_e(_change(t.get("old"), t.get("new"))), "num"),
            ]
        )
    for status, count in shown.items():
        if status != "regressed" and count > listed:
            rows.append([(_e(status), ""), (f"… and {count - listed} more", ""), *[("", "")] * 3])
    if rows:
        out.append(_table(("status", "test", "old", "new", "change"), rows, "baseline-changes"))
    out.append("</section>")
    return out


def _commit(run: Mapping[str, Any]) -> str:
    git = run.get("git") or {}
    return (git.get("commit") or "-")[:12] + ("+dirty" if git.get("dirty") else "")


def _trend_section(history: Sequence[Mapping[str, Any]]) -> list[str]:
    labels = [f"{run.get('time') or '-'} {_commit(run)}" for run in history]
    chart = line_chart_svg(
        [run.get("loss") for run in history],
        f"suite loss over the last {len(history)} runs",
        "run",
        "suite loss",
        point_labels=labels,
    )
    rows = []
    for index in range(len(history) - 1, max(len(history) - 51, -1), -1):  # newest first
        run = history[index]
        change = _change(history[index - 1].get("loss"), run.get("loss")) if index else ""
        rows.append(
            [
                (_e(run.get("time") or "-"), ""),
                (f"<code>{_e(_commit(run))}</code>", ""),
                (_num(run.get("count")), "num"),
                (_num(run.get("loss")), "num"),
                (_e(change), "num"),
            ]
        )
    return [
        '<section id="trend">',
        "<h2>History</h2>",
        chart,
        _table(("when", "commit", "tests", "suite loss", "change"), rows, "history-table"),
        "</section>",
    ]


def render_history_html(history: Sequence[Mapping[str, Any]], source: str = "") -> str:
    """A page with the trend of a history file alone (``python -m pytest_soft history --html``)."""
    body = [
        "<h1>pytest-soft history</h1>",
        f'<p class="meta">{_e(source)}: {len(history)} runs</p>',
        *_trend_section(history),
    ]
    return _page("pytest-soft history", body)


def history_png(history: Sequence[Mapping[str, Any]]) -> bytes:
    """The suite loss over the runs as a PNG, drawn with matplotlib (the ``pytest-soft[plot]``
    extra). Raises ImportError without matplotlib."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    xs = [i + 1 for i, run in enumerate(history) if _finite(run.get("loss"))]
    ys = [float(run["loss"]) for run in history if _finite(run.get("loss"))]
    figure, axes = plt.subplots(figsize=(8, 3.5), dpi=100)
    try:
        axes.plot(xs, ys, marker="o" if len(xs) <= 80 else None)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ys and min(ys) > 0 and max(ys) / min(ys) > 100:
            axes.set_yscale("log")
        axes.set_xlabel("run")
        axes.set_ylabel("suite loss")
        axes.set_title(f"suite loss over the last {len(history)} runs")
        axes.grid(True, alpha=0.3)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    finally:
        plt.close(figure)
    return buffer.getvalue()
