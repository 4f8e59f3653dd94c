"""``audiosym bench engine|vocoder|train|resynth``: measured speed and latency targets, one JSON object.

``bench train`` and ``bench resynth`` live in :mod:`audiosym.cli.bench_speed`.

``bench engine`` (issue #5) feeds signals through the real engine, 48 kHz, block 128, one
onnxruntime thread:

- ``block_compute_p99_ms``: 99th percentile of the wall time of ``Engine.process`` per block
  in transfer mode on a soundfont melody with MIDI notes, bends and CC1 (target <= 25% of
  ``block_ms``); ``*_cpu_p99_ms`` is the same in thread CPU time (what a shared machine's
  preemption cannot inflate); synth mode is reported too;
- ``input_latency_ms``: transfer mode, a note held, a tone switched on in silence: the time
  from the input's 1 ms RMS reaching half its steady level to the output's doing so (<= 20 ms);
  ``input_latency_soundfont_note_ms``: the same with a rendered flute note's own attack;
- ``note_latency_ms``: synth mode, note-on in silence -> output RMS at half its steady level
  (<= 10 ms);
  ``note_first_sample_ms``: note-on -> first non-zero output sample;
- ``pitch_error_cents_median``: pyin on sustained synth-mode notes across the preset's playable
  range, median |f0 - MIDI target| in cents (<= 15); ``..._transfer`` with a rendered input
  note 5 semitones away and the MIDI note held.

``bench vocoder`` (:mod:`audiosym.cli.bench_vocoder`) compares the engine's harmonic-plus-noise
vocoder with real-time phase reconstruction (RTPGHI, :mod:`audiosym.engine.vocoder.rtpghi`) and offline
Griffin-Lim on oracle and on decoded magnitudes: MRSTFT distance to the rendering, compute per
frame and measured step latency.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import datetime, timezone

import numpy as np

from audiosym.cli._common import print_json

HELP = """\
Benchmarks with measured numbers (one JSON object on stdout with --json, progress on stderr).

  engine   real-time engine: per-block compute p99 at 48 kHz / block 128 / one thread, input and
           note-on latency measured by feeding signals, pyin pitch error across the playable range
  vocoder  harmonic+noise vs RTPGHI (real-time phase reconstruction) vs offline Griffin-Lim on
           oracle and decoded magnitudes: MRSTFT distance, compute per frame, step latency
  train    sps|v3: optimisation steps/s of the tiny config for --steps steps (default 50) on
           --device (cpu, or cuda where available), one torch thread on CPU (needs the train extra)
  resynth  offline resynthesis realtime factor (process CPU time and wall time) at 44.1 and 16 kHz,
           MIDI-driven and pass-through pitch, one onnxruntime thread (target >= 100x per core)
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks: engine | vocoder | train | resynth", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["engine", "vocoder", "train", "resynth"])
    p.add_argument("method", nargs="?", choices=["sps", "v3"], help="training method (bench train)")
    p.add_argument("--preset", default=None, help="preset file or shipped name (engine, resynth; vocoder: whose decoded frames, default sps-default)")
    p.add_argument("--timbre", default=None, help="timbre (default: the preset's default)")
    p.add_argument("--sample-rate", type=int, default=48000)
    p.add_argument("--block", type=int, default=128)
    p.add_argument("--seconds", type=float, default=None,
                   help="seconds of audio timed per mode (default: engine 8, resynth 30)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per case, median reported (resynth; default 3)")
    p.add_argument("--steps", type=int, default=50, help="optimisation steps timed (train; default 50)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="training device (train; default cpu)")
    p.add_argument("--pitch-step", type=int, default=2, help="semitones between the notes pitch-checked (default 2)")
    p.add_argument("--no-match", dest="match", action="store_false",
                   help="engine: without the preset's stored match corrections (default: with, as `live` plays)")
    p.add_argument("--dynamics", choices=["timbre", "input"], default="timbre", help="engine: transfer-mode dynamics")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from audiosym.errors import ParameterError

    if args.what == "vocoder":
        result = bench_vocoder(preset=args.preset or "sps-default")
        print_json(result) if args.json else print(result)
        return 0
    if args.what == "train":
        from audiosym.cli.bench_speed import bench_train

        if args.method is None:
            raise ParameterError("`audiosym bench train` needs a method: sps or v3")
        if args.steps < 1:
            raise ParameterError(f"--steps {args.steps} must be at least 1")
        result = bench_train(args.method, steps=args.steps, device=args.device)
    elif not args.preset:
        raise ParameterError(f"--preset is required for `audiosym bench {args.what}` (a .asym file or a shipped name)")
    elif args.what == "resynth":
        from audiosym.cli.bench_speed import bench_resynth

        if args.repeats < 1 or (args.seconds is not None and args.seconds <= 1.0):
            raise ParameterError(f"--repeats {args.repeats} must be >= 1 and --seconds {args.seconds} > 1")
        result = bench_resynth(args.preset, timbre=args.timbre, seconds=args.seconds or 30.0, repeats=args.repeats)
    else:
        result = bench_engine(args.preset, timbre=args.timbre, sample_rate=args.sample_rate,
                              block_size=args.block, seconds=args.seconds or 8.0, pitch_step=args.pitch_step,
                              match=args.match, dynamics=args.dynamics)
    if args.json:
        print_json(result)
    else:
        for k, v in result.items():
            print(f"{k}: {v}")
    return 0


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _half_rise(y: np.ndarray, start: int, window: int, sample_rate: int) -> int:
    """First sample at/after ``start`` where the 1 ms moving RMS of ``y`` reaches half of its
    steady level (the median moving RMS 20 ms .. ``window`` after ``start``)."""
    from scipy.ndimage import uniform_filter1d

    width = max(int(0.001 * sample_rate), 1)
    seg = np.asarray(y[start:start + window], dtype=np.float64)
    rms = np.sqrt(uniform_filter1d(seg**2, width, mode="constant"))
    steady = float(np.median(rms[int(0.02 * sample_rate):]))
    return start + int(np.argmax(rms >= 0.5 * steady))


def bench_engine(preset_name: str, *, timbre: str | None = None, sample_rate: int = 48000,
                 block_size: int = 128, seconds: float = 8.0, pitch_step: int = 2, match: bool = True,
                 dynamics: str = "timbre") -> dict:
    """What `audiosym live` runs by default: the stored match corrections (``match``) and
    ``dynamics="timbre"``."""
    from audiosym.data.soundfonts import find_soundfont, render_note
    from audiosym.engine.control import control_change, note_off, note_on, pitch_bend
    from audiosym.engine.engine import Engine
    from audiosym.preset.session import load_preset

    preset = load_preset(preset_name, device="cpu", intra_op_threads=1)
    if match:
        preset = preset.with_stored_match()
    timbre = timbre or preset.default_timbre
    lo, hi = preset.midi_range
    sr, block = sample_rate, block_size
    sf = find_soundfont("TimGM6mb")

    def make(mode: str) -> Engine:
        return Engine(preset, timbre=timbre, sample_rate=sr, block_size=block, mode=mode, dynamics=dynamics,
                      morph_timbre=preset.timbre_names[0] if preset.timbre_names[0] != timbre else preset.timbre_names[-1])

    # -- per-block compute: a melody (transfer: rendered input + MIDI; synth: MIDI only) ------
    rng = np.random.default_rng(0)
    n = int(seconds * sr)
    note_len = int(0.25 * sr)
    pitches = rng.integers(lo, hi + 1, size=n // note_len + 1)
    x = np.zeros(n, np.float32)
    events = []
    for i, p in enumerate(pitches):
        at = i * note_len
        if at >= n:
            break
        y = render_note(sf, 73, int(np.clip(p - 3, 48, 96)), note_seconds=0.24, sample_rate=sr)
        x[at:at + len(y)] += y[: n - at]
        events += [note_on(at + 37, int(p), int(rng.integers(60, 127))), note_off(at + note_len - 200, int(p))]
        events += [pitch_bend(at + k * 1000 + 11, float(np.sin(k / 3))) for k in range(3, 9)]
        events.append(control_change(at + 5000, 1, int(rng.integers(0, 128))))
    x *= 0.3 / max(np.abs(x).max(), 1e-9)
    timings = {}
    for mode in ("transfer", "synth"):
        eng = make(mode)
        eng.process(x[:block] if mode == "transfer" else block)  # warm-up (first-call allocations)
        eng.reset()
        wall, cpu = [], []
        for start in range(0, n - block + 1, block):
            evs = [type(e)(e.offset - start, e.data) for e in events if start <= e.offset < start + block]
            w0, c0 = time.perf_counter(), time.thread_time()
            eng.process(x[start:start + block] if mode == "transfer" else block, evs)
            cpu.append(time.thread_time() - c0)
            wall.append(time.perf_counter() - w0)
        timings[mode] = (1000 * np.asarray(wall), 1000 * np.asarray(cpu), eng.state.decodes, eng.state.frames)
        _log(f"{mode}: {len(wall)} blocks, p99 {np.percentile(timings[mode][0], 99):.3f} ms wall")

    # -- input onset -> output onset (transfer, note held) ---------------------------------
    onset = int(0.3 * sr) + 17
    note = int(np.clip(72, lo, hi))
    window = int(0.1 * sr)
    latencies = []
    t = np.arange(int(0.4 * sr)) / sr
    abrupt = np.sum([np.sin(2 * np.pi * 440 * k * t) / k for k in range(1, 6)], axis=0)  # switched on
    rendered = render_note(sf, 73, note, note_seconds=0.4, sample_rate=sr)  # a real attack
    for tone in (abrupt, rendered):
        xin = np.zeros(int(0.8 * sr), np.float32)
        xin[onset:onset + len(tone)] = 0.3 * tone / np.abs(tone).max()
        yout = make("transfer").render(xin, [note_on(100, note, 127)])
        latencies.append((_half_rise(yout, onset, window, sr) - _half_rise(xin, onset, window, sr)) / sr)
    input_latency, input_latency_soundfont = latencies

    # -- MIDI note-on -> sound (synth) -------------------------------------------------------
    eng = make("synth")
    at = int(0.1 * sr) + 29
    ys = eng.render(int(0.4 * sr), [note_on(at, hi, 127)])
    note_latency = (_half_rise(ys, at, window, sr) - at) / sr
    first = (int(np.flatnonzero(ys)[0]) - at) / sr

    # -- pitch accuracy with pyin ---------------------------------------------------------------
    errors: list[float] = []
    transfer_errors: list[float] = []
    per_note: dict[int, float | None] = {}
    import librosa

    for p in range(lo, hi + 1, max(pitch_step, 1)):
        eng = make("synth")
        y = eng.render(int(0.7 * sr), [note_on(0, p, 100)])[int(0.15 * sr):]
        et = make("transfer")
        src = render_note(sf, 73, int(np.clip(p - 5, 48, 96)), note_seconds=0.7, sample_rate=sr)
        yt = et.render(0.3 * src / max(np.abs(src).max(), 1e-9), [note_on(0, p, 100)])[int(0.15 * sr):int(0.6 * sr)]
        for sig, bucket in ((y, errors), (yt, transfer_errors)):
            f0, voiced, _ = librosa.pyin(sig, fmin=float(librosa.midi_to_hz(p - 7)), fmax=float(librosa.midi_to_hz(p + 7)),
                                         sr=sr, frame_length=4096, resolution=0.02)
            cents = 100 * (librosa.hz_to_midi(f0[voiced]) - p)
            if len(cents):
                bucket.append(float(np.median(np.abs(cents))))
            if bucket is errors:
                per_note[p] = round(float(np.median(cents)), 2) if len(cents) else None
        _log(f"pitch {p}: {per_note[p]} cents")

    tw, tc, decodes, frames = timings["transfer"]
    sw, sc, _, _ = timings["synth"]
    block_ms = 1000 * block / sr
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores".strip(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "preset": preset.name, "kind": preset.kind, "timbre": timbre, "midi_range": [lo, hi],
        "match_corrections": preset.applies_stored_match, "dynamics": dynamics,
        "sample_rate": sr, "block_size": block, "block_ms": round(block_ms, 4), "ort_threads": 1,
        "block_compute_p50_ms": round(float(np.percentile(tw, 50)), 4),
        "block_compute_p99_ms": round(float(np.percentile(tw, 99)), 4),
        "block_compute_max_ms": round(float(tw.max()), 4),
        "block_compute_p99_fraction": round(float(np.percentile(tw, 99)) / block_ms, 4),
        "block_compute_cpu_p99_ms": round(float(np.percentile(tc, 99)), 4),
        "synth_block_compute_p50_ms": round(float(np.percentile(sw, 50)), 4),
        "synth_block_compute_p99_ms": round(float(np.percentile(sw, 99)), 4),
        "synth_block_compute_cpu_p99_ms": round(float(np.percentile(sc, 99)), 4),
        "timed_blocks": int(len(tw)), "decodes": int(decodes), "encoder_frames": int(frames),
        "input_latency_ms": round(1000 * input_latency, 3),
        "input_latency_soundfont_note_ms": round(1000 * input_latency_soundfont, 3),
        "note_latency_ms": round(1000 * note_latency, 3),
        "note_first_sample_ms": round(1000 * first, 3),
        "engine_latency_samples": {"transfer": make("transfer").latency_samples, "synth": make("synth").latency_samples},
        "pitch_passthrough_latency_ms": round(1000 * make("transfer").pitch_latency_samples / sr, 2),
        "pitch_error_cents_median": round(float(np.median(errors)), 3) if errors else None,
        "pitch_error_cents_max": round(float(np.max(errors)), 3) if errors else None,
        "pitch_error_cents_median_transfer": round(float(np.median(transfer_errors)), 3) if transfer_errors else None,
        "pitch_notes": per_note,
        "targets": {"block_compute_p99_fraction": 0.25, "input_latency_ms": 20, "note_latency_ms": 10,
                    "pitch_error_cents_median": 15},
        "for_scale": {"ddsp_vst_latency_ms": 64, "rave_block_samples": 2048},
    }


def bench_vocoder(**kwargs) -> dict:
    """Harmonic+noise vs RTPGHI vs offline Griffin-Lim on oracle and decoded magnitudes; lives in
    :mod:`audiosym.cli.bench_vocoder` (this module stays under ~400 lines)."""
    from audiosym.cli.bench_vocoder import bench_vocoder as run_vocoder_bench

    return run_vocoder_bench(**kwargs)
