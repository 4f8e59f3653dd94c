"""``audiosym demo``: the main job in one command (torch-free, offline, under a minute)."""

from __future__ import annotations

import argparse
import sys

from audiosym.cli._common import print_json

HELP = """\
Render a short melody with the TimGM6mb soundfont (always installed), re-timbre it with
each shipped preset (the default timbre plus the timbres farthest from it), and write:

  input.wav                  the clarinet rendering that goes in
  <preset>__<timbre>.wav     one re-timbred version per preset and timbre
  spectrograms.png           input and outputs, one log-mel spectrogram each

Nothing is overwritten silently: when --out already holds files, a fresh run-NNN subfolder
is used (pass --overwrite to write into --out itself). The first run after an install
prepares the engine (up to ~30 s, said on the screen); later runs take a few seconds.
"""

EXAMPLES = """\
examples:
  audiosym demo                                     # writes demo_out/ (or demo_out/run-NNN/)
  audiosym demo --out ~/audiosym-demo --timbres 2 --no-plot
  audiosym demo --preset v3-default --timbres 8     # one preset, more of its timbres
  audiosym demo --preset my-sps.asym --json         # your own preset; where everything is, as JSON
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="render a melody and re-timbre it with the shipped presets", description=HELP, epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="demo_out", metavar="DIR", help="output folder (default: demo_out)")
    p.add_argument("--preset", action="append", default=None, metavar="P",
                   help="preset file or name to use instead of the shipped ones (repeatable)")
    p.add_argument("--timbres", type=int, default=4, metavar="N", help="timbres per preset (default 4)")
    p.add_argument("--sample-rate", type=int, default=44100, metavar="HZ", help="output sample rate (default 44100)")
    p.add_argument("--no-plot", action="store_true", help="skip the spectrogram PNG")
    p.add_argument("--overwrite", action="store_true", help="write into --out even when it holds files")
    p.add_argument("--json", action="store_true", help="print where everything is as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    # lazy: keeps `audiosym --help` from importing the engine and its numba/onnxruntime start-up
    from audiosym.offline.demo import run_demo

    result = run_demo(
        out=args.out, overwrite=args.overwrite, presets=args.preset, timbres_per_preset=args.timbres,
        sample_rate=args.sample_rate, plot=not args.no_plot,
    )
    if args.json:
        print_json({
            "out_dir": str(result.out_dir), "input": str(result.input_wav),
            "outputs": [{"preset": p, "timbre": t, "wav": str(w)} for p, t, w in result.outputs],
            "png": str(result.png) if result.png else None, "seconds": result.seconds,
        })
        return 0
    print(f"demo written to {result.out_dir}/ in {result.seconds:.1f} s", file=sys.stderr)
    print(f"  input        {result.input_wav}")
    for preset, timbre, wav in result.outputs:
        print(f"  {preset} -> {timbre:16s} {wav}")
    if result.png:
        print(f"  spectrograms {result.png}")
    return 0
