"""Match data of a preset trained on recordings, measured on the recordings themselves.

A preset trained with ``audiosym train sps|v3 --audio DIR`` names one timbre per folder of DIR;
its timbre vector is the mean over that folder's notes. What :mod:`audiosym.timbre.match`
measures for a GM timbre on its soundfont is measured here on the folder's own *training* files
(the held-out files stay unseen), with the notes the analysis cut
(:mod:`audiosym.data.recordings`) and pyin's pitch of each note:

- the spectral **match correction** of the named vector, per register
  (:func:`audiosym.timbre.reference.reference_from_audio` with the notes given);
- the **note envelope**: each note from its onset to the next, in dB below its peak, averaged
  per register and continued past the note's end at the rate it was falling
  (:func:`audiosym.timbre.envelope.recording_envelope`) — a melody's notes are shorter than
  the two seconds a rendered held note gives, so this is an estimate past them;
- the **band profile** above the model's 8 kHz band (:func:`audiosym.timbre.reference.band_from_notes`),
  from the files recorded at 32 kHz or more only (a 22.05 kHz file does not hold the band);
  none when no file does;
- the **sub-harmonic ratio**.

At most ``MEASURE_SECONDS`` of each timbre's audio is read (files in content order, each from
its start), so memory and time stay bounded for any folder.
"""

from __future__ import annotations

import numpy as np
import soundfile as sf
from tqdm import tqdm

from audiosym.data.recording_set import Recordings
from audiosym.data.recordings import FileNotes
from audiosym.errors import AudiosymError
from audiosym.families.base import CalibratedModel
from audiosym.io.audio import read_audio, resample
from audiosym.timbre.band import MEASURE_RATE, MIN_RATE
from audiosym.timbre.envelope import ENV_HOP_S, ENV_SECONDS, ENV_STEP_SEMITONES
from audiosym.timbre.match import NamedMatch
from audiosym.timbre.reference import SUBHARMONIC_RATIO, band_from_notes, reference_from_audio

MEASURE_SECONDS = 240.0  # audio per timbre read to measure it
GAP_S = 0.25  # silence put between two files' audio


def note_spans(fn: FileNotes, frame_s: float) -> list[tuple[float, float, float]]:
    """``(onset_s, offset_s, midi)`` of each whole note of an analysed file: a note cut into
    ``note_s`` pieces (``part`` 1, 2, ...) is joined again; its pitch is the median of its pieces'
    pyin pitches (notes pyin gives none are left out)."""
    spans: list[list] = []
    for onset, length, part, midi in zip(fn.onset_s, fn.length, fn.part, fn.eval_midi):
        end = float(onset) + float(length) * frame_s
        if part == 0 or not spans:
            spans.append([float(onset), end, [float(midi)]])
        else:
            spans[-1][1] = end
            spans[-1][2].append(float(midi))
    out = []
    for a, b, pitches in spans:
        p = np.asarray(pitches)
        if np.isfinite(p).any():
            out.append((a, b, float(np.nanmedian(p))))
    return out


def _read_start(path: str, seconds: float) -> tuple[np.ndarray, int]:
    """The first ``seconds`` of ``path`` as mono float32 at its own rate (libsndfile reads just
    that much; other formats are decoded whole, then cut)."""
    try:
        info = sf.info(path)
        data, sr = sf.read(path, frames=int(seconds * info.samplerate), dtype="float32", always_2d=True)
        return np.ascontiguousarray(data.mean(axis=1)), int(sr)
    except (RuntimeError, sf.LibsndfileError):
        y, ai = read_audio(path, allow_silent=True)
        return y[: int(seconds * ai.sample_rate)], ai.sample_rate


def timbre_audio(files: list[FileNotes], frame_s: float, *, budget_s: float = MEASURE_SECONDS):
    """``(y, sample_rate, notes, full_band)``: up to ``budget_s`` of the ``files``' audio joined
    (``GAP_S`` of silence between files) at 44.1 kHz when any file is recorded at 32 kHz or more
    (else at the lowest file rate), their notes shifted to match, and per note whether its file
    holds the band above 16 kHz."""
    rate = MEASURE_RATE if any(f.sample_rate >= MIN_RATE for f in files) else min(f.sample_rate for f in files)
    pieces, notes, full = [], [], []
    t = 0.0
    for fn in sorted(files, key=lambda f: f.sha):
        left = budget_s - t
        spans = note_spans(fn, frame_s)
        if left <= 1.0:
            break
        if not spans:
            continue
        try:
            y, sr = _read_start(fn.path, left)
        except (AudiosymError, OSError):  # moved or changed since it was analysed: measure the others
            continue
        y = resample(y, orig_sample_rate=sr, target_sample_rate=rate) if sr != rate else y
        dur = len(y) / rate
        for a, b, p in spans:
            if b <= dur:
                notes.append((t + a, t + b, p))
                full.append(sr >= MIN_RATE)
        pieces += [y, np.zeros(int(GAP_S * rate), np.float32)]
        t += dur + GAP_S
    y = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    return y, rate, notes, np.asarray(full, bool)


def measure_recorded(preset: CalibratedModel, recordings: Recordings, *, progress: bool = False) -> NamedMatch:
    """Match corrections, note envelopes, band profiles and sub-harmonic ratios of ``preset``'s
    named timbres that are timbre folders of ``recordings`` (see the module docstring)."""
    frame_s = preset.features.frame_seconds
    refs, envelopes, subharmonic, bands, skipped = [], {}, {}, {}, {}
    names = [n for n in recordings.timbres if n in preset.timbre_names]
    for name in tqdm(names, desc="match data from recordings", unit="timbre", leave=False, disable=not progress):
        t = recordings.timbres.index(name)
        files = [f for f, ft in zip(recordings.files, recordings.file_timbre) if ft == t]
        y, sr, notes, full = timbre_audio(files, frame_s)
        source = f"recordings {recordings.source()['folder']}/{name}: {len(files)} file(s)"
        try:
            ref = reference_from_audio(preset, y, sample_rate=sr, name=name, notes=notes,
                                       vector=preset.timbre_vector(name), source=source)
        except AudiosymError as exc:  # too few steady pitched frames
            skipped[name] = " ".join(str(exc).split())
            continue
        refs.append(ref)
        if ref.envelope is not None:
            envelopes[name] = ref.envelope
        if np.isfinite(ref.subharmonic):
            subharmonic[name] = float(ref.subharmonic)
        band = ref.band if full.all() else band_from_notes(y, sr, [n for n, f in zip(notes, full) if f], source=source)
        if band is not None and sr >= MIN_RATE:
            bands[name] = band
    info = {"recordings": recordings.source()["folder"], "timbres": [r.name for r in refs],
            "envelope_seconds": ENV_SECONDS, "envelope_hop_s": ENV_HOP_S,
            "envelope_step_semitones": ENV_STEP_SEMITONES, "measure_seconds_per_timbre": MEASURE_SECONDS,
            **({"skipped": skipped} if skipped else {})}
    info["subharmonic_timbres"] = sorted(n for n, r in subharmonic.items() if r >= SUBHARMONIC_RATIO)
    info["band_extension"] = {"timbres": sorted(bands), "measure_rate": MEASURE_RATE, "note_seconds": None}
    return NamedMatch(refs, envelopes, subharmonic, info, bands)
