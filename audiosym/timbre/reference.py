"""Timbre from a reference recording: "make it sound like this file".

A preset's named timbres are mean timbre vectors of its TRAINING soundfont's instruments; a
musician's target is usually a recording. :func:`reference_from_audio` measures a recording:

- ``vector``: the mean timbre latent (SPS ``z_timbre`` / V3 ``style``) the preset's encoder gives
  over the recording's steady pitched frames (pyin-voiced, pitch stable across the analysis
  window, within 35 dB of the loudest frame);
- a spectral *match correction* (log-magnitude, feature domain): what the decoder, fed the
  reference's own pitch and ``vector``, still gets wrong on those frames, averaged in two
  coordinates: relative to the played pitch (``relative [2 n_bins - 1]``: harmonic balance,
  harmonic-to-noise floor) and then at absolute frequency (``absolute [n_bins]``, smoothed:
  formants, body resonances). Like a "match EQ", it moves the decoded spectrum towards the
  reference's measured one; it is computed once, offline.

``preset.with_references([reference])`` (:meth:`audiosym.preset.model.Preset.with_references`,
:mod:`audiosym.timbre.layer`) adds each reference as a named timbre and the correction to decoded
rows whose timbre vector is the reference's (weighted by closeness when CC1 morphs away from it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import librosa
import numpy as np

from audiosym.dsp.features import FeatureConfig, features
from audiosym.dsp.pitch import hz_to_midi, midi_to_hz
from audiosym.errors import AudiosymError, ParameterError
from audiosym.families.base import CalibratedModel
from audiosym.io.audio import read_audio, resample
from audiosym.timbre.band import MIN_RATE, BandProfile, measure_band
from audiosym.timbre.envelope import (
    NoteEnvelope,
    note_span,
    pitch_row,
    recording_envelope,
    recording_notes,
)

LEVEL_RANGE_DB = 35.0  # frames more than this below the loudest frame are not measured
STABLE_SEMITONES = 0.5  # pitch must stay within this across a frame's analysis window
MIN_FRAMES = 20  # fewer steady pitched frames than this (0.32 s): not a usable reference
ABS_SMOOTH_SEMITONES = 3.0  # the absolute correction is a smooth (formant-like) curve
MAX_CORRECTION = 4.6  # |correction| is capped at 40 dB (natural log units)
OCTAVE_AGREEMENT = 0.8  # share of a note's frames on which the encoder must name the other octave
PITCH_BANDWIDTH_SEMITONES = 1.0  # default: a correction per register (pitch-keyed), see reference_from_audio
NOTE_SKIP_S = 0.05  # with a known melody, frames whose window starts this soon after an onset are left out
SUBHARMONIC_RATIO = 0.5  # a timbre whose half-harmonics carry this share of its harmonics' energy
#                          sounds an octave-below partial series (an organ's 16' stop): f0 / 2 basis


@dataclass(frozen=True)
class TimbreReference:
    """A timbre measured from a recording (see the module docstring).

    ``vector [D]`` float32; ``relative [2 n_bins - 1]`` log-magnitude correction indexed by
    ``bin - pitch_bin + n_bins - 1``; ``absolute [n_bins]``; ``frames``: frames measured;
    ``midi_range``: (lowest, highest) pitch played in the measured frames; ``subharmonic``:
    half-harmonic over harmonic energy of the measured frames (:func:`subharmonic_ratio`;
    NaN: not measured); ``envelope``: the recording's note envelope
    (:func:`audiosym.timbre.envelope.recording_envelope`; None: not measured); ``band``: its band
    profile above the model's band (:func:`band_from_notes`; None: a recording under 32 kHz).
    """

    name: str
    vector: np.ndarray
    pitch_grid: np.ndarray
    relative: np.ndarray
    absolute: np.ndarray
    frames: int
    midi_range: tuple[float, float]
    source: str = ""
    info: dict = field(default_factory=dict)
    subharmonic: float = float("nan")
    envelope: NoteEnvelope | None = None
    band: BandProfile | None = None


def reference_name(path: str | os.PathLike) -> str:
    """Default timbre name of a reference file: ``ref:<file stem>`` (spaces -> _)."""
    return "ref:" + re.sub(r"\s+", "_", Path(path).stem)


def _steady_frames(y16: np.ndarray, logmag: np.ndarray, cfg, midi_lo: float, midi_hi: float):
    """Feature frames to measure and their pitch: ``(index [k], midi [k])``.

    pyin (hop = the feature hop, centred frames) gives f0; feature frame ``t`` is centred at
    sample ``(t + 1) hop - n_fft / 2`` = pyin frame ``t + 1 - n_fft / (2 hop)``. A frame counts when
    every pyin frame its window covers is voiced with a pitch within ``STABLE_SEMITONES`` of
    the centre's, and its level is within ``LEVEL_RANGE_DB`` of the loudest frame.
    """
    hop, n_fft = cfg.hop_length, cfg.n_fft
    f0, voiced, _ = librosa.pyin(
        y16.astype(np.float64), fmin=float(midi_to_hz(max(midi_lo - 2, 24))),
        fmax=float(midi_to_hz(min(midi_hi + 2, 108))), sr=cfg.sample_rate, frame_length=n_fft,
        hop_length=hop, resolution=0.1,
    )
    midi = np.where(voiced, hz_to_midi(np.nan_to_num(f0)), np.nan)
    half = n_fft // (2 * hop)
    loud = _loud(logmag)
    keep, pitch = [], []
    for t in range(len(logmag)):
        c = t + 1 - half
        lo, hi = c - half, c + half
        if lo < 0 or hi >= len(midi) or not loud[t]:
            continue
        win = midi[lo : hi + 1]
        if np.all(np.isfinite(win)) and np.abs(win - midi[c]).max() <= STABLE_SEMITONES:
            keep.append(t)
            pitch.append(float(midi[c]))
    return np.asarray(keep, dtype=np.int64), np.asarray(pitch, dtype=np.float64)


def _loud(logmag: np.ndarray) -> np.ndarray:
    """``[T]`` bool: frames whose peak is within ``LEVEL_RANGE_DB`` of the loudest frame's."""
    level = logmag.max(axis=1)
    return level > level.max() - LEVEL_RANGE_DB * np.log(10) / 20


def _note_frames(notes, logmag: np.ndarray, cfg):
    """``(index [k], midi [k])`` of frames whose analysis window lies inside one note (from
    ``NOTE_SKIP_S`` after its onset) and within ``LEVEL_RANGE_DB`` of the loudest frame."""
    loud = _loud(logmag)
    end = (np.arange(len(logmag)) + 1) * cfg.hop_length / cfg.sample_rate  # window end, seconds
    start = end - cfg.n_fft / cfg.sample_rate
    keep, pitch = [], []
    for note in notes:
        onset, offset, p = note_span(note)
        sel = np.flatnonzero((start >= onset + NOTE_SKIP_S) & (end <= offset) & loud)
        keep += sel.tolist()
        pitch += [float(p)] * len(sel)
    order = np.argsort(keep, kind="stable")
    return np.asarray(keep, dtype=np.int64)[order], np.asarray(pitch, dtype=np.float64)[order]


def _normalise(logmag: np.ndarray) -> np.ndarray:
    """Each frame minus its log-sum-exp (the decoder's level is a per-frame constant)."""
    m = logmag.max(axis=-1, keepdims=True)
    return logmag - (m + np.log(np.exp(logmag - m).sum(axis=-1, keepdims=True)))


def subharmonic_ratio(logmag: np.ndarray, midi, cfg: FeatureConfig) -> float:
    """Energy at the half-harmonics (0.5, 1.5, 2.5, 3.5) f0 over that at the harmonics (1 .. 4) f0
    of the mean magnitude of feature frames ``logmag [T, n_bins]`` at pitch ``midi`` (a number,
    or ``[T]`` one per frame: each frame is then read at its own pitch). NaN without harmonics."""
    frames = np.atleast_2d(np.asarray(logmag, dtype=np.float64))
    mag = np.maximum(np.exp(frames) - cfg.eps, 0.0)
    pitch = np.broadcast_to(np.asarray(midi, dtype=np.float64), (len(mag),))
    bins = np.arange(cfg.n_bins)
    at = np.zeros(8)
    for m, row in zip(pitch, mag):
        at += [np.interp(cfg.midi_to_bin(m + 12 * np.log2(k)), bins, row, left=0.0, right=0.0)
               for k in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0)]
    harm = at[1::2].sum()
    return float(at[0::2].sum() / harm) if harm > 0 else float("nan")


def reference_from_audio(preset: CalibratedModel, y: np.ndarray, *, sample_rate: int, name: str = "ref", source: str = "",
                         notes=None, vector: np.ndarray | None = None, correct: bool = True,
                         pitch_bandwidth_semitones: float | None = PITCH_BANDWIDTH_SEMITONES) -> TimbreReference:
    """Measure mono ``y [n]`` at ``sample_rate`` Hz against ``preset`` (see the module docstring).

    ``notes``: optional melody of the recording (:class:`audiosym.io.midifile.MelodyNote` or
    ``(onset_s, offset_s, pitch)``); then the measured frames are those whose analysis window
    lies inside a note (from 50 ms after its onset) and their pitch is the note's, instead of
    pyin's. ``pitch_bandwidth_semitones``: the correction is averaged over frames within about
    this distance of each pitch (a per-register correction); None: one average over all pitches.
    ``vector``: keep this timbre vector (e.g. a named timbre's) and measure only its correction.
    ``correct=False`` keeps only the timbre vector (zero corrections). Raises ParameterError
    when the recording has fewer than ``MIN_FRAMES`` usable frames.
    """
    cfg = preset.features
    y16 = resample(np.asarray(y, dtype=np.float32), orig_sample_rate=int(sample_rate),
                   target_sample_rate=cfg.sample_rate)
    logmag = features(y16, cfg)
    c = preset.context_frames
    lo, hi = preset.midi_range
    if len(logmag) < max(c, MIN_FRAMES):
        where = f" ({source})" if source else ""
        raise ParameterError(
            f"reference recording{where} is {len(y) / sample_rate:.3f} s long, shorter than the "
            f"{MIN_FRAMES * cfg.hop_length / cfg.sample_rate:.2f} s of steady notes needed to measure a timbre; "
            "use a longer recording of single sustained notes"
        )
    if notes is None:
        idx, midi = _steady_frames(y16, logmag, cfg, lo, hi)
    else:
        idx, midi = _note_frames(notes, logmag, cfg)
    idx_ok = idx >= c - 1
    idx, midi = idx[idx_ok], midi[idx_ok]
    where = f" ({source})" if source else ""
    if len(idx) < MIN_FRAMES:
        raise ParameterError(
            f"reference recording{where} has {len(idx)} steady pitched frames, fewer than {MIN_FRAMES} "
            f"({MIN_FRAMES * cfg.hop_length / cfg.sample_rate:.2f} s); use a longer recording of single "
            "sustained notes (a melody, not chords or drums)"
        )
    enc = preset.encode(logmag[None])
    rows = idx - (c - 1)  # encoder output t' ends at feature frame t' + c - 1
    if vector is None:
        vector = np.asarray(enc[preset.family.timbre_latent])[0][rows].mean(axis=0)
    vector = np.asarray(vector, dtype=np.float32)
    if notes is None:
        # pyin's pitch in the octave the preset's encoder reports: an organ's 16' stop makes pyin
        # hear the sub-octave, while the preset (calibrated on MIDI labels) calls it the played
        # note. The encoder is noisier: one decision per note (run of steady frames), and only
        # when the encoder insists (V3's encoder, confined to two octaves, would add errors).
        enc_midi = np.asarray(preset.input_midi(enc), dtype=np.float64)[0]
        midi = midi + 12.0 * _octave_per_run(idx, midi, enc_midi[rows])
    n_bins = cfg.n_bins
    offsets = np.arange(-(n_bins - 1), n_bins, dtype=np.float64)  # bins relative to the pitch
    pitch = np.clip(midi, lo, hi)
    if not preset.continuous_pitch:  # discrete pitch (a codebook): the pitch of the note played
        pitch = np.round(pitch)
    grid = np.arange(np.floor(pitch.min()), np.ceil(pitch.max()) + 1.0)  # semitone rows of the table
    relative = np.zeros((len(grid), len(offsets)))
    absolute = np.zeros(n_bins)
    if correct:
        decoded = _decode_at(preset, pitch, vector)
        residual = _normalise(logmag[idx].astype(np.float64)) - _normalise(decoded.astype(np.float64))
        pitch_bins = cfg.midi_to_bin(pitch)
        placed = np.stack([np.interp(offsets + pb, np.arange(n_bins), r, left=np.nan, right=np.nan)
                           for r, pb in zip(residual, pitch_bins)])  # [k, 2 n_bins - 1]
        seen = np.isfinite(placed)
        filled = np.where(seen, placed, 0.0)
        for g, centre in enumerate(grid):
            if pitch_bandwidth_semitones is None:
                w = np.ones(len(pitch))
            else:
                w = np.exp(-0.5 * ((pitch - centre) / pitch_bandwidth_semitones) ** 2)
            num = (w[:, None] * filled).sum(0)
            den = (w[:, None] * seen).sum(0)
            relative[g] = np.where(den > 1e-3 * w.sum(), num / np.maximum(den, 1e-12), 0.0)
        own = np.stack([np.interp(np.arange(n_bins) - pb, offsets, pitch_row(relative, grid, m))
                        for pb, m in zip(pitch_bins, pitch)])
        absolute = _smooth((residual - own).mean(axis=0), ABS_SMOOTH_SEMITONES * cfg.bins_per_semitone)
        relative = np.clip(relative, -MAX_CORRECTION, MAX_CORRECTION)
        absolute = np.clip(absolute, -MAX_CORRECTION, MAX_CORRECTION)
    if notes is None:  # the notes pyin heard, for the envelope
        notes = recording_notes(y16, cfg.sample_rate, idx, midi, hop_length=cfg.hop_length, n_fft=cfg.n_fft)
    return TimbreReference(
        name=name, vector=vector, pitch_grid=grid, relative=relative.astype(np.float32),
        absolute=absolute.astype(np.float32),
        frames=int(len(idx)), midi_range=(float(midi.min()), float(midi.max())), source=source,
        subharmonic=subharmonic_ratio(logmag[idx], midi, cfg),
        envelope=recording_envelope(y16, cfg.sample_rate, notes),
        band=band_from_notes(np.asarray(y, dtype=np.float32), int(sample_rate), notes, source=source),
    )


BAND_MIN_NOTE_S = 0.1  # shorter notes do not enter a recording's band profile


def band_from_notes(y: np.ndarray, sample_rate: int, notes, *, source: str = "") -> BandProfile | None:
    """The band profile (:func:`audiosym.timbre.band.measure_band`) of a recording ``y`` at its
    own ``sample_rate`` from its ``notes`` (``MelodyNote`` or ``(onset_s, offset_s, pitch)``):
    the longest note of each semitone, attack included. None under ``MIN_RATE`` (32 kHz: the
    recording does not hold the band) or without a note of ``BAND_MIN_NOTE_S``."""
    if sample_rate < MIN_RATE:
        return None
    longest: dict[int, tuple[float, np.ndarray]] = {}
    for note in notes:
        onset, offset, pitch = note_span(note)
        a, b = max(int(onset * sample_rate), 0), min(int(offset * sample_rate), len(y))
        key = int(round(pitch))
        if (b - a) / sample_rate >= BAND_MIN_NOTE_S and (key not in longest or b - a > len(longest[key][1])):
            longest[key] = (float(key), y[a:b])
    return measure_band(list(longest.values()), sample_rate, source=source) if longest else None


def _decode_at(preset: CalibratedModel, midi: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``[k, n_bins]`` decoded log-magnitude at pitches ``midi [k]`` (clipped to the preset's
    range; a codebook preset rounds to its atoms) with timbre ``vector [D]``."""
    lo, hi = preset.midi_range
    pitch = np.clip(np.asarray(midi, dtype=np.float64), lo, hi)
    latent = preset.midi_to_latent(pitch).astype(np.float32)[:, None, :]
    v = np.repeat(vector[None, None, :], len(pitch), axis=0).astype(np.float32)
    out = preset.decode(**{preset.family.pitch_latent: latent, preset.family.timbre_latent: v})
    return np.asarray(out, dtype=np.float64)[:, -1, :]


def _octave_per_run(idx: np.ndarray, midi: np.ndarray, enc_midi: np.ndarray) -> np.ndarray:
    """Octaves to add to ``midi [k]``: per run of consecutive frames (a held note: no gap, pitch
    steps under a semitone), the encoder's octave when it is the same on ``OCTAVE_AGREEMENT`` of
    the run's frames and within a semitone of pyin's pitch class; else 0 (pyin stands)."""
    out = np.zeros(len(idx))
    start = 0
    for i in range(1, len(idx) + 1):
        if i == len(idx) or idx[i] != idx[i - 1] + 1 or abs(midi[i] - midi[i - 1]) > 1.0:
            diff = enc_midi[start:i] - midi[start:i]
            k = np.round(diff / 12.0)
            if np.isfinite(diff).any():
                best = float(np.round(np.nanmedian(diff) / 12.0))
                agree = np.mean(k == best)  # NaN counts as disagreement
                close = np.nanmedian(np.abs(diff - 12.0 * best)) <= 1.0
                if best != 0 and agree >= OCTAVE_AGREEMENT and close:
                    out[start:i] = best
            start = i
    return out


def _smooth(x: np.ndarray, width_bins: float) -> np.ndarray:
    """Moving average over ``width_bins`` (edges use the available part)."""
    w = max(int(round(width_bins)), 1)
    kernel = np.ones(2 * w + 1)
    num = np.convolve(x, kernel, mode="same")
    den = np.convolve(np.ones_like(x), kernel, mode="same")
    return num / den


def reference_from_file(preset: CalibratedModel, path: str | os.PathLike, *, name: str | None = None,
                        correct: bool = True, notes=None) -> TimbreReference:
    """:func:`reference_from_audio` of an audio file (any format/rate audiosym reads; mono downmix);
    ``notes``: the recording's melody, if known (then no pyin)."""
    y, info = read_audio(path, max_seconds=600.0)
    return reference_from_audio(preset, y, sample_rate=info.sample_rate, name=name or reference_name(path),
                                source=str(path), correct=correct, notes=notes)


def measure_reference(preset: CalibratedModel, path: str | os.PathLike, *, name: str | None = None,
                      notes: Sequence[Any] | None = None) -> TimbreReference:
    """The timbre measured from the recording at ``path`` (named ``name``, default ``ref:<file
    stem>``); ``notes``: the recording's melody, if known (e.g. a ``--timbre-from-midi`` file's:
    its pitch then comes from the notes, not pyin). What ``--timbre-from`` measures in ``audiosym
    resynth`` and ``audiosym live`` (they add it with ``preset.with_references``); a recording
    that cannot be measured is a ParameterError naming it."""
    try:
        return reference_from_file(preset, path, name=name, notes=notes)
    except AudiosymError as exc:
        raise ParameterError(f"timbre_from={path}: {exc}") from None
