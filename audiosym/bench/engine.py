"""``bench_engine``: the real-time engine's speed, latency and pitch, measured (issue #5).

It feeds signals through the real engine, 48 kHz, block 128, one onnxruntime thread:

- ``block_compute_p99_ms``: 99th percentile of the wall time of ``Engine.process`` per block
  in transfer mode on a soundfont melody with MIDI notes, bends and CC1 (target <= 25% of
  ``block_ms``); ``*_cpu_p99_ms`` is the same in thread CPU time (what a shared machine's
  preemption cannot inflate); ``..._p999_ms`` the 99.9th percentile; synth mode is reported
  too (``synth_...``); ``voices``: the synth-mode engine's voices (``voices=1``, the default:
  monophonic, the melody above; more: a held 4-note chord plus a legato melody over it, with the
  same bends and CC1, ``synth_scenario`` says which), and then the same chord and melody timed
  on one voice in the same run: ``synth_mono_...`` and ``synth_voices_cost_ratio_mean`` /
  ``_p99`` (what ``voices`` cost over one; the decoder is batched, the synthesis is per voice);
- ``load`` (``load=True``): the timed blocks run while a pure-Python busy loop spins on every
  core (:func:`audiosym.bench.common.cpu_load`); ``load_average_during`` (1, 5, 15 min, taken
  as the load stops: a 1-minute average lags a load of a few seconds), ``load_cpu_s`` (CPU
  seconds the load processes used) in ``load_wall_s`` seconds show it; the issue #15 targets p99.9 <= 30 % and
  max < 60 % of the block hold with the load (transfer mode), and with ``voices`` >= 8 synth mode's
  p99.9 <= 50 % and max < 80 %;
- ``realtime`` (``realtime=True``): the timed blocks run as a live audio callback runs them, one
  per block period (the thread sleeps until the next is due) under SCHED_FIFO
  (:mod:`audiosym.io.realtime`, which ``audiosym live`` applies to its audio thread); without
  it they run back to back at the ordinary priority, and under ``load`` the kernel's fair
  scheduler then pre-empts them (wall time far above the CPU time);
- ``targets`` and ``met``: each target's bound and whether this run meets it (``None`` where the
  run does not measure it, e.g. a ``_with_load`` target without ``load``), :func:`targets_met`;
- ``input_latency_ms``: transfer mode, a note held, a tone switched on in silence: the time
  from the input's 1 ms RMS reaching half its steady level to the output's doing so (<= 20 ms);
  ``input_latency_soundfont_note_ms``: the same with a rendered flute note's own attack;
- ``note_latency_ms``: synth mode, note-on in silence -> output RMS at half its steady level
  (<= 10 ms);
  ``note_first_sample_ms``: note-on -> first non-zero output sample;
- ``pitch_passthrough_latency_ms``: transfer mode, no note held: ``Engine.pitch_latency_samples``
  (a pitch step to the heard pitch, at most; measured by tests/engine/test_pitch_follow.py) of
  ``pitch_follow`` (``"fast"``, the short-window estimate, or ``"encoder"``, as before #15);
- ``pitch_error_cents_median``: pyin on sustained synth-mode notes across the preset's playable
  range, median |f0 - MIDI target| in cents (<= 15); ``..._transfer`` with a rendered input
  note 5 semitones away and the MIDI note held.
"""

from __future__ import annotations

import time

import librosa
import numpy as np

from audiosym.bench.common import cpu_load, half_rise, header, log
from audiosym.data.soundfonts import find_soundfont, render_note
from audiosym.engine.control import (
    DEFAULT_PITCH_FOLLOW,
    control_change,
    note_off,
    note_on,
    pitch_bend,
)
from audiosym.engine.dynamics import DEFAULT_DYNAMICS
from audiosym.engine.engine import Engine
from audiosym.errors import DeviceError
from audiosym.io.realtime import make_ordinary, make_realtime
from audiosym.preset.session import load_preset

# name -> (measured key, bound, strict: "<" rather than "<=", needs the load): lower is better.
# Targets on a synth_ key also need a run with at least POLY_TARGET_VOICES voices.
POLY_TARGET_VOICES = 8
TARGETS: dict[str, tuple[str, float, bool, bool]] = {
    "block_compute_p99_fraction": ("block_compute_p99_fraction", 0.25, False, False),
    "input_latency_ms": ("input_latency_ms", 20, False, False),
    "note_latency_ms": ("note_latency_ms", 10, False, False),
    "pitch_error_cents_median": ("pitch_error_cents_median", 15, False, False),
    "pitch_passthrough_latency_ms": ("pitch_passthrough_latency_ms", 30, False, False),  # issue #15, DESIGN.md
    # issue #15, with --load, 1 voice, transfer mode
    "block_compute_p999_fraction_with_load": ("block_compute_p999_fraction", 0.30, False, True),
    "block_compute_max_fraction_with_load_below": ("block_compute_max_fraction", 0.60, True, True),
    # issue #15, with --load --voices 8: a held 4-note chord plus a legato melody, synth mode
    "synth_block_compute_p999_fraction_with_load": ("synth_block_compute_p999_fraction", 0.50, False, True),
    "synth_block_compute_max_fraction_with_load_below": ("synth_block_compute_max_fraction", 0.80, True, True),
}


def targets_met(result: dict) -> dict[str, bool | None]:
    """Each of :data:`TARGETS` met by ``result`` (a :func:`bench_engine` dict): ``True``/``False``,
    or ``None`` where the result has no value for it or the target needs ``load`` and the run had
    none (or, for a ``synth_`` target, fewer than :data:`POLY_TARGET_VOICES` voices)."""
    met: dict[str, bool | None] = {}
    for name, (key, bound, strict, needs_load) in TARGETS.items():
        value = result.get(key)
        few_voices = key.startswith("synth_") and result.get("voices", 1) < POLY_TARGET_VOICES
        if value is None or (needs_load and not result.get("load")) or few_voices:
            met[name] = None
        else:
            met[name] = bool(value < bound if strict else value <= bound)
    return met


def bench_engine(preset_name: str, *, timbre: str | None = None, sample_rate: int = 48000,
                 block_size: int = 128, seconds: float = 8.0, pitch_step: int = 2, match: bool = True,
                 dynamics: str = DEFAULT_DYNAMICS, load: bool = False, load_processes: int | None = None,
                 voices: int = 1, realtime: bool = False, pitch_follow: str = DEFAULT_PITCH_FOLLOW) -> dict:
    """The engine's block compute, latency and pitch error on ``preset_name`` (a preset file or
    shipped name) -> one JSON-ready dict (its keys: the module docstring).

    ``timbre``: default the preset's own; ``sample_rate`` (Hz) and ``block_size`` (samples) of
    the timed runs; ``seconds`` of melody timed per mode; ``pitch_step``: semitones between the
    notes pitch-checked; ``match`` (the preset's stored match corrections) and ``dynamics``
    (``"timbre"`` or ``"input"``): by default what a live session plays; ``load``: time the
    blocks with ``load_processes`` busy processes (default one per core, ``os.cpu_count()``);
    ``voices``: the synth-mode engine's voices (more than 1: the chord-and-melody scenario);
    ``realtime``: time the blocks as a live audio callback runs them (paced, SCHED_FIFO);
    ``pitch_follow``: the transfer-mode engines' (:class:`audiosym.engine.engine.Engine`; ``"encoder"``
    measures the path of before issue #15's short-window pitch).
    """
    preset = load_preset(preset_name, device="cpu", intra_op_threads=1)
    if match:
        preset = preset.with_stored_match()
    timbre = timbre or preset.default_timbre
    lo, hi = preset.midi_range
    sr, block = sample_rate, block_size
    sf = find_soundfont("TimGM6mb")

    def make(mode: str, n_voices: int = 1) -> Engine:
        return Engine(preset, timbre=timbre, sample_rate=sr, block_size=block, mode=mode, dynamics=dynamics,
                      voices=n_voices, pitch_follow=pitch_follow,
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
    poly = voices > 1
    synth_events = chord_and_melody(lo, hi, n, sr, rng) if poly else events
    engines = {"transfer": make("transfer"), "synth": make("synth", voices)}  # built before the load starts
    if poly:
        engines["mono"] = make("synth")
    with cpu_load(load_processes if load else 0) as busy:
        timings = {mode: _time_blocks(eng, x, synth_events if mode != "transfer" else events, block, realtime=realtime)
                   for mode, eng in engines.items()}

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
        latencies.append((half_rise(yout, onset, window, sr) - half_rise(xin, onset, window, sr)) / sr)
    input_latency, input_latency_soundfont = latencies

    # -- MIDI note-on -> sound (synth) -------------------------------------------------------
    eng = make("synth")
    at = int(0.1 * sr) + 29
    ys = eng.render(int(0.4 * sr), [note_on(at, hi, 127)])
    note_latency = (half_rise(ys, at, window, sr) - at) / sr
    first = (int(np.flatnonzero(ys)[0]) - at) / sr

    # -- pitch accuracy with pyin ---------------------------------------------------------------
    errors: list[float] = []
    transfer_errors: list[float] = []
    per_note: dict[int, float | None] = {}
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
        log(f"pitch {p}: {per_note[p]} cents")

    tw, tc, decodes, frames, _ = timings["transfer"]
    sw, sc, _, _, _ = timings["synth"]
    mw = timings["mono"][0] if poly else None
    block_ms = 1000 * block / sr
    result = {
        **header(),
        "preset": preset.name, "kind": preset.kind, "timbre": timbre, "midi_range": [lo, hi],
        "match_corrections": preset.applies_stored_match, "dynamics": dynamics, "pitch_follow": pitch_follow,
        "sample_rate": sr, "block_size": block, "block_ms": round(block_ms, 4), "ort_threads": 1,
        "block_compute_p50_ms": round(float(np.percentile(tw, 50)), 4),
        "block_compute_p99_ms": round(float(np.percentile(tw, 99)), 4),
        "block_compute_p999_ms": round(float(np.percentile(tw, 99.9)), 4),
        "block_compute_max_ms": round(float(tw.max()), 4),
        "block_compute_p99_fraction": round(float(np.percentile(tw, 99)) / block_ms, 4),
        "block_compute_p999_fraction": round(float(np.percentile(tw, 99.9)) / block_ms, 4),
        "block_compute_max_fraction": round(float(tw.max()) / block_ms, 4),
        "block_compute_cpu_p99_ms": round(float(np.percentile(tc, 99)), 4),
        "synth_block_compute_p50_ms": round(float(np.percentile(sw, 50)), 4),
        "synth_block_compute_p99_ms": round(float(np.percentile(sw, 99)), 4),
        "synth_block_compute_p999_ms": round(float(np.percentile(sw, 99.9)), 4),
        "synth_block_compute_max_ms": round(float(sw.max()), 4),
        "synth_block_compute_cpu_p99_ms": round(float(np.percentile(sc, 99)), 4),
        "synth_block_compute_mean_ms": round(float(sw.mean()), 4),
        "synth_block_compute_p999_fraction": round(float(np.percentile(sw, 99.9)) / block_ms, 4),
        "synth_block_compute_max_fraction": round(float(sw.max()) / block_ms, 4),
        "voices": int(voices),
        "synth_scenario": "4-note chord held + legato melody" if poly else "melody (as transfer)",
        "synth_max_voices_sounding": int(timings["synth"][4]),
        **({"synth_mono_block_compute_mean_ms": round(float(mw.mean()), 4),
            "synth_mono_block_compute_p99_ms": round(float(np.percentile(mw, 99)), 4),
            "synth_voices_cost_ratio_mean": round(float(sw.mean() / mw.mean()), 3),
            "synth_voices_cost_ratio_p99": round(float(np.percentile(sw, 99) / np.percentile(mw, 99)), 3)}
           if mw is not None else {}),
        "realtime": realtime, "load": load, "load_processes": len(busy.processes),
        "load_average_during": busy.load_average if load else None,
        "load_cpu_s": busy.cpu_seconds if load else None, "load_wall_s": busy.wall_seconds if load else None,
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
        "targets": {name: bound for name, (_, bound, _, _) in TARGETS.items()},
        "for_scale": {"ddsp_vst_latency_ms": 64, "rave_block_samples": 2048},
        "note": ("voices: synth mode's voices (1: monophonic); with more, synth mode plays a held chord "
                 "plus a legato melody, timed on one voice too (synth_mono_*, synth_voices_cost_ratio_*); "
                 "targets: lower is better, a name ending in _below is a strict bound, _with_load "
                 "targets apply to a run with load (null in met without it)"),
    }
    result["met"] = targets_met(result)
    return result


def chord_and_melody(lo: int, hi: int, n: int, sr: int, rng: np.random.Generator) -> list:
    """Synth-mode events over ``n`` samples: a 4-note chord held throughout (low in the range
    ``lo .. hi``), a legato melody above it (a note every 0.25 s, each overlapping the next by
    10 ms, random velocities), and the same bends (moving every voice: one channel) and CC1 as the
    transfer melody."""
    root = lo + 2
    chord = [int(min(root + k, hi)) for k in (0, 4, 7, 11)]
    events = [note_on(i, p, 90) for i, p in enumerate(chord)]
    note_len, overlap = int(0.25 * sr), int(0.01 * sr)
    last = -1
    for at in range(0, n, note_len):
        p = int(rng.integers(min(root + 12, hi), hi + 1))
        p = p if p != last else (p - 1 if p > min(root + 12, hi) else p + 1)  # a new note: legato
        last = p
        events += [note_on(at + 37, p, int(rng.integers(60, 127))), note_off(min(at + note_len + overlap, n - 1), p)]
        events += [pitch_bend(at + k * 1000 + 11, float(np.sin(k / 3))) for k in range(3, 9) if at + k * 1000 + 11 < n]
        if at + 5000 < n:
            events.append(control_change(at + 5000, 1, int(rng.integers(0, 128))))
    return sorted(events, key=lambda e: e.offset)


def _time_blocks(eng: Engine, x: np.ndarray, events: list, block: int, *, realtime: bool = False
                 ) -> tuple[np.ndarray, np.ndarray, int, int, int]:
    """Wall and thread-CPU ms of each ``eng.process`` call over ``x`` (transfer) or as many
    blocks (synth) with ``events`` -> (wall, cpu, decodes, encoder frames, most voices sounding).

    ``realtime``: as an audio callback runs, one block per block period (paced: the thread
    sleeps until the next block is due) under SCHED_FIFO (audiosym.io.realtime); raises
    :class:`DeviceError` when the system refuses real-time scheduling."""
    transfer = eng.mode == "transfer"
    eng.process(x[:block] if transfer else block)  # warm-up (first-call allocations)
    eng.reset()
    wall, cpu, most = [], [], 0
    period = block / eng.sample_rate
    if realtime and (why := make_realtime()) is not None:
        raise DeviceError(f"bench engine --realtime: {why}")
    try:
        t_start = time.perf_counter()
        for i, start in enumerate(range(0, len(x) - block + 1, block)):
            if realtime and (wait := t_start + i * period - time.perf_counter()) > 0:
                time.sleep(wait)
            evs = [type(e)(e.offset - start, e.data) for e in events if start <= e.offset < start + block]
            w0, c0 = time.perf_counter(), time.thread_time()
            eng.process(x[start:start + block] if transfer else block, evs)
            cpu.append(time.thread_time() - c0)
            wall.append(time.perf_counter() - w0)
            most = max(most, eng.active_voices)
    finally:
        if realtime:
            make_ordinary()
    log(f"{eng.mode}: {len(wall)} blocks, p99 {np.percentile(wall, 99) * 1000:.3f} ms wall")
    return 1000 * np.asarray(wall), 1000 * np.asarray(cpu), eng.state.decodes, eng.state.frames, most
