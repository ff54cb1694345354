"""Property-based tests of batched evaluation (issue 9): a fit with a parametrized soft test's
cases batched into one call reaches the same parameters as the fit that calls every case on its
own, or the batch is refused; and the loss a fit reports as "after" is the loss the next run
measures.

Hypothesis generates least-squares problems: an implementation ``predict(...)`` that is a sum
of features, each linear in its own parameter and built from a grammar of expressions over the
case's arguments (scalars, vectors, matrices, and a fixture): elementwise code, reductions over
a case's own arguments (``sum``, ``mean``, ``max``, ``dot``/``@`` in both orders, ``x[0]``,
``len(x)``, ``x.shape``, ``reshape``), and the same reductions written for stacked cases
(``axis=-1``, ``x[..., 0]``). The targets come from known parameters (plus noise, sometimes),
and a problem is kept only when its design matrix is well conditioned, so the optimum is unique
and "same parameters to rel 1e-8" is a fair demand. The engine-level properties call
``build_terms`` and ``fit`` directly (many examples); the plugin-level ones write the problem as
an implementation module and a parametrized test module and run ``pytest --fit`` and then a plain
run (few examples).
"""

from __future__ import annotations

import itertools
import json
import math
import re
import textwrap
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# Loaded up front: pytester's in-process runs drop (and the next run re-imports, for a second or
# more) every module first imported during a run, and --fit imports scipy.optimize.
import scipy.optimize  # noqa: F401
from hypothesis import HealthCheck, Phase, assume, event, example, given, note, settings
from hypothesis import strategies as st

from pytest_soft.batch import Case, build_terms
from pytest_soft.fit import fit

# Reproducible in CI: the same examples on every run, no example database.
# Without the explain phase: it reruns a failing example dozens of times (minutes here).
ENGINE = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
)
PLUGIN = settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    database=None,
    # each example is three pytest runs: no shrinking either, the example is shown as drawn
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Same parameters: batched and case-by-case fits agree to this relative tolerance.
RTOL = 1e-8

# -- the grammar --------------------------------------------------------------------------------

#: Shapes a case's own argument can have.
SHAPES: tuple[tuple[int, ...], ...] = ((), (2,), (3,), (4,), (2, 3))


@dataclass(frozen=True)
class Template:
    """One feature: an expression linear in parameter ``{p}`` over argument ``{a}`` (and the
    fixture ``f``). ``safe`` says whether the expression gives every case its own value when
    the cases' arguments are stacked along a new first axis (a batch)."""

    kind: str
    text: str
    param_shape: Any  # a shape, or a function of the argument's shape
    safe: bool
    fixture: bool = False

    def shape(self, arg_shape: tuple[int, ...]) -> tuple[int, ...]:
        return self.param_shape(arg_shape) if callable(self.param_shape) else self.param_shape


def _same(shape: tuple[int, ...]) -> tuple[int, ...]:
    return shape


def _last(shape: tuple[int, ...]) -> tuple[int, ...]:
    return shape[-1:]


def _halves(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (2, shape[0] // 2)


SCALAR_TEMPLATES = [
    Template("elementwise", "theta.{p} * {a}", (), True),
    Template("elementwise", "theta.{p} * np.sin({a})", (), True),
    Template("elementwise", "theta.{p} * {a} ** 2", (), True),
    Template("elementwise", "theta.{p} * np.exp(-{a} * {a})", (), True),
    Template("sum", "theta.{p} * np.sum({a})", (), False),
    Template("mean", "theta.{p} * np.mean({a})", (), False),
    # the fixture f (3 values): shared by every case, or a new array per case
    Template("fixture sum", "theta.{p} * {a} * np.sum(f)", (), True, fixture=True),
    Template("fixture dot", "theta.{p} * {a} * np.dot(f, f)", (), True, fixture=True),
    Template("fixture len", "theta.{p} * {a} * len(f)", (), True, fixture=True),
    Template("fixture index", "theta.{p} * {a} * f[0]", (), True, fixture=True),
]

VECTOR_TEMPLATES = [
    # reductions over the case's own vector, written for one case
    Template("sum", "np.sum(theta.{p} * {a})", _same, False),
    Template("mean", "theta.{p} * np.mean({a})", (), False),
    Template("max", "theta.{p} * np.max({a})", (), False),
    Template("dot(w, x)", "np.dot(theta.{p}, {a})", _same, False),
    Template("w @ x", "theta.{p} @ {a}", _same, False),
    Template("x[0]", "theta.{p} * {a}[0]", (), False),
    Template("x[-1]", "theta.{p} * {a}[len({a}) - 1]", (), False),
    Template("len(x)", "theta.{p} * np.sum({a}) / len({a})", (), False),
    Template("x.shape", "theta.{p} * np.sum({a} ** 2) / {a}.shape[0]", (), False),
    Template("reshape", "theta.{p} * np.sum(np.reshape({a}, (-1,)) ** 2)", (), False),
    Template("norm", "theta.{p} * np.linalg.norm({a})", (), False),
    # the same reductions written for stacked cases: correct one by one and batched
    Template("dot(x, w)", "np.dot({a}, theta.{p})", _same, True),
    Template("x @ w", "{a} @ theta.{p}", _same, True),
    Template("sum axis", "np.sum(theta.{p} * {a}, axis=-1)", _same, True),
    Template("mean axis", "theta.{p} * np.mean({a}, axis=-1)", (), True),
    Template("max axis", "theta.{p} * np.max({a}, axis=-1)", (), True),
    Template("x[..., 0]", "theta.{p} * {a}[..., 0]", (), True),
    Template("x.shape[-1]", "theta.{p} * np.sum({a} ** 2, axis=-1) / {a}.shape[-1]", (), True),
]

EVEN_VECTOR_TEMPLATES = [
    Template("reshape", "np.sum(theta.{p} * np.reshape({a}, (2, -1)))", _halves, False),
    Template(
        "reshape axis",
        "np.sum(theta.{p} * np.reshape({a}, {a}.shape[:-1] + (2, -1)), axis=(-2, -1))",
        _halves,
        True,
    ),
]

MATRIX_TEMPLATES = [
    Template("sum", "np.sum(theta.{p} * {a})", _same, False),
    Template("x[0]", "theta.{p} * {a}[0, 1]", (), False),
    Template("max", "theta.{p} * np.max({a})", (), False),
    Template("m @ w", "np.sum({a} @ theta.{p})", _last, False),
    Template("sum axis", "np.sum(theta.{p} * {a}, axis=(-2, -1))", _same, True),
    Template("x[..., 0]", "theta.{p} * {a}[..., 0, 1]", (), True),
    Template("m @ w axis", "np.sum({a} @ theta.{p}, axis=-1)", _last, True),
]


def templates_for(shape: tuple[int, ...]) -> list[Template]:
    if shape == ():
        return SCALAR_TEMPLATES
    if len(shape) == 1:
        return VECTOR_TEMPLATES + (EVEN_VECTOR_TEMPLATES if shape[0] % 2 == 0 else [])
    return MATRIX_TEMPLATES


@dataclass(frozen=True)
class Feature:
    template: Template
    arg: int
    param: str
    param_shape: tuple[int, ...]
    start: str  # "zero" (the start that hides a wrong batch) or "random"
    bounded: bool

    @property
    def code(self) -> str:
        return self.template.text.format(p=self.param, a=f"a{self.arg}")


@dataclass(frozen=True)
class Problem:
    """A generated least-squares problem: the implementation, the soft test, its cases."""

    shapes: tuple[tuple[int, ...], ...]
    features: tuple[Feature, ...]
    intercept: bool
    #: None (no fixture), "shared" (one object for every case, as a module-scoped fixture
    #: gives) or "per case" (an equal new array for every case, as a function-scoped one gives).
    fixture: str | None
    extra_cases: int
    noise: float
    weight: float
    seed: int

    @property
    def scalars(self) -> int:
        return sum(math.prod(f.param_shape) for f in self.features) + self.intercept

    @property
    def cases(self) -> int:
        return self.scalars + self.extra_cases

    @property
    def safe(self) -> bool:
        """Whether every feature is correct batched (so the batch should be accepted)."""
        return all(
            f.template.safe and not (f.template.fixture and self.fixture == "per case")
            for f in self.features
        )

    @property
    def arg_names(self) -> list[str]:
        return [f"a{i}" for i in range(len(self.shapes))]

    def signature(self) -> str:
        return ", ".join(self.arg_names + (["f"] if self.fixture else []))

    def implementation(self, initial: dict[str, np.ndarray] | None = None) -> str:
        """The implementation module's source."""
        rng = np.random.default_rng(self.seed + 1)
        declared = []
        for feature in self.features:
            if feature.start == "zero":
                value = np.zeros(feature.param_shape)
            else:
                value = rng.uniform(-1.5, 1.5, size=feature.param_shape)
            literal = _literal(value)
            if feature.bounded:
                literal = f"Param({literal}, bounds=(-10.0, 10.0))"
            declared.append(f"{feature.param}={literal}")
        if self.intercept:
            declared.append("b=0.0")
        body = " + ".join([f"({f.code})" for f in self.features] + ["theta.b"] * self.intercept)
        return (
            "import autograd.numpy as np\n"
            "from pytest_soft import Param, Parameters\n\n"
            f"theta = Parameters({', '.join(declared)})\n\n\n"
            f"def predict({self.signature()}):\n"
            f"    return {body}\n"
        )

    def arguments(self) -> list[list[Any]]:
        """Every case's own arguments (scalars as floats, the rest as arrays)."""
        rng = np.random.default_rng(self.seed)
        cases = []
        for _ in range(self.cases):
            args: list[Any] = []
            for shape in self.shapes:
                value = rng.uniform(-2.0, 2.0, size=shape)
                args.append(float(value) if shape == () else value)
            cases.append(args)
        return cases

    def fixture_value(self) -> np.ndarray:
        return np.array([0.5, -1.25, 2.0])


def _literal(value: np.ndarray) -> str:
    if np.ndim(value) == 0:
        return repr(float(value))
    return f"np.array({np.asarray(value).tolist()!r})"


@st.composite
def problems(draw: st.DrawFn, safe: bool = False) -> Problem:
    """A generated problem; with ``safe``, one whose code is correct batched (elementwise, or
    reductions written for stacked cases, and only a fixture shared by every case)."""
    shapes = tuple(draw(st.lists(st.sampled_from(SHAPES), min_size=1, max_size=3)))
    fixture = draw(st.sampled_from([None, "shared"] if safe else [None, "shared", "per case"]))
    if fixture is not None and () not in shapes:
        shapes = (*shapes, ())  # the fixture templates scale a scalar argument
    count = draw(st.integers(1, 3))
    features = []
    used = set()
    for k in range(count):
        arg = draw(st.integers(0, len(shapes) - 1))
        choices = [
            t
            for t in templates_for(shapes[arg])
            if (fixture is not None or not t.fixture)
            and (t.text, arg) not in used
            and (t.safe or not safe)
        ]
        template = draw(st.sampled_from(choices))
        used.add((template.text, arg))
        features.append(
            Feature(
                template,
                arg,
                f"p{k}",
                template.shape(shapes[arg]),
                # mostly the zero start: that is where a wrong batch scores like the right one
                draw(st.sampled_from(["zero", "zero", "random"])),
                draw(st.booleans()),
            )
        )
    if fixture is not None and not any(f.template.fixture for f in features):
        fixture = None
    return Problem(
        shapes=shapes,
        features=tuple(features),
        intercept=draw(st.booleans()),
        fixture=fixture,
        extra_cases=draw(st.integers(3, 8)),
        noise=draw(st.sampled_from([0.0, 0.1])),
        weight=draw(st.sampled_from([1.0, 2.5])),
        seed=draw(st.integers(0, 2**16)),
    )


# -- the problem as Python objects --------------------------------------------------------------

_counter = itertools.count()


def _module(name: str, source: str, **names: Any) -> types.ModuleType:
    """A module executed from source (no file, so no parameter file is read or written)."""
    module = types.ModuleType(name)
    module.__dict__.update(names)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


@dataclass
class Built:
    problem: Problem
    impl: types.ModuleType
    body: Any
    kwargs: list[dict[str, Any]]
    design: np.ndarray  # d predict / d parameters, one row per case
    truth: np.ndarray
    targets: np.ndarray


def _flat(group: Any) -> np.ndarray:
    return np.concatenate([np.ravel(group[name]) for name in group])


def _set_flat(group: Any, x: np.ndarray) -> None:
    values, i = {}, 0
    for name in group:
        size = int(np.size(group[name]))
        values[name] = np.reshape(x[i : i + size], np.shape(group[name]))
        i += size
    group.update(values)


def build(problem: Problem) -> Built:
    impl = _module(f"genimpl{next(_counter)}", problem.implementation())
    theta = impl.theta
    start = _flat(theta)
    args = problem.arguments()
    shared = problem.fixture_value()
    extra = {"f": shared} if problem.fixture else {}

    def predict_all(x: np.ndarray) -> np.ndarray:
        _set_flat(theta, x)
        return np.array([impl.predict(*a, **extra) for a in args], dtype=float)

    # predict is linear in the parameters: its design matrix column by column
    eye = np.eye(start.size)
    design = np.column_stack([predict_all(e) for e in eye])
    rng = np.random.default_rng(problem.seed + 2)
    truth = rng.uniform(-2.0, 2.0, size=start.size)
    targets = design @ truth + problem.noise * rng.standard_normal(problem.cases)
    _set_flat(theta, start)

    names = problem.arg_names
    test = _module(
        f"gentest{next(_counter)}",
        f"def body({', '.join([*names, 'y'])}{', f' if problem.fixture else ''}):\n"
        f"    return (impl.predict({problem.signature()}) - y) ** 2\n",
        impl=impl,
    )
    kwargs = []
    for a, y in zip(args, targets):
        kw: dict[str, Any] = dict(zip(names, a))
        kw["y"] = float(y)
        if problem.fixture == "shared":
            kw["f"] = shared
        elif problem.fixture == "per case":
            kw["f"] = shared.copy()
        kwargs.append(kw)
    return Built(problem, impl, test.body, kwargs, design, truth, targets)


def cases(built: Built, batch_key: Any) -> list[Case]:
    return [
        Case(
            name=f"test_gen[{i}]",
            function=built.body,
            kwargs=kw,
            weight=built.problem.weight,
            threshold=None,
            score=float(built.body(**kw)),
            batch_key=batch_key,
        )
        for i, kw in enumerate(built.kwargs)
    ]


def describe(problem: Problem) -> str:
    return (
        f"shapes {problem.shapes}, fixture {problem.fixture}, {problem.cases} cases\n"
        + problem.implementation()
    )


def well_conditioned(built: Built) -> bool:
    return np.linalg.cond(built.design) < 1e4


def parameters_after(result: Any) -> dict[str, np.ndarray]:
    return {c.full_name.split(".")[-1]: np.asarray(c.after, dtype=float) for c in result.parameters}


def by_name(built: Built, flat: np.ndarray) -> dict[str, np.ndarray]:
    """A flat vector of parameter values (in declaration order) by parameter name."""
    theta, values, i = built.impl.theta, {}, 0
    for name in theta:
        size = int(np.size(theta[name]))
        values[name] = np.reshape(flat[i : i + size], np.shape(theta[name]))
        i += size
    return values


def case_by_case_loss(built: Built, values: dict[str, np.ndarray]) -> float:
    """The suite loss with these parameter values, every case called on its own."""
    theta = built.impl.theta
    saved = {name: theta[name] for name in theta}
    theta.update(values)
    try:
        return sum(built.problem.weight * float(built.body(**kw)) for kw in built.kwargs)
    finally:
        theta.update(saved)


def assert_same_parameters(got: dict, want: dict, scale: float, what: str) -> None:
    assert got.keys() == want.keys()
    for name in want:
        np.testing.assert_allclose(
            got[name], want[name], rtol=RTOL, atol=RTOL * scale, err_msg=f"{what}: {name}"
        )


# -- engine level -------------------------------------------------------------------------------


def check_engine(problem: Problem) -> None:
    built = build(problem)
    assume(well_conditioned(built))
    note(describe(problem))
    for feature in problem.features:
        event(f"template: {len(problem.shapes[feature.arg])}-d {feature.template.kind}")

    singles, single_notes = build_terms(cases(built, None))
    assert single_notes == []
    terms, notes = build_terms(cases(built, "test_gen"))
    accepted = any(t.case_names is not None for t in terms)
    event(f"batch accepted: {accepted}, code correct batched: {problem.safe}")
    note(f"batch accepted: {accepted}; notes: {notes}")

    reference = fit(singles)
    result = fit(terms)
    scale = max(1.0, float(np.max(np.abs(built.truth))))
    # the problem is fair: the case-by-case fit finds the least-squares solution
    exact = np.linalg.lstsq(built.design, built.targets, rcond=None)[0]
    assert_same_parameters(
        parameters_after(reference), by_name(built, exact), scale, "case by case vs lstsq"
    )

    assert_same_parameters(
        parameters_after(result), parameters_after(reference), scale, "batched vs case by case"
    )
    # the loss reported after the fit is the loss of the fitted values, case by case
    measured = case_by_case_loss(built, parameters_after(result))
    assert result.loss_after == pytest.approx(
        measured, rel=1e-8, abs=1e-12 * max(1.0, result.loss_before)
    ), "the fit's loss_after is not the case-by-case loss at the values it fitted"
    if problem.safe:
        # code that is correct batched keeps its one-call evaluation
        assert accepted, notes
    if not accepted:
        # a refused batch says why
        assert any(line.startswith("test_gen: ") for line in notes), notes


@ENGINE
@given(problems(safe=True))
def test_code_correct_batched_fits_like_case_by_case_and_stays_batched(problem):
    """Elementwise bodies, reductions written for stacked cases (axis=-1, x[..., 0], x @ w), and
    fixtures shared by every case."""
    check_engine(problem)


@ENGINE
@given(problems())
def test_batched_fit_reaches_the_case_by_case_optimum_or_is_refused(problem):
    """Any body of the grammar, including reductions over a case's own arguments and fixtures
    that give every case a new array."""
    check_engine(problem)


# -- plugin level -------------------------------------------------------------------------------


def _array_literal(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return f"np.array({np.asarray(value).tolist()!r})"


def soft_test_source(
    problem: Problem, built: Built, impl_name: str, style: str, batch: bool
) -> str:
    """The soft test module: the cases as a parametrize list (the fixture as a real fixture),
    the soft test a function or a method of a class (``style``)."""
    names = problem.arg_names
    rows = []
    for kw in built.kwargs:
        rows.append("(" + ", ".join(_array_literal(kw[n]) for n in [*names, "y"]) + ",)")
    marker = f"@soft_test(weight={problem.weight!r}{', batch=False' if not batch else ''})"
    fixture_args = ", f" if problem.fixture else ""
    params = ", ".join([*names, "y"])
    lines = [
        "import numpy as np",
        "import pytest",
        f"import {impl_name}",
        "from pytest_soft import soft_test",
        "",
        "CASES = [",
        *(f"    {row}," for row in rows),
        "]",
        "",
    ]
    if problem.fixture:
        scope = "module" if problem.fixture == "shared" else "function"
        lines += [
            f"@pytest.fixture(scope={scope!r})",
            "def f():",
            f"    return np.array({problem.fixture_value().tolist()!r})",
            "",
        ]
    call = f"{impl_name}.predict({problem.signature()})"
    if style == "class":
        lines += [
            "class TestGen:",
            f"    {marker}",
            f"    @pytest.mark.parametrize({params!r}, CASES)",
            f"    def test_gen(self, {params}{fixture_args}):",
            f"        return ({call} - y) ** 2",
        ]
    else:
        lines += [
            marker,
            f"@pytest.mark.parametrize({params!r}, CASES)",
            f"def test_gen({params}{fixture_args}):",
            f"    return ({call} - y) ** 2",
        ]
    return "\n".join(lines) + "\n"


def _report(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _fit_loss_after(result: pytest.RunResult) -> float:
    """The "after" of the fit section's ``loss BEFORE -> AFTER`` line, as displayed."""
    for line in result.outlines:
        found = re.match(r"^loss (\S+) -> (\S+)", line)
        if found:
            return float(found.group(2))
    raise AssertionError("no 'loss ... -> ...' line in the fit section:\n" + result.stdout.str())


def _suite_loss(result: pytest.RunResult) -> float:
    for line in result.outlines:
        found = re.match(r"^\d+ soft tests?, suite loss (\S+)", line)
        if found:
            return float(found.group(1))
    raise AssertionError("no suite loss line:\n" + result.stdout.str())


def _stored(path: Path) -> dict[str, np.ndarray]:
    values = json.loads(path.read_text(encoding="utf-8"))["parameters"]
    return {name: np.asarray(v, dtype=float) for name, v in values.items()}


def run_project(pytester: pytest.Pytester, built: Built, style: str) -> None:
    problem = built.problem
    k = next(_counter)
    directory = pytester.mkdir(f"example{k}")
    impl_name = f"genimpl{k}"
    (directory / f"{impl_name}.py").write_text(problem.implementation(), encoding="utf-8")
    test_file = directory / f"test_gen{k}.py"
    params_file = directory / f"{impl_name}.params.json"
    options = ["-p", "no:cacheprovider", str(directory)]

    # the reference: the same suite with batching turned off
    test_file.write_text(soft_test_source(problem, built, impl_name, style, batch=False), "utf-8")
    reference = pytester.runpytest("--fit", *options)
    assert reference.ret == 0, reference.stdout.str()
    want = _stored(params_file)
    params_file.unlink()

    test_file.write_text(soft_test_source(problem, built, impl_name, style, batch=True), "utf-8")
    fitted = pytester.runpytest("--fit", "--soft-json", str(directory / "fit.json"), *options)
    assert fitted.ret == 0, fitted.stdout.str()
    plain = pytester.runpytest("--soft-json", str(directory / "plain.json"), *options)
    assert plain.ret == 0, plain.stdout.str()
    fit_report, plain_report = _report(directory / "fit.json"), _report(directory / "plain.json")
    note("fit run:\n" + "\n".join(fitted.outlines))
    note("plain run:\n" + "\n".join(plain.outlines))

    # what the fit section says it reached is what the following run measures: as displayed,
    # and to the last digits in the JSON reports
    assert _suite_loss(plain) == pytest.approx(_fit_loss_after(fitted), rel=1e-5, abs=1e-12)
    after = fit_report["fit"]["loss_after"]
    scale = 1e-12 * max(1.0, fit_report["fit"]["loss_before"])
    assert plain_report["loss"] == pytest.approx(after, rel=1e-8, abs=scale)
    assert fit_report["loss"] == pytest.approx(after, rel=1e-8, abs=scale)
    # and the batched fit wrote the values the fit without batching writes
    got = _stored(params_file) if params_file.exists() else {}
    assert_same_parameters(
        got, want, max(1.0, float(np.max(np.abs(built.truth)))), "batched vs batch=False"
    )


def template(kind: str, shape: tuple[int, ...]) -> Template:
    return next(t for t in templates_for(shape) if t.kind == kind)


def feature(kind: str, shape: tuple[int, ...], arg: int, param: str, start: str) -> Feature:
    t = template(kind, shape)
    return Feature(t, arg, param, t.shape(shape), start, bounded=False)


# A class, a fixture shared by every case (module scope), a 2x3 matrix and a vector argument
# reduced with x @ w: correct batched.
SAFE_EXAMPLE = Problem(
    shapes=((3,), (), (2, 3)),
    features=(
        feature("x @ w", (3,), 0, "p0", "zero"),
        feature("fixture dot", (), 1, "p1", "random"),
        feature("sum axis", (2, 3), 2, "p2", "zero"),
    ),
    intercept=True,
    fixture="shared",
    extra_cases=4,
    noise=0.1,
    weight=2.5,
    seed=11,
)
# The issue's reduction over a case's own vector, and a fixture that gives every case a new
# array (function scope), so that the batch stacks it too.
UNSAFE_EXAMPLE = Problem(
    shapes=((3,), ()),
    features=(
        feature("sum", (3,), 0, "p0", "zero"),
        feature("fixture sum", (), 1, "p1", "zero"),
    ),
    intercept=True,
    fixture="per case",
    extra_cases=5,
    noise=0.0,
    weight=1.0,
    seed=5,
)


def check_plugin(pytester: pytest.Pytester, problem: Problem, style: str) -> None:
    built = build(problem)
    assume(well_conditioned(built) and problem.cases <= 20)
    note(describe(problem))
    run_project(pytester, built, style)


@PLUGIN
@example(problem=SAFE_EXAMPLE, style="class")
@given(problem=problems(safe=True), style=st.sampled_from(["function", "class"]))
def test_correct_batched_code_fit_then_run_agree_and_match_batch_false(pytester, problem, style):
    check_plugin(pytester, problem, style)


@PLUGIN
@example(problem=UNSAFE_EXAMPLE, style="function")
@given(problem=problems(), style=st.sampled_from(["function", "class"]))
def test_fit_after_loss_is_the_next_runs_loss_and_matches_batch_false(pytester, problem, style):
    check_plugin(pytester, problem, style)


# -- the issue's example ------------------------------------------------------------------------

LIN = """
    import autograd.numpy as np
    from pytest_soft import Parameters

    theta = Parameters(w=np.zeros(3), b=0.0)

    def predict(x):                      # x: one case's feature vector, shape (3,)
        return np.sum(theta.w * x) + theta.b
"""

LIN_TESTS = """
    import numpy as np
    import pytest
    import lin
    from pytest_soft import soft_test

    rng = np.random.default_rng(0)
    XS = rng.normal(size=(20, 3))
    POINTS = [(x, float(x @ [1.0, -2.0, 0.5] + 0.3)) for x in XS]

    @soft_test{marker}
    @pytest.mark.parametrize("x, y", POINTS)      # 20 points
    def test_point(x, y):
        return (lin.predict(x) - y) ** 2
"""


def test_issue_example_fits_to_the_per_case_optimum_with_batching_on(pytester):
    pytester.makepyfile(lin=textwrap.dedent(LIN))
    pytester.makepyfile(test_lin=textwrap.dedent(LIN_TESTS.format(marker="")))
    fitted = pytester.runpytest("--fit", "--soft-json", "fit.json", "-p", "no:cacheprovider")
    assert fitted.ret == 0
    values = _stored(pytester.path / "lin.params.json")
    # the data are exact: the per-case optimum is the generating line
    np.testing.assert_allclose(values["w"], [1.0, -2.0, 0.5], rtol=RTOL)
    assert values["b"] == pytest.approx(0.3, rel=RTOL)
    plain = pytester.runpytest("--soft-json", "plain.json", "-p", "no:cacheprovider")
    after = _report(pytester.path / "fit.json")["fit"]["loss_after"]
    assert _report(pytester.path / "plain.json")["loss"] == pytest.approx(after, abs=1e-12)
    assert plain.ret == 0
