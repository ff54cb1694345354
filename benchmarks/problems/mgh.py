"""Problems 1-18 of Moré, Garbow and Hillstrom, "Testing Unconstrained Optimization Software",
ACM Transactions on Mathematical Software 7(1), 17-41 (1981): the nonlinear least-squares
problems, each written here from its published formula, with its published standard starting
point and the published minimum of the sum of squares f = sum f_i(x)^2.

Each residual function takes the parameters as a sequence of scalars (plain floats, or the
values autograd traces) and returns the residual vector built with autograd.numpy, so the same
function serves the pytest-soft fit (one soft-test score per squared residual) and scipy.

Where the paper publishes a second, local minimum that good local solvers reach from the
standard start, the problem lists it in ``local_minima``; reaching it counts as reaching a
published minimum, and the benchmark says which one was reached.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import autograd.numpy as anp
import numpy as np

Residuals = Callable[[Sequence], anp.ndarray]


@dataclass(frozen=True)
class Problem:
    name: str
    source: str
    residuals: Residuals
    #: Starting points, by label ("1" for MGH's standard start; NIST's "1" and "2").
    starts: dict[str, tuple[float, ...]]
    #: The published minimum of the sum of squares (0 where the residuals can all vanish).
    f_star: float
    #: Relative agreement with f_star that counts as reaching it (the published digits).
    rtol: float
    #: Published local minima (f values) that local solvers reach from the standard start.
    local_minima: tuple[float, ...] = ()
    #: Published minimisers, to check the formulas: (x, f(x), exact), where ``exact`` is False
    #: for an x the paper gives to a few digits only (``11.41...``).
    minimisers: tuple[tuple[tuple[float, ...], float, bool], ...] = ()
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(next(iter(self.starts.values())))

    def sum_of_squares(self, x: Sequence[float]) -> float:
        r = np.asarray(self.residuals(list(x)), dtype=float)
        return float(np.dot(r, r))


def _rosenbrock(x):
    x1, x2 = x
    return anp.array([10.0 * (x2 - x1**2), 1.0 - x1])


def _freudenstein_roth(x):
    x1, x2 = x
    return anp.array(
        [
            -13.0 + x1 + ((5.0 - x2) * x2 - 2.0) * x2,
            -29.0 + x1 + ((x2 + 1.0) * x2 - 14.0) * x2,
        ]
    )


def _powell_badly_scaled(x):
    x1, x2 = x
    return anp.array([1e4 * x1 * x2 - 1.0, anp.exp(-x1) + anp.exp(-x2) - 1.0001])


def _brown_badly_scaled(x):
    x1, x2 = x
    return anp.array([x1 - 1e6, x2 - 2e-6, x1 * x2 - 2.0])


_BEALE_Y = np.array([1.5, 2.25, 2.625])


def _beale(x):
    x1, x2 = x
    i = np.arange(1, 4)
    return _BEALE_Y - x1 * (1.0 - x2**i)


def _jennrich_sampson(x, m: int = 10):
    x1, x2 = x
    i = np.arange(1, m + 1, dtype=float)
    return 2.0 + 2.0 * i - (anp.exp(i * x1) + anp.exp(i * x2))


def _helical_valley(x):
    x1, x2, x3 = x
    # theta as published: arctan(x2/x1)/(2 pi), plus 1/2 where x1 < 0 (undefined at x1 = 0).
    theta = anp.arctan(x2 / x1) / (2.0 * math.pi) + anp.where(x1 < 0, 0.5, 0.0)
    return anp.array([10.0 * (x3 - 10.0 * theta), 10.0 * (anp.sqrt(x1**2 + x2**2) - 1.0), x3])


_BARD_Y = np.array(
    [0.14, 0.18, 0.22, 0.25, 0.29, 0.32, 0.35, 0.39, 0.37, 0.58, 0.73, 0.96, 1.34, 2.10, 4.39]
)


def _bard(x):
    x1, x2, x3 = x
    u = np.arange(1, 16, dtype=float)
    v = 16.0 - u
    w = np.minimum(u, v)
    return _BARD_Y - (x1 + u / (v * x2 + w * x3))


_GAUSSIAN_Y = np.array(
    [
        0.0009, 0.0044, 0.0175, 0.0540, 0.1295, 0.2420, 0.3521, 0.3989,
        0.3521, 0.2420, 0.1295, 0.0540, 0.0175, 0.0044, 0.0009,
    ]
)  # fmt: skip


def _gaussian(x):
    x1, x2, x3 = x
    t = (8.0 - np.arange(1, 16)) / 2.0
    return x1 * anp.exp(-x2 * (t - x3) ** 2 / 2.0) - _GAUSSIAN_Y


_MEYER_Y = np.array(
    [
        34780.0, 28610.0, 23650.0, 19630.0, 16370.0, 13720.0, 11540.0, 9744.0,
        8261.0, 7030.0, 6005.0, 5147.0, 4427.0, 3820.0, 3307.0, 2872.0,
    ]
)  # fmt: skip


def _meyer(x):
    x1, x2, x3 = x
    t = 45.0 + 5.0 * np.arange(1, 17)
    return x1 * anp.exp(x2 / (t + x3)) - _MEYER_Y


GULF_M = 99


def _gulf(x, m: int = GULF_M):
    x1, x2, x3 = x
    t = np.arange(1, m + 1) / 100.0
    y = 25.0 + (-50.0 * np.log(t)) ** (2.0 / 3.0)
    return anp.exp(-(anp.abs(y - x2) ** x3) / x1) - t


def _box_3d(x, m: int = 10):
    x1, x2, x3 = x
    t = 0.1 * np.arange(1, m + 1)
    return anp.exp(-t * x1) - anp.exp(-t * x2) - x3 * (np.exp(-t) - np.exp(-10.0 * t))


def _powell_singular(x):
    x1, x2, x3, x4 = x
    return anp.array(
        [
            x1 + 10.0 * x2,
            math.sqrt(5.0) * (x3 - x4),
            (x2 - 2.0 * x3) ** 2,
            math.sqrt(10.0) * (x1 - x4) ** 2,
        ]
    )


def _wood(x):
    x1, x2, x3, x4 = x
    return anp.array(
        [
            10.0 * (x2 - x1**2),
            1.0 - x1,
            math.sqrt(90.0) * (x4 - x3**2),
            1.0 - x3,
            math.sqrt(10.0) * (x2 + x4 - 2.0),
            (x2 - x4) / math.sqrt(10.0),
        ]
    )


_KOWALIK_Y = np.array(
    [0.1957, 0.1947, 0.1735, 0.1600, 0.0844, 0.0627, 0.0456, 0.0342, 0.0323, 0.0235, 0.0246]
)
_KOWALIK_U = np.array([4.0, 2.0, 1.0, 0.5, 0.25, 0.167, 0.125, 0.1, 0.0833, 0.0714, 0.0625])


def _kowalik_osborne(x):
    x1, x2, x3, x4 = x
    u = _KOWALIK_U
    return _KOWALIK_Y - x1 * (u**2 + u * x2) / (u**2 + u * x3 + x4)


def _brown_dennis(x, m: int = 20):
    x1, x2, x3, x4 = x
    t = np.arange(1, m + 1) / 5.0
    return (x1 + t * x2 - np.exp(t)) ** 2 + (x3 + x4 * np.sin(t) - np.cos(t)) ** 2


_OSBORNE1_Y = np.array(
    [
        0.844, 0.908, 0.932, 0.936, 0.925, 0.908, 0.881, 0.850, 0.818, 0.784, 0.751,
        0.718, 0.685, 0.658, 0.628, 0.603, 0.580, 0.558, 0.538, 0.522, 0.506, 0.490,
        0.478, 0.467, 0.457, 0.448, 0.438, 0.431, 0.424, 0.420, 0.414, 0.411, 0.406,
    ]
)  # fmt: skip


def _osborne1(x):
    x1, x2, x3, x4, x5 = x
    t = 10.0 * np.arange(33)
    return _OSBORNE1_Y - (x1 + x2 * anp.exp(-t * x4) + x3 * anp.exp(-t * x5))


def _biggs_exp6(x, m: int = 13):
    x1, x2, x3, x4, x5, x6 = x
    t = 0.1 * np.arange(1, m + 1)
    y = np.exp(-t) - 5.0 * np.exp(-10.0 * t) + 3.0 * np.exp(-4.0 * t)
    return x3 * anp.exp(-t * x1) - x4 * anp.exp(-t * x2) + x6 * anp.exp(-t * x5) - y


#: The paper gives nonzero minima to six significant digits.
_SIX_DIGITS = 1e-5

PROBLEMS: tuple[Problem, ...] = (
    Problem(
        "Rosenbrock",
        "MGH 1",
        _rosenbrock,
        {"1": (-1.2, 1.0)},
        0.0,
        _SIX_DIGITS,
        minimisers=(((1.0, 1.0), 0.0, True),),
    ),
    Problem(
        "FreudensteinRoth",
        "MGH 2",
        _freudenstein_roth,
        {"1": (0.5, -2.0)},
        0.0,
        _SIX_DIGITS,
        local_minima=(48.9842,),
        minimisers=(((5.0, 4.0), 0.0, True), ((11.41, -0.8968), 48.9842, False)),
        note="the published local minimum 48.9842 at (11.41..., -0.8968...) is what local "
        "solvers reach from the standard start",
    ),
    Problem(
        "PowellBadlyScaled",
        "MGH 3",
        _powell_badly_scaled,
        {"1": (0.0, 1.0)},
        0.0,
        _SIX_DIGITS,
        minimisers=(((1.098e-5, 9.106), 0.0, False),),
    ),
    Problem(
        "BrownBadlyScaled",
        "MGH 4",
        _brown_badly_scaled,
        {"1": (1.0, 1.0)},
        0.0,
        _SIX_DIGITS,
        minimisers=(((1e6, 2e-6), 0.0, True),),
    ),
    Problem(
        "Beale",
        "MGH 5",
        _beale,
        {"1": (1.0, 1.0)},
        0.0,
        _SIX_DIGITS,
        minimisers=(((3.0, 0.5), 0.0, True),),
    ),
    Problem(
        "JennrichSampson",
        "MGH 6 (m=10)",
        _jennrich_sampson,
        {"1": (0.3, 0.4)},
        124.362,
        _SIX_DIGITS,
        minimisers=(((0.2578, 0.2578), 124.362, False),),
    ),
    Problem(
        "HelicalValley",
        "MGH 7",
        _helical_valley,
        {"1": (-1.0, 0.0, 0.0)},
        0.0,
        _SIX_DIGITS,
        minimisers=(((1.0, 0.0, 0.0), 0.0, True),),
    ),
    Problem(
        "Bard",
        "MGH 8",
        _bard,
        {"1": (1.0, 1.0, 1.0)},
        8.21487e-3,
        _SIX_DIGITS,
    ),
    Problem(
        "Gaussian",
        "MGH 9",
        _gaussian,
        {"1": (0.4, 1.0, 0.0)},
        1.12793e-8,
        _SIX_DIGITS,
    ),
    Problem(
        "Meyer",
        "MGH 10",
        _meyer,
        {"1": (0.02, 4000.0, 250.0)},
        87.9458,
        _SIX_DIGITS,
    ),
    Problem(
        "GulfRD",
        f"MGH 11 (m={GULF_M})",
        _gulf,
        {"1": (5.0, 2.5, 0.15)},
        0.0,
        _SIX_DIGITS,
        minimisers=(((50.0, 25.0, 1.5), 0.0, True),),
        note="the printed residual reads |y_i m i x_2|, a misprint: the published minimiser "
        "(50, 25, 1.5) is a zero of exp(-|y_i - x_2|^x_3 / x_1) - t_i, used here",
    ),
    Problem(
        "Box3D",
        "MGH 12 (m=10)",
        _box_3d,
        {"1": (0.0, 10.0, 20.0)},
        0.0,
        _SIX_DIGITS,
        # f = 0 at (1, 10, 1), (10, 1, -1) and wherever x1 = x2 and x3 = 0.
        minimisers=(
            ((1.0, 10.0, 1.0), 0.0, True),
            ((10.0, 1.0, -1.0), 0.0, True),
            ((3.0, 3.0, 0.0), 0.0, True),
        ),
    ),
    Problem(
        "PowellSingular",
        "MGH 13",
        _powell_singular,
        {"1": (3.0, -1.0, 0.0, 1.0)},
        0.0,
        _SIX_DIGITS,
        minimisers=(((0.0, 0.0, 0.0, 0.0), 0.0, True),),
    ),
    Problem(
        "Wood",
        "MGH 14",
        _wood,
        {"1": (-3.0, -1.0, -3.0, -1.0)},
        0.0,
        _SIX_DIGITS,
        minimisers=(((1.0, 1.0, 1.0, 1.0), 0.0, True),),
    ),
    Problem(
        "KowalikOsborne",
        "MGH 15",
        _kowalik_osborne,
        {"1": (0.25, 0.39, 0.415, 0.39)},
        3.07505e-4,
        _SIX_DIGITS,
    ),
    Problem(
        "BrownDennis",
        "MGH 16 (m=20)",
        _brown_dennis,
        {"1": (25.0, 5.0, -5.0, -1.0)},
        85822.2,
        _SIX_DIGITS,
    ),
    Problem(
        "Osborne1",
        "MGH 17",
        _osborne1,
        {"1": (0.5, 1.5, -1.0, 0.01, 0.02)},
        5.46489e-5,
        _SIX_DIGITS,
    ),
    Problem(
        "BiggsEXP6",
        "MGH 18 (m=13)",
        _biggs_exp6,
        {"1": (1.0, 2.0, 1.0, 1.0, 1.0, 1.0)},
        0.0,
        _SIX_DIGITS,
        local_minima=(5.65565e-3,),
        minimisers=(((1.0, 10.0, 1.0, 5.0, 4.0, 3.0), 0.0, True),),
        note="the paper also publishes the local minimum 5.65565e-3; reaching it would count",
    ),
)
