"""Run metadata: when a run ran, on which commit of which work tree, with which versions; and the
fingerprint of a test's source that tells a changed test from a worse one. No numpy import.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import inspect
import os
import platform
import re
import subprocess
import textwrap
from collections.abc import Callable
from typing import Any


def source_fingerprint(function: Callable[..., Any]) -> str | None:
    """A short hash of a test function's source from its ``def`` line on, or None without source.

    Decorators are left out: adding a case to a ``parametrize`` list must not mark the other
    cases as changed, and a changed weight or tolerance is shown in the report anyway. Line
    endings and trailing spaces are normalised, so a CRLF checkout has the same fingerprint.
    """
    function = getattr(function, "__func__", function)
    try:
        lines, _ = inspect.getsourcelines(function)
    except (OSError, TypeError):
        return None
    lines = textwrap.dedent("".join(lines)).splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(r"(async\s+)?def\s", line)), 0)
    body = "\n".join(line.rstrip() for line in lines[start:])
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    return f"sha256:{digest[:16]}"


# -- run metadata -------------------------------------------------------------------------------


def git_info(root: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The commit, branch and dirtiness of the git work tree at ``root``; nulls without git."""
    info: dict[str, Any] = {"commit": None, "branch": None, "dirty": None}
    try:
        done = subprocess.run(
            ["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            # A status for a report must not take git's index lock from the user's own git.
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return info
    if done.returncode != 0:
        return info
    dirty = False
    for line in done.stdout.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split(" ", 2)[2].strip()
            info["commit"] = oid if re.fullmatch(r"[0-9a-f]{40,64}", oid) else None
        elif line.startswith("# branch.head "):
            head = line.split(" ", 2)[2].strip()
            info["branch"] = None if head == "(detached)" else head
        elif line and not line.startswith("#"):
            dirty = True
    info["dirty"] = dirty
    return info


def _version(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def now_iso(timestamp: float | None = None) -> str:
    moment = _dt.datetime.fromtimestamp(
        timestamp if timestamp is not None else _dt.datetime.now().timestamp(), _dt.timezone.utc
    )
    return moment.isoformat(timespec="seconds")


def run_metadata(
    root: str | os.PathLike[str] | None, started: float | None = None
) -> dict[str, Any]:
    """When, on which commit and with which versions a run ran (no numpy import needed)."""
    from .. import __version__

    return {
        "time": now_iso(started),
        "git": git_info(root),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {
            "pytest-soft": __version__,
            "pytest": _version("pytest"),
            "numpy": _version("numpy"),
            "autograd": _version("autograd"),
            "scipy": _version("scipy"),
        },
    }
