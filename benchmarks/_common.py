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
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            print(
                f"threadpool  {pool['user_api']}: {pool['internal_api']} "
                f"{pool.get('version')}, {pool['num_threads']} threads"
            )
    except ImportError:
        print("threadpool  (threadpoolctl not installed: BLAS threads unknown)")
    print(f"load        {load()} (1, 5, 15 min load averages at the start)")
    print()


def load() -> str:
    try:
        return ", ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "unknown"
