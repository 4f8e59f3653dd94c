"""Cut a recording into notes without pitch labels, and tell single notes from chords.

Model-free cues only (no pitch estimate decides where a note is):

- **level**: the RMS of each hop (256 samples at 16 kHz); a hop is *active* when it is within
  ``floor_db`` of the recording's loudest hop (and above -70 dBFS);
- **onsets**: SuperFlux of a short (1024-sample) log-mel spectrum (vibrato-robust), peak-picked by
  :func:`librosa.onset.onset_detect`: a new note begins at an onset or where the level rises out
  of silence, so legato notes (no gap, a new spectrum) are split too;
- **end**: the next onset, the end of the active span, or where the level has fallen
  ``release_db`` under the note's own peak (the release tail is not part of the note).

:func:`harmonic_fraction` tells a chord from a single note: the share of a note's spectral-peak
power that the harmonic series of ONE fundamental explains (a lone note ~0.9-1.0, a triad
~0.5). It is used for warnings and to keep chords out of training, never as a training target.
A fifth or an octave is explained by a missing fundamental an octave down: two notes at those
intervals pass as one.

Hop ``t`` is the samples ``[t * hop, (t + 1) * hop)``; a note ``[start, end)`` in hops begins at
sample ``start * hop``, and feature frame ``start + k`` is its frame ``k`` (the convention of
rendered notes: frame 0's window ends one hop after the onset; the first ``n_fft / hop`` frames
still hold what came before the onset).
"""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np

from audiosym.dsp.features import FeatureConfig

ONSET_FFT = 1024
ABS_FLOOR_DB = -70.0
HARMONICS = 12
HARMONIC_TOLERANCE_SEMITONES = 0.5
ONSET_DELTA = 0.035  # peak-picking threshold on the normalised strength (tuned: docstring)
STRONG_DB = 20.0  # a peak within this of the strongest is a strong one


@dataclass(frozen=True)
class SegmentSettings:
    """How notes are cut (part of the analysis cache key)."""

    min_note_s: float = 0.18  # shorter notes are rejected (8 frames of the 128 ms window + a few)
    note_s: float = 0.5  # frames kept per note (from its onset); longer notes are cut there
    floor_db: float = 50.0  # active: within this of the recording's loudest hop
    release_db: float = 30.0  # a note ends this far under its own peak
    chord_fraction: float = 0.75  # harmonic_fraction below this: several pitches (a chord)
    max_notes_per_file: int = 6000  # bounds memory for very long files (the rest is skipped, warned)


def hop_levels_db(y: np.ndarray, hop: int) -> np.ndarray:
    """RMS level (dBFS) of each whole hop of ``y``."""
    n = len(y) // hop
    x = y[: n * hop].astype(np.float64).reshape(n, hop)
    return 10 * np.log10(np.mean(x * x, axis=1) + 1e-14)


def onset_flux(y: np.ndarray, hop: int, sample_rate: int) -> np.ndarray:
    """Onset strength per hop: SuperFlux (librosa's ``onset_strength`` with ``lag=2``,
    ``max_size=3``: a maximum filter over frequency, so vibrato does not read as onsets) of a
    1024-sample log-mel spectrum whose window ends at the end of the hop (``[len(y) // hop]``)."""
    n = len(y) // hop
    pad = np.concatenate([np.zeros(ONSET_FFT - hop, np.float32), np.asarray(y[: n * hop], np.float32)])
    mel = librosa.feature.melspectrogram(y=pad, sr=sample_rate, n_fft=ONSET_FFT, hop_length=hop, center=False,
                                         n_mels=138, fmin=27.5, fmax=sample_rate / 2)
    env = librosa.onset.onset_strength(S=librosa.power_to_db(mel, ref=1.0, top_db=None), sr=sample_rate,
                                       hop_length=hop, lag=2, max_size=3, center=False)
    out = np.zeros(n)
    m = min(n, len(env))
    out[:m] = env[:m]
    return out


def cut_notes(level_db: np.ndarray, flux: np.ndarray, *, floor_db: float, hop_s: float,
              settings: SegmentSettings) -> list[tuple[int, int]]:
    """``[(start, end)]`` in hops of the notes in one stretch of audio (see the module docstring).
    ``floor_db``: the activity threshold (dBFS) for this recording."""
    active = level_db > floor_db
    onsets = set(int(i) for i in librosa.onset.onset_detect(
        onset_envelope=flux, sr=int(round(1 / hop_s)), hop_length=1, units="frames", backtrack=False,
        wait=int(0.06 / hop_s), delta=ONSET_DELTA,
    ))
    notes = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2]):
        cuts = [a] + sorted(t for t in onsets if a + 2 < t < b - 2) + [b]
        for s, e in zip(cuts[:-1], cuts[1:]):
            peak = int(s + np.argmax(level_db[s:e]))
            below = np.flatnonzero(level_db[peak:e] < level_db[peak] - settings.release_db)
            end = peak + int(below[0]) if len(below) else e
            notes.append((int(s), int(max(end - 1, s))))  # one hop of margin before the next note
    return notes


def harmonic_fraction(logmag: np.ndarray, cfg: FeatureConfig, *, every: int = 2) -> tuple[float, float]:
    """``(unexplained_db, f0_midi)`` of a note's sustained frames ``logmag [S, n_bins]``: the level
    (dB under the strongest peak) of the strongest spectral peak that is NOT on the harmonics
    (1..12) of the best single fundamental, and that fundamental (MIDI, a model-free estimate for
    summaries only); medians over every ``every``-th frame, each frame judged on its own (a chord
    holds in every frame; a sung glide or a vibrato, which smear the partials of a spectrum
    averaged over the note, moves all of a frame's partials together). The best fundamental explains
    the most peak power; it is one of the three lowest strong peaks or an octave under one (a missing
    fundamental). ``(-inf, nan)`` without peaks."""
    rows = [frame_harmonic_fraction(row, cfg) for row in np.asarray(logmag)[::every]]
    db = np.array([r[0] for r in rows])
    f0 = np.array([r[1] for r in rows])
    if not np.isfinite(f0).any():
        return float("-inf"), float("nan")
    return float(np.median(db)), float(np.nanmedian(f0))


def frame_harmonic_fraction(logmag: np.ndarray, cfg: FeatureConfig) -> tuple[float, float]:
    """:func:`harmonic_fraction` of one frame ``logmag [n_bins]``."""
    from scipy.signal import find_peaks  # lazy: ~0.3 s

    power = np.exp(2.0 * logmag.astype(np.float64))
    top = power.max()
    peaks, _ = find_peaks(power, height=top * 1e-3)
    if len(peaks) == 0:
        return float("-inf"), float("nan")
    midi = cfg.bin_midi(peaks)
    p = power[peaks]
    strong = cfg.bin_midi(peaks[p >= top * 10 ** (-STRONG_DB / 10)])[:3]
    h = 12.0 * np.log2(np.arange(1, HARMONICS + 1))
    best, best_f0, best_on = -1.0, float("nan"), np.ones(len(p), bool)
    for f0 in sorted(np.concatenate([strong, strong - 12.0]), reverse=True):  # the higher of two as good
        on = np.abs(midi[:, None] - (f0 + h)[None, :]).min(axis=1) <= HARMONIC_TOLERANCE_SEMITONES
        frac = float(p[on].sum() / p.sum())
        if frac > best + 0.02:
            best, best_f0, best_on = frac, f0, on
    off = p[~best_on]
    return (float(10 * np.log10(off.max() / top)) if len(off) else float("-inf")), best_f0
