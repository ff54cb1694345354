"""Terms evaluated in other processes: a fit spread over pytest-xdist workers.

Each worker holds a shard of the soft tests and evaluates it on request (:class:`Server`). The
controller runs the engine as in one process, on stand-in terms (:func:`stand_ins`) that the
remote backend (:data:`REMOTE`) evaluates where they live: one request per worker per
evaluation, sent to every worker before any reply is read, the replies put back in term order.
The engine sums per-term results in term order, so the answer is the one process's.

Messages travel over channels of the execnet gateways xdist opened and hold only plain values
(str, int, float, bytes, lists, tuples, dicts): parameter vectors, scores, gradients and
Jacobians as float64 bytes. Nothing of the user's (fixtures, test data, objects) crosses.

A request is a tuple ``(kind, *arguments)``; a reply ``("ok", seconds, payload)`` (the seconds
the worker spent on it) or ``("error", class name, message)``.
"""

from __future__ import annotations

import json
import sys
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from autograd.tracer import getval

from .. import errors
from .._binding import current, substituted
from ..errors import FitError, SoftError, WorkerError
from ..parameters import Parameters, ParamSpec, declared_group, record_reads
from ._layout import Slot
from ._model import Term
from ._problem import Problem, evaluation_message, initial_reads

# -- the wire ---------------------------------------------------------------------------------

Packed = tuple[bytes, tuple[int, ...]]
#: A problem's layout as it travels: (module, parameter, start, stop) per slot.
Layout = tuple[tuple[str, str, int, int], ...]
#: A term's reference in its worker: ("t", id), or ("sel", id, case indices) for a batch over
#: some of its cases (a minibatch).
Ref = tuple[Any, ...]


def pack(value: Any) -> Packed:
    array = np.asarray(value, dtype="<f8", order="C")  # (ascontiguousarray makes a scalar 1-d)
    return array.tobytes(), tuple(int(n) for n in array.shape)


def unpack(packed: Packed) -> np.ndarray:
    data, shape = packed
    return np.frombuffer(data, dtype="<f8").reshape(shape).copy()


def layout_of(slots: Sequence[Slot]) -> Layout:
    return tuple((s.group.module, s.spec.name, s.start, s.stop) for s in slots)


#: The errors a worker's reply may carry, raised again as themselves in the controller (the
#: engine acts on some: a negative score switches least squares to L-BFGS-B).
_ERRORS: dict[str, type[SoftError]] = {
    name: cls
    for name, cls in vars(errors).items()
    if isinstance(cls, type) and issubclass(cls, SoftError)
}


# -- the controller's side --------------------------------------------------------------------


@dataclass
class Traffic:
    """What the requests of a fit cost: rounds (requests sent together, to one worker or to
    several, and their replies), the seconds from each round's first request to its last
    reply, and the seconds of the slowest worker's own work in each round. The difference is
    what messaging added."""

    requests: int = 0
    rounds: int = 0
    wait_seconds: float = 0.0
    busy_seconds: float = 0.0


class Shard:
    """The controller's end of one worker's channel, and what that worker evaluates."""

    def __init__(self, worker: str, channel: Any):
        self.worker = worker
        self.channel = channel
        #: The soft test cases it holds, for messages.
        self.tests: list[str] = []
        #: Shared by every shard of a fit: the parameter groups' stand-ins by module, the
        #: project's root here, and the traffic.
        self.groups: dict[str, Parameters] = {}
        self.root: Path = Path.cwd()
        self.traffic = Traffic()
        self.sent = 0.0
        self.busy = 0.0
        self.closed = False

    def send(self, *message: Any) -> None:
        try:
            self.sent = time.perf_counter()
            self.channel.send(message)
        except Exception as exc:  # the channel or its gateway is gone
            raise self.lost(exc) from None

    def receive(self) -> Any:
        """The payload of the next reply; a worker's error raised here as itself."""
        try:
            reply = self.channel.receive()
        except Exception as exc:  # EOFError, execnet's RemoteError: the worker is gone
            raise self.lost(exc) from None
        if reply[0] == "error":
            _, name, message = reply
            raise _ERRORS.get(name, FitError)(f"pytest-xdist worker {self.worker}: {message}")
        _, self.busy, payload = reply
        return payload

    def request(self, *message: Any) -> Any:
        self.send(*message)
        return _replies([self])[0]

    def lost(self, exc: BaseException) -> WorkerError:
        self.closed = True
        shown = ", ".join(self.tests[:3]) + (" ..." if len(self.tests) > 3 else "")
        held = f" (its soft tests: {shown})" if shown else ""
        why = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
        return WorkerError(
            f"pytest-xdist worker {self.worker} stopped answering during the fit{held}: it "
            f"crashed, was killed or lost its connection ({why}). The fit cannot go on without "
            "its soft tests. Run again; if it keeps happening, run the fit without -n to see "
            "the error."
        )


@dataclass(frozen=True)
class Part:
    """One worker's share of a stand-in term: a term there, and its cases' count."""

    shard: Shard
    ref: Ref
    cases: int
    #: A batch there (it has its cases' own terms, and can select some of them).
    batched: bool


@dataclass
class Remote:
    """A stand-in term's connection to the term's cases: one part for a term one worker
    holds; for a parametrized test whose cases the workers share, one part per worker, in
    case order (its scores are the parts' side by side, its gradient their sum)."""

    parts: list[Part]
    #: The term's scores and the parameters it reads at the start (fetch_start), by which a
    #: read at the start needs no round trip.
    start: np.ndarray | None = None
    reads: tuple[tuple[Parameters, str], ...] = ()

    def verify(
        self, slots: Sequence[Slot], points: Sequence[np.ndarray], seed: int
    ) -> tuple[str, str]:
        """Check the batch where its cases live (see _verify.batch_proof), part by part."""
        layout, packed = layout_of(slots), [pack(p) for p in points]
        batched = [part for part in self.parts if part.batched]
        for part in batched:
            part.shard.send("verify", part.ref, layout, packed, seed)
        verdicts = _replies([part.shard for part in batched])
        how = next((str(h) for h, _ in verdicts), "")
        why = next((str(w) for _, w in verdicts if w), "")
        if len(self.parts) > 1:
            how = f"{how}, shared by {len(self.parts)} pytest-xdist workers"
        return how, why


def _replies(shards: Sequence[Shard]) -> list[Any]:
    """The replies to requests just sent to these shards, in order; every one is read even
    when one fails (each channel stays in step), then the first failure is raised."""
    out: list[Any] = []
    failure: SoftError | None = None
    for shard in shards:
        try:
            out.append(shard.receive())
        except SoftError as exc:
            failure = failure or exc
            out.append(None)
    if failure is not None:
        raise failure
    if shards:
        traffic = shards[0].traffic
        traffic.requests += len(shards)
        traffic.rounds += 1
        traffic.wait_seconds += time.perf_counter() - min(shard.sent for shard in shards)
        traffic.busy_seconds += max(shard.busy for shard in shards)
    return out


class RemoteBackend:
    """Evaluates a problem's stand-in terms in their workers: one request per worker."""

    name = "remote"

    def __init__(self) -> None:
        self._headers: weakref.WeakKeyDictionary[
            Problem, tuple[tuple[int, ...], dict[Shard, tuple[bytes, list[int]]]]
        ] = weakref.WeakKeyDictionary()

    def scores(self, problem: Problem, x: np.ndarray) -> list[np.ndarray]:
        return self._evaluate(problem, x, "scores")[0]

    def gradients(
        self, problem: Problem, x: np.ndarray
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        values, grads = self._evaluate(problem, x, "gradients")
        return values, grads

    def jacobians(
        self, problem: Problem, x: np.ndarray
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        values, jacs = self._evaluate(problem, x, "jacobians")
        return values, jacs

    def grad(self, function: Callable[[Any], Any], x: np.ndarray) -> np.ndarray:
        raise FitError(
            "internal: a function of soft tests evaluated on pytest-xdist workers cannot be "
            "differentiated in the controller; their workers differentiate them."
        )

    def reshape(self, value: Any, shape: tuple[int, ...]) -> Any:
        return np.reshape(value, shape)

    def _evaluate(self, problem: Problem, x: np.ndarray, kind: str) -> tuple[list[Any], ...]:
        asked = self._requests(problem)
        point = np.asarray(x, dtype="<f8").tobytes()
        # Every worker gets its request before any reply is read: they work side by side.
        for shard, (header, _) in asked.items():
            shard.send("eval", kind, header, point)
        width = 1 if kind == "scores" else 2
        pieces: list[list[list[np.ndarray]]] = [[[] for _ in range(width)] for _ in problem.terms]
        for (_, wanted), got in zip(asked.values(), _replies(list(asked))):
            for w, arrays in enumerate(_split(got, kind, problem.size)):
                for i, array in zip(wanted, arrays):
                    pieces[i][w].append(array)
        values = [p[0][0] if len(p[0]) == 1 else np.concatenate(p[0]) for p in pieces]
        if width == 1:
            return (values,)
        if kind == "gradients":  # the gradient of a sum over parts: the parts' gradients summed
            second = [p[1][0] if len(p[1]) == 1 else np.sum(p[1], axis=0) for p in pieces]
        else:  # Jacobian rows, one per case, side by side as the cases are
            second = [p[1][0] if len(p[1]) == 1 else np.concatenate(p[1]) for p in pieces]
        return values, second

    def _requests(self, problem: Problem) -> dict[Shard, tuple[bytes, list[int]]]:
        """Per worker: the header of its requests for this problem (its parts' references, the
        case counts that choose reverse or forward mode as one process would, the layout),
        encoded once per problem and case counts, and the term of each part it answers for."""
        cases = tuple(problem.cases)
        known = self._headers.get(problem)
        if known is not None and known[0] == cases:
            return known[1]
        layout = layout_of(problem.slots)
        parts: dict[Shard, tuple[list[Ref], list[int], list[int]]] = {}
        for i, term in enumerate(problem.terms):
            for part in term.remote.parts:
                refs, counts, wanted = parts.setdefault(part.shard, ([], [], []))
                refs.append(part.ref)
                counts.append(problem.cases[i])
                wanted.append(i)
        asked = {
            shard: (json.dumps([refs, counts, layout]).encode(), wanted)
            for shard, (refs, counts, wanted) in parts.items()
        }
        self._headers[problem] = (cases, asked)
        return asked


def _split(got: tuple[bytes, bytes, bytes], kind: str, size: int) -> list[list[np.ndarray]]:
    """A worker's evaluation reply, per term of its request: the scores and, for gradients or
    Jacobians, the second array (one gradient of ``size`` per term; one row per case)."""
    counts_bytes, first, second = got
    counts = np.frombuffer(counts_bytes, dtype="<i8")
    cuts = np.cumsum(counts)[:-1]
    values = np.split(np.frombuffer(first, dtype="<f8").copy(), cuts)
    if kind == "scores":
        return [values]
    flat = np.frombuffer(second, dtype="<f8").copy()
    if kind == "gradients":
        return [values, list(flat.reshape(len(counts), size))]
    return [values, np.split(flat.reshape(int(counts.sum()), size), cuts)]


REMOTE = RemoteBackend()


def fetch_start(terms: Sequence[Term]) -> None:
    """Each stand-in's scores and reads at the start, one request per worker (the engine's
    initial_reads then reads them without a round trip)."""
    asked: dict[Shard, list[tuple[Term, int]]] = {}
    for term in terms:
        if term.remote.start is None:
            for k, part in enumerate(term.remote.parts):
                asked.setdefault(part.shard, []).append((term, k))
    for shard, wanted in asked.items():
        shard.send("start", [term.remote.parts[k].ref for term, k in wanted])
    pieces: dict[int, list[tuple[int, np.ndarray, set[tuple[Parameters, str]]]]] = {}
    for (shard, wanted), (described, starts) in zip(asked.items(), _replies(list(asked))):
        for description in described:
            _adopt_group(shard, description)
        for (term, k), (packed, reads) in zip(wanted, starts):
            seen = {(shard.groups[module], name) for module, name in reads}
            pieces.setdefault(id(term), []).append((k, unpack(packed), seen))
    for term in terms:
        got = sorted(pieces.get(id(term), []), key=lambda piece: piece[0])
        if got:
            term.remote.start = np.concatenate([v for _, v, _ in got])
            reads = set().union(*(seen for _, _, seen in got))
            term.remote.reads = tuple(sorted(reads, key=lambda r: (r[0].module, r[1])))


def _adopt_group(shard: Shard, description: Mapping[str, Any]) -> None:
    """The stand-in of a worker's parameter group: made at its first description, and every
    later description (another worker's) must agree with it."""
    module = description["module"]
    values = {name: _value(packed) for name, packed in description["values"]}
    known = shard.groups.get(module)
    if known is not None:
        for name, value in values.items():
            mine = known.to_dict().get(name)
            if mine is None or not np.array_equal(np.asarray(mine), np.asarray(value)):
                raise WorkerError(
                    f"pytest-xdist worker {shard.worker} reads parameter '{module}.{name}' = "
                    f"{value!r}, another worker {mine!r}: their parameter files differ. Make "
                    "every worker see the same files (a shared file system, or xdist's "
                    "--rsyncdir), then fit again."
                )
        return
    specs = {
        name: ParamSpec(module, name, _value(initial), tuple(shape), lower, upper)
        for name, shape, lower, upper, initial in description["specs"]
    }
    where = _here(shard, module, description["path"], description["source"])
    shard.groups[module] = Parameters._described(module, where, specs, values)


def _here(shard: Shard, module: str, path: str | None, source: str | None) -> Path | None:
    """Where a worker's parameter file belongs on this machine: where the worker has it, when
    that is inside this project (a worker on this machine); else beside this project's copy of
    the module, found by the longest tail of the worker's path to it that names a file under
    the project's root (a copy made by xdist's --rsyncdir, or on another machine); else where
    the worker has it, when the module is there on this machine too (outside the project)."""
    if path is None:
        return None
    theirs = Path(path)
    if theirs.parent.is_dir() and theirs.is_relative_to(shard.root.resolve()):
        return theirs
    if source is not None:
        parts = Path(source).parts
        for k in range(len(parts) - 1, 0, -1):
            mine = shard.root.joinpath(*parts[-k:])
            if mine.is_file():
                return mine.with_name(theirs.name)
        if Path(source).is_file():
            return theirs
    raise WorkerError(
        f"pytest-xdist worker {shard.worker} imports module '{module}' from {source}, which "
        f"is not a file here, and no file under {shard.root} has its name: the fit cannot "
        "tell where to write its parameter file. Run the fit from the project's root, with "
        "the same project on every machine."
    )


def _value(packed: Packed) -> float | np.ndarray:
    array = unpack(packed)
    if array.ndim == 0:
        return float(array)
    array.setflags(write=False)
    return array


def stand_ins(described: Sequence[tuple[Shard, Sequence[Mapping[str, Any]]]]) -> list[Term]:
    """The controller's terms for every worker's terms, in the suite's order: a parametrized
    test whose cases several workers batched becomes one term again (its parts side by side);
    where any worker's share fell back to its cases one by one, every share does, as the whole
    test would have in one process."""
    placed: list[tuple[int, Term]] = []
    groups: dict[str, list[tuple[Shard, Mapping[str, Any]]]] = {}
    for shard, descriptions in described:
        for d in descriptions:
            if d["key"] is None:
                placed.append((d["place"], _stand_in([(shard, d)])))
            else:
                groups.setdefault(d["key"], []).append((shard, d))
    for members in groups.values():
        members.sort(key=lambda m: m[1]["place"])
        per_shard: dict[Shard, int] = {}
        for shard, _ in members:
            per_shard[shard] = per_shard.get(shard, 0) + 1
        batched = any(d["exact"] is not None for _, d in members)
        if batched and len(members) > 1 and all(n == 1 for n in per_shard.values()):
            placed.append((members[0][1]["place"], _stand_in(members)))
            continue
        for shard, d in members:
            for one in d["exact"] if d["exact"] is not None else [d]:
                placed.append((one["place"], _stand_in([(shard, one)])))
    placed.sort(key=lambda pair: pair[0])
    return [term for _, term in placed]


def _stand_in(members: Sequence[tuple[Shard, Mapping[str, Any]]]) -> Term:
    """A stand-in for one worker's term, or for a batch whose shares several workers hold."""
    parts = [
        Part(shard, ("t", d["id"]), d["cases"], d["exact"] is not None) for shard, d in members
    ]
    lead = next((d for _, d in members if d["exact"] is not None), members[0][1])
    batch = len(members) > 1 or lead["exact"] is not None
    names: list[str] = []
    exact: list[Term] = []
    for shard, d in members:
        names.extend(d["case_names"] if d["case_names"] is not None else [d["name"]])
        if batch:
            cases = d["exact"] if d["exact"] is not None else [d]
            exact.extend(_stand_in([(shard, one)]) for one in cases)
    term = Term(
        lead["name"],
        lambda: None,
        float(lead["weight"]),
        lead["threshold"],
        case_names=names if batch else None,
        exact=exact if batch else None,
        backend="remote",
    )
    term.remote = Remote(parts)
    term.score = _score_of(term)
    if batch and all(d["select"] or d["exact"] is None for _, d in members):
        term.select = _select_of(term)
    return term


def _score_of(term: Term) -> Callable[[], Any]:
    """A stand-in's score as the engine reads it: at the start, what its workers measured
    there; anywhere else (parameters substituted), a round trip to each of its workers."""

    def score() -> Any:
        remote: Remote = term.remote
        binding = current()
        if remote.start is not None and not any(g in binding.overrides for g, _ in remote.reads):
            if binding.reads is not None:
                binding.reads.update(remote.reads)
            return remote.start
        values: dict[str, dict[str, Packed]] = {}
        for group, named in binding.overrides.items():
            for name, value in named.items():
                raw = getval(value)
                if raw is not value:
                    raise FitError(
                        f"internal: soft test {term.name} runs on pytest-xdist workers; it "
                        "cannot be traced in the controller."
                    )
                values.setdefault(group.module, {})[name] = pack(raw)
        for part in remote.parts:
            part.shard.send("score", part.ref, values)
        got = _replies([part.shard for part in remote.parts])
        if binding.reads is not None:
            for part, (_, reads) in zip(remote.parts, got):
                groups = part.shard.groups
                binding.reads.update((groups[m], n) for m, n in reads if m in groups)
        return np.concatenate([unpack(packed) for packed, _ in got])

    return score


def _select_of(term: Term) -> Callable[[np.ndarray], Term]:
    """A batch over some of its cases (a minibatch), each part asked for its own share."""

    def select(indices: np.ndarray) -> Term:
        chosen = sorted(int(i) for i in indices)
        parts: list[Part] = []
        offset = 0
        for part in term.remote.parts:
            local = [i - offset for i in chosen if offset <= i < offset + part.cases]
            offset += part.cases
            if not local:
                continue
            if part.batched:
                ref = ("sel", part.ref[1], tuple(local))
                parts.append(Part(part.shard, ref, len(local), True))
            else:
                parts.append(part)
        assert term.case_names is not None and term.exact is not None
        sub = Term(
            term.name,
            lambda: None,
            term.weight,
            term.threshold,
            case_names=[term.case_names[i] for i in chosen],
            exact=[term.exact[i] for i in chosen],
            backend="remote",
        )
        sub.remote = Remote(parts)
        sub.score = _score_of(sub)
        return sub

    return select


# -- the worker's side ------------------------------------------------------------------------


@dataclass
class Built:
    """A worker's terms (the fit's and the hold-out's), and for each soft test its place in the
    suite and its batch key (a parametrized test's cases may be shared by several workers)."""

    terms: list[Term]
    holdout: list[Term]
    places: Mapping[str, int]
    keys: Mapping[str, str | None]


class Server:
    """Answers the controller's requests with this process's terms, until it says finish (the
    tuned values, put in here) or abort."""

    #: Problems kept for reuse (a JAX problem keeps its compiled functions): the fit's blocks,
    #: checks and restarts use a handful; minibatches one per draw.
    KEEP = 64

    def __init__(self, channel: Any, built: Built, root: Path):
        self.channel = channel
        self.root = root
        self.terms: list[Term] = []
        self.selected: OrderedDict[Ref, Term] = OrderedDict()
        self.problems: OrderedDict[Any, Problem] = OrderedDict()
        self.described = [self._describe(t, built) for t in built.terms]
        self.described_holdout = [self._describe(t, built) for t in built.holdout]

    def _describe(self, term: Term, built: Built) -> dict[str, Any]:
        self.terms.append(term)
        ident = len(self.terms) - 1
        names = list(term.case_names) if term.case_names is not None else [term.name]
        return {
            "id": ident,
            "place": min(built.places.get(n, 0) for n in names),
            "key": built.keys.get(names[0]),
            "cases": len(names),
            "name": term.name,
            "weight": float(term.weight),
            "threshold": None if term.threshold is None else float(term.threshold),
            "case_names": None if term.case_names is None else names,
            "exact": None if term.exact is None else [self._describe(e, built) for e in term.exact],
            "select": term.select is not None,
        }

    def serve(self) -> Mapping[str, Mapping[str, Packed]] | None:
        """Answer requests until the fit ends; return the tuned values the controller sent
        (already put in), or None when it ended without them (abort, or the controller is
        gone)."""
        while True:
            try:
                message = self.channel.receive()
            except EOFError:
                return None
            kind, *arguments = message
            if kind == "abort":
                return None
            began = time.perf_counter()
            try:
                payload = getattr(self, "_" + kind)(*arguments)
            except SoftError as exc:
                self.channel.send(("error", type(exc).__name__, str(exc)))
                continue
            except Exception as exc:
                self.channel.send(("error", "FitError", self._culprit(kind, arguments, exc)))
                continue
            self.channel.send(("ok", time.perf_counter() - began, payload))
            if kind == "finish":
                return arguments[0] or {}

    # requests

    def _start(self, refs: Sequence[Ref]) -> tuple[list[dict[str, Any]], list[Any]]:
        terms = [self._term(r) for r in refs]
        values, reads = initial_reads(terms)
        groups = {g for seen in reads for g, _ in seen}
        described = [self._group(g) for g in sorted(groups, key=lambda g: g.module)]
        starts = [
            (pack(v), sorted((g.module, name) for g, name in seen))
            for v, seen in zip(values, reads)
        ]
        return described, starts

    def _eval(self, kind: str, header: bytes, x: bytes) -> tuple[bytes, bytes, bytes]:
        problem = self.problems.get(header)
        if problem is None:
            refs, cases, layout = json.loads(header)
            problem = Problem([self._term(r) for r in refs], self._slots(layout))
            problem.cases = cases
            self.problems[header] = problem
            if len(self.problems) > self.KEEP:
                self.problems.popitem(last=False)
        else:
            self.problems.move_to_end(header)
        point = np.frombuffer(x, dtype="<f8").copy()
        if kind == "scores":
            first, second = problem.scores(point), []
        elif kind == "gradients":
            first, second = problem.gradients(point)
        else:
            first, second = problem.jacobians(point)
        counts = np.array([v.shape[0] for v in first], dtype="<i8").tobytes()
        return counts, _joined(first), _joined(second)

    def _verify(
        self, ref: Ref, layout: Layout, points: Sequence[Packed], seed: int
    ) -> tuple[str, str]:
        from ._verify import batch_proof

        problem = Problem([], self._slots(layout))
        return batch_proof(self._term(ref), problem, [unpack(p) for p in points], seed)

    def _score(
        self, ref: Ref, values: Mapping[str, Mapping[str, Packed]]
    ) -> tuple[Packed, list[tuple[str, str]]]:
        term = self._term(ref)
        assigned = {
            self._group_of(module): {name: _value(p) for name, p in named.items()}
            for module, named in values.items()
        }
        with substituted(assigned), record_reads() as seen:
            value = term.score()
        vector = np.atleast_1d(np.asarray(getval(value), dtype=float))
        return pack(vector), sorted((g.module, name) for g, name in seen)

    def _finish(self, values: Mapping[str, Mapping[str, Packed]] | None) -> dict[str, Any]:
        """Put the tuned values into this process's groups (the run that follows uses them);
        return what this worker's backends did."""
        from ._problem import current_backends

        for module, named in (values or {}).items():
            group = declared_group(module)
            if group is not None:
                group.update({name: _value(p) for name, p in named.items()})
        backends = current_backends()
        jax = backends.jax
        return {
            "used": sorted(backends.used),
            "compiled": int(jax.compiled) if jax is not None else 0,
            "compile_seconds": float(jax.compile_seconds) if jax is not None else 0.0,
            "float64": bool(backends.float64),
        }

    # helpers

    def _term(self, ref: Sequence[Any]) -> Term:
        if ref[0] == "t":
            return self.terms[ref[1]]
        key = (ref[0], ref[1], tuple(ref[2]))
        term = self.selected.get(key)
        if term is None:
            parent = self.terms[ref[1]]
            if parent.select is None:
                raise FitError(f"internal: soft test {parent.name} cannot select cases")
            term = parent.select(np.array(ref[2], dtype=int))
            self.selected[key] = term
            if len(self.selected) > self.KEEP:
                self.selected.popitem(last=False)
        return term

    def _slots(self, layout: Layout) -> list[Slot]:
        slots = []
        for module, name, start, stop in layout:
            group = self._group_of(module)
            slots.append(Slot(group, group.specs[name], start, stop))
        return slots

    def _group_of(self, module: str) -> Parameters:
        group = declared_group(module)
        if group is None:
            raise FitError(
                f"module '{module}' declares parameters the fit tunes, but this pytest-xdist "
                "worker has not imported it; every worker must collect the same tests."
            )
        return group

    def _group(self, group: Parameters) -> dict[str, Any]:
        path = group.path
        source = getattr(sys.modules.get(group.module), "__file__", None)
        return {
            "module": group.module,
            "path": None if path is None else str(path.resolve()),
            "source": None if source is None else str(Path(source).resolve()),
            "specs": [
                (s.name, list(s.shape), s.lower, s.upper, pack(s.initial))
                for s in group.specs.values()
            ],
            "values": [(name, pack(v)) for name, v in group.to_dict().items()],
        }

    def _culprit(self, kind: str, arguments: Sequence[Any], exc: Exception) -> str:
        """A message naming the soft test whose body raised (found by calling each of the
        request's terms on its own), for an error that is not pytest-soft's own."""
        if kind == "eval":
            _, header, x = arguments
            try:
                refs, _, layout = json.loads(header)
                problem = Problem([self._term(r) for r in refs], self._slots(layout))
                with problem.bound(np.frombuffer(x, dtype="<f8").copy()):
                    for term in problem.terms:
                        try:
                            term.score()
                        except Exception as own:
                            return evaluation_message(term, own)
            except Exception:
                pass
        return f"a {kind} request raised {type(exc).__name__}: {exc}"


def _joined(arrays: Sequence[np.ndarray]) -> bytes:
    if not arrays:
        return b""
    return np.concatenate([np.ravel(np.asarray(a, dtype="<f8")) for a in arrays]).tobytes()
