"""Throughput benchmark: offline resynthesis realtime factor (training speed: :mod:`train.core.bench`).

``bench_resynth``: offline resynthesis speed (issue #6 target: >= 100x real time per CPU core).
A seeded soundfont melody (TimGM6mb clarinet, always installed) is re-timbred at 44.1 kHz and at
16 kHz (the model rate) through the code ``audiosym resynth`` runs: ``engine`` times
``audiosym.offline.render.render_signal`` on a warmed engine (the engine's offline pass), ``resynth``
times ``audiosym.offline.render.resynthesize`` end to end (engine construction, latency alignment,
output resampling). Three pitch sources: ``midi`` (the melody's notes drive the pitch),
``passthrough`` (no MIDI, resynth's default: the input's own pitch read over the whole file and
played as notes, :mod:`audiosym.offline.pitch_track`; ``engine`` times the engine with those notes,
``resynth`` includes finding them) and ``passthrough_stream`` (the input's pitch latent streamed
through as live). Without MIDI the encoder runs on every frame.
Realtime factor = audio seconds / compute seconds, with compute measured both as process CPU
time (``time.process_time``, what other jobs on a shared machine cannot inflate) and as wall
time; the median of ``repeats`` runs. One onnxruntime thread; set ``OMP_NUM_THREADS=1``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from audiosym.bench.common import log, speed_header
from audiosym.data.soundfonts import find_soundfont, render_melody
from audiosym.engine.control import melody_events
from audiosym.io.midifile import MelodyNote
from audiosym.offline.pitch_track import input_note_events
from audiosym.offline.render import make_engine, render_signal, resynthesize
from audiosym.preset.session import load_preset

RATES = (44100, 16000)
TARGET_REALTIME_FACTOR = 100.0


def _melody(seconds: float, seed: int) -> list:
    """Seeded random-walk melody (MelodyNote list): 0.45 s notes every 0.5 s, MIDI 55..79."""
    rng = np.random.default_rng(seed)
    pitch, notes = 67, []
    for i in range(int(seconds / 0.5)):
        pitch = int(np.clip(pitch + rng.integers(-4, 5), 55, 79))
        notes.append(MelodyNote(onset_s=0.5 * i, offset_s=0.5 * i + 0.45, pitch=pitch, velocity=100))
    return notes


def _timed(fn, *args, **kwargs) -> tuple[float, float]:
    """(process CPU seconds, wall seconds) of one call."""
    c0, w0 = time.process_time(), time.perf_counter()
    fn(*args, **kwargs)
    return time.process_time() - c0, time.perf_counter() - w0


def bench_resynth(preset_name: str, *, timbre: str | None = None, seconds: float = 30.0, repeats: int = 3,
                  rates: tuple[int, ...] = RATES, seed: int = 0) -> dict:
    """Realtime factors (module docstring) of re-timbring a ``seconds``-long seeded melody with
    ``preset_name`` (file or shipped name; ``timbre``: default the preset's) at each of ``rates``
    (Hz), median of ``repeats`` runs -> one JSON-ready dict."""
    preset = load_preset(preset_name, device="cpu", intra_op_threads=1).with_stored_match()  # as `resynth` plays
    timbre = timbre or preset.default_timbre
    sf = find_soundfont("TimGM6mb")
    notes = _melody(seconds, seed)
    per_rate: dict[str, dict] = {}
    for rate in rates:
        x = render_melody(sf, 71, [(n.onset_s, n.duration_s, n.pitch, n.velocity) for n in notes], sample_rate=rate)
        x = x[: int(seconds * rate)].astype(np.float32)
        x *= np.float32(0.1 / max(float(np.sqrt(np.mean(x.astype(np.float64) ** 2))), 1e-12))  # -20 dBFS RMS
        dur = len(x) / rate
        per_mode: dict[str, dict] = {}
        for mode in ("midi", "passthrough", "passthrough_stream"):
            engine = make_engine(preset, timbre=timbre, sample_rate=rate)
            kwargs: dict[str, Any]
            if mode == "midi":
                events, kwargs = melody_events(notes, sample_rate=rate, n_samples=len(x)), {"notes": notes}
            elif mode == "passthrough":  # the input's own notes (resynth's default without --midi)
                events = input_note_events(preset, x, rate, engine_rate=rate, n_samples=len(x),
                                           bend_range_semitones=engine.bend_range_semitones)
                kwargs = {"input_pitch": "notes"}
            else:
                events, kwargs = [], {"input_pitch": "stream"}
            render_signal(engine, x[:rate], events[:0])  # warm-up: first-call allocations, kernels
            eng = [_timed(render_signal, engine, x, events) for _ in range(repeats)]
            res = [_timed(resynthesize, preset, x, sample_rate=rate, timbre=timbre, **kwargs)
                   for _ in range(repeats)]
            row = {}
            for name, runs in (("engine", eng), ("resynth", res)):
                cpu = statistics.median(r[0] for r in runs)
                wall = statistics.median(r[1] for r in runs)
                row[f"{name}_realtime_factor_cpu"] = round(dur / max(cpu, 1e-9), 1)
                row[f"{name}_realtime_factor_wall"] = round(dur / max(wall, 1e-9), 1)
            per_mode[mode] = row
            log(f"{preset.name} {rate} Hz {mode}: {row}")
        per_rate[str(rate)] = per_mode
    headline = per_rate[str(rates[0])]["midi"]["resynth_realtime_factor_cpu"]
    return {
        **speed_header(), "preset": preset.name, "kind": preset.kind, "timbre": timbre, "ort_threads": 1,
        "input": f"TimGM6mb program 71, {len(notes)} notes, seed {seed}", "seconds": seconds, "repeats": repeats,
        "statistic": "median of repeats", "rates": per_rate,
        "realtime_factor_cpu": headline,
        "realtime_factor_cpu_is": f"resynth, {rates[0]} Hz, midi mode, process CPU time",
        "targets": {"realtime_factor_cpu": TARGET_REALTIME_FACTOR},
    }
