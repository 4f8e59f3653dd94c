"""``audiosym export RUN --out PRESET``: a trained run -> one preset file (needs ``audiosym[train]``)."""

from __future__ import annotations

import argparse
import json
import sys

from audiosym.cli._common import print_json, require_torch
from audiosym.errors import ParameterError

HELP = """\
Export a trained SPS or V3 run to one preset file (.asym): the encoder and decoder as
ONNX graphs (dynamic batch and time), calibration on the training soundfont (SPS: the
line z_pitch = a + b*midi; V3: the atom -> MIDI map and codebook), named timbres, the
real-time contract and sha256 hashes, in one zip validated by a JSON schema.

The export checks itself: it reloads the graphs with onnxruntime, runs them at several
batch sizes and lengths different from the export example, compares with torch (max
abs error <= --atol, float32) and times both. It refuses to write a preset that fails.

Then it measures, on the exported graphs, what each named timbre's training-soundfont
program sounds like next to what the decoder makes of it: a spectral match correction per
register and the level envelope of a held note (a piano decays, an organ holds). Both are
stored in the preset (match.npz) and used by `audiosym resynth`, `live` and `demo`
(--no-match there turns the correction off; --dynamics input ignores the envelopes).
A timbre measured as a sub-octave series (an organ's 16' stop) is played on the f0/2
partials. --no-match here skips the measurement (a few seconds for a whole preset).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export a trained run to a preset file (ONNX + calibration)", description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", help="training run directory (holds checkpoint.pt)")
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
