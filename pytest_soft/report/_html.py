"""The HTML report: one self-contained page (inline CSS and SVG, a few lines of inline script that
sort a table by the column header clicked, nothing fetched at view time) with the score table, a
chart of the worst scores, the fit's loss curve and the trend of a run history.

Everything that comes from the user's code (test ids, parameter names, paths) is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from .._text import (
    commit_label,
    format_number,
    is_dirty,
    number_cell,
    short_commit,
    value_change,
    visible,
)
from ._charts import bar_chart_svg, finite, history_svg, line_chart_svg
from ._model import baseline_sentences, flat_values, stderr_summary, uncertainty_sentences


def _e(text: Any) -> str:
    return escape(visible(str(text)), quote=True)


def _num(x: Any) -> str:
    return _e(number_cell(x))


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
table.sortable th { cursor: pointer; user-select: none; }
th[aria-sort=ascending]::after { content: " ▲"; } th[aria-sort=descending]::after { content: " ▼"; }
"""

# Sorts a table by the column whose header is clicked (again: the other way). Numbers (and inf)
# sort as numbers, before text; an empty cell or "-" sorts last either way. It reads only the
# page's own cells and fetches nothing.
_SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  heads.forEach(function (th, column) {
    th.title = "sort by this column";
    th.addEventListener("click", function () {
      var up = th.getAttribute("aria-sort") !== "ascending";
      heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows).map(function (row, index) {
        var text = row.cells[column] ? row.cells[column].textContent.trim() : "";
        var number = /^[-+]?inf$/i.test(text) ? parseFloat(text.replace(/inf/i, "Infinity"))
          : /^[-+]?(\\d|\\.\\d)/.test(text) ? parseFloat(text) : NaN;
        return {row: row, index: index, text: text, number: number,
                missing: text === "" || text === "-"};
      });
      rows.sort(function (a, b) {
        if (a.missing !== b.missing) { return a.missing ? 1 : -1; }
        var order = 0;
        if (!isNaN(a.number) && !isNaN(b.number)) { order = a.number - b.number; }
        else if (isNaN(a.number) !== isNaN(b.number)) { order = isNaN(a.number) ? 1 : -1; }
        else { order = a.text.localeCompare(b.text); }
        return (up ? order : -order) || a.index - b.index;
      });
      rows.forEach(function (r) { body.appendChild(r.row); });
    });
  });
});
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
            f"<script>{_SORT_SCRIPT}</script>",
            "</body>",
            "</html>",
            "",
        ]
    )


def _table(
    header: Sequence[str],
    rows: Sequence[Sequence[tuple[str, str]]],
    table_id: str = "",
    sortable: bool = True,
) -> str:
    """``rows`` are sequences of (html, css class) cells; the html is already escaped. A
    sortable table sorts by the column whose header is clicked."""
    ident = f' id="{table_id}"' if table_id else ""
    kind = ' class="sortable"' if sortable else ""
    out = [f"<table{ident}{kind}>", "<thead><tr>"]
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
    parts = []
    if run.get("time"):
        parts.append(_e(run["time"]))
    if short := short_commit(run):
        commit = f"commit <code>{_e(short)}</code>"
        if branch := (run.get("git") or {}).get("branch"):
            commit += f" on {_e(branch)}"
        if is_dirty(run):
            commit += " with uncommitted changes"
        parts.append(commit)
    versions = run.get("versions") or {}
    if run.get("python"):
        parts.append(f"Python {_e(run['python'])}")
    parts += [f"{_e(k)} {_e(v)}" for k, v in versions.items() if v]
    return " · ".join(parts)


def _param_value(value: Any) -> str:
    if isinstance(value, list):
        flat = [v for v in flat_values(value) if finite(v)]
        if not flat:
            return "empty array"
        return (
            f"array of {len(flat)} (mean {format_number(sum(flat) / len(flat))}, "
            f"min {format_number(min(flat))}, max {format_number(max(flat))})"
        )
    return _num(value)


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

    scored = [(t["nodeid"], t["weighted"]) for t in tests if finite(t.get("weighted"))]
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
                (_e(value_change(t.get("before"), t.get("score"))), "num"),
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


def _fit_section(fit: Mapping[str, Any]) -> list[str]:
    facts = [
        ("method", _e(fit.get("method"))),
        (
            "loss",
            f"{_num(fit.get('loss_before'))} → {_num(fit.get('loss_after'))} "
            f"({_e(value_change(fit.get('loss_before'), fit.get('loss_after')))})",
        ),
        ("iterations", _num(fit.get("iterations"))),
        ("stopped", _e(fit.get("stop_reason", ""))),
        ("time", f"{fit['seconds']:.2f} s" if finite(fit.get("seconds")) else "-"),
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
        _table(("", ""), [[(_e(k), ""), (v, "")] for k, v in facts], "fit-facts", sortable=False),
    ]
    params = fit.get("parameters") or []
    errors = bool(fit.get("correlation"))
    if params:
        rows = [
            [
                (_e(p["name"]), "test"),
                (_param_value(p["before"]), "num"),
                (_param_value(p["after"]), "num"),
            ]
            + ([(_e(stderr_summary(p.get("stderr"))), "num")] if errors else [])
            for p in params
        ]
        header = ("parameter", "before", "after") + (("± stderr",) if errors else ())
        out.append(_table(header, rows, "fit-parameters"))
    sentences = uncertainty_sentences(fit)
    if sentences:
        out.append(
            '<ul class="fit-uncertainty">'
            + "".join(f"<li>{_e(text)}</li>" for text in sentences)
            + "</ul>"
        )
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
                (_e(value_change(t.get("old"), t.get("new"))), "num"),
            ]
        )
    for status, count in shown.items():
        if status != "regressed" and count > listed:
            rows.append([(_e(status), ""), (f"… and {count - listed} more", ""), *[("", "")] * 3])
    if rows:
        out.append(_table(("status", "test", "old", "new", "change"), rows, "baseline-changes"))
    out.append("</section>")
    return out


def _trend_section(history: Sequence[Mapping[str, Any]]) -> list[str]:
    labels = [f"{run.get('time') or '-'} {commit_label(run)}" for run in history]
    chart = history_svg(history, labels)
    rows = []
    for index in range(len(history) - 1, max(len(history) - 51, -1), -1):  # newest first
        run = history[index]
        change = value_change(history[index - 1].get("loss"), run.get("loss")) if index else ""
        rows.append(
            [
                (_e(run.get("time") or "-"), ""),
                (f"<code>{_e(commit_label(run))}</code>", ""),
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
