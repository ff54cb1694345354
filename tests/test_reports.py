"""The reports: the terminal table after a fit, and the JSON, Markdown, HTML and benchmark files,
rendered directly and written by a run end to end (hostile test ids included)."""

from __future__ import annotations

import html
import json
import math
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import autograd  # noqa: F401  (in sys.modules before pytester's in-process runs snapshot them)
import numpy  # noqa: F401
import pytest

from pytest_soft.report import (
    SoftResult,
    bar_chart_svg,
    build_report,
    line_chart_svg,
    md_text,
    render_benchmark,
    render_html,
    render_json,
    render_markdown,
    render_table,
    visible,
)
from pytest_soft.tracking import compare, load_snapshot, parse_tolerance

HOSTILE = [
    "<script>alert(1)</script>",
    "a|b|c",
    "`tick` ``two``",
    "line\nbreak\r\n",
    "\x1b[31mred\x1b[0m",
    "naïve 日本 ✓",
    "**bold** _it_ [link](http://x) &amp; #h",
    "back\\slash\\|pipe",
]


def result(nodeid, score, weight=1.0, outcome="passed", **more):
    return SoftResult(nodeid, weight, more.pop("threshold", None), score, None, outcome, **more)


META = {"time": "2026-01-02T03:04:05+00:00", "git": {"commit": "ab" * 20, "dirty": True}}


# -- the terminal table -------------------------------------------------------------------------


def test_after_a_fit_the_table_has_before_after_and_change_columns():
    results = [result("t::a", 0.5), result("t::b", 0.0, weight=2.0), result("t::c", None)]
    lines = render_table(results, before={"t::a": 2.0, "t::b": 0.25})
    assert [line.split() for line in lines] == [
        [
            "before",
            "after",
            "change",
            "weight",
            "weighted",
            "threshold",
            "cases",
            "outcome",
            "test",
        ],
        ["-", "-", "-", "1", "-", "-", "-", "passed", "t::c"],
        ["2", "0.5", "-75.0%", "1", "0.5", "-", "-", "passed", "t::a"],
        ["0.25", "0", "-100.0%", "2", "0", "-", "-", "passed", "t::b"],
        ["suite", "loss", "0.5", "(before", "the", "fit", "2.5)"],
    ]
    # the numbers stay right-aligned under their headers
    ends = {m.end() for m in re.finditer(r"\S+", lines[0])}
    for line in lines[1:-1]:
        assert {m.end() for m in re.finditer(r"\S+", line)} >= {
            m.end() for m in list(re.finditer(r"\S+", lines[0]))[:6]
        } & ends


# -- escaping -----------------------------------------------------------------------------------


def test_visible_shows_control_characters_as_escapes():
    assert visible("plain ✓") == "plain ✓"
    assert visible("a\nb\r\tc\x1b[0m\u2028") == "a\\nb\\r\\tc\\x1b[0m\\u2028"


def cells(row: str) -> list[str]:
    """Split a GitHub table row the way GitHub does: at every pipe not escaped by a backslash."""
    parts, current = [], ""
    for token in re.findall(r"\\.|[^\\|]+|\|", row):
        if token == "|":
            parts.append(current)
            current = ""
        else:
            current += token
    parts.append(current)
    return [p.strip() for p in parts[1:-1]]


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_text_cannot_break_a_table_row_or_a_code_span(text):
    escaped = md_text(text)
    row = f"| {escaped} | 1 |"
    assert "\n" not in row and "\r" not in row and "\x1b" not in row
    assert len(cells(row)) == 2
    assert not re.search(r"(?<!\\)[`<>*_\[\]&]", escaped.replace("\\\\", ""))


def report_of(results, **kwargs):
    return build_report(results, META, **kwargs)


def test_markdown_summary_lists_suite_loss_worst_tests_and_escapes_ids():
    results = [result(f"test_x.py::test[{text}]", float(i)) for i, text in enumerate(HOSTILE)]
    text = render_markdown(report_of(results), worst=5)
    lines = text.splitlines()
    assert lines[0] == "## Soft tests: suite loss 28"
    assert lines[2] == (
        f"{len(HOSTILE)} soft tests · suite loss **28** · commit `{'ab' * 6}` with uncommitted "
        "changes"
    )
    table = [line for line in lines if line.startswith("|")]
    assert cells(table[0]) == ["test", "score", "weight", "weighted", "threshold", "outcome"]
    assert len(table) == 2 + 5
    for row in table:
        assert len(cells(row)) == 6
    assert cells(table[2])[1:] == ["7", "1", "7", "-", "passed"]
    assert "<script>" not in text and "\x1b" not in text


def test_markdown_summary_shows_the_changes_against_the_baseline():
    old = [result("t::a", 1.0), result("t::b", 1.0), result("t::gone|x", 1.0)]
    new = [result("t::a", 2.0), result("t::b", 0.5), result("t::new", 3.0)]
    from pytest_soft.report import to_snapshot

    comparison = compare(to_snapshot(old), to_snapshot(new), parse_tolerance("5%"))
    comparison.old.path = "base|line.json"
    text = render_markdown(report_of(new, comparison=comparison))
    assert "### Against the baseline base\\|line.json" in text
    assert (
        "**regressed**: 1 soft test worse than the baseline by more than the tolerance, and "
        "the suite loss by more than 5%. "
        "Suite loss 2 → 2.5 (+25.0%) over the 2 soft tests scored in both runs: regressed."
    ) in text
    assert "1 regressed · 1 improved · 1 new · 1 not run" in text
    rows = [cells(line) for line in text.splitlines() if line.startswith("| ")]
    assert ["regressed", "t::a", "1", "2", "+100.0%"] in rows
    assert ["improved", "t::b", "1", "0.5", "-50.0%"] in rows
    assert ["new", "t::new", "-", "3", "-"] in rows


# -- HTML ---------------------------------------------------------------------------------------


class Page(HTMLParser):
    """The elements and the text of a page."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.ids: set[str] = set()
        self.text: list[str] = []
        self.urls: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attributes = dict(attrs)
        if "id" in attributes:
            self.ids.add(attributes["id"])
        for name in ("src", "href"):
            if attributes.get(name):
                self.urls.append(attributes[name])

    def handle_data(self, data):
        self.text.append(data)


def test_html_page_is_self_contained_with_tables_and_charts_and_escaped_ids():
    results = [result(f"test_x.py::test[{text}]", float(i + 1)) for i, text in enumerate(HOSTILE)]
    results.append(result("test_x.py::test_error", None, outcome="error"))
    html = render_html(report_of(results))
    page = Page(html)
    # one script, the page's own table sorter: none injected by a test id
    assert page.tags.count("script") == 1 and "b" not in page.tags and "a" not in page.tags
    assert page.urls == []  # nothing fetched when the page is viewed
    assert {"summary", "worst", "tests", "score-table"} <= page.ids
    assert "fit" not in page.ids and "trend" not in page.ids
    text = "".join(page.text)
    for hostile in HOSTILE:
        assert f"test_x.py::test[{visible(hostile)}]" in text
    assert page.tags.count("svg") == 1
    assert page.tags.count("tr") == 1 + len(results)
    assert "suite loss 36" in text


def test_html_shows_the_history_trend_when_given():
    runs = [
        {"time": f"2026-01-0{i}T00:00:00+00:00", "git": {"commit": f"{i}" * 40}, "loss": loss}
        for i, loss in enumerate([3.0, 2.0, 2.5], start=1)
    ]
    page = Page(render_html(report_of([result("t::a", 1.0)]), history=runs))
    assert {"trend", "history-table"} <= page.ids
    text = "".join(page.text)
    assert "suite loss over the last 3 runs" in text
    assert "+25.0%" in text and "-33.3%" in text


def test_svg_charts_draw_and_skip_values_that_are_not_numbers():
    bars = bar_chart_svg([("x<y>", 2.0), ("z", 1.0), ("nan", float("nan"))], "t & t")
    assert bars.count("<rect") == 2
    assert "x&lt;y&gt;" in bars and "t &amp; t" in bars
    line = line_chart_svg([100.0, 10.0, None, 0.01, 0.001], "loss", "iteration", "loss")
    assert "(log scale)" in line
    assert line.count("<circle") == 4
    assert line_chart_svg([], "empty") == "" and bar_chart_svg([], "empty") == ""
    assert "(log scale)" not in line_chart_svg([1.0, 2.0, 3.0], "flat", y_label="loss")
    assert "<polyline" in line_chart_svg([5.0], "one point")


# -- JSON and benchmark -------------------------------------------------------------------------


def test_json_report_round_trips_into_a_comparable_snapshot(tmp_path):
    results = [
        result("t::a", 0.25, weight=2.0, fingerprint="sha256:ff", tolerance="5%"),
        result("t::b", None, outcome="error"),
        result("t::c", float("inf")),
    ]
    text = render_json(report_of(results))
    document = json.loads(text)
    assert document["format"] == "pytest-soft report" and document["version"] == 1
    assert document["loss"] == "inf"
    assert document["counts"] == {"tests": 3, "passed": 2, "above threshold": 0, "error": 1}
    assert document["tests"][1] == {
        "nodeid": "t::c",
        "score": "inf",
        "weight": 1.0,
        "weighted": "inf",
        "threshold": None,
        "tolerance": None,
        "outcome": "passed",
        "cases": None,
        "fingerprint": None,
    }
    path = tmp_path / "report.json"
    path.write_text(text, encoding="utf-8")
    snapshot = load_snapshot(path)
    assert snapshot.tests["t::a"].weighted == 0.5
    assert snapshot.tests["t::a"].tolerance == "5%"
    assert snapshot.tests["t::b"].score is None


def test_benchmark_json_is_github_action_benchmark_custom_smaller_is_better():
    results = [result("t::a", 0.25, weight=2.0), result("t::b", None, outcome="error")]
    entries = json.loads(render_benchmark(report_of(results)))
    assert entries == [
        {
            "name": "suite loss",
            "unit": "loss",
            "value": 0.5,
            "extra": "2 soft tests, sum of weight x score",
        },
        {"name": "t::a", "unit": "score", "value": 0.25, "extra": "weight 2"},
    ]


# -- end to end ---------------------------------------------------------------------------------

TESTS = f"""
    import numpy as np
    import pytest
    from pytest_soft import soft_test

    HOSTILE = {HOSTILE!r}

    @soft_test(weight=2.0)
    @pytest.mark.parametrize("tag", HOSTILE)
    def test_hostile(tag):
        return 0.125 * (1 + HOSTILE.index(tag))

    @soft_test
    def test_vector():
        return np.array([0.5, 0.25, 0.25])

    @soft_test(threshold=0.1)
    def test_over():
        return 0.5

    @soft_test
    def test_broken():
        raise RuntimeError("boom")
"""

ALL = ["--soft-json", "out/r.json", "--soft-md", "out/r.md", "--soft-html", "out/r.html"]
ALL += ["--soft-benchmark-json", "out/bench.json"]


def git(path: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=path,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.mark.parametrize("raw_ids", [False, True], ids=["escaped-ids", "raw-ids"])
def test_every_report_written_by_a_run_with_hostile_ids(pytester, raw_ids):
    pytester.makepyfile(test_soft=TESTS)
    if raw_ids:  # pytest then keeps newlines, escapes and non-ASCII in the ids as they are
        pytester.makeini(
            "[pytest]\n"
            "disable_test_id_escaping_and_forfeit_all_rights_to_community_support = true\n"
        )
    result = pytester.runpytest("-p", "no:cacheprovider", *ALL)
    result.assert_outcomes(passed=len(HOSTILE) + 1, failed=2)
    out = pytester.path / "out"
    report = json.loads((out / "r.json").read_text(encoding="utf-8"))
    ids = [t["nodeid"] for t in report["tests"]]
    assert len(ids) == len(HOSTILE) + 3
    assert ids[0] == "test_soft.py::test_broken"  # no score: worst
    by_id = {t["nodeid"]: t for t in report["tests"]}
    hostile_ids = [i for i in ids if "test_hostile" in i]
    if raw_ids:
        assert any("\n" in i for i in hostile_ids) and any("日本" in i for i in hostile_ids)
    vector = by_id["test_soft.py::test_vector"]
    assert (vector["score"], vector["cases"], vector["outcome"]) == (1.0, 3, "passed")
    over = by_id["test_soft.py::test_over"]
    assert (over["outcome"], over["threshold"]) == ("above threshold", 0.1)
    assert by_id["test_soft.py::test_broken"]["score"] is None
    expected_loss = 2 * 0.125 * sum(range(1, len(HOSTILE) + 1)) + 1.0 + 0.5
    assert report["loss"] == pytest.approx(expected_loss)
    assert report["fit"] is None and report["baseline"] is None
    assert report["run"]["versions"]["pytest-soft"]

    markdown = (out / "r.md").read_text(encoding="utf-8")
    for line in markdown.splitlines():
        if line.startswith("|"):
            assert len(cells(line)) == 6, line
    assert "<script>" not in markdown and "\x1b" not in markdown

    page = Page((out / "r.html").read_text(encoding="utf-8"))
    assert page.tags.count("script") == 1  # the page's own table sorter
    text = "".join(page.text)
    for nodeid in hostile_ids:
        assert visible(nodeid) in text

    bench = json.loads((out / "bench.json").read_text(encoding="utf-8"))
    assert bench[0]["name"] == "suite loss"
    assert {e["name"] for e in bench[1:]} == {i for i in ids if i != "test_soft.py::test_broken"}
    result.stdout.fnmatch_lines(
        [
            "*- soft JSON report: out*r.json -*",
            "*- soft Markdown summary: out*r.md -*",
            "*- soft HTML report: out*r.html -*",
            "*- soft benchmark JSON: out*bench.json -*",
        ]
    )


def test_json_report_names_the_commit_and_whether_the_tree_was_dirty(pytester):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    pytester.makepyfile(
        test_soft="from pytest_soft import soft_test\n\n@soft_test\ndef test_a():\n    return 1.0\n"
    )
    git(pytester.path, "init", "-q")
    git(pytester.path, "add", "test_soft.py")
    git(pytester.path, "commit", "-q", "-m", "first")
    commit = git(pytester.path, "rev-parse", "HEAD")
    pytester.runpytest("-p", "no:cacheprovider", "--soft-json", "r.json")
    run = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))["run"]
    assert run["git"]["commit"] == commit
    assert run["git"]["dirty"] is False  # untracked files (the report itself) do not count
    (pytester.path / "test_soft.py").write_text(
        "from pytest_soft import soft_test\n\n@soft_test\ndef test_a():\n    return 2.0\n",
        encoding="utf-8",
    )
    pytester.runpytest("-p", "no:cacheprovider", "--soft-json", "r.json")
    run = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))["run"]
    assert run["git"]["dirty"] is True


def test_without_git_the_commit_is_null(pytester, monkeypatch):
    pytester.makepyfile(
        test_soft="from pytest_soft import soft_test\n\n@soft_test\ndef test_a():\n    return 1.0\n"
    )
    monkeypatch.setenv("PATH", str(pytester.path / "no-such-dir"))
    monkeypatch.setenv("GIT_DIR", str(pytester.path / "not-a-repo"))
    result = pytester.runpytest("-p", "no:cacheprovider", "--soft-json", "r.json")
    assert result.ret == 0
    run = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))["run"]
    assert run["git"] == {"commit": None, "branch": None, "dirty": None}


FIT_IMPL = """
    from pytest_soft import Param, Parameters

    theta = Parameters(a=Param(0.0, bounds=(-10.0, 10.0)))
"""

FIT_TESTS = """
    from pytest_soft import soft_test
    import impl

    @soft_test
    def test_a():
        return (impl.theta.a - 3.0) ** 2

    @soft_test(weight=2.0)
    def test_b():
        return (impl.theta.a - 1.0) ** 2
"""


def test_after_a_fit_the_reports_show_before_and_after(pytester):
    pytester.makepyfile(impl=FIT_IMPL, test_soft=FIT_TESTS)
    pytester.syspathinsert()
    sys.modules.pop("impl", None)
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--fit", "--soft-report", "--soft-json", "r.json",
        "--soft-html", "r.html", "--soft-md", "r.md",
    )  # fmt: skip
    assert result.ret == 0
    table = None
    for index, line in enumerate(result.outlines):
        if line.strip("= ") == "soft report":
            table = result.outlines[index + 1 : index + 4]
    assert table is not None
    assert table[0].split() == [
        "before", "after", "change", "weight", "weighted", "threshold", "cases", "outcome", "test"
    ]  # fmt: skip
    # a = 5/3 minimises (a - 3)^2 + 2 (a - 1)^2
    assert table[1].split()[:3] == ["9", "1.77778", "-80.2%"]
    assert table[1].split()[-1] == "test_soft.py::test_a"
    result.stdout.fnmatch_lines(["suite loss 2.66667 (before the fit 11)"])

    report = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    fit = report["fit"]
    assert fit["method"] in {"lsq", "lbfgs"}
    assert fit["parameters"][0]["name"] == "impl.a"
    assert fit["parameters"][0]["before"] == 0.0
    assert fit["parameters"][0]["after"] == pytest.approx(5 / 3)
    assert fit["loss_before"] == 11.0
    assert fit["loss_after"] == pytest.approx(8 / 3)
    assert fit["improved"] is True and fit["written"] == ["impl.params.json"]
    assert len(fit["history"]) >= 1 and fit["history"][-1] == pytest.approx(8 / 3)
    assert fit["stop_reason"] and fit["seconds"] >= 0
    assert {t["nodeid"]: t["before"] for t in report["tests"]} == {
        "test_soft.py::test_a": 9.0,
        "test_soft.py::test_b": 1.0,
    }
    page = Page((pytester.path / "r.html").read_text(encoding="utf-8"))
    assert {"fit", "fit-parameters", "loss-curve"} <= page.ids
    assert "impl.a" in "".join(page.text)
    markdown = (pytester.path / "r.md").read_text(encoding="utf-8")
    assert "**Fit** (lsq)" in markdown or "**Fit** (lbfgs)" in markdown
    assert "| impl.a | 0 | 1.66667 |" in markdown


def test_xdist_gives_the_same_scores_in_the_json_report(pytester):
    pytester.makepyfile(test_soft=TESTS)
    serial = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--soft-json", "serial.json")
    parallel = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--soft-json", "parallel.json"
    )
    assert serial.ret == parallel.ret == pytest.ExitCode.TESTS_FAILED
    one = json.loads((pytester.path / "serial.json").read_text(encoding="utf-8"))
    two = json.loads((pytester.path / "parallel.json").read_text(encoding="utf-8"))
    assert two["run"]["workers"] == 2
    assert one["loss"] == two["loss"]
    assert one["counts"] == two["counts"]
    assert one["tests"] == two["tests"]  # same order too: worst first, then by node id


def test_reports_cost_nothing_when_off(pytester):
    pytester.makepyfile(
        test_soft="""
        from pytest_soft import soft_test

        @soft_test(tolerance="5%")
        def test_a():
            return 1.0
        """
    )
    pytester.makeconftest(
        """
        def pytest_sessionfinish(session):
            plugin = session.config.pluginmanager.get_plugin("soft-outputs")
            print("outputs plugin:", plugin is not None)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-s", "--junitxml", "j.xml")
    result.stdout.fnmatch_lines(["*outputs plugin: False"])
    xml = (pytester.path / "j.xml").read_text(encoding="utf-8")
    assert "soft_fingerprint" not in xml  # no source hashing either
    assert 'name="soft_tolerance" value="5%"' in xml
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-s", "--junitxml", "j.xml", "--soft-json", "r.json"
    )
    result.stdout.fnmatch_lines(["*outputs plugin: True"])
    assert "soft_fingerprint" in (pytester.path / "j.xml").read_text(encoding="utf-8")


def test_a_report_that_cannot_be_written_fails_the_run_with_a_message(pytester):
    pytester.makepyfile(
        test_soft="from pytest_soft import soft_test\n\n@soft_test\ndef test_a():\n    return 1.0\n"
    )
    (pytester.path / "blocker").write_text("a file, not a directory", encoding="utf-8")
    result = pytester.runpytest("-p", "no:cacheprovider", "--soft-md", "blocker/r.md")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["cannot write the Markdown summary blocker*r.md: *"])


# -- a real browser ------------------------------------------------------------------------------
# Headless Chromium (.ci/install-browser installs it): skipped where it is missing, except in CI
# (CI=true), where a missing browser fails the run instead of quietly skipping the check.

CHROMIUM = next(
    (p for p in ("/usr/bin/chromium", shutil.which("chromium") or "") if p and Path(p).exists()),
    None,
)
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--force-device-scale-factor=1", "--hide-scrollbars",
]  # fmt: skip

# Run at the end of a copy of the page: the charts' boxes and the page height, as JSON in the DOM.
MEASURE = """<script>
var boxes = Array.prototype.map.call(document.querySelectorAll("svg.chart"), function (svg) {
  var r = svg.getBoundingClientRect();
  return {section: svg.closest("section").id, left: r.left, top: r.top,
          width: r.width, height: r.height};
});
var out = document.createElement("pre");
out.id = "measured";
out.textContent = JSON.stringify({boxes: boxes, height: document.documentElement.scrollHeight});
document.body.appendChild(out);
</script>"""


@pytest.fixture
def chromium() -> str:
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("headless Chromium is not installed: run .ci/install-browser")
        pytest.skip("headless Chromium is not installed (.ci/install-browser installs it)")
    return CHROMIUM


def _browse(chromium: str, page: Path, tmp: Path, *args: str) -> str:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    done = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
    )
    return done.stdout + "\n" + done.stderr


def _with_script(page: Path, script: str, name: str) -> Path:
    """A copy of ``page`` with ``script`` run at the end of its body."""
    copy = page.with_name(name)
    html = page.read_text(encoding="utf-8")
    copy.write_text(html.replace("</body>", script + "\n</body>"), encoding="utf-8")
    return copy


def _dom(chromium: str, page: Path, tmp: Path) -> str:
    out = _browse(chromium, page, tmp, "--dump-dom")
    # Judged by the DOM it prints: Chromium may exit non-zero over a missing D-Bus or GPU.
    assert "<html" in out, out
    return out


def _column(dom: str, table_id: str, header: str) -> list[str]:
    """The cells of one column of a table in a dumped DOM, top to bottom."""
    table = re.search(rf'<table id="{table_id}".*?</table>', dom, re.S)
    assert table is not None, dom
    heads = re.findall(r"<th(?:\s[^>]*)?>(.*?)</th>", table.group(0), re.S)
    index = heads.index(header)
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(0), re.S)[1:]
    return [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)[index] for row in rows]


def _number(cell: str) -> float:
    return math.inf if cell == "-" else float(cell)


@pytest.fixture
def full_report(pytester) -> Path:
    """An HTML report with a fit, a baseline and a history of three runs."""
    pytester.makepyfile(
        impl=FIT_IMPL,
        test_soft=FIT_TESTS
        + TESTS.replace("import pytest", "import pytest\n    import numpy as np", 1),
    )
    pytester.syspathinsert()
    sys.modules.pop("impl", None)
    track = ("--soft-baseline", "base.json", "--soft-history", "hist.jsonl")
    pytester.runpytest("-p", "no:cacheprovider", *track, "--soft-update-baseline")
    pytester.runpytest("-p", "no:cacheprovider", *track)
    pytester.runpytest("-p", "no:cacheprovider", "--fit", *track, "--soft-html", "r.html")
    page = pytester.path / "r.html"
    assert page.exists()
    return page


def test_html_report_renders_and_draws_its_charts_in_headless_chromium(
    chromium, full_report, tmp_path
):
    from PIL import Image

    measured = _with_script(full_report, MEASURE, "measured.html")
    dom = _dom(chromium, measured, tmp_path)
    page = Page(dom)
    # the browser built the page we wrote: every section, every chart, no injected element
    assert {"summary", "worst", "fit", "loss-curve", "baseline", "trend", "tests"} <= page.ids
    assert {"score-table", "fit-parameters", "baseline-changes", "history-table"} <= page.ids
    assert page.tags.count("svg") == 3  # worst scores, loss curve, history
    assert page.tags.count("script") == 2  # the table sorter and the measuring script
    assert page.urls == []
    assert "test_soft.py::test_hostile[<script>alert(1)</script>]" in "".join(page.text)
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom, re.S)
    assert found is not None, dom
    layout = json.loads(html.unescape(found.group(1)))
    assert [box["section"] for box in layout["boxes"]] == ["worst", "fit", "trend"]

    height = min(int(layout["height"]) + 20, 8000)
    shot = tmp_path / "page.png"
    _browse(chromium, full_report, tmp_path, f"--screenshot={shot}", f"--window-size=1200,{height}")
    assert shot.exists(), "Chromium wrote no screenshot"
    image = Image.open(shot).convert("RGB")
    for box in layout["boxes"]:
        left, top = int(box["left"]), int(box["top"])
        right, bottom = int(box["left"] + box["width"]), int(box["top"] + box["height"])
        assert box["width"] > 100 and box["height"] > 50, box
        assert 0 <= left < right <= image.width and 0 <= top < bottom <= image.height, box
        region = image.crop((left, top, right, bottom))
        # bars (#5b8def) and lines and points (#0969da) are the page's only strong blues
        pixels = region.tobytes()
        blue = sum(
            1 for r, b in zip(pixels[0::3], pixels[2::3], strict=True) if b > 180 and b - r > 80
        )
        assert blue > 150, f"the chart in #{box['section']} looks blank ({blue} blue pixels)"
    # and outside the charts the page is mostly white (the screenshot is of the page, not noise)
    assert set(image.crop((0, 0, 40, 40)).tobytes()) == {255}


def test_html_tables_sort_by_the_clicked_column_in_headless_chromium(
    chromium, full_report, tmp_path
):
    before = _dom(chromium, full_report, tmp_path)
    original = _column(before, "score-table", "test")
    click = """<script>
var head = Array.prototype.filter.call(
  document.querySelectorAll("#score-table th"), function (th) { return th.textContent === "%s"; }
)[0];
for (var i = 0; i < %d; i++) { head.click(); }
</script>"""
    once = _dom(chromium, _with_script(full_report, click % ("after", 1), "up.html"), tmp_path)
    scores = [_number(cell) for cell in _column(once, "score-table", "after")]
    assert scores == sorted(scores) and len(set(scores)) > 2  # ascending, no score last
    assert 'aria-sort="ascending"' in once
    assert sorted(_column(once, "score-table", "test")) == sorted(original)  # rows move whole

    twice = _dom(chromium, _with_script(full_report, click % ("after", 2), "down.html"), tmp_path)
    scores = [_number(cell) for cell in _column(twice, "score-table", "after")]
    finite = [x for x in scores if x != math.inf]
    assert finite == sorted(finite, reverse=True)
    assert scores[len(finite) :] == [math.inf] * (len(scores) - len(finite))  # still last
    assert 'aria-sort="descending"' in twice


def test_a_change_from_a_zero_score_says_which_way_it_went():
    from pytest_soft.report import format_change

    assert format_change(0.0, 0.5) == "up from 0"
    assert format_change(0.0, -0.5) == "down from 0"
    assert format_change(0.0, 0.0) == "0%"
    assert format_change(2.0, 1.0) == "-50.0%"
    assert format_change(None, 1.0) == "-"
