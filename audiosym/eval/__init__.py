"""Held-out evaluation of a trained run or a preset, one module per model family.

Each family names its module (:attr:`audiosym.families.base.Family.evaluation`); the module's
``evaluate(model, *, soundfont=None, progress=True) -> Evaluation`` is what ``audiosym eval``
runs. The command prints and plots; the modules only compute.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Evaluation:
    """What an evaluation found: ``metrics`` (JSON-ready: ``--json`` prints them), ``lines`` (the
    same for a terminal) and ``plot(path, label)``, which writes its figure of the model called
    ``label`` to ``path`` (PNG)."""

    metrics: dict[str, Any]
    lines: list[str]
    plot: Callable[[str | os.PathLike, str], None]
