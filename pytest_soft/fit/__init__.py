"""The fit engine: soft tests become a differentiable loss of the parameters, and an optimiser
tunes the parameters until the loss converges.

No pytest here. A :class:`Term` is anything that computes a score by reading parameters at call
time; :func:`fit` evaluates the terms with values substituted into the parameter groups,
differentiates them through a backend (autograd), and returns a :class:`FitResult`. The pytest
plugin builds terms from soft tests; a script or notebook can build them by hand.

The modules, in the order data flows through them: ``_layout`` (what to fit), ``_problem``
(the flat vector and exact evaluation, behind a ``Backend``; ``_autograd`` is the one there
is), ``_verify`` (fast paths proved against exact evaluation), ``_starts`` (where restarts
begin), ``_optimisers`` (adapters to scipy and the first-order loop, each ending in a typed
``Stop``), ``_diagnostics`` (tracing hints, the gradient check) and ``_planner`` (the whole
fit, block by block, verified before it is returned). ``_remote`` evaluates terms that live in
other processes (pytest-xdist workers) behind the same ``Backend`` interface.
"""

from ..errors import NothingToFit, TracingError
from ._model import (
    DEFAULT_MAX_ITER,
    DEFAULT_TOL,
    METHODS,
    MIN_IMPROVEMENT_ABS,
    MIN_IMPROVEMENT_REL,
    FitResult,
    ParamChange,
    Progress,
    Term,
    WorkerStats,
    improved_enough,
    split_holdout,
)
from ._planner import fit
from ._stops import Stop, StopKind
from ._uncertainty import Uncertainty
from ._verify import CASE_RTOL, cases_disagree

__all__ = [
    "CASE_RTOL",
    "DEFAULT_MAX_ITER",
    "DEFAULT_TOL",
    "METHODS",
    "MIN_IMPROVEMENT_ABS",
    "MIN_IMPROVEMENT_REL",
    "FitResult",
    "NothingToFit",
    "ParamChange",
    "Progress",
    "Stop",
    "StopKind",
    "Term",
    "TracingError",
    "Uncertainty",
    "WorkerStats",
    "cases_disagree",
    "fit",
    "improved_enough",
    "split_holdout",
]
