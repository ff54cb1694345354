"""What the plugin's parts share about a run: the stash keys, the run state, and the record
of a soft test's numbers that travels in ``report.user_properties``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from ._marker import SoftSpec
from .errors import SoftError

if TYPE_CHECKING:
    import functools

    from .fit import FitResult
    from .report import SoftResult

SPEC_KEY = pytest.StashKey[SoftSpec | SoftError]()
STATE_KEY = pytest.StashKey["SoftState"]()


@dataclass(frozen=True)
class SoftRecord:
    """One soft test's numbers as they travel in ``report.user_properties``: to xdist's
    controller, and into JUnit XML as ``<property>`` elements named ``soft_<field>``.

    The spec's numbers are written at setup (so a test that fails there still reports its
    weight), the score at the call; :meth:`from_properties` reads them back, in one place."""

    weight: float
    threshold: float | None = None
    #: The marker's regression tolerance, e.g. "5%,0.01".
    tolerance: str | None = None
    #: A hash of the test's source, for baselines.
    fingerprint: str | None = None
    score: float | None = None
    #: The number of per-case scores a vectorised soft test returned.
    cases: int | None = None

    PREFIX: ClassVar[str] = "soft_"

    @staticmethod
    def spec_properties(spec: SoftSpec, fingerprint: str | None) -> list[tuple[str, Any]]:
        return _present(
            weight=spec.weight,
            threshold=spec.threshold,
            tolerance=spec.tolerance,
            fingerprint=fingerprint,
        )

    @staticmethod
    def score_properties(score: float, cases: int | None) -> list[tuple[str, Any]]:
        return _present(score=score, cases=cases)

    @classmethod
    def from_properties(cls, properties: Iterable[tuple[str, Any]]) -> SoftRecord | None:
        """The record in a report's user properties; None for an ordinary test."""
        found = {
            name[len(cls.PREFIX) :]: value
            for name, value in properties
            if name.startswith(cls.PREFIX) and name[len(cls.PREFIX) :] in _FIELDS
        }
        if "weight" not in found:
            return None
        for name in ("weight", "threshold", "score"):
            if found.get(name) is not None:
                found[name] = float(found[name])
        return cls(**found)


_FIELDS = ("weight", "threshold", "tolerance", "fingerprint", "score", "cases")


def _present(**values: Any) -> list[tuple[str, Any]]:
    return [(SoftRecord.PREFIX + k, v) for k, v in values.items() if v is not None]


@dataclass
class SoftState:
    """What the plugin knows about this run, kept on ``config.stash``."""

    results: dict[str, SoftResult] = field(default_factory=dict)
    # While the fit records soft tests: node id -> a call of the test body with its fixtures.
    capturing: dict[str, functools.partial[Any]] | None = None
    fit: FitResult | None = None
    fit_written: list[Path] = field(default_factory=list)
    #: What the report files found that fails a run pytest found fine: regressions beyond
    #: tolerance, files that could not be written (set when they are written).
    soft_failures: bool = False
    #: Ctrl-C came while the soft files were being written.
    writing_interrupted: bool = False
