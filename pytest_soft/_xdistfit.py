"""``pytest --fit -n N``: the fit spread over pytest-xdist workers (the pytest glue; the engine's
side is :mod:`pytest_soft.fit._remote`).

The controller, which collects nothing, opens one channel per worker on the gateway xdist opened
for it and hands it over in the worker's ``workerinput``. Every worker records the soft tests and
builds the fit's terms as one process would (side by side, so in one process's time), and times
each term at the start. The controller checks that the workers collected and built the same,
gives each term to one worker (:func:`owners`, by those times), runs the engine on stand-ins of
the terms, writes the parameter files, and sends the tuned values to every worker; then xdist's
own loop runs the tests with them. A term is never split between workers: each is evaluated
whole, by the code one process runs, so the fit is one process's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from ._fitplugin import FitLock, FitSession, _undo_patches, soft_items
from .errors import SoftError, WorkerError

if TYPE_CHECKING:
    from .fit import FitResult
    from .fit._remote import Shard

#: Keys of a worker's workerinput: its channel (None for a worker started after the fit), and
#: the tuned values for a worker started after the fit.
CHANNEL = "pytest_soft_fit_channel"
VALUES = "pytest_soft_fit_values"


def active(config: pytest.Config) -> bool:
    """Whether this process takes part in a fit spread over xdist workers."""
    if hasattr(config, "workerinput"):
        return CHANNEL in config.workerinput
    numprocesses = getattr(config.option, "numprocesses", None)
    dist = getattr(config.option, "dist", "no")
    return bool(numprocesses) or dist not in (None, "no")


def register(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        config.pluginmanager.register(WorkerFit(config), "soft-fit")
    else:
        config.pluginmanager.register(ControllerFit(config), "soft-fit")
        config.pluginmanager.register(FitLock(config), "soft-fit-lock")


def owners(costs: Sequence[float], count: int) -> list[int]:
    """Which of ``count`` workers evaluates each term, from what each costs: the costliest
    first, each to the worker with the least so far (the lowest-numbered on a tie)."""
    load = [0.0] * count
    owner = [0] * len(costs)
    for i in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        worker = min(range(count), key=lambda w: (load[w], w))
        owner[i] = worker
        load[worker] += costs[i]
    return owner


class ControllerFit(FitSession):
    """The controller's part: the engine, on stand-ins of the workers' terms."""

    def __init__(self, config: pytest.Config) -> None:
        super().__init__(config)
        self.channels: list[tuple[str, Any, bool]] = []
        self.shards: list[Shard] = []
        #: After the fit: the tuned values (packed), for workers xdist starts later.
        self.over = False
        self.values: dict[str, Any] | None = None

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Before xdist starts a worker: give it its channel, or (a worker started after the
        fit, replacing one that crashed) the tuned values."""
        if self.over:
            node.workerinput[CHANNEL] = None
            node.workerinput[VALUES] = self.values
            return
        channel = node.gateway.newchannel()
        node.workerinput[CHANNEL] = channel
        spec = node.gateway.spec
        local = bool(spec.popen) and not spec.chdir
        self.channels.append((str(node.workerinput["workerid"]), channel, local))

    def _run(self, session: pytest.Session, reporter: Any) -> None:
        from .fit import split_holdout
        from .fit._remote import Shard, Traffic, replies, stand_ins

        option = self.config.option
        self.shards = shards = [Shard(worker, channel) for worker, channel, _ in self.channels]
        groups: dict[str, Any] = {}
        for shard, (_, _, local) in zip(shards, self.channels):
            shard.groups, shard.root, shard.local = groups, self.config.rootpath, local
        recorded = replies(shards)
        stop = next((r["stop"] for r in recorded if "stop" in r), None)
        if stop is not None:
            self._abandon(stop)
            return  # xdist's loop reports the collection errors
        _same_collections(shards, recorded)
        _same_outcomes(shards, [r["outcomes"] for r in recorded])
        scored, failed, skipped = recorded[0]["outcomes"]
        if not (scored or failed or skipped):
            self._abandon("nothing to fit")
            raise pytest.UsageError(
                "--fit: no soft tests selected, so there is nothing to fit. Mark tests with "
                "@soft_test, or check the paths, -k and -m you gave."
            )
        self._show_left_out(reporter, failed, skipped)
        held: list[str] = []
        if option.soft_fit_holdout:
            _, held = split_holdout(scored, option.soft_fit_holdout, option.soft_fit_seed)
        for shard in shards:
            shard.send("build", held)
        built = replies(shards)
        _same_terms(shards, built)
        costs = [sum(b["seconds"][k] for b in built) for k in range(len(built[0]["terms"]))]
        mine = owners(costs, len(shards))
        held_by = owners([d["cases"] for d in built[0]["holdout"]], len(shards))
        terms = stand_ins([(shards[w], d) for w, d in zip(mine, built[0]["terms"])])
        holdout = stand_ins([(shards[w], d) for w, d in zip(held_by, built[0]["holdout"])])
        for w, shard in enumerate(shards):
            shard.tests = [
                name
                for owner, d in zip(mine, built[0]["terms"])
                if owner == w
                for name in (d["case_names"] or [d["name"]])
            ]
        counted = Traffic()  # the fit's own requests, from here
        for shard in shards:
            shard.traffic = counted
        self._fit_and_save(terms, holdout, built[0]["notes"], reporter)

    def _backend(self) -> str:
        # The workers apply --fit-backend to their own terms; here every term is a stand-in.
        return "auto"

    def _fitted(self, result: FitResult) -> None:
        """Send the tuned values to every worker (which puts them in for the run), and take
        what their backends did into the result."""
        from .fit import WorkerStats
        from .fit._remote import pack, replies

        traffic = self.shards[0].traffic
        result.workers = WorkerStats(
            shards=tuple((s.worker, len(s.tests)) for s in self.shards),
            requests=traffic.requests,
            rounds=traffic.rounds,
            wait_seconds=traffic.wait_seconds,
            busy_seconds=traffic.busy_seconds,
        )
        values = None
        if result.improved:
            values = {
                group.module: {name: pack(v) for name, v in group.to_dict().items()}
                for group in result.groups
            }
        for shard in self.shards:
            shard.send("finish", values)
        done = replies(self.shards)
        self.over, self.values = True, values
        used = {kind for d in done for kind in d["used"]}
        kinds = [kind for kind in ("autograd", "jax") if kind in used]
        result.backend = " + ".join(kinds) or "autograd"
        result.compiled = sum(d["compiled"] for d in done)
        result.compile_seconds = max((d["compile_seconds"] for d in done), default=0.0)
        result.float64 = any(d["float64"] for d in done)

    def _abandon(self, why: str) -> None:
        """Tell every worker still answering that the fit is over, with nothing to put in."""
        self.over = True
        for shard in self.shards:
            if not shard.closed:
                try:
                    shard.channel.send(("abort", why))
                except Exception:
                    shard.closed = True


def _same_outcomes(shards: list[Shard], outcomes: list[list[list[str]]]) -> None:
    """Every worker must have recorded the same soft tests, with the same outcome."""
    kinds = ("scored", "failed", "skipped")

    def status(seen: list[list[str]]) -> dict[str, str]:
        return {name: kind for kind, names in zip(kinds, seen) for name in names}

    first = status(outcomes[0])
    for shard, seen in zip(shards[1:], outcomes[1:]):
        mine = status(seen)
        for name in [*first, *(n for n in mine if n not in first)]:
            if first.get(name) != mine.get(name):
                _differ(
                    shards[0],
                    shard,
                    "recorded the soft tests",
                    f"{name} {first.get(name, 'absent')} on {shards[0].worker}, "
                    f"{mine.get(name, 'absent')} on {shard.worker}",
                )


def _same_terms(shards: list[Shard], built: list[Mapping[str, Any]]) -> None:
    """Every worker must have built the same terms (each batch with the same cases)."""

    def shown(d: Mapping[str, Any] | None) -> str:
        if d is None:
            return "nothing"
        if d["exact"] is not None:
            return f"{d['name']} as one batch of {d['cases']} cases"
        return f"{d['name']} on its own"

    for shard, mine in zip(shards[1:], built[1:]):
        for part in ("terms", "holdout"):
            a, b = built[0][part], mine[part]
            for k in range(max(len(a), len(b))):
                x, y = (a[k] if k < len(a) else None), (b[k] if k < len(b) else None)
                if (
                    x is None
                    or y is None
                    or shown(x) != shown(y)
                    or x["case_names"] != y["case_names"]
                ):
                    _differ(
                        shards[0],
                        shard,
                        "built the fit's terms",
                        f"{shards[0].worker} has {shown(x)}, {shard.worker} {shown(y)}",
                    )


def _differ(first: Shard, other: Shard, what: str, detail: str) -> None:
    """Workers that did not come to the same: a soft test that scores differently from one
    process to the next, or fails or is skipped on one worker only, makes them differ."""
    raise WorkerError(
        f"pytest-xdist workers {first.worker} and {other.worker} {what} differently "
        f"({detail}): some soft test behaves differently from one worker to another "
        "(randomness, state, the environment). Fit without -n, or make it behave the same."
    )


def _same_collections(shards: list[Shard], recorded: list[dict[str, Any]]) -> None:
    """Every worker must have collected the same tests, in the same order."""
    first, reference = shards[0], recorded[0]["collection"]
    for shard, r in zip(shards[1:], recorded[1:]):
        mine = r["collection"]
        if mine == reference:
            continue
        only_first = [n for n in reference if n not in set(mine)]
        only_here = [n for n in mine if n not in set(reference)]

        def shown(names: list[str]) -> str:
            return ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")

        detail = "; ".join(
            part
            for part in (
                f"only {first.worker} has {shown(only_first)}" if only_first else "",
                f"only {shard.worker} has {shown(only_here)}" if only_here else "",
                "the same tests in another order" if not (only_first or only_here) else "",
            )
            if part
        )
        raise WorkerError(
            f"pytest-xdist workers {first.worker} and {shard.worker} collected different tests "
            f"({len(reference)} and {len(mine)}: {detail}). A fit spread over workers needs the "
            "same tests on each: look for what makes collection depend on the worker (the "
            "environment, a random order, a conftest.py)."
        )


class WorkerFit(FitSession):
    """A worker's part: record the soft tests, build the fit's terms, answer the controller's
    evaluations, put the tuned values in; then xdist's own loop runs the tests."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        from .fit._remote import put_in

        workerinput = self.config.workerinput  # type: ignore[attr-defined]
        channel = workerinput.get(CHANNEL)
        if channel is None:  # started after the fit, to replace a worker that crashed
            put_in(workerinput.get(VALUES))
            return None
        config = self.config
        if config.option.collectonly:
            channel.send(("ok", 0.0, {"stop": "--collect-only"}))
            return None
        if session.testsfailed and not config.option.continue_on_collection_errors:
            channel.send(("ok", 0.0, {"stop": "collection errors"}))
            return None
        cases: list[Any] = []
        try:
            cases = self._serve(session, channel)
        except SoftError as exc:
            channel.send(("error", type(exc).__name__, str(exc)))
            _wait_for_the_end(channel)
        except BaseException as exc:
            # Anything else (an internal error, a KeyboardInterrupt in a test): say so, so that
            # the controller does not wait for an answer that will never come.
            with contextlib.suppress(Exception):
                channel.send(
                    (
                        "error",
                        "WorkerError",
                        f"it stopped on {type(exc).__name__}"
                        + (f" ({exc})" if str(exc) else "")
                        + " while it recorded or evaluated the soft tests for the fit",
                    )
                )
            raise
        finally:
            _undo_patches(cases)
        return None

    def _serve(self, session: pytest.Session, channel: Any) -> list[Any]:
        from .fit._problem import fit_backends
        from .fit._remote import Built, Server

        items = soft_items(session)
        cases, failed, skipped = self._record(items)
        place = {item.nodeid: i for i, item in enumerate(items)}
        channel.send(
            (
                "ok",
                0.0,
                {
                    "collection": [item.nodeid for item in session.items],
                    # In collection order, what one process would record.
                    "outcomes": [[case.name for case in cases], failed, skipped],
                },
            )
        )
        message = channel.receive()
        if message[0] != "build":
            return cases  # abort
        held = set(message[1])
        train = [c for c in cases if c.name not in held]
        held_cases = [c for c in cases if c.name in held]
        terms, holdout, notes = self._build(train, held_cases)
        with fit_backends(self.config.option.soft_fit_backend):
            server = Server(channel, Built(terms, holdout, place))
            seconds = server.measure()
            channel.send(
                (
                    "ok",
                    0.0,
                    {
                        "terms": server.described,
                        "holdout": server.described_holdout,
                        "notes": notes,
                        "seconds": seconds,
                    },
                )
            )
            server.serve()
        return cases


def _wait_for_the_end(channel: Any) -> None:
    """After reporting an error, answer nothing until the controller ends the fit."""
    try:
        while channel.receive()[0] not in ("abort", "finish"):
            channel.send(("error", "FitError", "this worker could not take part in the fit"))
    except EOFError:
        pass
