"""``audiosym eval sps|v3 RUN|PRESET``: held-out evaluation of a run or a preset."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from audiosym import families
from audiosym.cli._common import print_json, require_torch
from audiosym.errors import ParameterError, PresetError
from audiosym.eval import Evaluation
from audiosym.families.base import LatentModel
from audiosym.preset.format import preset_files, resolve_preset, shipped_dir, user_dir
from audiosym.preset.session import load_preset

HELP = """\
How well did a model learn? Tests a trained run directory (needs the training extra) or a preset
(torch-free) on notes rendered from a soundfont it never trained on (held-out instruments).

  sps  does z_pitch (its pitch latent) follow the MIDI note in a straight line? R² per
       instrument of that line (1.0 = exactly), how much its slope varies between instruments
       (slope_cv), and does the pitch asked for come out (synthesis R²: pitch heard vs asked)
  v3   does each codebook atom (pitch code) stand for one pitch? purity, one-to-one accuracy
       (atoms matched to pitches one to one, the Hungarian method), k-NN retrieval (do nearby
       codes share a pitch, nearby styles an instrument), leakage (how much instrument is left
       in the codes: chance level is best), zero-shot (accuracy on instruments never trained on)

Plain-language meanings of these words: docs/musicians.md.
--json prints one JSON object on stdout; progress goes to stderr.
"""

EXAMPLES = """\
examples:
  audiosym eval sps sps-default                        # a shipped preset, torch-free (20 s here)
  audiosym eval v3 v3-default --json > v3-eval.json    # keep the numbers (for export --metrics)
  audiosym eval sps runs/my-sps --plot sps.png         # a training run (needs the training extra)
  audiosym eval v3 runs/my-v3 --soundfont MuseScore_General --no-progress
  audiosym eval sps my-cello.asym --audio ~/more-recordings --json  # on recordings (pyin reference)
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="evaluate a run or preset on a held-out soundfont", description=HELP, epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("method", choices=families.names(), help="the model family")
    p.add_argument("model", help="run directory (made by `audiosym train`) or preset (file path, or the name of a "
                                 "shipped or installed preset: `audiosym presets list`)")
    p.add_argument("--soundfont", default=None, help="held-out soundfont (default: MuseScore_General when installed, else one that is not the training soundfont)")
    p.add_argument("--audio", default=None, metavar="DIR",
                   help="evaluate on a folder of recordings instead (DIR/<timbre>/*.wav, as `train --audio`): pitch "
                        "reference from pyin, timbre folder names as instrument names")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.add_argument("--plot", default=None, metavar="OUT.png", help="also write a plot of the results to this PNG")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def open_model(path: str | os.PathLike, *, kind: str | None = None) -> LatentModel:
    """A preset file/name (torch-free) or a training run directory (needs ``audiosym[train]``),
    of family ``kind`` when given."""
    model: LatentModel
    if Path(path).is_dir():
        require_torch("eval on a run directory")
        from train.core.runs import load_run  # lazy: torch, only when a run is opened

        model = load_run(path)
    else:
        try:
            found = resolve_preset(path)
        except PresetError:
            raise ParameterError(not_found_message(path, kind=kind)) from None
        model = load_preset(found)
    if kind is not None and model.kind != kind:
        raise ParameterError(f"{path} holds a {model.kind!r} model, but {kind!r} was asked for")
    return model


def not_found_message(path: str | os.PathLike, *, kind: str | None = None) -> str:
    """Why ``path`` opens nothing, where it was looked for, and how to get a model to evaluate."""
    shipped = shipped_dir()
    known = ", ".join(sorted({n for n, _, _ in preset_files()})) or "none"
    family = kind or "sps"
    return (
        f"{str(path)!r} is neither a run directory ({Path(path).expanduser().absolute()} does not exist) nor a preset "
        f"(no such file, and no preset of that name in {shipped or '(no shipped presets folder)'} or "
        f"{user_dir()}). Train a run into it (audiosym train {family} --config tiny --out {path}), or evaluate a "
        f"preset: {known} (audiosym presets list)"
    )


def run(args: argparse.Namespace) -> int:
    family = families.get(args.method)
    model = open_model(args.model, kind=family.name)
    if args.audio is not None:
        return _run_recordings(args, model)
    evaluation: Evaluation = importlib.import_module(family.evaluation).evaluate(
        model, soundfont=args.soundfont, progress=not args.no_progress)
    if args.plot:
        evaluation.plot(args.plot, args.model)
    if args.json:
        print_json(evaluation.metrics)
    else:
        print("\n".join(evaluation.lines))
    return 0


def _run_recordings(args: argparse.Namespace, model: LatentModel) -> int:
    if args.soundfont or args.plot:
        raise ParameterError("--audio evaluates on recordings; --soundfont and --plot are for soundfont evaluation")
    from audiosym.data.recording_set import load_recordings
    from audiosym.eval.recordings import evaluate_recordings, summary_lines

    recs = load_recordings(args.audio, model.features, progress=not args.no_progress)
    for line in recs.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    for line in recs.warnings:
        print(f"warning: {line}", file=sys.stderr)
    metrics = evaluate_recordings(model, recs)
    if args.json:
        print_json(metrics)
    else:
        print("\n".join(summary_lines(model.kind, metrics)))
    return 0
