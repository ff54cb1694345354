"""Shared helpers: implementation modules written to disk and imported for real, and soft-test
projects laid out in pytester's directory."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

# pytester's in-process runs drop every module first imported during the run; numpy's C core
# cannot be imported twice in one process, so load the heavy modules once, up front.
import pytest_soft.parameters
import pytest_soft.scores  # noqa: F401


@pytest.fixture
def import_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str, str], ModuleType]]:
    """Write ``<name>.py`` into tmp_path and import it, as a user's implementation module is.

    Every module imported this way is dropped from sys.modules afterwards; importing the same
    name again re-imports it from disk (the file may have changed in between).
    """
    monkeypatch.syspath_prepend(str(tmp_path))
    # Rewritten sources can have the same size and mtime as the old ones: never use a .pyc.
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    names: set[str] = set()

    def load(name: str, source: str | None = None) -> ModuleType:
        if source is not None:
            (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        sys.modules.pop(name, None)
        importlib.invalidate_caches()
        names.add(name)
        return importlib.import_module(name)

    yield load
    for name in names:
        sys.modules.pop(name, None)


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytester, with runs that skip hypothesis's plugin: its end-of-run hook imports all of
    hypothesis, which an in-process run then drops again, costing most of a second a run."""
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:hypothesispytest")
    return pytester


@pytest.fixture
def soft_project(pytester: pytest.Pytester) -> Callable[..., None]:
    """Write an implementation module (optional) and a test module into pytester's directory.

    ``soft_project(tests, impl=None, impl_name="impl", test_name="test_soft")``
    """

    def write(
        tests: str,
        impl: str | None = None,
        impl_name: str = "impl",
        test_name: str = "test_soft",
    ) -> None:
        if impl is not None:
            pytester.makepyfile(**{impl_name: impl})
        pytester.makepyfile(**{test_name: tests})

    return write


def _section(output: list[str], title: str) -> list[str] | None:
    """The lines of the terminal section ``=== title ===`` (up to the next ``=====`` line),
    or None when the output has no such section."""
    for index, line in enumerate(output):
        if line.startswith("=") and line.strip("= ") == title:
            end = start = index + 1
            while end < len(output) and not output[end].startswith("=" * 5):
                end += 1
            return output[start:end]
    return None


@pytest.fixture
def section() -> Callable[[pytest.RunResult, str], list[str] | None]:
    """``section(result, "soft scores")``: that section's lines in a run's output, or None."""

    def find(result: pytest.RunResult, title: str) -> list[str] | None:
        return _section(result.outlines, title)

    return find


@pytest.fixture(scope="module")
def nist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ModuleType]]:
    """The NIST example copied to a temporary folder and imported from there: the problem
    modules and their test modules, by problem name (shared by the example and uncertainty
    tests, one copy a module)."""
    from test_examples import NIST_PROBLEMS, copy_example, forget_modules_from

    folder = copy_example("nist", tmp_path_factory.mktemp("nist"))
    sys.path.insert(0, str(folder))
    try:
        modules = {}
        for name in NIST_PROBLEMS:
            modules[name] = importlib.import_module(name.lower())
            modules["test_" + name] = importlib.import_module("test_" + name.lower())
        yield modules
    finally:
        sys.path.remove(str(folder))
        forget_modules_from(folder)
