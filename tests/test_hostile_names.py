"""Hostile names in what the terminal shows, and hostile parameter names everywhere.

tests/test_reports.py runs every file report over hostile test ids. Here: the terminal sections
(soft scores, --soft-report, the fit section) with raw ids, and parameter names holding HTML,
Markdown, ANSI escapes, newlines and non-ASCII, through the terminal, the parameter file and
every report. Each shows the name faithfully (JSON: exactly; elsewhere: control characters as
escapes) and safely (no terminal escape, no HTML tag, no broken Markdown table).
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pytest_soft.parameters import load_parameter_file
from pytest_soft.report import visible

ESC = "\x1b"
IDS = ["\x1b[31mred\x1b[0m", "<script>alert(1)</script>", "a|b\nc", "naïve 日本 ✓", "**b** `t`"]
# Parameter names: anything a dict key can be (Parameters(**{...})), but for the reserved ones.
NAMES = ["p\x1b[2J<b>bold</b>", "q|r\ns", "日本語", "t`x`*y*[l](u)"]

RAW_IDS_INI = (
    "[pytest]\ndisable_test_id_escaping_and_forfeit_all_rights_to_community_support = true\n"
)

TESTS = f"""\
import pytest
from pytest_soft import soft_test
import impl

IDS = {IDS!r}


@soft_test
@pytest.mark.parametrize("k", range(len(IDS)), ids=IDS)
def test_f(k):
    return (impl.f(k + 1.0) - 2.0 * (k + 1.0)) ** 2 + 0.125 * (k + 1)
"""

IMPL = f"""\
from pytest_soft import Parameters

NAMES = {NAMES!r}
theta = Parameters(**{{name: 1.0 for name in NAMES}})


def f(x):
    return theta[NAMES[0]] * x + theta[NAMES[1]] - theta[NAMES[2]] + 0.0 * theta[NAMES[3]]
"""

FULL_NAMES = [f"impl.{name}" for name in NAMES]


def hostile_project(pytester: pytest.Pytester) -> None:
    pytester.makeini(RAW_IDS_INI)
    pytester.makepyfile(impl=IMPL, test_soft=TESTS)


def nodeid(test_id: str) -> str:
    return f"test_soft.py::test_f[{test_id}]"


def terminal_text(result: pytest.RunResult) -> str:
    """Our sections of the output: from the fit section (or the soft report) to the end, minus
    pytest's own lines (with raw ids pytest itself prints them raw: its choice, not ours)."""
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if "soft fit" in line or "soft report" in line)
    ours = [line for line in lines[start:] if not line.startswith(("test_soft.py", "FAILED"))]
    return "\n".join(ours)


def test_terminal_sections_escape_hostile_ids_one_test_per_line(pytester, section):
    hostile_project(pytester)
    result = pytester.runpytest("-p", "no:cacheprovider", "--soft-report")
    assert result.ret == pytest.ExitCode.OK
    for title in ("soft report", "soft scores"):
        lines = section(result, title)
        assert lines is not None
        text = "\n".join(lines)
        assert ESC not in text
        for test_id in IDS:
            shown = visible(nodeid(test_id))
            # exactly one line names each test: a newline in an id does not split its row
            assert sum(line.endswith(shown) for line in lines) == 1, (title, shown, lines)
    table = section(result, "soft report")
    assert len(table) == 1 + len(IDS) + 1  # header, one row per test, the suite loss


def test_hostile_parameter_names_in_the_fit_section_and_the_parameter_file(pytester, section):
    hostile_project(pytester)
    result = pytester.runpytest("-p", "no:cacheprovider", "--fit")
    assert result.ret == pytest.ExitCode.OK
    fit = section(result, "soft fit")
    text = "\n".join(fit)
    assert ESC not in text
    for full_name in FULL_NAMES:
        # one line per parameter, its name shown with escapes, padded like the others
        assert sum(line.startswith(f"  {visible(full_name)} ") for line in fit) == 1, fit
    # The parameter file holds the names exactly (JSON escapes them), and loads back.
    stored = load_parameter_file(pytester.path / "impl.params.json")
    assert sorted(stored) == sorted(NAMES)
    raw = (pytester.path / "impl.params.json").read_bytes()
    assert b"\x1b" not in raw and b"\n  }" in raw  # still one parameter a line


class _Page(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _table_cells(line: str) -> list[str]:
    """The cells of a GitHub table row: split at pipes that are not backslash-escaped."""
    cells, current, escaped = [], "", False
    for ch in line.strip()[1:-1]:
        if ch == "|" and not escaped:
            cells.append(current)
            current = ""
        else:
            current += ch
        escaped = ch == "\\" and not escaped
    return [*cells, current]


def test_hostile_parameter_names_in_every_report(pytester: pytest.Pytester) -> None:
    hostile_project(pytester)
    reports = ["--soft-json", "r.json", "--soft-md", "r.md", "--soft-html", "r.html"]
    result = pytester.runpytest("-p", "no:cacheprovider", "--fit", *reports)
    assert result.ret == pytest.ExitCode.OK
    path = Path(pytester.path)

    # JSON: the exact names and ids (JSON escapes what needs escaping).
    report = json.loads((path / "r.json").read_text(encoding="utf-8"))
    assert sorted(p["name"] for p in report["fit"]["parameters"]) == sorted(FULL_NAMES)
    assert sorted(t["nodeid"] for t in report["tests"]) == sorted(map(nodeid, IDS))

    # Markdown: no raw escape, no HTML, and every table row keeps its number of cells.
    markdown = (path / "r.md").read_text(encoding="utf-8")
    assert ESC not in markdown and "<b>" not in markdown and "<script>" not in markdown
    tables = [line for line in markdown.splitlines() if line.startswith("|")]
    assert tables
    for line in tables:
        # the parameter table (with its standard errors after a least-squares fit), the tests
        assert len(_table_cells(line)) in (4, 6), line
    params_rows = [line for line in tables if line.startswith("| impl.")]
    assert len(params_rows) == len(NAMES)
    assert all(len(_table_cells(row)) == 4 for row in params_rows)

    # HTML: only the page's own tags; the names appear as text, control characters as escapes.
    page = _Page((path / "r.html").read_text(encoding="utf-8"))
    assert page.tags.count("script") == 1 and "b" not in page.tags  # the table sorter alone
    text = "".join(page.text)
    assert ESC not in text
    for full_name in FULL_NAMES:
        assert visible(full_name) in text
    for test_id in IDS:
        assert visible(nodeid(test_id)) in text
