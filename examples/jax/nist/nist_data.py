"""The NIST data and its reader live once, in the NIST example (examples/nist: data/*.dat and
strd.py): this module puts that folder on the import path and gives its loader to the problem
modules here, so that both examples fit the same problems from the same files."""

import sys
from pathlib import Path

NIST = Path(__file__).resolve().parents[2] / "nist"
if not (NIST / "strd.py").is_file():
    raise ImportError(
        f"examples/jax/nist reads the NIST data with {NIST / 'strd.py'}, which is missing: keep "
        "this folder at examples/jax/nist beside examples/nist"
    )
# Appended, not prepended: a module of this folder always wins over the NIST example's.
if str(NIST) not in sys.path:
    sys.path.append(str(NIST))

import strd  # noqa: E402

__all__ = ["strd"]
