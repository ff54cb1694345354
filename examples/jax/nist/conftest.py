"""The JAX NIST example's pytest settings: which start the run uses, shown in the header (the
start and the data come from examples/nist, through nist_data)."""

from __future__ import annotations

from pathlib import Path

import pytest
from nist_data import strd

HERE = Path(__file__).resolve().parent


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = [f"nist (jax): NIST start {strd.selected_start()} ({strd.START_VARIABLE}=1 or 2)"]
    files = sorted(p.name for p in HERE.glob("*.params.json"))
    if files:
        lines.append(
            f"nist (jax): parameter files in use, so these problems start from them instead: "
            f"{', '.join(files)} (delete them to start from the NIST start)"
        )
    return lines
