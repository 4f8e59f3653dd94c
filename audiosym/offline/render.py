"""The engine run offline: a whole signal through ``Engine.process``, time-aligned, optionally
transposed or driven by a melody or by the input's own notes (:func:`resynthesize`)."""

from __future__ import annotations

import numpy as np

from audiosym.engine.control import DEFAULT_PITCH_FOLLOW, MidiEvent, as_events, melody_events
from audiosym.engine.dynamics import DEFAULT_DYNAMICS
from audiosym.engine.engine import Engine
from audiosym.errors import ParameterError
from audiosym.io.audio import resample
from audiosym.offline.pitch_track import input_note_events
from audiosym.preset.model import Preset

#: Samples per ``Engine.process`` call offline: large enough to batch ~100 encoder and decoder
#: frames per onnxruntime call, small enough that the engine's per-sample temporaries stay in
#: memory the allocator reuses (2**17 samples = 2.7 s at 48 kHz). Measured 2026-11-30, 20 s at
#: 44.1 kHz, first render of a process: 2**20-sample blocks 90x real time (fresh pages for
#: every large temporary), 2**17: 165x; later renders 182x vs 161x.
RENDER_BLOCK_SAMPLES = 1 << 17
INPUT_PITCH = ("notes", "stream")  # without MIDI: the input's pitch as notes (offline) or as streamed


def render_signal(engine: Engine, y: np.ndarray, events=(), *, block_samples: int = RENDER_BLOCK_SAMPLES) -> np.ndarray:
    """The engine's output for mono ``y [n]`` at ``engine.sample_rate``, time-aligned with ``y``.

    The engine's loudness path lags its input by ``engine.latency_samples``; the input is padded
    with that many zeros, MIDI ``events`` (offsets from the start of ``y``) are moved by the same
    amount, and the first ``latency_samples`` output samples are dropped, so output sample k
    belongs to input sample k. The padded signal goes through ``Engine.process`` from a fresh
    state in blocks of ``block_samples`` (the engine's output does not depend on blocking:
    equal to streaming it in small blocks, tested).
    """
    n = len(y)
    latency = int(engine.latency_samples)
    padded = np.concatenate([np.asarray(y, dtype=np.float32), np.zeros(latency, np.float32)])
    moved = [MidiEvent(e.offset + latency, e.data) for e in as_events(events, block_length=max(n, 1))]
    engine.reset()
    out, k = [], 0
    for start in range(0, len(padded), block_samples):
        stop = min(start + block_samples, len(padded))
        block_events = []
        while k < len(moved) and moved[k].offset < stop:
            block_events.append(MidiEvent(moved[k].offset - start, moved[k].data))
            k += 1
        out.append(engine.process(padded[start:stop], block_events))
    full = np.concatenate(out) if out else np.zeros(0, np.float32)
    return np.asarray(full, dtype=np.float32)[latency : latency + n]


def make_engine(preset: Preset, *, timbre: str, sample_rate: int, transpose_semitones: float = 0.0,
                dynamics: str = DEFAULT_DYNAMICS, pitch_follow: str = DEFAULT_PITCH_FOLLOW) -> Engine:
    """A fresh transfer-mode engine (fresh state) at ``sample_rate`` Hz; a non-zero
    ``transpose_semitones`` shifts the input's pass-through pitch (:meth:`Preset.transposed`).
    ``dynamics``: what shapes a MIDI note's level, ``pitch_follow``: what sets the pitch with no
    note held (:class:`audiosym.engine.engine.Engine`)."""
    if transpose_semitones:
        preset = preset.transposed(transpose_semitones)
    return Engine(preset, timbre=timbre, sample_rate=int(sample_rate), mode="transfer", dynamics=dynamics,
                  pitch_follow=pitch_follow)


def resynthesize(
    preset: Preset, y: np.ndarray, *, sample_rate: int, timbre: str, notes=None,
    transpose_semitones: float = 0.0, output_sample_rate: int | None = None, dynamics: str = DEFAULT_DYNAMICS,
    input_pitch: str = "notes", input_notes: list | None = None, counts: dict[str, int] | None = None,
    pitch_follow: str = DEFAULT_PITCH_FOLLOW,
) -> tuple[np.ndarray, int]:
    """Re-timbre mono ``y [n]`` at ``sample_rate`` Hz -> ``(out [m], out_rate)``, time-aligned.

    ``notes`` (:class:`audiosym.io.midifile.MelodyNote`, seconds from the start of ``y``) drive the
    pitch; without them the input's own pitch does, shifted by ``transpose_semitones``:
    ``input_pitch="notes"`` reads it over the whole signal and plays it as notes where the audio
    has them (:mod:`audiosym.offline.pitch_track`; each note gets the timbre's note envelope),
    ``"stream"`` passes it through as the engine streams it live (``pitch_follow="fast"``: each
    pitch ~25 ms late; ``"encoder"``: an analysis window late; the input's level throughout). ``input_notes``: the input's notes already found
    (:func:`audiosym.offline.pitch_track.track_notes`, transposition included), not searched again.
    The engine runs at the output rate (``output_sample_rate`` or ``sample_rate``), or at the
    model rate when that is lower (the engine needs at least the model rate), in which case the
    output is resampled down. ``dynamics="timbre"``: each MIDI note sounds at the input's level
    with the timbre's own note envelope (when the preset stores one); ``"input"``: the output
    follows the input's level throughout. ``preset`` is played as given: compose
    ``preset.with_stored_match()`` for the stored match corrections. ``counts``, when given, gets
    the engine's counters: ``folded_notes`` (notes outside the preset's range, played octaves up
    or down: :attr:`Engine.folded_notes`).
    """
    out_rate = int(output_sample_rate or sample_rate)
    engine_rate = max(out_rate, int(preset.features.sample_rate))
    x = resample(y, orig_sample_rate=int(sample_rate), target_sample_rate=engine_rate)
    if input_pitch not in INPUT_PITCH:
        raise ParameterError(f"input_pitch={input_pitch!r} is not one of {INPUT_PITCH}")
    engine = make_engine(preset, timbre=timbre, sample_rate=engine_rate, transpose_semitones=transpose_semitones,
                         dynamics=dynamics, pitch_follow=pitch_follow)
    if notes:
        events = melody_events(notes, sample_rate=engine_rate, n_samples=len(x))
    elif input_pitch == "notes":  # the input's own pitch, as notes placed where the audio has them
        events = input_note_events(preset, y, int(sample_rate), engine_rate=engine_rate, n_samples=len(x),
                                   bend_range_semitones=engine.bend_range_semitones,
                                   transpose_semitones=transpose_semitones, notes=input_notes)
    else:
        events = []
    out = render_signal(engine, x, events)
    if counts is not None:
        counts["folded_notes"] = engine.folded_notes
    return resample(out, orig_sample_rate=engine_rate, target_sample_rate=out_rate), out_rate
