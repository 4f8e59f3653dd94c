"""Helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from typing import Any

from audiosym.engine.dynamics import DEFAULT_DYNAMICS
from audiosym.errors import MissingExtraError, ParameterError


def require_torch(command: str) -> None:
    """Raise a plain-words error when the ``train`` extra is missing."""
    if importlib.util.find_spec("torch") is None:
        raise MissingExtraError(
            f"`audiosym {command}` needs PyTorch, which is not installed. Install the training extra: "
            "pip install torch==2.13.0 && pip install 'audiosym[train]' (on a CPU-only machine install "
            "the CPU torch wheel first)"
        )


def print_json(obj: Any) -> None:
    """One JSON object on stdout (progress goes to stderr)."""
    json.dump(obj, sys.stdout, indent=2, sort_keys=False, default=float)
    sys.stdout.write("\n")
    sys.stdout.flush()


def add_timbre_arguments(p, *, timbre_help: str, use: str) -> None:
    """``--timbre NAME``, ``--timbre-from REF.wav`` and ``--timbre-from-midi REF.mid`` (``audiosym
    resynth``, ``audiosym live``); ``timbre_help``: what ``--timbre`` names without a reference;
    ``use``: what the measured timbre is for, in the first help line."""
    p.add_argument("--timbre", default=None,
                   help=f"{timbre_help}; with --timbre-from: the name given to the reference's timbre "
                        "(default ref:<file stem>)")
    p.add_argument("--timbre-from", default=None, metavar="REF.wav",
                   help=f"{use} the timbre measured from this recording instead of a named one (a few seconds "
                        "of single notes covering the range you will play): make it sound like this file")
    p.add_argument("--timbre-from-midi", default=None, metavar="REF.mid",
                   help="the --timbre-from recording's melody (time 0 = the recording's start): its pitch is then "
                        "read from the notes instead of pyin, which can mistake the octave (organs, pianos)")


def check_timbre_from(args) -> None:
    """``--timbre-from-midi`` describes a ``--timbre-from`` recording: refuse it alone."""
    if args.timbre_from_midi and not args.timbre_from:
        raise ParameterError(f"--timbre-from-midi {args.timbre_from_midi} labels a --timbre-from recording; "
                             "give the recording with --timbre-from REF.wav")


def add_dynamics_argument(p, *, prefix: str = "", timbre: str, input: str) -> None:
    """``--dynamics timbre|input``, default :data:`audiosym.engine.dynamics.DEFAULT_DYNAMICS`;
    ``timbre``/``input``: what each choice does, in the help line after ``prefix``."""
    does = {"timbre": timbre, "input": input}
    choices = ["timbre", "input"]
    help = prefix + "; ".join(f"'{c}'{' (default)' if c == DEFAULT_DYNAMICS else ''} {does[c]}" for c in choices)
    p.add_argument("--dynamics", choices=choices, default=DEFAULT_DYNAMICS, help=help)


#: Library keywords whose flag is not ``--`` + the keyword with dashes (per the ``dest`` of the
#: subcommand's own arguments, which :func:`cli_message` reads first).
KEYWORD_FLAGS = {"transpose_semitones": "--transpose", "midi_path": "--midi", "out_dir": "--out",
                 "timbres_per_preset": "--timbres", "format_name": "--format",
                 "input_device": "--input", "output_device": "--output"}


def cli_message(message: str, parser: argparse.ArgumentParser | None) -> str:
    """A library error message in the words of the command line: each ``keyword=value`` whose
    keyword is an option of ``parser`` (the subcommand's) becomes ``--flag value``; a boolean
    keyword set the way its flag sets it becomes just the flag (``match=False`` -> ``--no-match``).
    """
    flags: dict[str, tuple[str, object]] = {}
    if parser is not None:
        for action in parser._actions:  # argparse has no public accessor for its actions
            if action.option_strings and action.dest not in flags:
                flags[action.dest] = (action.option_strings[0], action.const)
    for key, flag in KEYWORD_FLAGS.items():
        flags.setdefault(key, (flag, None))

    def to_flag(m: re.Match) -> str:
        key, value = m.group(1), m.group(2)
        if key not in flags:
            return m.group(0)
        flag, const = flags[key]
        if value in ("True", "False") and const is not None and str(const) == value:
            return flag
        if value[:1] in "'\"" and not re.search(r"\s", value):
            value = value[1:-1]  # as typed on a command line
        return f"{flag} {value}"

    return re.sub(r"(?<![\w.-])([a-z][a-z0-9_]*)=('[^']*'|\"[^\"]*\"|[^\s,;:)]+)", to_flag, message)
