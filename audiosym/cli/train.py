"""``audiosym train sps|v3``: train a model (needs the ``audiosym[train]`` extra)."""

from __future__ import annotations

import argparse
import os

from audiosym import families
from audiosym.cli._common import print_json, require_torch
from audiosym.errors import ParameterError

HELP = """\
Train your own model (needs the training extra: `bash scripts/setup.sh` installs it) on notes
rendered from a General MIDI soundfont; then `audiosym eval` it and `audiosym export` it to a
preset you can play. Words (latent, SPS, V3, soundfont): docs/musicians.md.

  sps  learns a pitch latent that moves in a straight line with the MIDI note (z_pitch), plus a
       timbre vector: any pitch can be played, bends for free
  v3   learns one code per semitone (codebook atoms) plus a timbre style: notes snap to
       semitones, no bends

Your own recordings (--audio DIR): one subfolder per timbre (DIR/cello/*.wav, DIR/my_voice/*.flac),
any length, rate or channel count, single notes, scales or monophonic melodies. Notes are cut
without pitch labels (onsets and level), chords are detected and left out, the analysis is cached
by file content (a rerun analyses nothing again). A summary (files, minutes, notes, pitch range per
timbre) comes before training; unusable files are skipped and named. The folder names become the
preset's timbres: `audiosym export RUN --out my.asym`, then `audiosym resynth --timbre cello ...`.
About 5 minutes of playing per timbre is a good start.

Configs are named presets (`tiny` runs in minutes on a laptop CPU, `paper` is GPU
scale); change single settings with --set key=value (an unknown key is an error).
The run directory records config, seed, versions, git commit, metrics.csv,
eval.jsonl and checkpoint.pt; --resume continues an interrupted run.

Threads (CPU): by default half the cores this process may use, divided among torchrun's
processes on the machine, at least 1; --threads N (or OMP_NUM_THREADS=N, except under torchrun,
which sets it to 1 itself) chooses another. run.json records the count. torch's own default, one
thread per core, stalls whenever anything else uses the CPU. Measured on 2 cores, `audiosym train
sps --config tiny --out runs/t --set steps=30 --threads N`, steps/s: alone, 1 thread 6.2, 2 threads 9.1; beside
one busy process, 1 thread 3.6-6.5, 2 threads 0.4-3.3 (up to 12x slower).
"""

EXAMPLES = """\
examples:
  audiosym train sps --config tiny --out runs/my-sps                     # minutes on a laptop CPU
  audiosym train sps --config tiny --out runs/my-sps --resume            # continue after Ctrl-C
  audiosym train v3 --config tiny --out runs/my-v3 --set steps=500 --seed 1
  audiosym train sps --config tiny --out runs/quick --set steps=30 --threads 1 --json
  audiosym train sps --audio ~/recordings --out runs/mine                # your own instruments
  audiosym train v3 --audio ~/recordings --holdout 0.25 --out runs/mine-v3
  audiosym train sps --config paper --out runs/paper --device cuda       # one GPU
  torchrun --nproc_per_node 4 -m audiosym train sps --config paper --out runs/p --device cuda
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train an SPS or V3 model", description=HELP, epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("method", choices=families.names(), help="which model family to train")
    p.add_argument("--config", default="tiny", help="named config: tiny | paper (default: tiny)")
    p.add_argument("--out", required=True, help="run directory to create (refuses to overwrite a run)")
    p.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto (default: auto)")
    p.add_argument("--soundfont", default=None, help="training soundfont name or path (default: FluidR3_GM if installed, else TimGM6mb)")
    p.add_argument("--audio", default=None, metavar="DIR",
                   help="train on your own recordings instead of a soundfont: DIR/<timbre>/*.wav|flac|ogg|mp3 (one "
                        "subfolder per timbre; or one flat folder = one timbre named after it). See 'Your own "
                        "recordings' above")
    p.add_argument("--holdout", type=float, default=None, metavar="FRACTION",
                   help="with --audio: fraction of each timbre's files held out for evaluation (default 0.2; the "
                        "split is by file, never by note, with the run's seed)")
    p.add_argument("--data", default=None, help="cache directory for rendered notes (default: $AUDIOSYM_CACHE or ~/.cache/audiosym)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override one config value, e.g. --set steps=500 (repeatable)")
    p.add_argument("--seed", type=int, default=None, help="random seed (overrides the config's)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch CPU threads per process (default: half the usable cores / torchrun's processes on "
                        "this machine, at least 1; see Threads above)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    require_torch("train")

    if args.data:
        os.environ["AUDIOSYM_CACHE"] = args.data
    # lazy: torch: training needs the audiosym[train] extra
    from train.core.runs import train_method
    from train.core.trainer import set_threads

    set_threads(args.threads)  # before any torch work: inter-op threads can be set only then

    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.audio is not None:
        if args.soundfont:
            raise ParameterError("--audio and --soundfont both name the training data; give one of them")
        overrides.append(f"audio={os.path.abspath(os.path.expanduser(args.audio))}")
    if args.holdout is not None:
        if args.audio is None:
            raise ParameterError("--holdout splits your recordings; it needs --audio DIR")
        overrides.append(f"holdout={args.holdout}")
    summary = train_method(
        args.method, config=args.config, overrides=overrides, out=args.out, device=args.device,
        soundfont=args.soundfont, resume=args.resume, progress=not args.no_progress,
    )
    if args.json:
        print_json(summary)
    return 0
