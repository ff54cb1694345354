"""``pytest --fit -n N``: the fit spread over pytest-xdist workers (the pytest glue; the engine's
side is :mod:`pytest_soft.fit._remote`).

The controller, which collects nothing, opens one channel per worker on the gateway xdist opened
for it and hands it over in the worker's ``workerinput``. Each worker records its share of the
soft tests (:func:`shard_of`: the same on every worker, from the collection alone), builds its
terms and answers the controller's evaluations. The controller checks that the workers collected
the same tests, splits off the hold-out as one process would, runs the engine on stand-ins of
every worker's terms, writes the parameter files, and sends the tuned values to every worker;
then xdist's own loop runs the tests with them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from ._fitplugin import FitLock, FitSession, _undo_patches, batch_key_of, soft_items
from .errors import SoftError, WorkerError

if TYPE_CHECKING:
    from .fit import FitResult
    from .fit._remote import Shard

#: Keys of a worker's workerinput: its channel (None for a worker started after the fit), its
#: share (index, count), and the tuned values for a worker started after the fit.
CHANNEL = "pytest_soft_fit_channel"
SHARE = "pytest_soft_fit_share"
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


def shares(keys: list[Any], count: int) -> list[int]:
    """Which of ``count`` workers records each soft test, from the tests' batch keys (None for a
    test that is not batched), in collection order.

    Each parametrized test's batchable cases are cut into ``count`` runs of consecutive cases
    (as equal as can be), and every other soft test is one run of its own; the runs go to the
    workers in turn. Each worker's share of a parametrized test is then one batch there, and the
    shares side by side are the test's cases in order."""
    runs: dict[Any, list[int]] = {}
    for i, key in enumerate(keys):
        runs.setdefault(("batch", key) if key is not None else ("one", i), []).append(i)
    worker = [0] * len(keys)
    turn = 0
    for members in runs.values():
        pieces = min(count, len(members))
        size, extra = divmod(len(members), pieces)
        start = 0
        for k in range(pieces):
            stop = start + size + (1 if k < extra else 0)
            for i in members[start:stop]:
                worker[i] = (turn + k) % count
            start = stop
        turn = (turn + pieces) % count
    return worker


class ControllerFit(FitSession):
    """The controller's part: the engine, on stand-ins of the workers' terms."""

    def __init__(self, config: pytest.Config) -> None:
        super().__init__(config)
        self.channels: list[tuple[str, Any]] = []
        self.shards: list[Shard] = []
        #: After the fit: the tuned values (packed), for workers xdist starts later.
        self.over = False
        self.values: dict[str, Any] | None = None

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Before xdist starts a worker: give it its channel and its share, or (a worker
        started after the fit, replacing one that crashed) the tuned values."""
        if self.over:
            node.workerinput[CHANNEL] = None
            node.workerinput[VALUES] = self.values
            return
        node.workerinput[SHARE] = (len(self.channels), int(node.workerinput["workercount"]))
        channel = node.gateway.newchannel()
        node.workerinput[CHANNEL] = channel
        self.channels.append((str(node.workerinput["workerid"]), channel))

    def _run(self, session: pytest.Session, reporter: Any) -> None:
        from .fit import split_holdout
        from .fit._remote import Shard, Traffic, stand_ins

        option = self.config.option
        self.shards = shards = [Shard(worker, channel) for worker, channel in self.channels]
        groups: dict[str, Any] = {}
        traffic = Traffic()
        for shard in shards:
            shard.groups, shard.root, shard.traffic = groups, self.config.rootpath, traffic
        recorded = _all_replies(shards)
        stop = next((r["stop"] for r in recorded if "stop" in r), None)
        if stop is not None:
            self._abandon(stop)
            return  # xdist's loop reports the collection errors
        _same_collections(shards, recorded)
        scored = sorted(p for r in recorded for p in r["scored"])
        failed = [name for _, name in sorted(p for r in recorded for p in r["failed"])]
        skipped = [name for _, name in sorted(p for r in recorded for p in r["skipped"])]
        if not (scored or failed or skipped):
            self._abandon("nothing to fit")
            raise pytest.UsageError(
                "--fit: no soft tests selected, so there is nothing to fit. Mark tests with "
                "@soft_test, or check the paths, -k and -m you gave."
            )
        self._show_left_out(reporter, failed, skipped)
        held: set[str] = set()
        if option.soft_fit_holdout:
            names = [name for _, name in scored]
            _, held_names = split_holdout(names, option.soft_fit_holdout, option.soft_fit_seed)
            held = set(held_names)
        mine = [{name for _, name in r["scored"]} for r in recorded]
        for shard, names_here in zip(shards, mine):
            shard.send("build", sorted(names_here & held))
        built = _all_replies(shards)
        for shard, b in zip(shards, built):
            shard.tests = [n for d in b["terms"] for n in (d["case_names"] or [d["name"]])]
        terms = stand_ins([(shard, b["terms"]) for shard, b in zip(shards, built)])
        holdout = stand_ins([(shard, b["holdout"]) for shard, b in zip(shards, built)])
        notes = [note for b in built for note in b["notes"]]
        counted = Traffic()  # the fit's own requests, from here
        for shard in shards:
            shard.traffic = counted
        self._fit_and_save(terms, holdout, notes, reporter)

    def _run_fit(self, terms: list[Any], holdout: list[Any], progress: Any) -> FitResult:
        # The workers apply --fit-backend to their own terms; here every term is a stand-in.
        backend = self.config.option.soft_fit_backend
        self.config.option.soft_fit_backend = "auto"
        try:
            return super()._run_fit(terms, holdout, progress)
        finally:
            self.config.option.soft_fit_backend = backend

    def _fitted(self, result: FitResult) -> None:
        """Send the tuned values to every worker (which puts them in for the run), and take
        what their backends did into the result."""
        from .fit import WorkerStats
        from .fit._remote import pack

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
        done = _all_replies(self.shards)
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


def _all_replies(shards: list[Shard]) -> list[Any]:
    from .fit._remote import _replies

    return _replies(shards)


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
    """A worker's part: record its share of the soft tests, answer the controller's
    evaluations, put the tuned values in; then xdist's own loop runs the tests."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        workerinput = self.config.workerinput  # type: ignore[attr-defined]
        channel = workerinput.get(CHANNEL)
        if channel is None:  # started after the fit, to replace a worker that crashed
            _put_in(workerinput.get(VALUES))
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
            cases = self._serve(session, channel, workerinput[SHARE])
        except SoftError as exc:
            channel.send(("error", type(exc).__name__, str(exc)))
            _wait_for_the_end(channel)
        finally:
            _undo_patches(cases)
        return None

    def _serve(self, session: pytest.Session, channel: Any, share: tuple[int, int]) -> list[Any]:
        from .fit._problem import fit_backends
        from .fit._remote import Built, Server

        items = soft_items(session)
        index, count = share
        workers = shares([batch_key_of(item) for item in items], count)
        places = [i for i, w in enumerate(workers) if w == index]
        cases, failed, skipped = self._record([items[i] for i in places], places)
        where = {item.nodeid: i for i, item in enumerate(items)}
        channel.send(
            (
                "ok",
                0.0,
                {
                    "collection": [item.nodeid for item in session.items],
                    "scored": [(case.index, case.name) for case in cases],
                    "failed": [(where[name], name) for name in failed],
                    "skipped": [(where[name], name) for name in skipped],
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
        built = Built(
            terms,
            holdout,
            {c.name: c.index for c in cases},
            {c.name: None if c.batch_key is None else "::".join(c.batch_key) for c in cases},
        )
        with fit_backends(self.config.option.soft_fit_backend):
            server = Server(channel, built, self.config.rootpath)
            channel.send(
                (
                    "ok",
                    0.0,
                    {
                        "terms": server.described,
                        "holdout": server.described_holdout,
                        "notes": notes,
                    },
                )
            )
            server.serve()
        return cases


def _put_in(values: dict[str, Any] | None) -> None:
    from .fit._remote import _value
    from .parameters import declared_group

    for module, named in (values or {}).items():
        group = declared_group(module)
        if group is not None:
            group.update({name: _value(p) for name, p in named.items()})


def _wait_for_the_end(channel: Any) -> None:
    """After reporting an error, answer nothing until the controller ends the fit."""
    try:
        while channel.receive()[0] not in ("abort", "finish"):
            channel.send(("error", "FitError", "this worker could not take part in the fit"))
    except EOFError:
        pass
