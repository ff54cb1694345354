"""The NIST StRD problems of examples/nist as :class:`~.mgh.Problem` objects: the example's
model functions and data files, both NIST starts, and the certified residual sum of squares."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np

from .mgh import Problem

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "nist"

#: The certified sums of squares have 10-11 digits; a fit with 6 correct digits in every
#: parameter (NIST's usual bar) agrees with them to about 12, and the least accurate solver
#: run on this set (scipy with its default tolerances) to 1e-9.
NIST_RTOL = 1e-8


def nist_problems() -> list[Problem]:
    if str(EXAMPLE) not in sys.path:
        sys.path.insert(0, str(EXAMPLE))
    strd = importlib.import_module("strd")
    problems = []
    for name in strd.PROBLEMS:
        module = importlib.import_module(name.lower())
        data = module.PROBLEM
        x = np.array([o[0] for o in data.observations])
        y = np.array([o[1] for o in data.observations])

        def residuals(b, model=module.model, x=x, y=y):
            return model(x, *b) - y

        problems.append(
            Problem(
                name,
                "NIST StRD",
                residuals,
                {"1": data.starts[0], "2": data.starts[1]},
                data.certified_rss,
                NIST_RTOL,
                extra={"lre": data.lre, "names": data.names},
            )
        )
    return problems
