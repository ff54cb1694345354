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
        #: A worker on this machine that sees the project where this process does (xdist's
        #: popen gateway without chdir): its paths are this machine's.
        self.local = True
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


@dataclass
class Remote:
    """A stand-in term's connection to the worker that evaluates the term."""

    shard: Shard
    ref: Ref
    #: The term's scores and the parameters it reads at the start (fetch_start), by which a
    #: read at the start needs no round trip.
    start: np.ndarray | None = None
    reads: tuple[tuple[Parameters, str], ...] = ()

    def verify(
        self, slots: Sequence[Slot], points: Sequence[np.ndarray], seed: int
    ) -> tuple[str, str]:
        """Check the batch where it lives (see _verify.batch_proof)."""
        self.shard.send("verify", self.ref, layout_of(slots), [pack(p) for p in points], seed)
        how, why = replies([self.shard])[0]
        return str(how), str(why)


def replies(shards: Sequence[Shard]) -> list[Any]:
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
        out: tuple[list[Any], ...] = tuple(
            [None] * len(problem.terms) for _ in range(1 if kind == "scores" else 2)
        )
        for (_, wanted), got in zip(asked.values(), replies(list(asked))):
            for whole, arrays in zip(out, _split(got, kind, problem.size)):
                for i, array in zip(wanted, arrays):
                    whole[i] = array
        return out

    def _requests(self, problem: Problem) -> dict[Shard, tuple[bytes, list[int]]]:
        """Per worker: the header of its requests for this problem (its terms' references, their
        case counts, which choose reverse or forward mode as in one process, and the layout),
        encoded once per problem and case counts, and which of the problem's terms it holds."""
        cases = tuple(problem.cases)
        known = self._headers.get(problem)
        if known is not None and known[0] == cases:
            return known[1]
        layout = layout_of(problem.slots)
        parts: dict[Shard, tuple[list[Ref], list[int], list[int]]] = {}
        for i, term in enumerate(problem.terms):
            refs, counts, wanted = parts.setdefault(term.remote.shard, ([], [], []))
            refs.append(term.remote.ref)
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
    asked: dict[Shard, list[Term]] = {}
    for term in terms:
        if term.remote.start is None:
            asked.setdefault(term.remote.shard, []).append(term)
    for shard, mine in asked.items():
        shard.send("start", [t.remote.ref for t in mine])
    for (shard, mine), (described, starts) in zip(asked.items(), replies(list(asked))):
        for description in described:
            _adopt_group(shard, description)
        for term, (packed, reads) in zip(mine, starts):
            term.remote.start = unpack(packed)
            term.remote.reads = tuple((shard.groups[module], name) for module, name in reads)


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
    """Where a worker's parameter file belongs on this machine. A worker on this machine in
    this project (xdist's popen gateway without chdir) has it where this process would. Any
    other worker (a copy of the project made by xdist's --rsyncdir, or another machine) runs
    its own copy of the module: the file goes beside this project's copy of it, found by the
    longest tail of the worker's path to the module that names a file under the project's
    root; failing that, where the worker has it, when the module is there on this machine."""
    if path is None:
        return None
    theirs = Path(path)
    if shard.local:
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


def stand_ins(owned: Sequence[tuple[Shard, Mapping[str, Any]]]) -> list[Term]:
    """The controller's terms for the workers' terms, each evaluated by its owner."""
    return [_stand_in(shard, d) for shard, d in owned]


def _stand_in(shard: Shard, description: Mapping[str, Any], ref: Ref | None = None) -> Term:
    exact = description["exact"]
    term = Term(
        description["name"],
        lambda: None,
        float(description["weight"]),
        description["threshold"],
        case_names=description["case_names"],
        exact=None if exact is None else [_stand_in(shard, e) for e in exact],
        backend="remote",
    )
    term.remote = Remote(shard, ref if ref is not None else ("t", description["id"]))
    term.score = _score_of(term)
    if description["select"]:
        term.select = _select_of(term, description)
    return term


def _score_of(term: Term) -> Callable[[], Any]:
    """A stand-in's score as the engine reads it: at the start, what its worker measured there;
    anywhere else (parameters substituted), a round trip to its worker."""

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
                        f"internal: soft test {term.name} runs on pytest-xdist worker "
                        f"{remote.shard.worker}; it cannot be traced in the controller."
                    )
                values.setdefault(group.module, {})[name] = pack(raw)
        remote.shard.send("score", remote.ref, values)
        packed, reads = replies([remote.shard])[0]
        if binding.reads is not None:
            groups = remote.shard.groups
            binding.reads.update((groups[m], n) for m, n in reads if m in groups)
        return unpack(packed)

    return score


def _select_of(term: Term, description: Mapping[str, Any]) -> Callable[[np.ndarray], Term]:
    """A batch over some of its cases (a minibatch), selected where it lives."""

    def select(indices: np.ndarray) -> Term:
        chosen = sorted(int(i) for i in indices)
        part = {
            **description,
            "case_names": [description["case_names"][i] for i in chosen],
            "exact": None,
            "select": False,
        }
        sub = _stand_in(term.remote.shard, part, ("sel", description["id"], tuple(chosen)))
        if term.exact is not None:
            sub.exact = [term.exact[i] for i in chosen]
        return sub

    return select


def put_in(values: Mapping[str, Mapping[str, Packed]] | None) -> None:
    """Put tuned values (by module and parameter) into this process's parameter groups."""
    for module, named in (values or {}).items():
        group = declared_group(module)
        if group is not None:
            group.update({name: _value(p) for name, p in named.items()})


# -- the worker's side ------------------------------------------------------------------------


@dataclass
class Built:
    """A worker's terms (the fit's and the hold-out's), and each soft test's place in the
    suite."""

    terms: list[Term]
    holdout: list[Term]
    places: Mapping[str, int]


class Server:
    """Answers the controller's requests with this process's terms, until it says finish (the
    tuned values, put in here) or abort."""

    #: Problems kept for reuse (a JAX problem keeps its compiled functions): the fit's blocks,
    #: checks and restarts use a handful; minibatches one per draw.
    KEEP = 64

    def __init__(self, channel: Any, built: Built):
        self.channel = channel
        self.terms: list[Term] = []
        self.selected: OrderedDict[Any, Term] = OrderedDict()
        self.problems: OrderedDict[bytes, Problem] = OrderedDict()
        #: Each term's scores and reads at the start, by id, measured once (see measure).
        self.started: dict[int, tuple[np.ndarray, set[tuple[Parameters, str]]]] = {}
        self.described = [self._describe(t, built.places) for t in built.terms]
        self.described_holdout = [self._describe(t, built.places) for t in built.holdout]

    def _describe(self, term: Term, places: Mapping[str, int]) -> dict[str, Any]:
        self.terms.append(term)
        ident = len(self.terms) - 1
        names = list(term.case_names) if term.case_names is not None else [term.name]
        return {
            "id": ident,
            "place": min(places[n] for n in names),
            "cases": len(names),
            "name": term.name,
            "weight": float(term.weight),
            "threshold": None if term.threshold is None else float(term.threshold),
            "case_names": None if term.case_names is None else names,
            "exact": None
            if term.exact is None
            else [self._describe(e, places) for e in term.exact],
            "select": term.select is not None,
        }

    def measure(self) -> list[float]:
        """Evaluate each of the fit's terms at the start, as the fit's first step does anyway,
        and return the seconds each took: the controller shares the terms out by them."""
        seconds = []
        for description in self.described:
            ident = description["id"]
            began = time.perf_counter()
            (values,), (reads,) = initial_reads([self.terms[ident]])
            seconds.append(time.perf_counter() - began)
            self.started[ident] = (values, reads)
        return seconds

    def serve(self) -> None:
        """Answer requests until the fit ends: finish (the tuned values, put in here), abort,
        or the controller gone."""
        while True:
            try:
                message = self.channel.receive()
            except EOFError:
                return
            kind, *arguments = message
            if kind == "abort":
                return
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
                return

    # requests

    def _start(self, refs: Sequence[Any]) -> tuple[list[dict[str, Any]], list[Any]]:
        values, reads = [], []
        for ref in refs:
            known = self.started.get(ref[1]) if ref[0] == "t" else None
            if known is None:
                (value,), (seen,) = initial_reads([self._term(ref)])
                known = (value, seen)
            values.append(known[0])
            reads.append(known[1])
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
        second: list[np.ndarray] = []
        if kind == "scores":
            first = problem.scores(point)
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
        self, ref: Sequence[Any], values: Mapping[str, Mapping[str, Packed]]
    ) -> tuple[Packed, list[tuple[str, str]]]:
        term = self._term(ref)
        assigned = {
            self._group_of(module): {name: _value(p) for name, p in named.items()}
            for module, named in values.items()
        }
        with substituted(assigned), record_reads() as seen:
            try:
                value = term.score()
            except SoftError:
                raise
            except Exception as exc:
                raise FitError(evaluation_message(term, exc)) from exc
        vector = np.atleast_1d(np.asarray(getval(value), dtype=float))
        return pack(vector), sorted((g.module, name) for g, name in seen)

    def _finish(self, values: Mapping[str, Mapping[str, Packed]] | None) -> dict[str, Any]:
        """Put the tuned values into this process's groups (the run that follows uses them);
        return what this worker's backends did."""
        from ._problem import current_backends

        put_in(values)
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
