"""The NIST example's pytest settings: which start the run uses, and one problem per fit."""

from __future__ import annotations

from pathlib import Path

import pytest
import strd

HERE = Path(__file__).resolve().parent


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = [f"nist: NIST start {strd.selected_start()} ({strd.START_VARIABLE}=1 or 2)"]
    files = sorted(p.name for p in HERE.glob("*.params.json"))
    if files:
        lines.append(
            f"nist: parameter files in use, so these problems start from them instead: "
            f"{', '.join(files)} (delete them to start from the NIST start)"
        )
    return lines


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("soft_fit", False):
        return
    problems = sorted({item.path.name for item in items if item.path.parent == HERE})
    if len(problems) > 1:
        raise pytest.UsageError(
            f"examples/nist: fit one problem at a time, e.g. pytest --fit {problems[0]} "
            f"(selected: {', '.join(problems)}). The problems share no parameter, and one fit "
            "of their summed losses (from 1.6e-08 to 5642) stops when the sum has converged, "
            "not each problem."
        )
