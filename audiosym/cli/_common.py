"""Helpers shared by the subcommands."""

from __future__ import annotations

import importlib.util
import json
import sys
from typing import Any

from audiosym.errors import MissingExtraError


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


def add_timbre_from_arguments(p, *, use: str) -> None:
    """``--timbre-from REF.wav`` and ``--timbre-from-midi REF.mid`` (``audiosym resynth``,
    ``audiosym live``); ``use``: what the measured timbre is for, in the first help line."""
    p.add_argument("--timbre-from", default=None, metavar="REF.wav",
                   help=f"{use} the timbre measured from this recording instead of a named one (a few seconds "
                        "of single notes covering the range you will play): make it sound like this file")
    p.add_argument("--timbre-from-midi", default=None, metavar="REF.mid",
                   help="the --timbre-from recording's melody (time 0 = the recording's start): its pitch is then "
                        "read from the notes instead of pyin, which can mistake the octave (organs, pianos)")
