"""What to fit: which parameters the terms read, laid out in one flat vector, and the blocks of
parameters that share no term (fitted one after another).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import NothingToFit
from ..parameters import Parameters, ParamSpec


@dataclass(frozen=True)
class Slot:
    group: Parameters
    spec: ParamSpec
    start: int
    stop: int


# -- choosing what to fit ---------------------------------------------------------------------


def _matches(spec: ParamSpec, selector: str) -> bool:
    return selector in (spec.full_name, spec.group)


def choose_slots(reads: set[tuple[Parameters, str]], only: Sequence[str] | None) -> list[Slot]:
    candidates = sorted(
        ((g, g.specs[name]) for g, name in reads), key=lambda pair: pair[1].full_name
    )
    if only:
        unknown = [s for s in only if not any(_matches(spec, s) for _, spec in candidates)]
        if unknown:
            read = ", ".join(spec.full_name for _, spec in candidates) or "none"
            raise NothingToFit(
                f"--fit-params names {', '.join(unknown)}, which no selected soft test reads "
                f"(parameters they read: {read}). Use full names such as 'module.name', or a "
                "module name for its whole group."
            )
        candidates = [(g, spec) for g, spec in candidates if any(_matches(spec, s) for s in only)]
    return _layout(candidates)


def _layout(pairs: Sequence[tuple[Parameters, ParamSpec]]) -> list[Slot]:
    slots, offset = [], 0
    for group, spec in pairs:
        slots.append(Slot(group, spec, offset, offset + spec.size))
        offset += spec.size
    return slots


def independent_blocks(
    reads: Sequence[set[tuple[Parameters, str]]], slots: Sequence[Slot]
) -> tuple[list[tuple[list[int], list[Slot]]], list[int]]:
    """Split the fit into blocks that share no parameter: (term indices, slots) per block, and
    the terms that read no fitted parameter (their scores cannot change)."""
    index = {(slot.group, slot.spec.name): i for i, slot in enumerate(slots)}
    parent = list(range(len(slots)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    term_slots: list[list[int]] = []
    for seen in reads:
        mine = sorted(index[key] for key in seen if key in index)
        for other in mine[1:]:
            parent[root(other)] = root(mine[0])
        term_slots.append(mine)
    blocks: dict[int, tuple[list[int], list[int]]] = {}
    for i in range(len(slots)):
        blocks.setdefault(root(i), ([], []))[1].append(i)
    constant = []
    for t, mine in enumerate(term_slots):
        if mine:
            blocks[root(mine[0])][0].append(t)
        else:
            constant.append(t)
    out = [
        (terms, _layout([(slots[i].group, slots[i].spec) for i in members]))
        for terms, members in blocks.values()
    ]
    return out, constant
