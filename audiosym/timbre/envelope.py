"""Note envelopes: a held note's level against time since note-on, per register, measured on
rendered single notes (named timbres, at export) or on a recording's notes (references)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audiosym.dsp.pitch import midi_to_hz

ENV_HOP_S = 0.01  # envelope time step
ENV_SECONDS = 2.0  # envelope length; later times hold the last value
ENV_STEP_SEMITONES = 4  # envelope registers
ENV_FLOOR_DB = -60.0
ENV_VELOCITY = 100
ENV_ATTACK_S = 0.1  # envelope before this is kept as measured ...
ENV_SMOOTH_S = 0.25  # ... and smoothed over this after it
MIN_ENV_NOTE_S = 0.15  # a recording's note shorter than this does not enter its envelope
RELEASE_DB = 10.0  # a recording's note ends where its level falls this far within 100 ms
ONSET_SEARCH_S = 0.15  # a note found from pitched frames: its onset is searched this far before them


@dataclass(frozen=True)
class NoteEnvelope:
    """``db [G, K]``: level (dB re the note's peak) at times ``k * hop_s`` after note-on, for
    pitches ``pitch_grid [G]`` (MIDI)."""

    pitch_grid: np.ndarray
    db: np.ndarray
    hop_s: float = ENV_HOP_S

    def curve(self, midi: float) -> np.ndarray:
        """``[K]`` linear gain of a note at ``midi`` (linear between registers, clamped)."""
        db = pitch_row(self.db, self.pitch_grid, midi if np.isfinite(midi) else float(self.pitch_grid[0]))
        return 10.0 ** (np.asarray(db, dtype=np.float64) / 20.0)


def pitch_row(table: np.ndarray, grid: np.ndarray, midi: float) -> np.ndarray:
    """Row of a per-pitch ``table [G, ...]`` at ``midi``, its rows at pitches ``grid [G]``
    (ascending): linear between rows, clamped to the first and last."""
    x = float(np.clip(midi, grid[0], grid[-1]))
    i = min(int(np.searchsorted(grid, x, side="right")) - 1, len(grid) - 1)
    if i >= len(grid) - 1:
        return table[-1]
    fr = (x - grid[i]) / (grid[i + 1] - grid[i])
    return table[i] * (1.0 - fr) + table[i + 1] * fr


def level_curve(y: np.ndarray, sample_rate: int, midi: float, hop: int, k: int) -> np.ndarray:
    """``[k]`` RMS of ``y`` around samples ``i * hop + hop // 2``, over a centred window of at
    least 2.5 periods of ``midi`` (a 10 ms window ripples on low notes); 1e-12 where silent."""
    half = max(hop, int(2.5 * sample_rate / midi_to_hz(midi))) // 2
    return np.sqrt(mean_square(y, np.arange(k) * hop + hop // 2, half)) + 1e-12


def mean_square(y: np.ndarray, centres: np.ndarray, half: int) -> np.ndarray:
    """``[len(centres)]`` mean of ``y ** 2`` over ``[centre - half, centre + half)`` (sample
    indices, clipped to the signal; 0 where nothing is left), from one cumulative sum."""
    y = np.asarray(y, dtype=np.float64)
    c = np.concatenate([[0.0], np.cumsum(y ** 2)])
    centres = np.asarray(centres, dtype=np.int64)
    a0, a1 = np.clip(centres - half, 0, len(y)), np.clip(centres + half, 0, len(y))
    return (c[a1] - c[a0]) / np.maximum(a1 - a0, 1)


def last_low_point(level_db: np.ndarray, lo: int, hi: int) -> int:
    """The index in ``[lo, hi)`` of the last value within 3 dB of the lowest there: where a note
    starts when the level before it is a gap, a dip, or flat (then the end of the range)."""
    seg = np.asarray(level_db[lo:hi])
    return lo + int(np.flatnonzero(seg <= seg.min() + 3.0)[-1])


def held_note_db(y: np.ndarray, sample_rate: int, midi: float) -> np.ndarray:
    """``[ENV_SECONDS / ENV_HOP_S]`` envelope row of one held note ``y`` (from its note-on) at
    ``midi``: dB below its peak, floored at ``ENV_FLOOR_DB``, smoothed after the attack."""
    hop = int(round(ENV_HOP_S * sample_rate))
    rms = level_curve(y, sample_rate, midi, hop, int(round(ENV_SECONDS / ENV_HOP_S)))
    return smooth_tail(np.maximum(20 * np.log10(rms / rms.max()), ENV_FLOOR_DB))


def note_span(note) -> tuple[float, float, float]:
    """``(onset_s, offset_s, pitch)`` of a note given as a ``MelodyNote`` (or anything with
    ``onset_s``, ``offset_s`` and ``pitch``) or as a tuple ``(onset_s, offset_s, pitch, ...)``."""
    if hasattr(note, "onset_s"):
        return float(note.onset_s), float(note.offset_s), float(note.pitch)
    return float(note[0]), float(note[1]), float(note[2])


def recording_envelope(y: np.ndarray, sample_rate: int, notes) -> NoteEnvelope | None:
    """The note envelope of a recording whose notes are known: ``notes`` as ``(onset_s, offset_s,
    midi)`` (or objects with those attributes), e.g. a reference's melody.

    Each note is measured from its onset to its offset (or the next onset, if sooner; or where
    its level first falls ``RELEASE_DB`` within 100 ms: a release, faster than any decay), in
    dB below its own peak, like :func:`audiosym.timbre.match.measure_notes` measures a rendered note. Beyond a note's
    length its level is continued: at the rate it was falling over its last half (fitted after
    ``ENV_ATTACK_S``), so a decaying piano keeps decaying; held where it was not falling. Notes
    are averaged (in dB) per register, every ``ENV_STEP_SEMITONES`` over the played range, from
    the notes nearest each register. None when no note lasts ``MIN_ENV_NOTE_S``."""
    hop = int(round(ENV_HOP_S * sample_rate))
    k = int(round(ENV_SECONDS / ENV_HOP_S))
    spans = sorted(note_span(n) for n in notes)
    curves, pitches = [], []
    for i, (onset, offset, pitch) in enumerate(spans):
        end = min(offset, spans[i + 1][0]) if i + 1 < len(spans) else offset
        a, b = int(round(onset * sample_rate)), min(int(round(end * sample_rate)), len(y))
        n = (b - a) // hop
        if n * ENV_HOP_S < MIN_ENV_NOTE_S or not np.isfinite(pitch):
            continue
        db = 20 * np.log10(level_curve(y[a:b], sample_rate, pitch, hop, n))
        lag = int(round(0.1 / ENV_HOP_S))  # a release: 10 dB down within 100 ms (a decay is slower)
        cut = np.flatnonzero(db[lag:] < db[:-lag] - RELEASE_DB) if n > lag else np.zeros(0, int)
        db = db[: lag + int(cut[0])] if len(cut) and (lag + cut[0]) * ENV_HOP_S >= MIN_ENV_NOTE_S else db
        db = np.maximum(db - db.max(), ENV_FLOOR_DB)
        curves.append(_continue(db, k))
        pitches.append(pitch)
    if not curves:
        return None
    pitches_arr = np.asarray(pitches)
    lo, hi = np.floor(pitches_arr.min()), np.ceil(pitches_arr.max())
    grid = np.unique(np.r_[np.arange(lo, hi + 1, ENV_STEP_SEMITONES), hi]).astype(np.float64)
    nearest = np.argmin(np.abs(pitches_arr[:, None] - grid[None, :]), axis=1)
    rows = []
    for g in range(len(grid)):
        own = nearest == g
        if not own.any():  # no note in this register: the notes nearest to it
            d = np.abs(pitches_arr - grid[g])
            own = d == d.min()
        rows.append(smooth_tail(np.mean([curves[j] for j in np.flatnonzero(own)], axis=0)))
    return NoteEnvelope(grid, np.asarray(rows, dtype=np.float32), ENV_HOP_S)


def recording_notes(y: np.ndarray, sample_rate: int, frames: np.ndarray, midi: np.ndarray, *,
                    hop_length: int, n_fft: int) -> list[tuple[float, float, float]]:
    """Notes ``(onset_s, offset_s, midi)`` of a recording whose melody is not given, for
    :func:`recording_envelope`, from its pitched frames: feature frames ``frames [k]`` (the
    window of frame ``t`` ends at sample ``(t + 1) hop_length``) at pitches ``midi [k]``, e.g.
    pyin's steady frames. A note is a run of consecutive frames whose pitch moves by under a
    semitone. It ends at its last window's centre (pyin stays voiced into the release, and a
    window reaches past the sound it reads) and starts where the level last sits within
    3 dB of its lowest between ``ONSET_SEARCH_S`` before its first window and that window's end
    (the attack, which pyin does not call steady). Runs of fewer than 3 frames are no notes."""
    frames, midi = np.asarray(frames), np.asarray(midi, dtype=np.float64)
    hop = int(round(ENV_HOP_S * sample_rate))
    level = level_curve(y, sample_rate, float(np.median(midi)) if len(midi) else 60.0, hop, len(y) // hop + 1)
    notes: list[tuple[float, float, float]] = []
    start = 0
    for i in range(1, len(frames) + 1):
        if i < len(frames) and frames[i] == frames[i - 1] + 1 and abs(midi[i] - midi[i - 1]) < 1.0:
            continue
        if i - start >= 3:
            first = ((frames[start] + 1) * hop_length - n_fft) / sample_rate  # its window's start
            lo = max(first - ONSET_SEARCH_S, notes[-1][1] if notes else 0.0, 0.0)
            a = int(lo / ENV_HOP_S)
            b = min(max(int(((frames[start] + 1) * hop_length) / sample_rate / ENV_HOP_S), a + 1), len(level))
            onset = last_low_point(20 * np.log10(level), a, b) * ENV_HOP_S if b > a else max(first, 0.0)
            offset = ((frames[i - 1] + 1) * hop_length - n_fft / 2) / sample_rate  # the last window's centre
            notes.append((onset, max(offset, onset), float(np.median(midi[start:i]))))
        start = i
    return notes


def _continue(db: np.ndarray, k: int) -> np.ndarray:
    """``db [n]`` (a measured note) extended or cut to ``[k]``: falling at its last half's fitted
    rate (dB per step, after ``ENV_ATTACK_S``) when that rate is negative, else held at the mean
    of its last ``ENV_SMOOTH_S``; floored at ``ENV_FLOOR_DB``."""
    if len(db) >= k:
        return db[:k]
    a = int(round(ENV_ATTACK_S / ENV_HOP_S))
    tail = db[max(a, len(db) // 2):]
    steps = np.arange(1, k - len(db) + 1)
    slope, intercept = np.polyfit(np.arange(len(tail)), tail, 1) if len(tail) >= 3 else (0.0, 0.0)
    if slope < 0:  # falling: on along the fitted line, from its value at the note's end
        ext = intercept + slope * (len(tail) - 1 + steps)
    else:
        ext = np.full(len(steps), np.mean(db[-max(int(round(ENV_SMOOTH_S / ENV_HOP_S)), 1):]))
    return np.maximum(np.r_[db, ext], ENV_FLOOR_DB)


def smooth_tail(db: np.ndarray) -> np.ndarray:
    """The attack (first ``ENV_ATTACK_S``) as measured; later, a ``ENV_SMOOTH_S`` moving average
    in dB: chorus and tremolo beating belongs to one rendered note, not to the timbre."""
    a = int(round(ENV_ATTACK_S / ENV_HOP_S))
    w = max(int(round(ENV_SMOOTH_S / ENV_HOP_S)) // 2, 1)
    out = db.astype(np.float64).copy()
    c = np.concatenate([[0.0], np.cumsum(db, dtype=np.float64)])
    idx = np.arange(a, len(db))
    lo, hi = np.maximum(idx - w, a), np.minimum(idx + w + 1, len(db))
    out[a:] = (c[hi] - c[lo]) / (hi - lo)
    return out - out.max()  # 0 dB at the (smoothed) peak
