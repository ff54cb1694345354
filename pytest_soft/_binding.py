"""What a parameter read sees: the one substitution mechanism of pytest-soft.

A fit evaluates soft tests with candidate (often traced) values put in for the declared ones,
notes which parameters each test reads, and calls a batch of cases with the score functions
keeping one score per case. All three live in one :class:`Binding` held by one ``ContextVar``:
``Parameters`` reads it, and the engine and batching set it for the length of a ``with`` block.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .parameters import Parameters

__all__ = ["Binding", "current", "per_case", "recording_reads", "substituted"]


@dataclass(frozen=True)
class Binding:
    #: Values that parameter reads return instead of the stored ones, by group and name.
    overrides: Mapping[Parameters, Mapping[str, Any]] = field(default_factory=dict)
    #: While not None, every read is added here as ``(group, name)``.
    reads: set[tuple[Parameters, str]] | None = None
    #: Inside a batched call: the first axis of every array is the cases' axis, and the score
    #: functions of :mod:`pytest_soft.scores` sum over the other axes only.
    per_case: bool = False


# The default is frozen and nothing mutates its empty mapping: every change is a new Binding.
_CURRENT: ContextVar[Binding] = ContextVar("pytest_soft_binding", default=Binding())  # noqa: B039


def current() -> Binding:
    return _CURRENT.get()


@contextlib.contextmanager
def _bound(binding: Binding) -> Iterator[Binding]:
    token = _CURRENT.set(binding)
    try:
        yield binding
    finally:
        _CURRENT.reset(token)


class _Substituted:
    """The block of :func:`substituted`. A class rather than a generator: a fit enters one per
    evaluation (hundreds per restart screen), and a generator-based context manager, with
    ``dataclasses.replace``, cost several times the Binding's own construction
    (benchmarks/overhead.py)."""

    __slots__ = ("_token", "_values")

    def __init__(self, values: Mapping[Parameters, Mapping[str, Any]]):
        self._values = values

    def __enter__(self) -> None:
        outer = _CURRENT.get()
        values = self._values
        overrides = {**outer.overrides, **values} if outer.overrides else values
        # Binding's fields spelled out: what dataclasses.replace would copy, at a fraction of
        # its cost (_FIELDS below stops the import if a field is added and not here).
        self._token = _CURRENT.set(
            Binding(overrides=overrides, reads=outer.reads, per_case=outer.per_case)
        )

    def __exit__(self, *exc_info: object) -> None:
        _CURRENT.reset(self._token)


_FIELDS = ("overrides", "reads", "per_case")
assert tuple(f.name for f in fields(Binding)) == _FIELDS, "update _Substituted.__enter__"


def substituted(
    values: Mapping[Parameters, Mapping[str, Any]],
) -> contextlib.AbstractContextManager[None]:
    """Inside the block, reads of the given parameters return these values (each group's
    mapping replaces any outer one for that group)."""
    return _Substituted(values)


@contextlib.contextmanager
def recording_reads() -> Iterator[set[tuple[Parameters, str]]]:
    """Note every parameter read inside the block, as ``(group, name)`` pairs; an enclosing
    recording sees them too."""
    outer = _CURRENT.get()
    seen: set[tuple[Parameters, str]] = set()
    try:
        with _bound(replace(outer, reads=seen)):
            yield seen
    finally:
        if outer.reads is not None:
            outer.reads.update(seen)


@contextlib.contextmanager
def per_case() -> Iterator[None]:
    """Inside the block, the score functions keep the first axis (one score per case)."""
    with _bound(replace(_CURRENT.get(), per_case=True)):
        yield
