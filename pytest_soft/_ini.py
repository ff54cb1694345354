"""Options a project sets once, also read from ini settings of the same name
(``[tool.pytest.ini_options]``, ``pytest.ini``, ``tox.ini``, ``setup.cfg``); the command line wins.

An ini value goes through the option's own parser, so a bad value gets the option's message.
A switch (an option that takes no value, such as ``--fit-require-convergence``) is read from
its ini setting as a yes/no value: true/false, yes/no, on/off, 1/0.
A relative path in an ini setting is relative to the ini file's folder (as pytest's own path
settings are); on the command line it is relative to the folder pytest was started in.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class IniOption:
    """A command-line option that an ini setting named ``dest`` can also give."""

    flag: str  # e.g. "--fit-tol"
    dest: str  # the option's dest and the ini setting's name, e.g. "soft_fit_tol"
    parse: Callable[[str], Any]  # raises argparse.ArgumentTypeError with the user's message
    help: str
    metavar: str = ""
    default: Any = None
    path: bool = False  # a file path: relative ones are taken from where they were written
    switch: bool = False  # takes no value on the command line; `parse` reads the ini's yes/no


# The yes/no words an ini setting may give a switch (pytest's own bool settings take these).
_TRUE = ("1", "true", "yes", "on", "y", "t")
_FALSE = ("0", "false", "no", "off", "n", "f")


def boolean(text: str) -> bool:
    """A switch's ini value: true/false, yes/no, on/off, 1/0 (any case)."""
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false (yes/no, on/off, 1/0), got {text!r}")


def add(parser: pytest.Parser, group: Any, option: IniOption) -> None:
    """Register the option (its default applied later, so that an ini value can fill it)
    and the ini setting of the same name."""
    if option.switch:
        # store_const keeps None when the flag is absent, so that the ini setting can fill it.
        group.addoption(
            option.flag,
            action="store_const",
            const=True,
            dest=option.dest,
            default=None,
            help=f"{option.help} (ini: {option.dest})",
        )
    else:
        group.addoption(
            option.flag,
            type=option.parse,
            dest=option.dest,
            metavar=option.metavar,
            default=None,
            help=f"{option.help} (ini: {option.dest})",
        )
    # argparse wants "%" doubled in help texts; pytest shows ini help as written.
    text = option.help.replace("%%", "%")
    where = " A relative path is taken from the ini file's folder." if option.path else ""
    parser.addini(option.dest, f"{text}{where} The command line's {option.flag} wins.")


def apply(config: pytest.Config, options: list[IniOption]) -> None:
    """Fill each option not given on the command line from its ini setting, else its default.
    A bad ini value is a usage error naming the setting and its file."""
    for option in options:
        if getattr(config.option, option.dest, None) is not None:
            continue
        raw = config.getini(option.dest)
        text = raw.strip() if isinstance(raw, str) else str(raw)
        if not text:  # unset, or set to nothing: the default
            setattr(config.option, option.dest, option.default)
            continue
        try:
            value = option.parse(text)
        except argparse.ArgumentTypeError as exc:
            where = f" in {config.inipath}" if config.inipath is not None else ""
            raise pytest.UsageError(f"ini setting {option.dest}{where}: {exc}") from None
        if option.path:
            value = _from_ini_folder(config, value)
        setattr(config.option, option.dest, value)


def _from_ini_folder(config: pytest.Config, path: str) -> str:
    """An ini path rewritten relative to where pytest runs, as a command-line path is read,
    so that reports show it short ("ci/baseline.json", "../ci/baseline.json")."""
    if os.path.isabs(path):
        return path
    full = ini_folder(config) / path
    try:
        return os.path.relpath(full, config.invocation_params.dir)
    except ValueError:  # another drive (Windows)
        return str(full)


def ini_folder(config: pytest.Config) -> Path:
    """Where relative paths in ini settings start: the ini file's folder (for ``-o`` without
    an ini file, the folder pytest was started in)."""
    if config.inipath is not None:
        return Path(config.inipath).parent
    return Path(config.invocation_params.dir)
