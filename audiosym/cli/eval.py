"""``audiosym eval sps|v3 RUN|PRESET``: held-out evaluation of a run or a preset."""

from __future__ import annotations

import argparse
import importlib

from audiosym import families

HELP = """\
Evaluate a trained run directory (needs audiosym[train]) or a preset file (torch-free)
on notes rendered from a soundfont the model never trained on.

  sps  per-instrument R² of a linear fit z_pitch ~ MIDI pitch, slope spread, synthesis R²
  v3   codebook purity, one-to-one (Hungarian) accuracy, k-NN retrieval and leakage, zero-shot

--json prints one JSON object on stdout; progress goes to stderr.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="evaluate a run or preset on a held-out soundfont", description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("method", choices=families.names(), help="the model family")
    p.add_argument("model", help="run directory or preset (file path or shipped name)")
    p.add_argument("--soundfont", default=None, help="held-out soundfont (default: MuseScore_General when installed, else one that is not the training soundfont)")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.add_argument("--plot", default=None, metavar="OUT.png", help="also write a plot")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    module = importlib.import_module(families.get(args.method).evaluation)
    return int(module.main(args) or 0)
