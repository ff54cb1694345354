"""Find the CPython interpreters on this machine that can make a virtual environment.

Prints one line per minor version, ``3.X /path/to/python``, oldest first, the newest patch
release of each. Looks where interpreters are installed (pyenv's versions, the usual bin
folders, every folder on PATH) and runs each candidate once, so that a broken link or a pyenv
shim for a version that is not selected is left out rather than trusted.

    python3 .ci/pythons.py
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

PROBE = (
    "import sys, venv, ensurepip; "
    "print(sys.implementation.name, *sys.version_info[:3], sys.executable)"
)


def pyenv_roots() -> list[str]:
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv"), "/root/.pyenv"]
    pyenv = shutil.which("pyenv")
    if pyenv:
        try:
            roots.append(
                subprocess.run(
                    [pyenv, "root"], capture_output=True, text=True, timeout=30, check=False
                ).stdout.strip()
            )
        except (OSError, subprocess.SubprocessError):
            pass
    return [root for root in roots if root]


def candidates() -> list[str]:
    found = [sys.executable]
    for root in pyenv_roots():
        found += glob.glob(os.path.join(root, "versions", "*", "bin", "python3"))
    folders = os.environ.get("PATH", "").split(os.pathsep)
    folders += ["/usr/local/bin", "/usr/bin", "/opt/python/bin", *glob.glob("/opt/python*/bin")]
    for folder in folders:
        found += [
            path
            for path in glob.glob(os.path.join(folder, "python3*"))
            if re.fullmatch(r"python3(\.\d+)?", os.path.basename(path))
        ]
    return found


def probe(path: str) -> tuple[tuple[int, int, int], str] | None:
    try:
        done = subprocess.run(
            [path, "-c", PROBE], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    parts = done.stdout.split()
    if done.returncode != 0 or len(parts) != 5 or parts[0] != "cpython":
        return None
    major, minor, micro = (int(part) for part in parts[1:4])
    return (major, minor, micro), path


def main() -> None:
    best: dict[tuple[int, int], tuple[tuple[int, int, int], str]] = {}
    seen: set[str] = set()
    for path in candidates():
        real = os.path.realpath(path)
        if real in seen or not os.access(real, os.X_OK):
            continue
        seen.add(real)
        found = probe(path)
        if found is None:
            continue
        version, _ = found
        key = version[:2]
        if key not in best or version > best[key][0]:
            best[key] = found
    for (major, minor), (_, path) in sorted(best.items()):
        print(f"{major}.{minor} {path}")


if __name__ == "__main__":
    main()
