"""Tunable parameters declared by an implementation, and the JSON files that hold their values.

A module declares one :class:`Parameters` group; its code reads values at call time
(``theta.omega``), which lets a fit substitute traced values. Tuned values live in a JSON file
beside the module (``sine.py`` -> ``sine.params.json``), loaded when the group is created.

A little over 500 lines because the group and its file are one idea: the file's format,
validation and messages are the group's, and nothing else reads or writes it.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import warnings
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import _binding
from ._files import atomic_write_text
from .errors import ParameterError, ParameterFileError, SoftWarning

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Param",
    "ParamSpec",
    "Parameters",
    "dumps_parameters",
    "load_parameter_file",
    "parameter_file_for",
    "record_reads",
]

FORMAT_NAME = "pytest-soft parameters"
FORMAT_VERSION = 1
SUFFIX = ".params.json"

Value = float | np.ndarray

# Names of the group's own methods and properties, which a parameter cannot shadow.
_RESERVED = frozenset({"save", "reload", "reset", "to_dict", "module", "path", "specs", "update"})


# Key under which a module's globals remember the code object that declared its group, to tell
# a second group in one module (an error) from a re-import or reload of the module (fine).
_DECLARED_BY = "__pytest_soft_declared_by__"


#: The group each module of this process declared (the latest, after a reload), by module name:
#: how a pytest-xdist worker finds the group a fit run elsewhere has tuned.
_DECLARED: weakref.WeakValueDictionary[str, Parameters] = weakref.WeakValueDictionary()


def declared_group(module: str) -> Parameters | None:
    """The Parameters group module ``module`` declared in this process, if it did."""
    return _DECLARED.get(module)


class Param:
    """A parameter's initial value with optional bounds: ``Param(1.0, bounds=(0.0, 5.0))``.

    Either bound may be ``None`` (unbounded on that side). For arrays the bounds apply to every
    element.
    """

    __slots__ = ("bounds", "value")

    def __init__(self, value: Any, bounds: tuple[float | None, float | None] | None = None):
        self.value = value
        self.bounds = bounds

    def __repr__(self) -> str:
        return f"Param({self.value!r}, bounds={self.bounds!r})"


@dataclass(frozen=True)
class ParamSpec:
    """What the code declares about one parameter."""

    group: str
    name: str
    initial: Value
    shape: tuple[int, ...]
    lower: float | None
    upper: float | None

    @property
    def full_name(self) -> str:
        return f"{self.group}.{self.name}"

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def _coerce(value: Any, what: str, shape: tuple[int, ...] | None = None) -> Value:
    """Turn a user value into a float or a float64 array, or raise ParameterError."""
    if isinstance(value, Param):
        raise ParameterError(f"{what}: Param(...) is only allowed in the Parameters declaration.")
    if isinstance(value, (bool, np.bool_)):
        raise ParameterError(f"{what} is a bool ({value!r}); parameters are real numbers.")
    if isinstance(value, (str, bytes)):
        raise ParameterError(f"{what} is a string ({value!r}); parameters are real numbers.")
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise ParameterError(f"{what} cannot be read as a number or array: {exc}") from None
    if array.dtype.kind == "c":
        raise ParameterError(f"{what} is complex ({value!r}); parameters are real numbers.")
    if array.dtype.kind not in "iuf":
        raise ParameterError(
            f"{what} is not a real number or array of real numbers (got {type(value).__name__}"
            f" with dtype {array.dtype})."
        )
    array = array.astype(np.float64)
    if shape is not None and array.shape != shape:
        raise ParameterError(
            f"{what} has shape {array.shape}, but the parameter is declared with shape {shape}."
        )
    if not np.all(np.isfinite(array)):
        raise ParameterError(f"{what} is not finite ({_short(array)}); use finite values.")
    if array.ndim == 0:
        return float(array)
    array = array.copy()
    array.setflags(write=False)
    return array


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray) and value.size > 6:
        return np.array2string(value, threshold=6, precision=6)
    return repr(value.tolist() if isinstance(value, np.ndarray) else value)


def _check_bounds(what: str, bounds: Any) -> tuple[float | None, float | None]:
    if bounds is None:
        return None, None
    try:
        lo, hi = bounds
    except (TypeError, ValueError):
        raise ParameterError(
            f"{what}: bounds must be a pair (lower, upper), either of them None; got {bounds!r}."
        ) from None
    out: list[float | None] = []
    for side, bound in (("lower", lo), ("upper", hi)):
        if bound is None:
            out.append(None)
            continue
        if isinstance(bound, (bool, np.bool_)) or not isinstance(bound, (int, float, np.number)):
            raise ParameterError(
                f"{what}: the {side} bound must be a number or None; got {bound!r}."
            )
        if math.isnan(float(bound)):
            raise ParameterError(f"{what}: the {side} bound is NaN; use None for no bound.")
        out.append(None if math.isinf(float(bound)) else float(bound))
    lower, upper = out
    if lower is not None and upper is not None and not lower < upper:
        raise ParameterError(
            f"{what}: the lower bound {lower} is not below the upper bound {upper}."
        )
    return lower, upper


class Parameters:
    """The tunable parameters of one module.

    Declare it at module level, once per module::

        theta = Parameters(omega=Param(1.0, bounds=(0.0, 5.0)), w=np.zeros(3))

    and read values at call time (``theta.omega``), never copying them into module constants, so
    that a fit can substitute its own values. When the file beside the module
    (``<module>.params.json``) exists, its values replace the declared initial ones.
    """

    def __init__(self, /, **declared: Any) -> None:
        frame = sys._getframe(1)
        module_globals = frame.f_globals
        module = module_globals.get("__name__") or "__main__"
        file = module_globals.get("__file__")
        previous = module_globals.get(_DECLARED_BY)
        if previous is not None and previous is frame.f_code:
            raise ParameterError(
                f"module '{module}' declares a second Parameters group; a module holds one group. "
                "Put every parameter of the module into one Parameters(...) declaration."
            )
        if frame.f_code.co_name == "<module>":
            module_globals[_DECLARED_BY] = frame.f_code
        if not declared:
            raise ParameterError(
                f"module '{module}' declares a Parameters group with no parameters."
            )

        specs: dict[str, ParamSpec] = {}
        for name, raw in declared.items():
            what = f"parameter '{module}.{name}'"
            if name.startswith("_"):
                raise ParameterError(f"{what}: names starting with '_' are reserved.")
            if name in _RESERVED:
                raise ParameterError(
                    f"{what}: '{name}' is the name of a Parameters method; choose another name."
                )
            bounds = None
            if isinstance(raw, Param):
                raw, bounds = raw.value, raw.bounds
            initial = _coerce(raw, f"{what} (declared value)")
            lower, upper = _check_bounds(what, bounds)
            if (lower is not None and np.any(np.asarray(initial) < lower)) or (
                upper is not None and np.any(np.asarray(initial) > upper)
            ):
                raise ParameterError(
                    f"{what}: the declared value {_short(initial)} lies outside its bounds "
                    f"({lower}, {upper})."
                )
            specs[name] = ParamSpec(module, name, initial, np.shape(initial), lower, upper)

        d = self.__dict__
        d["_module"] = module
        d["_path"] = parameter_file_for(file) if file else None
        d["_specs"] = specs
        d["_values"] = {name: spec.initial for name, spec in specs.items()}
        self.reload()
        _DECLARED[module] = self

    @classmethod
    def _described(
        cls,
        module: str,
        path: Path | None,
        specs: Mapping[str, ParamSpec],
        values: Mapping[str, Value],
    ) -> Parameters:
        """A group rebuilt from its description, where its module is not imported: the
        stand-in a fit spread over pytest-xdist workers tunes and saves in the controller.
        Its file is the one the module's own group reads (``path``); nothing is read here."""
        group = object.__new__(cls)
        d = group.__dict__
        d["_module"] = module
        d["_path"] = path
        d["_specs"] = dict(specs)
        d["_values"] = dict(values)
        return group

    # -- reading and writing values -------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("_values")
        if values is None or name not in values:
            if name.startswith("__") or values is None:
                raise AttributeError(name)
            raise AttributeError(
                f"module '{self._module}' declares no parameter '{name}' "
                f"(it declares: {', '.join(values)})"
            )
        binding = _binding.current()
        if binding.reads is not None:
            binding.reads.add((self, name))
        overrides = binding.overrides.get(self)
        if overrides is not None and name in overrides:
            return overrides[name]
        return values[name]

    def __getitem__(self, name: str) -> Any:
        if name not in self._values:
            raise KeyError(name)
        return self.__getattr__(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_") or name not in self._values:
            raise AttributeError(
                f"module '{self._module}' declares no parameter '{name}'; "
                "parameters are declared in Parameters(...), not added later."
            )
        spec = self._specs[name]
        self._values[name] = _coerce(value, f"parameter '{spec.full_name}'", spec.shape)

    def update(self, values: Mapping[str, Any]) -> None:
        """Assign several parameters at once (all are checked before any is changed)."""
        checked = {}
        for name, value in values.items():
            if name not in self._specs:
                raise ParameterError(f"module '{self._module}' declares no parameter '{name}'.")
            spec = self._specs[name]
            checked[name] = _coerce(value, f"parameter '{spec.full_name}'", spec.shape)
        self._values.update(checked)

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={_short(v)}" for n, v in self._values.items())
        return f"<Parameters of {self._module}: {inner}>"

    @property
    def module(self) -> str:
        """The name of the declaring module (the prefix of every parameter's full name)."""
        return self._module

    @property
    def path(self) -> Path | None:
        """The parameter file beside the declaring module (None for a module with no file)."""
        return self._path

    @property
    def specs(self) -> dict[str, ParamSpec]:
        """The declarations, by parameter name."""
        return dict(self._specs)

    def to_dict(self) -> dict[str, Value]:
        """The current values, by parameter name (arrays are read-only views)."""
        return dict(self._values)

    def reset(self) -> None:
        """Go back to the declared initial values (the file is left alone)."""
        self._values.update({name: spec.initial for name, spec in self._specs.items()})

    # -- the file -------------------------------------------------------------------------

    def reload(self) -> None:
        """Read the parameter file again, if there is one; declared values fill the gaps."""
        path = self._path
        if path is None or not (path.exists() or path.is_symlink()):
            return
        stored = load_parameter_file(path)
        values = {}
        for name, value in stored.items():
            spec = self._specs.get(name)
            if spec is None:
                continue
            values[name] = _check_stored(path, spec, value)
            array = np.asarray(values[name])
            if (spec.lower is not None and np.any(array < spec.lower)) or (
                spec.upper is not None and np.any(array > spec.upper)
            ):
                warnings.warn(
                    SoftWarning(
                        f"{path}: parameter '{spec.full_name}' = {_short(values[name])} lies "
                        f"outside its declared bounds ({spec.lower}, {spec.upper}); it is used "
                        "as it is, and a fit starts from the nearest bound."
                    ),
                    stacklevel=3,
                )
        stale = tuple(name for name in stored if name not in self._specs)
        if stale:
            warnings.warn(
                SoftWarning(
                    f"{path}: {_plural(len(stale), 'parameter')} no longer declared in module "
                    f"'{self._module}': {', '.join(stale)}. They are ignored, and dropped the "
                    "next time this file is written."
                ),
                stacklevel=3,
            )
        self._values.update(values)

    def save(self, path: str | Path | None = None) -> Path:
        """Write the current values to the parameter file (atomically) and return its path."""
        target = Path(path) if path is not None else self._path
        if target is None:
            raise ParameterFileError(
                f"module '{self._module}' has no file, so its parameters have no file beside it; "
                "pass a path: save('my.params.json')."
            )
        text = dumps_parameters(self._module, self._values)
        try:
            atomic_write_text(target, text)
        except OSError as exc:
            raise ParameterFileError(
                f"cannot write the parameters of module '{self._module}' to {target}: "
                f"{exc.strerror or exc}. The previous file, if any, is unchanged."
            ) from exc
        return target


def _check_stored(path: Path, spec: ParamSpec, value: Any) -> Value:
    where = f"parameter '{spec.full_name}' in {path}"
    if isinstance(value, (bool, str)) or value is None or isinstance(value, dict):
        raise ParameterFileError(
            f"{where} is {value!r}, not a number or an array of numbers. Fix the entry, or "
            "delete it to start from the declared value."
        )
    if not _numbers_only(value):
        # numpy would quietly read "1", true and null inside a list as 1.0, 1.0 and nan.
        raise ParameterFileError(
            f"{where} holds something that is not a number (a string, true, false, null or an "
            "object) in its array. Fix the entry, or delete it to start from the declared value."
        )
    try:
        array = np.asarray(value, dtype=np.float64)
    except OverflowError:
        raise ParameterFileError(
            f"{where} holds a number too large for a float. Fix the entry, or delete it to "
            "start from the declared value."
        ) from None
    except (ValueError, TypeError):
        raise ParameterFileError(
            f"{where} is not a number or a regular (rectangular) array of numbers. Fix the "
            "entry, or delete it to start from the declared value."
        ) from None
    if array.size == 0 and spec.size == 0:
        array = array.reshape(spec.shape)
    if array.shape != spec.shape:
        raise ParameterFileError(
            f"{where} has shape {array.shape}, but the code declares shape {spec.shape}. "
            "Delete the entry to start from the declared value, or fix the declaration."
        )
    if not np.all(np.isfinite(array)):
        raise ParameterFileError(
            f"{where} holds a value that is not finite ({_short(array)}). Fix the entry, or "
            "delete it to start from the declared value."
        )
    if array.ndim == 0:
        return float(array)
    array.setflags(write=False)
    return array


def _numbers_only(value: Any) -> bool:
    """Whether a JSON value is a number or nested lists of numbers (bool is not a number)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, bool) or not isinstance(item, (int, float)):
            return False
    return True


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def parameter_file_for(module_file: str | Path) -> Path:
    """The parameter file beside a module's source: ``pkg/sine.py`` -> ``pkg/sine.params.json``."""
    source = Path(module_file)
    return source.with_name(source.name.split(".", 1)[0] + SUFFIX)


def record_reads() -> contextlib.AbstractContextManager[set[tuple[Parameters, str]]]:
    """Note every parameter read inside the block, as ``(group, name)`` pairs."""
    return _binding.recording_reads()


# -- the file format --------------------------------------------------------------------------


def _format_number(x: float) -> str:
    return repr(float(x))


def _format_array(array: np.ndarray, indent: str) -> str:
    if array.ndim == 1:
        return "[" + ", ".join(_format_number(x) for x in array) + "]"
    inner = indent + "  "
    rows = ",\n".join(inner + _format_array(row, inner) for row in array)
    return "[\n" + rows + "\n" + indent + "]"


def dumps_parameters(module: str, values: Mapping[str, Value]) -> str:
    """The text of a parameter file: JSON, one parameter a line, innermost array axis a line."""
    lines = []
    for name, value in values.items():
        array = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(array)):
            raise ParameterFileError(
                f"refusing to write parameter '{module}.{name}': "
                f"it is not finite ({_short(array)})."
            )
        text = _format_number(float(array)) if array.ndim == 0 else _format_array(array, "    ")
        lines.append(f"    {json.dumps(name)}: {text}")
    body = ",\n".join(lines)
    return (
        "{\n"
        f'  "format": {json.dumps(FORMAT_NAME)},\n'
        f'  "version": {FORMAT_VERSION},\n'
        f'  "module": {json.dumps(module)},\n'
        '  "parameters": {\n' + body + "\n  }\n}\n"
    )


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} appears twice")
        out[key] = value
    return out


def load_parameter_file(path: str | Path) -> dict[str, Any]:
    """Read a parameter file and return its ``parameters`` mapping (values not yet checked
    against any declaration). Nothing in the file is executed; every problem is a
    :class:`ParameterFileError` naming the file.
    """
    path = Path(path)
    advice = "Fix it, or delete it to start from the declared values."
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise ParameterFileError(f"{path} is a directory, not a parameter file. {advice}") from None
    except FileNotFoundError:
        raise ParameterFileError(
            f"{path} cannot be opened (it does not exist, or it is a link to nowhere). {advice}"
        ) from None
    except OSError as exc:
        raise ParameterFileError(f"cannot read {path}: {exc.strerror or exc}.") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParameterFileError(f"{path} is not UTF-8 text (byte {exc.start}). {advice}") from None
    if not text.strip():
        raise ParameterFileError(f"{path} is empty. {advice}")
    try:
        # NaN and Infinity are read as floats so that the check against the declaration
        # rejects them with the name of the parameter that holds them.
        data = json.loads(text, parse_constant=float, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise ParameterFileError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}). {advice}"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise ParameterFileError(f"{path} cannot be used: {exc}. {advice}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise ParameterFileError(
            f"{path} is not a pytest-soft parameter file (expected a JSON object with "
            f'"format": "{FORMAT_NAME}"). {advice}'
        )
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ParameterFileError(f"{path} has no valid format version. {advice}")
    if version > FORMAT_VERSION:
        raise ParameterFileError(
            f"{path} was written by a newer pytest-soft (format version {version}; this one "
            f"reads version {FORMAT_VERSION}). Upgrade pytest-soft."
        )
    if version < 1:
        raise ParameterFileError(f"{path} has an unknown format version {version}. {advice}")
    parameters = data.get("parameters")
    if not isinstance(parameters, dict):
        raise ParameterFileError(f'{path} has no "parameters" object. {advice}')
    return parameters
