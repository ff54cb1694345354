"""pytest-soft: soft unit tests for pytest.

A soft test returns a score (a loss: 0 is perfect) instead of passing or failing; an
implementation declares the :class:`Parameters` that ``pytest --fit`` tunes with autograd.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from ._marker import soft_test
from .errors import SoftError, SoftWarning

if TYPE_CHECKING:
    from . import scores
    from .parameters import Param, Parameters

__all__ = ["Param", "Parameters", "SoftError", "SoftWarning", "__version__", "scores", "soft_test"]

# pyproject.toml holds the version; the installed package's metadata carries it here.
try:
    __version__ = version("pytest-soft")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

# numpy and autograd load on first use, so that the plugin costs nothing in suites without
# soft tests.
_LAZY = {"Param": "parameters", "Parameters": "parameters", "scores": None}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'pytest_soft' has no attribute {name!r}")
    import importlib

    module_name = _LAZY[name]
    if module_name is None:
        return importlib.import_module(f"{__name__}.{name}")
    return getattr(importlib.import_module(f"{__name__}.{module_name}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
