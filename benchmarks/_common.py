"""What the benchmark scripts share: the environment header every run prints first."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys


def print_environment() -> None:
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    print(f"python      {platform.python_version()} ({sys.executable})")
    print(f"platform    {platform.platform()}, {os.cpu_count()} CPUs")
    for name in ("numpy", "autograd", "scipy", "pytest", "pytest-soft", "threadpoolctl"):
        print(f"{name:<12}{version(name)}")
    for line in blas_lines():
        print(line)
    print(f"load        {load()} (1, 5, 15 min load averages at the start)")
    print()


def load() -> str:
    try:
        return ", ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def blas_lines() -> list[str]:
    """The BLAS libraries this process really uses, one line each, read through threadpoolctl
    once numpy and scipy's linear algebra are imported: threadpoolctl sees only libraries
    already loaded, so asked before numpy it reports none."""
    import numpy  # noqa: F401
    import scipy.linalg  # noqa: F401  (scipy may bring a BLAS of its own)

    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ["blas        unknown (threadpoolctl is not installed)"]
    lines = [
        f"blas        {pool['internal_api']} {pool.get('version')}, "
        f"{pool['num_threads']} threads, {os.path.basename(pool['filepath'])}"
        for pool in threadpool_info()
        if pool["user_api"] == "blas"
    ]
    return lines or ["blas        none found loaded after importing numpy and scipy.linalg"]
