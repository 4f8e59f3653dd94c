"""Helpers shared by the subcommands."""

from __future__ import annotations

import importlib.util
import json
import sys
from typing import Any

from ..errors import MissingExtraError


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
