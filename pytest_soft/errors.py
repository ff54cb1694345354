"""The exceptions and warnings of pytest-soft.

Every error the plugin raises on purpose is a :class:`SoftError`; its message is written for the
person who will read it: it names the test, file or parameter at fault and says what to do.
"""

from __future__ import annotations

__all__ = [
    "FitError",
    "NegativeScore",
    "NothingToFit",
    "ParameterError",
    "ParameterFileError",
    "ScoreError",
    "SoftError",
    "SoftTestTimeout",
    "SoftWarning",
    "ToleranceError",
    "TracingError",
    "TrackingFileError",
    "WorkerError",
]


class SoftError(Exception):
    """Base class of every error pytest-soft raises on purpose."""


class ParameterError(SoftError):
    """A parameter declaration or assignment that cannot be used."""


class ParameterFileError(ParameterError):
    """A parameter file that cannot be read, parsed or written."""


class ScoreError(SoftError):
    """A soft test returned something that is not a valid score."""


class FitError(SoftError):
    """A fit that cannot start or cannot go on."""


class NothingToFit(FitError):
    """The selection gives the fit nothing to do (no soft tests, or no parameters they read)."""


class TracingError(FitError):
    """The implementation cannot be differentiated by autograd as written."""


class WorkerError(FitError):
    """A pytest-xdist worker that cannot take its part in a fit: it crashed or was killed,
    collected other tests than the rest, or read other parameter values."""


class NegativeScore(FitError):
    """A score below 0, which least squares cannot take."""


class SoftTestTimeout(SoftError):
    """A soft test body ran past pytest-timeout's limit while the fit evaluated it."""


class SoftWarning(UserWarning):
    """Something pytest-soft noticed that deserves a look but does not stop the run."""


class ToleranceError(SoftError, ValueError):
    """A regression tolerance that does not follow the grammar (``5%``, ``0.01``, ``5%,0.01``)."""


class TrackingFileError(SoftError):
    """A report, baseline or history file that cannot be read, parsed or written."""
