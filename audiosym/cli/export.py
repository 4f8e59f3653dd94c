"""``audiosym export RUN --out PRESET``: a trained run -> one preset file (needs ``audiosym[train]``)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys

from audiosym.cli._common import print_json, require_torch
from audiosym.errors import ParameterError

HELP = """\
Turn a trained run (`audiosym train`) into one preset file (.asym) that `resynth`, `live` and
`demo` play without PyTorch (export itself needs the training extra). A preset holds the
model's encoder and decoder as ONNX graphs, its calibration (how MIDI notes map to its pitch
latent), its named timbres, its latency and the real-time contract, checked by a schema.

The export checks itself: it reloads the graphs with onnxruntime, runs them and compares with
torch (largest difference <= --atol) and refuses to write a preset that fails. Then, for each
named timbre, it measures the match correction (the decoder's remaining spectral error, like a
match EQ) and the note envelope (a piano decays, an organ holds) on the training soundfont and
stores them in the preset (--no-match skips that, saving a few seconds).

Given a preset file instead of a run (`audiosym export OLD.asym --out NEW.asym`), it keeps the
graphs and measures the match data again with this version's code: presets exported before band
profiles (how each timbre goes on above the model's 8 kHz band, for full-band output at 44.1 and
48 kHz) gain them. This needs neither the run nor PyTorch, only the soundfont the preset trained on.

To play a preset by name (`--preset my-sps`), write it into your presets folder
(~/.local/share/audiosym/presets, or $AUDIOSYM_PRESETS; see `audiosym presets list`).
Words (latent, match correction, note envelope): docs/musicians.md.
"""

EXAMPLES = """\
examples:
  audiosym export runs/my-sps --out my-sps.asym      # then: audiosym presets inspect my-sps.asym
  audiosym export runs/my-sps --out ~/.local/share/audiosym/presets/my-sps.asym   # play as my-sps
  audiosym export runs/my-v3 --out my-v3.asym --metrics v3-eval.json --description "my first V3"
  audiosym export old.asym --out new.asym   # same graphs, match data + band profiles measured again
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export a trained run to a preset file (ONNX + calibration)", description=HELP,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", help="training run directory (holds checkpoint.pt), or a preset file (.asym) whose "
                               "match data to measure again")
    p.add_argument("--out", required=True, help="preset file to write, e.g. presets/my-sps.asym")
    p.add_argument("--name", default=None, help="preset name (default: the --out file name without .asym)")
    p.add_argument("--description", default="", help="one line shown by `audiosym presets inspect`")
    p.add_argument("--metrics", default=None, metavar="EVAL.json",
                   help="JSON from `audiosym eval ... --json` to record in the preset's metrics")
    p.add_argument("--atol", type=float, default=1e-4, help="largest allowed ONNX vs torch difference (default 1e-4)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--no-match", dest="match", action="store_false",
                   help="do not measure or store the named timbres' match corrections and note envelopes")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the parity report and metadata summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if str(args.run).endswith(".asym"):
        return rematch(args)
    require_torch("export")
    from export.build import export_run  # lazy: torch (the train extra)

    metrics = None
    if args.metrics:
        try:
            with open(args.metrics) as f:
                metrics = {"eval": json.load(f)}
        except (OSError, json.JSONDecodeError) as exc:
            raise ParameterError(f"--metrics {args.metrics}: cannot read a JSON object ({exc})") from None
    preset, report = export_run(
        args.run, args.out, name=args.name, description=args.description, metrics=metrics,
        overwrite=args.overwrite, atol=args.atol, progress=not args.no_progress, log=sys.stderr,
        match=args.match,
    )
    if args.json:
        print_json({"preset": str(args.out), "name": preset.name, "kind": preset.kind,
                    "parity": report.to_dict(), "midi_range": list(preset.midi_range),
                    "timbres": preset.timbre_names})
    return 0


def rematch(args: argparse.Namespace) -> int:
    """``audiosym export OLD.asym --out NEW.asym``: same graphs, match data measured again."""
    refused = [flag for flag, given in (("--metrics", args.metrics), ("--no-match", not args.match)) if given]
    if refused:
        raise ParameterError(f"{' and '.join(refused)} apply to exporting a training run, not to re-measuring the "
                             f"preset {args.run}; drop {' and '.join(refused)}")
    if importlib.util.find_spec("onnx") is None:
        raise ParameterError("re-measuring a preset needs the onnx package: pip install onnx")
    from export.rematch import rematch_preset  # lazy: onnx (the train extra)

    preset = rematch_preset(args.run, args.out, name=args.name, description=args.description or None,
                            overwrite=args.overwrite, atol=args.atol, progress=not args.no_progress, log=sys.stderr)
    if args.json:
        print_json({"preset": str(args.out), "name": preset.name, "kind": preset.kind, "rematched_from": args.run,
                    "band_timbres": sorted(preset.match.bands) if preset.match else [],
                    "timbres": preset.timbre_names})
    return 0
