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
