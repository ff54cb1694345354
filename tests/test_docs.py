"""The documentation pages describe the options and ini settings the plugin really has.

The reference tables live in docs/ (fitting.md and reports.md for the options, ini.md for the
ini settings); `pytest --help` is what the plugin registers. An option or setting added to the
code without a row, or a row left behind by one that was removed or renamed, fails here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
GROUP = "soft unit tests (pytest-soft):"


def _table_rows(page: str, header: str) -> list[list[str]]:
    """The cells of the rows of the Markdown table whose header row starts with `header`."""
    lines = (DOCS / page).read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def _code_spans(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


@pytest.fixture(scope="module")
def help_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    # A subprocess in an empty folder, so that no project configuration shapes the help.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path_factory.mktemp("help"),
    )
    return result.stdout


def _options(help_text: str) -> dict[str, str | None]:
    """The plugin's options, each with the ini setting its help names (or None)."""
    group = help_text.split(GROUP, 1)[1].split("\n\n", 1)[0]
    options: dict[str, str | None] = {}
    for block in re.split(r"\n(?=  --)", group):
        match = re.match(r"\s*(--[a-z-]+)", block)
        if match is None:
            continue
        ini = re.search(r"\(ini:\s+(soft_[a-z_]+)\)", " ".join(block.split()))
        options[match.group(1)] = ini.group(1) if ini else None
    return options


def _documented_options() -> set[str]:
    documented = set()
    for page in ("fitting.md", "reports.md"):
        for row in _table_rows(page, "| option |"):
            documented.add(_code_spans(row[0])[0].split()[0])
    return documented


def test_every_option_has_a_row_in_the_docs_and_every_row_an_option(help_text: str) -> None:
    options = _options(help_text)
    assert "--fit" in options and "--soft-json" in options  # the help was parsed at all
    assert _documented_options() == set(options)


def test_the_ini_page_lists_every_ini_setting_with_its_option(help_text: str) -> None:
    registered = set(re.findall(r"^  (soft_[a-z_]+) \(", help_text, flags=re.MULTILINE))
    documented: dict[str, str | None] = {}
    for setting_cell, option_cell, _default in _table_rows("ini.md", "| setting |"):
        settings = _code_spans(setting_cell)
        same_as = _code_spans(option_cell) or [None] * len(settings)
        assert len(same_as) == len(settings), setting_cell
        documented.update(zip(settings, same_as))
    assert set(documented) == registered
    # each documented pairing is the one the option's own help names
    for option, ini in _options(help_text).items():
        if ini is not None:
            assert documented[ini] == option
    assert documented["soft_summary_worst"] is None
