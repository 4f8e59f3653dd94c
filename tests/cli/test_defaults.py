"""One home per default: the transfer-mode dynamics of commands, offline functions and the engine."""

from __future__ import annotations

import argparse
import inspect

import pytest

from audiosym.cli import build_parser
from audiosym.engine.dynamics import DEFAULT_DYNAMICS, ENGINE_DYNAMICS
from audiosym.engine.engine import Engine
from audiosym.offline.render import make_engine, resynthesize
from audiosym.offline.resynth import ResynthSettings


def _sub(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices[name]


@pytest.mark.parametrize("command", ["live", "resynth"])
def test_commands_default_to_the_named_dynamics(command):
    action = next(a for a in _sub(command)._actions if a.dest == "dynamics")
    assert action.default == DEFAULT_DYNAMICS
    assert f"'{DEFAULT_DYNAMICS}' (default)" in action.help


def test_offline_functions_default_to_the_named_dynamics():
    for fn in (make_engine, resynthesize):
        assert inspect.signature(fn).parameters["dynamics"].default == DEFAULT_DYNAMICS, fn.__name__
    assert ResynthSettings(preset="p", timbre="t").dynamics == DEFAULT_DYNAMICS


def test_the_bare_engine_keeps_its_own_default():
    """Engine(...) without ``dynamics`` follows the input, as it did before note envelopes."""
    assert inspect.signature(Engine).parameters["dynamics"].default == ENGINE_DYNAMICS == "input"
