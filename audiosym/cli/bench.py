"""``audiosym bench engine|vocoder|train|resynth``: parses the options, runs the benchmark from
:mod:`audiosym.bench` (what each measures: :mod:`audiosym.bench.engine`,
:mod:`audiosym.bench.vocoder`, :mod:`audiosym.bench.speed`) and prints its one JSON object.
"""

from __future__ import annotations

import argparse

from audiosym import families
from audiosym.cli._common import print_json, require_torch
from audiosym.engine.control import DEFAULT_PITCH_FOLLOW, PITCH_FOLLOW
from audiosym.engine.dynamics import DEFAULT_DYNAMICS
from audiosym.engine.voices import DEFAULT_VOICES, MAX_VOICES
from audiosym.errors import ParameterError

HELP = """\
Benchmarks with measured numbers (one JSON object on stdout with --json, progress on stderr):
how fast and how accurate the engine is on this machine. Words: docs/musicians.md.

  engine   real-time engine: compute time per block (p99: the slowest 1 % of blocks) at 48 kHz /
           block 128 / one thread, input and note-on latency measured by feeding signals, the
           pitch error heard (pyin pitch tracker) across the playable range; with --load the
           blocks are timed while a busy process spins on every core (a loaded laptop); with
           --voices N synth mode plays a held 4-note chord plus a legato melody on N voices,
           and the same on one voice for comparison; with --realtime the blocks are timed as
           `audiosym live` runs them: one per block period, the thread at real-time priority
  vocoder  the ways of turning spectra back into sound: harmonic+noise (the default) vs RTPGHI
           (real-time phase reconstruction) vs offline Griffin-Lim, on original and decoded
           spectra: MRSTFT distance (spectral difference, lower is closer), compute per frame,
           latency
  train    sps|v3: optimisation steps/s of the tiny config for --steps steps (default 50) on
           --device (cpu, or cuda where available), one torch thread on CPU (needs the train extra)
  resynth  offline resynthesis speed in multiples of real time (process CPU time and wall time) at
           44.1 and 16 kHz, MIDI-driven and pass-through pitch, one onnxruntime thread (target >= 100x
           per core)
"""

EXAMPLES = """\
examples:
  audiosym bench engine --preset sps-default --json
  audiosym bench engine --preset sps-default --load --json   # busy process on every core
  audiosym bench engine --preset sps-default --load --voices 8 --json   # chord + melody
  audiosym bench engine --preset sps-default --load --realtime --json   # as live runs it
  audiosym bench engine --preset v3-default --sample-rate 44100 --block 64 --seconds 4
  audiosym bench resynth --preset sps-default --seconds 10 --repeats 1
  audiosym bench vocoder --json
  audiosym bench train sps --steps 20       # needs the training extra
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks: engine | vocoder | train | resynth", description=HELP, epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["engine", "vocoder", "train", "resynth"], help="what to measure (see above)")
    p.add_argument("method", nargs="?", choices=families.names(), help="training method (bench train)")
    p.add_argument("--preset", default=None, help="preset file or shipped name (engine, resynth; vocoder: whose decoded frames, default sps-default)")
    p.add_argument("--timbre", default=None, help="engine, resynth: named timbre (default: the preset's default)")
    p.add_argument("--sample-rate", type=int, default=48000, help="engine: device rate in Hz (default 48000)")
    p.add_argument("--block", type=int, default=128,
                   help="engine: block size in samples (default 128 = 2.7 ms at 48 kHz)")
    p.add_argument("--seconds", type=float, default=None,
                   help="seconds of audio timed per mode (default: engine 8, resynth 30)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per case, median reported (resynth; default 3)")
    p.add_argument("--steps", type=int, default=50, help="optimisation steps timed (train; default 50)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="training device (train; default cpu)")
    p.add_argument("--pitch-step", type=int, default=2, help="engine: semitones between the notes pitch-checked (default 2)")
    p.add_argument("--no-match", dest="match", action="store_false",
                   help="engine: without the preset's stored match corrections (default: with, as `live` plays)")
    p.add_argument("--dynamics", choices=["timbre", "input"], default=DEFAULT_DYNAMICS, help=f"engine: transfer-mode dynamics, as `live --dynamics` (default {DEFAULT_DYNAMICS})")
    p.add_argument("--load", action="store_true",
                   help="engine: time the blocks while a CPU-bound process runs on every core (recorded as \"load\": true)")
    p.add_argument("--realtime", action="store_true",
                   help="engine: time the blocks as a live audio callback runs: paced, under real-time scheduling "
                        "(SCHED_FIFO; needs permission, see docs/musicians.md; recorded as \"realtime\": true)")
    p.add_argument("--voices", type=int, default=1, metavar="N",
                   help=f"engine: synth-mode voices (default 1: monophonic; {DEFAULT_VOICES} as `live` plays)")
    p.add_argument("--pitch-follow", choices=list(PITCH_FOLLOW), default=DEFAULT_PITCH_FOLLOW,
                   help="engine: transfer mode's pitch with no note held, as `live --pitch-follow` (default "
                        f"{DEFAULT_PITCH_FOLLOW}; 'encoder': the path of before, to compare)")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # The benchmarks load librosa, scipy, numba kernels and onnxruntime: imported when one runs,
    # so that building the parser (`audiosym --help`, every other command) does not pay for them.
    if args.what == "vocoder":
        from audiosym.bench.vocoder import bench_vocoder  # lazy: scipy, librosa, numba (see above)

        result = bench_vocoder(preset=args.preset or "sps-default")
        print_json(result) if args.json else print(result)
        return 0
    if args.what == "train":
        if args.method is None:
            raise ParameterError(f"`audiosym bench train` needs a method: {' or '.join(families.names())}")
        if args.steps < 1:
            raise ParameterError(f"--steps {args.steps} must be at least 1")
        require_torch("bench train")
        from train.core.bench import bench_train  # lazy: torch (the train extra)

        result = bench_train(args.method, steps=args.steps, device=args.device)
    elif not args.preset:
        raise ParameterError(f"--preset is required for `audiosym bench {args.what}` (a .asym file or a shipped name)")
    elif args.what == "resynth":
        if args.repeats < 1 or (args.seconds is not None and args.seconds <= 1.0):
            raise ParameterError(f"--repeats {args.repeats} must be >= 1 and --seconds {args.seconds} > 1")
        from audiosym.bench.speed import bench_resynth  # lazy: numba, scipy (see above)

        result = bench_resynth(args.preset, timbre=args.timbre, seconds=args.seconds or 30.0, repeats=args.repeats)
    else:
        if not 1 <= args.voices <= MAX_VOICES:
            raise ParameterError(f"--voices {args.voices} must be from 1 to {MAX_VOICES}")
        from audiosym.bench.engine import bench_engine  # lazy: numba, scipy, librosa (see above)

        result = bench_engine(args.preset, timbre=args.timbre, sample_rate=args.sample_rate,
                              block_size=args.block, seconds=args.seconds or 8.0, pitch_step=args.pitch_step,
                              match=args.match, dynamics=args.dynamics, load=args.load,
                              voices=args.voices, realtime=args.realtime, pitch_follow=args.pitch_follow)
    if args.json:
        print_json(result)
    else:
        for k, v in result.items():
            print(f"{k}: {v}")
    return 0
