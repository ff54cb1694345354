"""Parameters and their files, tested directly: real modules written to disk and imported, no
pytest plugin in between."""

from __future__ import annotations

import difflib
import errno
import importlib
import json
import math
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_soft import Param, Parameters, SoftWarning
from pytest_soft.errors import ParameterError, ParameterFileError
from pytest_soft.parameters import (
    FORMAT_NAME,
    FORMAT_VERSION,
    dumps_parameters,
    load_parameter_file,
    parameter_file_for,
    record_reads,
)

# An implementation module: a scalar with bounds, a vector and a matrix, read at call time.
IMPL = """
    import numpy as np
    from pytest_soft import Param, Parameters

    theta = Parameters(
        omega=Param(1.0, bounds=(0.0, 5.0)),
        w=np.array([1.0, 2.0, 3.0]),
        m=[[1.0, 2.0], [3.0, 4.0]],
    )

    def f(x):
        return theta.omega * x + theta.w.sum() + theta.m[1, 0]
"""


def file_text(parameters: str, version: int = FORMAT_VERSION, module: str = "impl") -> str:
    return (
        f'{{"format": "{FORMAT_NAME}", "version": {version}, "module": "{module}", '
        f'"parameters": {{{parameters}}}}}'
    )


def bits(value: object) -> bytes:
    """The exact float64 bit pattern (tells -0.0 from 0.0, unlike ==)."""
    return np.asarray(value, dtype=np.float64).tobytes()


def files_in(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


# -- declaring ----------------------------------------------------------------------------------


def test_scalars_and_arrays_are_declared_as_float64(import_module):
    impl = import_module("impl", IMPL)
    theta = impl.theta

    assert type(theta.omega) is float and theta.omega == 1.0
    assert theta.w.dtype == np.float64 and theta.w.tolist() == [1.0, 2.0, 3.0]
    assert theta.m.shape == (2, 2) and theta.m.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert list(theta) == ["omega", "w", "m"]
    assert len(theta) == 3 and "w" in theta and "nope" not in theta
    assert theta.module == "impl"
    assert {s.full_name: s.shape for s in theta.specs.values()} == {
        "impl.omega": (),
        "impl.w": (3,),
        "impl.m": (2, 2),
    }
    assert theta["omega"] == 1.0


def test_integer_values_become_floats():
    theta = Parameters(n=3, v=[1, 2], u=np.arange(3, dtype=np.int32))
    assert type(theta.n) is float and theta.n == 3.0
    assert theta.v.dtype == np.float64 and theta.u.dtype == np.float64


@pytest.mark.parametrize(
    ("bounds", "lower", "upper"),
    [
        ((0.0, 5.0), 0.0, 5.0),
        ((None, 5), None, 5.0),
        ((-1, None), -1.0, None),
        ((-math.inf, math.inf), None, None),
        (None, None, None),
    ],
)
def test_param_bounds_are_recorded(bounds, lower, upper):
    theta = Parameters(a=Param(1.0, bounds=bounds))
    spec = theta.specs["a"]
    assert (spec.lower, spec.upper) == (lower, upper)
    assert theta.a == 1.0


def test_bounds_apply_to_every_element_of_an_array():
    with pytest.raises(ParameterError, match=r"\.w'.*outside its bounds"):
        Parameters(w=Param([0.5, 2.0], bounds=(0.0, 1.0)))
    theta = Parameters(w=Param([0.0, 1.0], bounds=(0.0, 1.0)))  # the bounds themselves are fine
    assert theta.w.tolist() == [0.0, 1.0]


def test_values_are_read_at_call_time(import_module):
    impl = import_module("impl", IMPL)
    assert impl.f(2.0) == 2.0 + 6.0 + 3.0

    impl.theta.omega = 3.0
    assert impl.f(2.0) == 6.0 + 6.0 + 3.0

    impl.theta.update({"w": [0.0, 0.0, 1.0], "m": np.zeros((2, 2))})
    assert impl.f(2.0) == 6.0 + 1.0 + 0.0

    impl.theta.reset()
    assert impl.f(2.0) == 2.0 + 6.0 + 3.0


def test_array_values_cannot_be_changed_behind_the_groups_back():
    source = np.array([1.0, 2.0])
    theta = Parameters(w=source)
    source[0] = 99.0
    assert theta.w.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError):
        theta.w[0] = 5.0
    assert theta.w.tolist() == [1.0, 2.0]


def test_assignments_are_checked_against_the_declaration():
    theta = Parameters(a=1.0, w=np.zeros(3))
    with pytest.raises(ParameterError, match=r"\.w' has shape \(2,\).*declared with shape \(3,\)"):
        theta.w = [1.0, 2.0]
    with pytest.raises(ParameterError, match=r"\.a' is not finite"):
        theta.a = float("nan")
    with pytest.raises(ParameterError, match="is a bool"):
        theta.a = True
    with pytest.raises(AttributeError, match="declares no parameter 'b'"):
        theta.b = 1.0
    with pytest.raises(AttributeError, match="declares no parameter 'b'"):
        _ = theta.b
    with pytest.raises(ParameterError, match="declares no parameter 'b'"):
        theta.update({"a": 2.0, "b": 1.0})
    # update checks everything before changing anything
    with pytest.raises(ParameterError):
        theta.update({"a": 2.0, "w": [1.0]})
    assert theta.a == 1.0 and theta.w.tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ({"save": 1.0}, r"\.save'.*name of a Parameters method"),
        ({"path": 1.0}, r"\.path'.*name of a Parameters method"),
        ({"to_dict": 1.0}, r"\.to_dict'.*name of a Parameters method"),
        ({"_hidden": 1.0}, r"\._hidden'.*names starting with '_' are reserved"),
        ({"flag": True}, r"\.flag'.*is a bool"),
        ({"flag": np.bool_(False)}, r"\.flag'.*is a bool"),
        ({"z": 1 + 2j}, r"\.z'.*is complex"),
        ({"z": np.array([1j, 2.0])}, r"\.z'.*is complex"),
        ({"s": "1.0"}, r"\.s'.*is a string"),
        ({"n": None}, r"\.n'.*not a real number"),
        ({"r": [[1.0, 2.0], [3.0]]}, r"\.r'.*cannot be read as a number or array"),
        ({"x": float("nan")}, r"\.x'.*not finite"),
        ({"x": [1.0, float("inf")]}, r"\.x'.*not finite"),
        ({"x": Param(6.0, bounds=(0.0, 5.0))}, r"\.x'.*declared value 6.0 lies outside"),
        ({"x": Param(-1.0, bounds=(0.0, None))}, r"\.x'.*outside its bounds"),
        ({"x": Param(1.0, bounds=(2.0, 1.0))}, r"\.x'.*lower bound 2.0 is not below"),
        ({"x": Param(1.0, bounds=(1.0, 1.0))}, r"\.x'.*lower bound 1.0 is not below"),
        ({"x": Param(1.0, bounds=(0.0,))}, r"\.x'.*bounds must be a pair"),
        ({"x": Param(1.0, bounds=("0", 2.0))}, r"\.x'.*lower bound must be a number"),
        ({"x": Param(1.0, bounds=(0.0, float("nan")))}, r"\.x'.*upper bound is NaN"),
        ({}, "no parameters"),
    ],
)
def test_unusable_declarations_are_rejected_with_the_parameter_named(declared, message):
    with pytest.raises(ParameterError, match=message):
        Parameters(**declared)


# -- the file beside the module -----------------------------------------------------------------


def test_parameter_file_sits_beside_the_module(tmp_path):
    assert parameter_file_for(tmp_path / "sine.py") == tmp_path / "sine.params.json"


@pytest.mark.compat
def test_file_beside_the_module_is_loaded_on_import(import_module, tmp_path):
    (tmp_path / "impl.params.json").write_text(
        file_text('"omega": 2.5, "w": [4.0, 5.0, 6.0], "m": [[0.0, 1.0], [2.0, 3.0]]')
    )
    impl = import_module("impl", IMPL)

    assert impl.theta.path == tmp_path / "impl.params.json"
    assert impl.theta.omega == 2.5
    assert impl.theta.w.tolist() == [4.0, 5.0, 6.0]
    assert impl.theta.m.tolist() == [[0.0, 1.0], [2.0, 3.0]]
    assert impl.f(1.0) == 2.5 + 15.0 + 2.0
    # the declaration is still known, for reset()
    impl.theta.reset()
    assert impl.theta.omega == 1.0


def test_parameter_missing_from_the_file_keeps_its_declared_value(import_module, tmp_path):
    (tmp_path / "impl.params.json").write_text(file_text('"omega": 4.0'))
    impl = import_module("impl", IMPL)
    assert impl.theta.omega == 4.0
    assert impl.theta.w.tolist() == [1.0, 2.0, 3.0]
    assert impl.theta.m.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_parameter_no_longer_declared_is_warned_about_and_dropped_on_save(import_module, tmp_path):
    path = tmp_path / "impl.params.json"
    path.write_text(file_text('"omega": 4.0, "gamma": 7.0, "delta": [1.0]'))
    with pytest.warns(SoftWarning, match=r"no longer declared in module 'impl': gamma, delta"):
        impl = import_module("impl", IMPL)
    assert impl.theta.omega == 4.0  # the rest of the file is used
    assert "gamma" not in impl.theta

    impl.theta.save()
    stored = load_parameter_file(path)
    assert set(stored) == {"omega", "w", "m"}
    assert stored["omega"] == 4.0


def test_reads_are_recorded_inside_record_reads(import_module):
    impl = import_module("impl", IMPL)
    impl.f(1.0)  # outside: nothing recorded anywhere
    with record_reads() as outer:
        with record_reads() as inner:
            _ = impl.theta.omega
        _ = impl.theta["w"]
    assert inner == {(impl.theta, "omega")}
    assert outer == {(impl.theta, "omega"), (impl.theta, "w")}


# -- saving -------------------------------------------------------------------------------------

TRICKY = [0.1 + 0.2, 1e-310, -0.0, 5e-324, 1.7976931348623157e308, -2.2250738585072014e-308]


@pytest.mark.compat
@pytest.mark.parametrize("value", TRICKY, ids=repr)
def test_save_round_trips_a_float_exactly(import_module, value):
    source = """
        from pytest_soft import Parameters

        theta = Parameters(a=0.0, v=[0.0, 0.0, 0.0])
    """
    impl = import_module("tricky", source)
    impl.theta.a = value
    impl.theta.v = [value, -value, 1.0 / 3.0]
    path = impl.theta.save()

    again = import_module("tricky")  # a fresh import reads the file
    assert again.theta is not impl.theta
    assert again.theta.path == path
    assert bits(again.theta.a) == bits(value)
    assert bits(again.theta.v) == bits([value, -value, 1.0 / 3.0])


def test_save_round_trips_random_arrays_exactly(import_module, tmp_path):
    rng = np.random.default_rng(7)
    source = """
        import numpy as np
        from pytest_soft import Parameters

        theta = Parameters(
            s=0.0, v=np.zeros(50), m=np.zeros((7, 3)), t=np.zeros((2, 3, 4)), e=np.zeros(0),
            col=np.zeros((0, 2)),
        )
    """
    impl = import_module("arrays", source)
    values = {
        "s": float(rng.standard_normal() * 1e-300),
        "v": rng.standard_normal(50) * 10.0 ** rng.integers(-300, 300, size=50),
        "m": rng.standard_normal((7, 3)),
        "t": rng.uniform(-1e6, 1e6, size=(2, 3, 4)),
        "e": np.zeros(0),
        "col": np.zeros((0, 2)),
    }
    impl.theta.update(values)
    impl.theta.save()

    again = import_module("arrays")
    for name, value in values.items():
        got = again.theta[name]
        assert np.shape(got) == np.shape(value), name
        assert bits(got) == bits(value), name


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    scalar=st.floats(allow_nan=False, allow_infinity=False),
    vector=st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=8),
)
def test_any_finite_float_round_trips_through_the_file(tmp_path, scalar, vector):
    path = tmp_path / "any.params.json"
    path.write_text(dumps_parameters("any", {"a": scalar, "b": np.array(vector)}))
    stored = load_parameter_file(path)
    assert bits(stored["a"]) == bits(scalar)
    assert bits(stored["b"]) == bits(vector)


def test_file_is_human_diffable(import_module):
    impl = import_module("impl", IMPL)
    impl.theta.save()
    before = impl.theta.path.read_text(encoding="utf-8")
    assert before == textwrap.dedent(
        """\
        {
          "format": "pytest-soft parameters",
          "version": 1,
          "module": "impl",
          "parameters": {
            "omega": 1.0,
            "w": [1.0, 2.0, 3.0],
            "m": [
              [1.0, 2.0],
              [3.0, 4.0]
            ]
          }
        }
        """
    )
    json.loads(before)  # and plain JSON

    # changing one number changes one line
    impl.theta.m = [[1.0, 2.0], [3.0, 4.5]]
    impl.theta.save()
    after = impl.theta.path.read_text(encoding="utf-8")
    changed = [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert changed == ["-      [3.0, 4.0]", "+      [3.0, 4.5]"]


def test_save_to_an_explicit_path(import_module, tmp_path):
    impl = import_module("impl", IMPL)
    impl.theta.omega = 0.5
    target = tmp_path / "elsewhere.params.json"
    assert impl.theta.save(target) == target
    assert load_parameter_file(target)["omega"] == 0.5
    assert not (tmp_path / "impl.params.json").exists()


def test_save_keeps_the_files_permission_bits(import_module):
    impl = import_module("impl", IMPL)
    path = impl.theta.save()
    path.chmod(0o640)
    impl.theta.omega = 2.0
    impl.theta.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert load_parameter_file(path)["omega"] == 2.0
    assert files_in(path.parent) == {"impl.py", "impl.params.json"}  # no temporary file left


def test_failed_save_leaves_the_old_file_intact_and_no_temporary_file(
    import_module, tmp_path, monkeypatch
):
    impl = import_module("impl", IMPL)
    path = impl.theta.save()
    before = path.read_bytes()
    listing = files_in(tmp_path)

    def refuse(src, dst):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    impl.theta.omega = 3.0
    with pytest.raises(ParameterFileError) as info:
        impl.theta.save()
    message = str(info.value)
    assert str(path) in message and "'impl'" in message
    assert "Permission denied" in message and "unchanged" in message
    assert path.read_bytes() == before
    assert files_in(tmp_path) == listing


def test_save_into_a_missing_directory_is_a_clear_error(import_module, tmp_path):
    impl = import_module("impl", IMPL)
    target = tmp_path / "no" / "such" / "dir" / "x.params.json"
    with pytest.raises(ParameterFileError, match="cannot write the parameters of module 'impl'"):
        impl.theta.save(target)
    assert not (tmp_path / "no").exists()


# -- files that cannot be used ------------------------------------------------------------------

BIG_INT = "1" + "0" * 400

BAD_FILES = [
    # (id, file content, the parameter the message must name or None, more of the message)
    ("not-json", "{not json", None, "not valid JSON"),
    ("truncated", file_text('"omega": 2.0')[:-5], None, "not valid JSON"),
    ("json-list", "[1.0, 2.0]", None, "not a pytest-soft parameter file"),
    ("other-format", '{"format": "something else", "parameters": {}}', None, "not a pytest-soft"),
    ("no-version", f'{{"format": "{FORMAT_NAME}", "parameters": {{}}}}', None, "format version"),
    ("newer-version", file_text('"omega": 2.0', version=FORMAT_VERSION + 1), None, "newer"),
    ("version-zero", file_text('"omega": 2.0', version=0), None, "unknown format version"),
    ("no-parameters", f'{{"format": "{FORMAT_NAME}", "version": 1}}', None, '"parameters"'),
    ("empty", "", None, "is empty"),
    ("blank", "  \n\t\n", None, "is empty"),
    ("duplicate-key", file_text('"omega": 2.0, "omega": 3.0'), "omega", "appears twice"),
    ("shape-scalar-as-list", file_text('"omega": [2.0]'), "impl.omega", r"shape \(1,\)"),
    ("shape-vector", file_text('"w": [1.0, 2.0]'), "impl.w", r"shape \(2,\).*shape \(3,\)"),
    ("shape-matrix", file_text('"m": [1.0, 2.0, 3.0, 4.0]'), "impl.m", r"shape \(4,\)"),
    ("ragged", file_text('"m": [[1.0, 2.0], [3.0]]'), "impl.m", "regular"),
    ("NaN", file_text('"omega": NaN'), "impl.omega", "not finite"),
    ("Infinity", file_text('"omega": Infinity'), "impl.omega", "not finite"),
    ("minus-Infinity", file_text('"w": [1.0, -Infinity, 3.0]'), "impl.w", "not finite"),
    ("overflow-1e400", file_text('"omega": 1e400'), "impl.omega", "not finite"),
    ("overflow-int", file_text(f'"omega": {BIG_INT}'), "impl.omega", "too large"),
    ("overflow-int-in-array", file_text(f'"w": [1, 2, {BIG_INT}]'), "impl.w", "too large"),
    ("string", file_text('"omega": "2.0"'), "impl.omega", "not a number"),
    ("string-in-array", file_text('"w": [1.0, "2.0", 3.0]'), "impl.w", "not a number"),
    ("bool", file_text('"omega": true'), "impl.omega", "not a number"),
    ("bool-in-array", file_text('"w": [true, false, true]'), "impl.w", "not a number"),
    ("null", file_text('"omega": null'), "impl.omega", "not a number"),
    ("null-in-array", file_text('"w": [1.0, null, 3.0]'), "impl.w", "not a number"),
    ("object", file_text('"omega": {"value": 2.0}'), "impl.omega", "not a number"),
]


@pytest.mark.parametrize(
    ("content", "parameter", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_FILES],
)
def test_unusable_file_is_an_error_naming_file_and_parameter(
    import_module, tmp_path, content, parameter, message
):
    path = tmp_path / "impl.params.json"
    path.write_text(content, encoding="utf-8")
    before = path.read_bytes()

    with pytest.raises(ParameterFileError, match=message) as info:
        import_module("impl", IMPL)

    text = str(info.value)
    assert str(path) in text
    if parameter is not None:
        assert f"'{parameter}'" in text
    assert path.read_bytes() == before


def test_file_that_is_not_utf8_is_an_error(import_module, tmp_path):
    path = tmp_path / "impl.params.json"
    path.write_bytes(file_text('"omega": 2.0').encode("utf-16"))
    before = path.read_bytes()
    with pytest.raises(ParameterFileError, match="not UTF-8") as info:
        import_module("impl", IMPL)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before


def test_directory_in_place_of_the_file_is_an_error(import_module, tmp_path):
    path = tmp_path / "impl.params.json"
    path.mkdir()
    (path / "keep").write_text("x")
    with pytest.raises(ParameterFileError, match="is a directory") as info:
        import_module("impl", IMPL)
    assert str(path) in str(info.value)
    assert files_in(path) == {"keep"}


def test_link_to_nowhere_in_place_of_the_file_is_an_error(import_module, tmp_path):
    path = tmp_path / "impl.params.json"
    path.symlink_to(tmp_path / "missing.json")
    with pytest.raises(ParameterFileError, match="link to nowhere") as info:
        import_module("impl", IMPL)
    assert str(path) in str(info.value)


def test_a_bad_file_does_not_stop_the_module_once_it_is_fixed(import_module, tmp_path):
    path = tmp_path / "impl.params.json"
    path.write_text(file_text('"omega": NaN'))
    with pytest.raises(ParameterFileError):
        import_module("impl", IMPL)
    path.write_text(file_text('"omega": 0.25'))
    assert import_module("impl", IMPL).theta.omega == 0.25


# -- one group per module -----------------------------------------------------------------------


def test_second_group_in_one_module_is_an_error(import_module):
    source = """
        from pytest_soft import Parameters

        theta = Parameters(a=1.0)
        phi = Parameters(b=2.0)
    """
    with pytest.raises(ParameterError, match="module 'twice' declares a second Parameters group"):
        import_module("twice", source)


def test_reimporting_and_reloading_a_module_is_fine(import_module, tmp_path):
    first = import_module("impl", IMPL)
    second = import_module("impl")  # dropped from sys.modules and imported again
    assert second is not first and second.theta.omega == 1.0

    (tmp_path / "impl.params.json").write_text(file_text('"omega": 0.75'))
    reloaded = importlib.reload(second)
    assert reloaded is second
    assert reloaded.theta.omega == 0.75
    importlib.reload(reloaded)
    assert reloaded.theta.omega == 0.75


# -- a module without a file --------------------------------------------------------------------


def test_module_without_a_file_keeps_its_parameters_in_memory(tmp_path):
    code = compile(
        textwrap.dedent(
            """
            from pytest_soft import Parameters

            theta = Parameters(omega=1.5)

            def f(x):
                return theta.omega * x
            """
        ),
        "<notebook cell>",
        "exec",
    )
    namespace = {"__name__": "__main__"}
    exec(code, namespace)
    theta = namespace["theta"]

    assert theta.path is None and theta.module == "__main__"
    assert namespace["f"](2.0) == 3.0
    theta.omega = 2.0
    assert namespace["f"](2.0) == 4.0

    with pytest.raises(ParameterFileError, match=r"module '__main__' has no file.*pass a path"):
        theta.save()
    target = theta.save(tmp_path / "cell.params.json")
    assert load_parameter_file(target) == {"omega": 2.0}
    assert files_in(tmp_path) == {"cell.params.json"}


def test_module_without_a_file_reads_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "__main__.params.json").write_text(file_text('"omega": 9.0', module="__main__"))
    namespace = {"__name__": "__main__"}
    exec("from pytest_soft import Parameters\ntheta = Parameters(omega=1.5)", namespace)
    assert namespace["theta"].omega == 1.5


def test_file_is_loaded_on_import_outside_pytest(tmp_path):
    (tmp_path / "impl.py").write_text(textwrap.dedent(IMPL), encoding="utf-8")
    (tmp_path / "impl.params.json").write_text(file_text('"omega": 0.125'))
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import impl; print(repr(impl.theta.omega), repr(float(impl.f(2.0))))",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0.125", "9.25"]


def test_a_stored_value_outside_the_bounds_is_used_with_a_warning(import_module, tmp_path):
    source = """
        from pytest_soft import Param, Parameters
        theta = Parameters(omega=Param(1.0, bounds=(0.0, 5.0)))
    """
    path = tmp_path / "boundsmod.params.json"
    path.write_text(
        '{"format": "pytest-soft parameters", "version": 1, "module": "boundsmod", '
        '"parameters": {"omega": 7.0}}',
        encoding="utf-8",
    )
    before = path.read_bytes()
    with pytest.warns(SoftWarning, match=r"boundsmod\.omega' = 7\.0 lies outside its declared"):
        module = import_module("boundsmod", source)
    assert module.theta.omega == 7.0
    assert path.read_bytes() == before
