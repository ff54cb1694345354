"""What the plugin's parts share about a run: the stash keys, the run state, and the names
under which a soft test's numbers travel in ``report.user_properties``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ._marker import SoftSpec
from .errors import SoftError

if TYPE_CHECKING:
    import functools

    from .fit import FitResult
    from .report import SoftResult

SPEC_KEY = pytest.StashKey[SoftSpec | SoftError]()
STATE_KEY = pytest.StashKey["SoftState"]()

# Names under which a soft test's numbers travel in report.user_properties: to xdist's
# controller, and into JUnit XML as <property> elements.
P_WEIGHT = "soft_weight"
P_THRESHOLD = "soft_threshold"
P_SCORE = "soft_score"
P_CASES = "soft_cases"
P_TOLERANCE = "soft_tolerance"  # the marker's regression tolerance, e.g. "5%,0.01"
P_FINGERPRINT = "soft_fingerprint"  # hash of the test's source, for baselines


@dataclass
class SoftState:
    """What the plugin knows about this run, kept on ``config.stash``."""

    results: dict[str, SoftResult] = field(default_factory=dict)
    # While the fit records soft tests: node id -> a call of the test body with its fixtures.
    capturing: dict[str, functools.partial[Any]] | None = None
    fit: FitResult | None = None
    fit_written: list[Path] = field(default_factory=list)
