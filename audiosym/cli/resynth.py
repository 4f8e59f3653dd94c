"""``audiosym resynth INPUTS... --out DIR --preset P --timbre NAME``: re-timbre audio files offline."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

from audiosym.cli._common import (
    add_dynamics_argument,
    add_timbre_arguments,
    check_timbre_from,
    cli_message,
    print_json,
)
from audiosym.engine.control import DEFAULT_PITCH_FOLLOW, PITCH_FOLLOW
from audiosym.errors import ParameterError
from audiosym.io.audio import WAV_FORMATS

HELP = """\
Re-timbre audio files with a preset, offline: your recording played again by another instrument,
following its pitch and loudness (transfer mode, the engine of `audiosym live`).

Inputs: files, folders (searched for .wav .flac .ogg .mp3 .aiff ...) or quoted glob patterns
('takes/**/*.flac'); any sample rate, stereo is mixed to mono.
Outputs: mono WAVs at the input's sample rate, time-aligned with it (32-bit float; --format
pcm24|pcm16 for 24/16-bit), in --out, a folder outside the input folders, named after the
input plus preset and timbre, so several timbres share one folder:
  takes/solo.flac  ->  OUT/solo.sps-default.violin.wav   (--preset sps-default --timbre violin)
                   ->  OUT/solo.sps-default.ref-cello.wav (--timbre-from cello.wav)
A rerun skips outputs made with the same settings (an interrupted batch resumes) and fails on
ones made with other settings, naming them (--overwrite redoes them). A bad file gets one line
on stderr and a row in the summary, the others are still made (exit status 1).

Timbre: --timbre NAME (the preset's timbres: `audiosym presets inspect P`), or --timbre-from
REF.wav to sound like a recording (a few seconds of single notes over the range you play).
Pitch: the input's own notes (--transpose N shifts them), or --midi FILE.mid plays its melody.
A note outside the preset's playable range is played in the nearest octave inside it, with one
warning per file that says how many.
Loudness: each note sounds at the input's level (its peak since the note began), shaped by the
timbre's note envelope (a piano decays, an organ holds); --dynamics input follows the input.

In detail (match correction, how notes are found, --input-pitch stream, --shard for many
machines) and the words used here: docs/musicians.md.
"""

EXAMPLES = """\
examples:
  audiosym resynth take.wav --out out/ --preset sps-default --timbre violin
  audiosym resynth takes/ --out out/ --preset sps-default --timbre cello --transpose -12
  audiosym resynth 'takes/**/*.flac' --out out/ --preset v3-default --timbre trumpet --format pcm24
  audiosym resynth take.wav --out out/ --preset sps-default --timbre-from cello.wav --workers 2
  audiosym resynth take.wav --out out/ --preset sps-default --timbre flute --midi melody.mid
  audiosym resynth take.wav --out out/ --preset sps-default --timbre flute --save-notes
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "resynth", help="re-timbre audio files offline with a preset", description=HELP, epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files, folders or glob patterns")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--preset", required=True, help="preset file, or the name of a shipped or installed preset (see `audiosym presets list`)")
    add_timbre_arguments(p, timbre_help="named timbre of the preset (see `audiosym presets inspect P`)", use="use")
    p.add_argument("--match-named", action="store_true",
                   help="measure the named --timbre's match correction now, on the preset's training soundfont "
                        "(needs it installed), instead of using the one stored in the preset")
    p.add_argument("--no-match", dest="match", action="store_false",
                   help="play named timbres without the match correction stored in the preset")
    add_dynamics_argument(p, timbre="shapes each note (MIDI or the input's own) with the timbre's note envelope at "
                                    "the input's level", input="follows the input's level throughout")
    pitch = p.add_mutually_exclusive_group()
    pitch.add_argument("--transpose", type=float, default=0.0, metavar="N", help="shift the input's pitch by N semitones")
    pitch.add_argument("--midi", default=None, metavar="FILE.mid", help="drive pitch from this MIDI file's melody")
    p.add_argument("--input-pitch", choices=["notes", "stream"], default=None,
                   help="without --midi: play the input's own pitch as notes found over the whole file (default), "
                        "or as streamed live (each pitch ~25 ms late, ~90 ms with --pitch-follow encoder; the input's level)")
    p.add_argument("--pitch-follow", choices=list(PITCH_FOLLOW), default=DEFAULT_PITCH_FOLLOW,
                   help="where no note is held (--input-pitch stream, gaps of a --midi melody): 'fast' (default) a "
                        "short-window pitch estimate, ~25 ms late, the encoder guarding its octave; 'encoder' the "
                        "encoder's pitch only, ~90 ms late, as before")
    p.add_argument("--save-notes", action="store_true",
                   help="also write the notes found in each input (and its pitch bends) as a MIDI file beside "
                        "its output (take.sps-default.violin.notes.mid): edit it and play it back with --midi")
    p.add_argument("--track", default=None, metavar="T", help="MIDI track index or name (default: the non-drum track with most notes)")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes (default 1; use up to the number of CPU cores)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="onnxruntime device (cuda needs onnxruntime-gpu and a GPU)")
    p.add_argument("--shard", default=None, metavar="i/N", help="process only shard i of N (0 <= i < N)")
    p.add_argument("--sample-rate", type=int, default=None, metavar="HZ", help="output sample rate (default: each input's own)")
    p.add_argument("--max-seconds", type=float, default=1800.0, metavar="S", help="fail files longer than this (default 1800 s = 30 min)")
    p.add_argument("--format", choices=list(WAV_FORMATS), default="float",
                   help="output WAV samples: 'float' (default) 32-bit float, lossless, never clips; 'pcm24' or "
                        "'pcm16' 24- or 16-bit integer (samples beyond full scale are clipped, with a warning)")
    p.add_argument("--overwrite", action="store_true",
                   help="redo outputs that already exist (also those made with other settings)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    p.set_defaults(func=run)


def format_summary(results, *, wall_seconds: float | None = None) -> str:
    """A plain-text table: file, status, seconds of audio, realtime factor, error; then totals."""
    # lazy: keeps `audiosym --help` from importing the engine and its numba/onnxruntime start-up
    from audiosym.offline.resynth import STATUSES

    rows = [("file", "status", "seconds", "x realtime", "error")]
    for r in results:
        ok = r.status == "ok"
        rows.append((r.input, r.status, f"{r.audio_seconds:.1f}" if ok else "",
                     f"{r.realtime_factor:.0f}" if ok else "", r.error))
    widths = [max(len(row[c]) for row in rows) for c in range(4)]
    lines = ["  ".join(row[c].ljust(widths[c]) for c in range(4)) + "  " + row[4] for row in rows]
    counts = {s: sum(r.status == s for r in results) for s in STATUSES}
    audio = sum(r.audio_seconds for r in results if r.status == "ok")
    compute = sum(r.compute_seconds for r in results if r.status == "ok")
    total = f"{counts['ok']} ok, {counts['skipped']} skipped, {counts['failed']} failed"
    if compute > 0:
        total += f"; {audio:.1f} s of audio in {compute:.1f} s of compute ({audio / compute:.0f}x realtime per worker)"
    if wall_seconds is not None:
        total += f"; wall {wall_seconds:.1f} s"
    return "\n".join(lines + [total])


def summary_dict(results, *, wall_seconds: float | None = None) -> dict:
    """The same summary as JSON-ready data (``--json``)."""
    # lazy: keeps `audiosym --help` from importing the engine and its numba/onnxruntime start-up
    from audiosym.offline.resynth import STATUSES

    files = [
        {"input": r.input, "output": r.output, "status": r.status, "audio_seconds": r.audio_seconds,
         "compute_seconds": r.compute_seconds,
         "realtime_factor": r.realtime_factor if r.status == "ok" else None, "error": r.error,
         "warning": r.warning, "folded_notes": r.folded_notes}
        for r in results
    ]
    counts = {s: sum(r.status == s for r in results) for s in STATUSES}
    return {"counts": counts, "wall_seconds": wall_seconds, "files": files}


def run(args: argparse.Namespace) -> int:
    # lazy: keeps `audiosym --help` from importing the engine and its numba/onnxruntime start-up
    from audiosym.offline.jobs import parse_shard, plan_jobs, shard_jobs
    from audiosym.offline.naming import output_tag
    from audiosym.offline.resynth import ResynthSettings, load_for_batch, run_jobs

    if args.track is not None and args.midi is None:
        raise ParameterError(f"--track {args.track} only applies with --midi FILE.mid")
    if args.input_pitch is not None and args.midi is not None:
        raise ParameterError(f"--input-pitch {args.input_pitch} is how the input's own pitch is played; "
                             f"with --midi {args.midi} the MIDI melody sets the pitch: use one")
    check_timbre_from(args)
    settings = ResynthSettings(
        preset=args.preset, timbre=args.timbre, timbre_from=args.timbre_from, timbre_from_midi=args.timbre_from_midi,
        match_named=args.match_named,
        match=args.match, dynamics=args.dynamics,
        transpose_semitones=args.transpose, input_pitch=args.input_pitch or "notes", save_notes=args.save_notes,
        pitch_follow=args.pitch_follow,
        midi_path=args.midi,
        midi_track=args.track, sample_rate=args.sample_rate, max_seconds=args.max_seconds,
        device=args.device, overwrite=args.overwrite, subtype=WAV_FORMATS[args.format],
    )
    shard = parse_shard(args.shard) if args.shard else None
    start = time.perf_counter()
    jobs = shard_jobs(plan_jobs(args.inputs, args.out, tag=output_tag(settings)), shard)
    loaded = load_for_batch(settings)  # bad preset/timbre/MIDI/device: one plain error, nothing touched
    if jobs:
        # lazy: keeps `audiosym --help` from importing the engine's numba kernels
        from audiosym.engine.first_run import announce_first_run

        announce_first_run(sys.stderr)  # the first engine compiles numba kernels: say so, not silence
    def words(message: str) -> str:  # the batch's report lines, in this command's flags
        return cli_message(message, args.command_parser)

    results = run_jobs(
        jobs, settings, workers=args.workers, progress=not args.no_progress,
        loaded=loaded if args.workers == 1 else None, words=words,
    )
    results = [replace(r, error=words(r.error), warning=words(r.warning)) for r in results]
    wall = time.perf_counter() - start
    if args.json:
        print_json(summary_dict(results, wall_seconds=wall))
    else:
        print(format_summary(results, wall_seconds=wall))
    failed = sum(r.status == "failed" for r in results)
    if failed:
        print(f"audiosym resynth: {failed} of {len(results)} files failed (see the summary)", file=sys.stderr)
    return 1 if failed else 0
