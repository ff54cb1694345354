"""Fuzzing every loader, and round trips through every writer.

A loader given any bytes, any JSON, or a mutation of a valid file returns a value or raises the
plugin's own error (a SoftError subclass), never anything else, and executes nothing. A writer
followed by its loader gives back exactly what was written: every float to the last bit,
-0.0, subnormals and 1e308 included.
"""

from __future__ import annotations

import json
import math
import pickle
import struct
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pytest_soft import tracking
from pytest_soft.errors import ParameterFileError, SoftError, SoftWarning, TrackingFileError
from pytest_soft.parameters import dumps_parameters, load_parameter_file
from pytest_soft.report import SoftResult, build_report, render_json

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# -- what the loaders are fed --------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.floats()  # NaN and the infinities included: json.dumps writes NaN, Infinity
    | st.integers(min_value=-(10**300), max_value=10**300)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=25,
)


def _document(kind: str, body: Any) -> dict[str, Any]:
    """A document with the right format marker around an arbitrary body: the loaders get past
    their first checks and meet the arbitrary values."""
    if kind == "parameters":
        return {"format": "pytest-soft parameters", "version": 1, "parameters": body}
    if kind == "baseline":
        return {"format": "pytest-soft baseline", "version": 1, "loss": 0.0, "tests": body}
    if kind == "report":
        return {"format": "pytest-soft report", "version": 1, "tests": body, "run": body}
    return {"format": "pytest-soft history", "version": 1, "loss": body, "tests": body}


VALID = {
    "parameters": dumps_parameters(
        "impl", {"a": 1.5, "w": np.array([0.25, -0.0]), "M": np.eye(2)}
    ).encode(),
    "baseline": json.dumps(
        tracking.baseline_document(
            {
                "t.py::a": tracking.Entry(0.5, 2.0, "sha256:00", "5%"),
                "t.py::b": tracking.Entry(None),
            },
            {"time": "2026-01-01T00:00:00+00:00", "git": None},
        )
    ).encode(),
    "report": render_json(
        build_report(
            [
                SoftResult("t.py::a", 1.0, None, 0.5, None, "passed"),
                SoftResult("t.py::b", 2.0, 1.0, None, 3, "error"),
            ],
            {"time": "2026-01-01T00:00:00+00:00"},
        )
    ).encode(),
    "history": (
        b'{"format":"pytest-soft history","version":1,"loss":1.0,"tests":{"t.py::a":1.0}}\n'
        b'{"format":"pytest-soft history","version":1,"loss":"inf","tests":{"t.py::a":"nan"}}\n'
    ),
}


@st.composite
def mutations(draw: st.DrawFn, kind: str) -> bytes:
    """A valid file with a few bytes flipped, deleted, inserted or the tail cut off."""
    data = bytearray(VALID[kind])
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        where = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        if action == "flip":
            data[where] ^= draw(st.integers(1, 255))
        elif action == "delete":
            del data[where]
        elif action == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[where:]
    return bytes(data)


def files_for(kind: str) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=400),
        json_values.map(lambda v: json.dumps(v).encode()),
        json_values.map(lambda v: json.dumps(_document(kind, v)).encode()),
        mutations(kind),
    )


# -- the loaders -----------------------------------------------------------------------------------


def _load_parameters(path: Path) -> Any:
    return load_parameter_file(path)


LOADERS: dict[str, tuple[str, Callable[[Path], Any], type[SoftError]]] = {
    "load_parameter_file": ("parameters", _load_parameters, ParameterFileError),
    "load_baseline": ("baseline", tracking.load_baseline, TrackingFileError),
    "load_snapshot (JSON report)": ("report", tracking.load_snapshot, TrackingFileError),
    "load_history": ("history", tracking.load_history, TrackingFileError),
}


def _fuzz_loader(name: str, tmp_path: Path) -> Callable[[bytes], None]:
    kind, load, error = LOADERS[name]
    path = tmp_path / f"fuzzed.{kind}"

    def check(data: bytes) -> None:
        path.write_bytes(data)
        try:
            load(path)
        except error:
            pass  # the plugin's own error, naming the file: fine

    return check


@pytest.mark.parametrize("name", LOADERS)
def test_a_loader_returns_or_raises_its_own_error_on_any_input(tmp_path: Path, name: str) -> None:
    kind = LOADERS[name][0]
    check = _fuzz_loader(name, tmp_path)

    @FUZZ
    @given(data=files_for(kind))
    @example(data=b"[" * 100_000)  # nesting deeper than the recursion limit
    @example(data=b"1" * 5000)  # an integer longer than int() takes from a string
    @example(data=b'{"a": 1e999999}')
    @example(data=b"\xef\xbb\xbf{}")  # a UTF-8 byte order mark
    @example(data=VALID[kind].replace(b"1", b"\x00"))
    def run(data: bytes) -> None:
        check(data)

    run()


@pytest.mark.parametrize("name", LOADERS)
def test_an_error_names_the_file(tmp_path: Path, name: str) -> None:
    kind, load, error = LOADERS[name]
    path = tmp_path / f"named.{kind}"

    @FUZZ
    @given(data=files_for(kind))
    def run(data: bytes) -> None:
        path.write_bytes(data)
        try:
            load(path)
        except error as exc:
            assert str(path) in str(exc)

    run()


DECLARED = """\
import autograd.numpy as np
from pytest_soft import Param, Parameters

theta = Parameters(a=Param(1.0, bounds=(-5.0, 5.0)), w=np.zeros(2), M=np.eye(2))
"""


def test_a_parameter_group_reloads_any_file_or_keeps_its_values(
    tmp_path: Path, import_module: Any
) -> None:
    impl = import_module("fuzz_impl", DECLARED)
    theta = impl.theta
    path = tmp_path / "fuzz_impl.params.json"

    @FUZZ
    @given(
        data=files_for("parameters")
        | st.fixed_dictionaries(
            {"a": json_values, "w": json_values, "M": json_values},
            optional={"old": json_values},
        ).map(lambda body: json.dumps(_document("parameters", body)).encode())
    )
    def run(data: bytes) -> None:
        theta.reset()
        before = {k: np.array(v) for k, v in theta.to_dict().items()}
        path.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SoftWarning)  # out of bounds, no longer declared
            try:
                theta.reload()
            except ParameterFileError:
                # Nothing half-loaded: every value is what it was.
                after = theta.to_dict()
                assert all(np.array_equal(after[k], before[k]) for k in before)
                return
        values = theta.to_dict()
        assert np.shape(values["a"]) == () and np.shape(values["w"]) == (2,)
        assert np.shape(values["M"]) == (2, 2)
        assert all(np.all(np.isfinite(v)) for v in values.values())

    run()


def test_loading_executes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "pwned"
    code = f"open({str(marker)!r}, 'w').close()"

    class Payload:
        def __reduce__(self) -> Any:
            return (exec, (code,))

    payloads = [
        pickle.dumps(Payload()),
        f"__import__('builtins').exec({code!r})".encode(),
        f"!!python/object/apply:builtins.exec [{code!r}]".encode(),
        json.dumps(
            {"format": "pytest-soft parameters", "version": 1, "parameters": {"a": code}}
        ).encode(),
        json.dumps({"__reduce__": code, "format": "pytest-soft baseline", "version": 1}).encode(),
    ]
    for name in LOADERS:
        kind, load, error = LOADERS[name]
        for payload in payloads:
            path = tmp_path / f"payload.{kind}"
            path.write_bytes(payload)
            try:
                load(path)
            except error:
                pass
    assert not marker.exists()


# -- round trips -----------------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)
AWKWARD = [-0.0, 0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1e308, -1e308]
AWKWARD += [1.7976931348623157e308, 0.1, 1 / 3, 123456789.0, -2.5e-320]
awkward = st.sampled_from(AWKWARD)
floats = awkward | finite


def same(a: float | None, b: float | None) -> bool:
    """Equal to the last bit (so -0.0 is not 0.0), NaN equal to NaN."""
    if a is None or b is None:
        return a is b
    return struct.pack("<d", a) == struct.pack("<d", b)


@FUZZ
@given(
    a=floats, w=st.lists(floats, min_size=3, max_size=3), m=st.lists(floats, min_size=4, max_size=4)
)
def test_parameter_files_round_trip_every_float_exactly(a: float, w: list, m: list) -> None:
    values = {"a": a, "w": np.array(w), "M": np.array(m).reshape(2, 2)}
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "impl.params.json"
        path.write_text(dumps_parameters("impl", values), encoding="utf-8")
        loaded = load_parameter_file(path)
    assert same(loaded["a"], a)
    assert all(same(x, y) for x, y in zip(loaded["w"], w))
    assert all(same(x, y) for x, y in zip([x for row in loaded["M"] for x in row], m))


def test_a_group_saves_and_reloads_every_float_exactly(tmp_path: Path, import_module: Any) -> None:
    source = "import numpy as np\nfrom pytest_soft import Parameters\n"
    impl = import_module("roundtrip_impl", source + "theta = Parameters(a=0.0, w=np.zeros(3))\n")
    theta = impl.theta

    @FUZZ
    @given(a=floats, w=st.lists(floats, min_size=3, max_size=3))
    def run(a: float, w: list) -> None:
        theta.update({"a": a, "w": w})
        theta.save()
        theta.reset()
        theta.reload()
        assert same(theta.a, a)
        assert all(same(float(x), y) for x, y in zip(theta.w, w))

    run()


scores = st.none() | floats | st.sampled_from([math.inf, -math.inf, math.nan])
weights = st.floats(min_value=0.0, max_value=1e300) | st.sampled_from([0.0, 5e-324, 1e300])
nodeids = st.text(min_size=1, max_size=30)


def same_score(a: float | None, b: float | None) -> bool:
    if a is not None and b is not None and math.isnan(a) and math.isnan(b):
        return True
    return same(a, b)


def test_baselines_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "base.json"

    @FUZZ
    @given(st.dictionaries(nodeids, st.tuples(scores, weights), max_size=8))
    def run(tests: dict) -> None:
        entries = {k: tracking.Entry(score, weight) for k, (score, weight) in tests.items()}
        tracking.write_baseline(path, entries, {"time": None, "git": None})
        loaded = tracking.load_baseline(path)
        assert loaded is not None and set(loaded.tests) == set(entries)
        for nodeid, entry in entries.items():
            assert same_score(loaded.tests[nodeid].score, entry.score)
            assert same(loaded.tests[nodeid].weight, entry.weight)

    run()


def test_history_lines_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "hist.jsonl"

    @FUZZ
    @given(st.lists(st.dictionaries(nodeids, scores, max_size=5), min_size=1, max_size=3))
    def run(runs: list) -> None:
        path.unlink(missing_ok=True)
        for tests in runs:
            snapshot = tracking.Snapshot({k: tracking.Entry(v) for k, v in tests.items()}, loss=1.0)
            tracking.append_history(path, tracking.history_record(snapshot, {}))
        loaded = tracking.load_history(path)
        assert len(loaded) == len(runs)
        for record, tests in zip(loaded, runs):
            assert set(record["tests"]) == set(tests)
            assert all(same_score(record["tests"][k], v) for k, v in tests.items())

    run()


def test_json_reports_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "report.json"

    @FUZZ
    @given(st.dictionaries(nodeids, st.tuples(scores, weights), max_size=8))
    def run(tests: dict) -> None:
        results = [
            SoftResult(k, weight, None, score, None, "passed" if score is not None else "error")
            for k, (score, weight) in tests.items()
        ]
        path.write_text(render_json(build_report(results, {})), encoding="utf-8")
        loaded = tracking.load_snapshot(path)
        assert set(loaded.tests) == set(tests)
        for nodeid, (score, weight) in tests.items():
            assert same_score(loaded.tests[nodeid].score, score)
            assert same(loaded.tests[nodeid].weight, weight)

    run()
