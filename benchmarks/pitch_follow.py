"""Low-latency pitch following (issue #15): ``pitch_follow="fast"`` against ``"encoder"`` (the
path of before) on the shipped presets, transfer mode, no MIDI. Prints one JSON object.

- ``step_delay_ms``: a harmonic tone jumps by a fifth (up and down, at the bottom, middle and top
  of the playable range); ms from the step to the engine's own f0 (``state.f0_midi``, read every
  16 samples) crossing halfway; ``reported_ms``: ``Engine.pitch_latency_samples``;
- ``held_error_cents_median``: soundfont notes (TimGM6mb: flute, violin, trumpet, clarinet,
  choir aahs) across the playable range, held 0.6 s: median |heard f0 - the note| over their
  last 0.4 s, per path. The encoder's figure is also what "the encoder refines a stable note"
  would give;
- ``octave_jumps``: frames of those held notes whose heard pitch is >= 6 semitones from the note;
- ``block_*_ms``: ``Engine.process`` wall time per 128-sample block at 48 kHz on those notes
  played as a melody with no MIDI (the follower's cost is paid on every block), both paths
  timed alternately in the same run.

    OMP_NUM_THREADS=1 python benchmarks/pitch_follow.py > benchmarks/results/pitch-follow-2026-12-05.json
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from audiosym.data.soundfonts import find_soundfont, render_note  # noqa: E402
from audiosym.engine.engine import Engine  # noqa: E402
from audiosym.preset.session import load_preset  # noqa: E402

SR, BLOCK = 48000, 128
PROGRAMS = {"flute": 73, "violin": 40, "trumpet": 56, "clarinet": 71, "choir_aahs": 52}
PATHS = ("fast", "encoder")


def step_tone(m1: float, m2: float, at: int, n: int) -> np.ndarray:
    f = np.where(np.arange(n) < at, 440 * 2 ** ((m1 - 69) / 12), 440 * 2 ** ((m2 - 69) / 12))
    ph = 2 * np.pi * np.cumsum(f) / SR
    x = sum(np.sin(k * ph) / k for k in range(1, 9) if k * f.max() < 7000)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def track(engine: Engine, x: np.ndarray, block: int = 16) -> tuple[np.ndarray, np.ndarray]:
    engine.reset()
    ends, f0 = [], []
    for i in range(0, len(x), block):
        engine.process(x[i:i + block])
        ends.append(min(i + block, len(x)))
        f0.append(engine.state.f0_midi)
    return np.array(ends), np.array(f0)


def bench(name: str) -> dict:
    preset = load_preset(f"presets/{name}.asym", device="cpu", intra_op_threads=1).with_stored_match()
    lo, hi = preset.midi_range
    engines = {p: Engine(preset, timbre=preset.default_timbre, sample_rate=SR, block_size=BLOCK, pitch_follow=p)
               for p in PATHS}
    out: dict = {"preset": name, "midi_range": [lo, hi], "window_samples_16k": engines["fast"].follower.window,
                 "reported_ms": {p: round(1000 * e.pitch_latency_samples / SR, 2) for p, e in engines.items()}}
    at = int(0.5 * SR) + 17
    steps = [(lo + 7, lo), (lo, lo + 7), ((lo + hi) // 2 - 3, (lo + hi) // 2 + 4), (hi - 2, hi - 9), (hi - 9, hi - 2)]
    delays: dict[str, list] = {p: [] for p in PATHS}
    for m1, m2 in steps:
        x = step_tone(m1, m2, at, int(0.8 * SR))
        for p, e in engines.items():
            ends, f0 = track(e, x)
            crossed = (f0 > (m1 + m2) / 2) if m2 > m1 else (f0 < (m1 + m2) / 2)
            hit = np.flatnonzero(crossed & (ends > at))
            delays[p].append(round(1000 * (ends[hit[0]] - at) / SR, 2) if len(hit) else None)
    out["steps"] = [f"{a}->{b}" for a, b in steps]
    out["step_delay_ms"] = delays

    sf = find_soundfont("TimGM6mb")
    notes = [(prog, m) for prog in PROGRAMS.values() for m in range(lo, hi + 1, 5)]
    errors: dict[str, list] = {p: [] for p in PATHS}
    jumps = dict.fromkeys(PATHS, 0)
    melody = []
    for prog, m in notes:
        y = render_note(sf, prog, m, note_seconds=0.6, sample_rate=SR)[: int(0.6 * SR)]
        y = (0.3 * y / max(np.abs(y).max(), 1e-9)).astype(np.float32)
        melody.append(y)
        for p, e in engines.items():
            ends, f0 = track(e, y, block=64)
            held = f0[(ends > 0.2 * SR)]
            held = held[np.isfinite(held)]
            if len(held):
                errors[p].append(float(np.median(np.abs(held - m))) * 100)
                jumps[p] += int(np.sum(np.abs(held - m) >= 6))
    out["held_notes"] = len(notes)
    out["held_error_cents_median"] = {p: round(float(np.median(v)), 2) for p, v in errors.items()}
    out["held_error_cents_p90"] = {p: round(float(np.percentile(v, 90)), 2) for p, v in errors.items()}
    out["octave_jumps"] = jumps

    x = np.concatenate(melody)[: 10 * SR]
    walls: dict[str, list] = {p: [] for p in PATHS}
    for e in engines.values():
        e.reset()
        e.process(x[:BLOCK])
        e.reset()
    for start in range(0, len(x) - BLOCK + 1, BLOCK):
        for p, e in engines.items():  # alternately: the same moments of a noisy machine
            t0 = time.perf_counter()
            e.process(x[start:start + BLOCK])
            walls[p].append(1000 * (time.perf_counter() - t0))
    for p, w in walls.items():
        arr = np.asarray(w)
        out[f"block_p50_ms_{p}"] = round(float(np.percentile(arr, 50)), 4)
        out[f"block_p99_ms_{p}"] = round(float(np.percentile(arr, 99)), 4)
        out[f"block_max_ms_{p}"] = round(float(arr.max()), 4)
    out["block_ms"] = round(1000 * BLOCK / SR, 4)
    print(f"{name}: done", file=sys.stderr)
    return out


if __name__ == "__main__":
    names = sys.argv[1:] or ["sps-default", "v3-default"]
    print(json.dumps({"machine": "2-core shared CPU VM", "cpus": os.cpu_count(),
                      "date": time.strftime("%Y-%m-%d", time.gmtime()),
                      "results": [bench(n) for n in names]}, indent=1))
