"""Pitch conversions: MIDI note numbers, Hz and cents (A4 = MIDI 69 = 440 Hz)."""

from __future__ import annotations

import numpy as np

A4_HZ = 440.0
A4_MIDI = 69.0


def midi_to_hz(midi):
    """MIDI note number (float ok) -> frequency in Hz."""
    return A4_HZ * 2.0 ** ((np.asarray(midi, dtype=np.float64) - A4_MIDI) / 12.0)


def hz_to_midi(hz):
    """Frequency in Hz (> 0) -> fractional MIDI note number; NaN for non-positive input."""
    hz = np.asarray(hz, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = A4_MIDI + 12.0 * np.log2(hz / A4_HZ)
    return np.where(hz > 0, out, np.nan)


def cents_between(hz, ref_hz):
    """Signed distance in cents from ``ref_hz`` to ``hz``."""
    return 1200.0 * np.log2(np.asarray(hz, dtype=np.float64) / np.asarray(ref_hz, dtype=np.float64))


NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def midi_name(midi: int) -> str:
    """61 -> 'C#4' (scientific pitch notation, middle C = C4 = 60)."""
    midi = int(midi)
    return f"{NOTE_NAMES[midi % 12]}{midi // 12 - 1}"


# ----------------------------------------------------------------------------- short-window pitch
#: The engine's short-window pitch estimate (audiosym.engine.pitch_follow): one estimate every
#: SHORT_HOP_MS, a window reaching SHORT_MARGIN_SEMITONES below the preset's lowest note. Here,
#: with no numba, so that a preset's latency words (audiosym.preset.format) can state its delay.
SHORT_HOP_MS = 2.0
SHORT_MARGIN_SEMITONES = 0.5


def short_window_samples(lowest_midi: float, sample_rate: int) -> int:
    """YIN buffer in samples at ``sample_rate``: twice the period of ``lowest_midi -
    SHORT_MARGIN_SEMITONES`` (the lag range plus an integration window as long): 504 samples =
    31.5 ms at 16 kHz for C2 (MIDI 36), 126 samples = 7.9 ms for C4 (60)."""
    return 2 * int(np.ceil(sample_rate / float(midi_to_hz(lowest_midi - SHORT_MARGIN_SEMITONES))))


def short_hop_samples(sample_rate: int) -> int:
    """Samples between two short-window estimates at ``sample_rate`` (32 at 16 kHz)."""
    return max(int(round(SHORT_HOP_MS * sample_rate / 1000)), 1)


def short_delay_samples(lowest_midi: float, sample_rate: int) -> float:
    """Samples at ``sample_rate`` from a pitch step to the short-window estimate that shows it,
    at most: three quarters of the window + one hop. A step up shows once the new note fills
    about half the window; a step down to the lowest note, whose period is half the window,
    once it fills three quarters of it (measured: tests/engine/test_pitch_follow.py)."""
    return 0.75 * short_window_samples(lowest_midi, sample_rate) + short_hop_samples(sample_rate)
