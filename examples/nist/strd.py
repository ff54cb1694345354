"""Read the NIST StRD nonlinear regression files in data/ (unchanged copies of the originals).

Each file says in its header which lines hold the starting values, the certified values and the
data; :func:`load` reads them into a :class:`Problem`. The problem modules (``misra1a.py`` and
the others) declare their parameters from here, starting from the NIST start chosen with the
environment variable ``NIST_START`` (``1``, the default, or ``2``).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
PROBLEMS = (
    "Misra1a",
    "Chwirut2",
    "Lanczos3",
    "DanWood",
    "Kirby2",
    "Gauss3",
    "ENSO",
    "MGH09",
    "Thurber",
    "Rat42",
)
START_VARIABLE = "NIST_START"


@dataclass(frozen=True)
class Problem:
    name: str
    names: tuple[str, ...]  # "b1", "b2", ...
    starts: tuple[tuple[float, ...], tuple[float, ...]]  # NIST "Start 1" and "Start 2"
    certified: tuple[float, ...]
    certified_sd: tuple[float, ...]
    certified_rss: float
    observations: tuple[tuple[float, float], ...]  # (x, y) pairs

    def start_values(self, start: int | None = None) -> dict[str, float]:
        """The starting values as keyword arguments for ``Parameters(...)``: NIST start
        ``start`` (1 or 2), by default the one ``NIST_START`` names."""
        chosen = selected_start() if start is None else start
        return dict(zip(self.names, self.starts[chosen - 1]))

    def lre(self, values: dict[str, float] | tuple[float, ...]) -> float:
        """The smallest log relative error of ``values`` against the certified values: about
        the number of correct significant digits of the worst parameter (15 when exact)."""
        if isinstance(values, dict):
            values = tuple(values[name] for name in self.names)
        return min(lre(b, c) for b, c in zip(values, self.certified))


def lre(value: float, certified: float) -> float:
    """-log10(|value - certified| / |certified|), capped at 15 (double precision)."""
    error = abs(value - certified) / abs(certified)
    return 15.0 if error == 0 else min(15.0, -math.log10(error))


def selected_start() -> int:
    """The NIST start chosen with ``NIST_START`` (default 1)."""
    text = os.environ.get(START_VARIABLE, "1").strip()
    if text not in ("1", "2"):
        raise ValueError(f"{START_VARIABLE} must be 1 or 2 (the NIST starting point), got {text!r}")
    return int(text)


def _line_range(header: str, what: str) -> tuple[int, int]:
    match = re.search(rf"{what}\s*\(lines\s+(\d+)\s+to\s+(\d+)\)", header)
    if match is None:
        raise ValueError(f"no '{what} (lines a to b)' in the header")
    return int(match.group(1)), int(match.group(2))


def load(name: str) -> Problem:
    """Read ``data/<name>.dat``."""
    path = DATA / f"{name}.dat"
    lines = path.read_text(encoding="ascii").splitlines()
    header = "\n".join(lines[:12])
    first, last = _line_range(header, "Starting Values")
    names, start1, start2, certified, sd = [], [], [], [], []
    for line in lines[first - 1 : last]:
        match = re.match(r"\s*(b\d+)\s*=\s*(.*)", line)
        if match is None:
            continue
        fields = [float(f) for f in match.group(2).split()]
        names.append(match.group(1))
        start1.append(fields[0])
        start2.append(fields[1])
        certified.append(fields[2])
        sd.append(fields[3])
    rss_line = next(line for line in lines if line.startswith("Residual Sum of Squares:"))
    first, last = _line_range(header, "Data")
    observations = []
    for line in lines[first - 1 : last]:
        y, x = (float(f) for f in line.split())
        observations.append((x, y))
    return Problem(
        name=name,
        names=tuple(names),
        starts=(tuple(start1), tuple(start2)),
        certified=tuple(certified),
        certified_sd=tuple(sd),
        certified_rss=float(rss_line.split(":")[1]),
        observations=tuple(observations),
    )


def main() -> None:
    """Print the LRE of each parameter file a fit wrote beside the problem modules."""
    import json

    found = False
    for name in PROBLEMS:
        path = Path(__file__).resolve().parent / f"{name.lower()}.params.json"
        if not path.exists():
            continue
        found = True
        problem = load(name)
        values = json.loads(path.read_text(encoding="utf-8"))["parameters"]
        each = ", ".join(
            f"{n} {lre(values[n], c):.1f}" for n, c in zip(problem.names, problem.certified)
        )
        print(f"{name:9} {path.name:22} LRE {problem.lre(values):5.2f}  ({each})")
    if not found:
        print("no parameter files: run a fit first, e.g. pytest --fit test_misra1a.py")


if __name__ == "__main__":
    main()
