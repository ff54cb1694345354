"""Print pip constraints that pin every dependency of pyproject.toml to its declared floor.

The floors live only in pyproject.toml (``name>=version``, in ``dependencies`` and in the
extras named on the command line); CI installs with these constraints, so the versions it
tests as the lowest are exactly the ones the project promises. A dependency without a
``>=`` floor is an error: there would be nothing to test.

    python .ci/floors.py [EXTRA ...] > floors.txt
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

# A requirement as pyproject.toml writes them: a name, optional [extras], version specifiers,
# an optional "; marker".
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*)(;.*)?$")


def floors(pyproject: Path, extras: list[str]) -> list[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    optional = project.get("optional-dependencies", {})
    unknown = [extra for extra in extras if extra not in optional]
    if unknown:
        raise SystemExit(f"{pyproject}: no extra named {', '.join(unknown)}")
    requirements = list(project.get("dependencies", []))
    for extra in extras:
        requirements += optional[extra]
    pins = []
    for requirement in requirements:
        match = REQUIREMENT.match(requirement)
        if match is None:
            raise SystemExit(f"{pyproject}: cannot read the requirement {requirement!r}")
        name, _, specifiers, _ = match.groups()
        lowest = [s.strip()[2:].strip() for s in specifiers.split(",") if s.strip()[:2] == ">="]
        if len(lowest) != 1:
            raise SystemExit(
                f"{pyproject}: {requirement!r} needs exactly one '>=' floor for CI to test"
            )
        pins.append(f"{name}=={lowest[0]}")
    return pins


def python_floor(pyproject: Path) -> str:
    """The oldest Python that requires-python admits, as 3.X."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    match = re.fullmatch(r"\s*>=\s*(\d+\.\d+)\s*", project.get("requires-python", ""))
    if match is None:
        raise SystemExit(f"{pyproject}: requires-python must read '>=3.X' for CI to test it")
    return match.group(1)


def main(argv: list[str]) -> None:
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    if argv[:1] == ["--python"]:
        print(python_floor(pyproject))
        return
    print("\n".join(floors(pyproject, argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
