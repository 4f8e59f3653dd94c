"""A folder of a musician's recordings, analysed: every usable note of every timbre, the files
skipped (and why), a summary, and a split by file (:mod:`audiosym.data.recordings` does the work
per file and caches it)."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from audiosym.data.recordings import (
    CHORD_FILE_FRACTION,
    CHORD_REASON,
    FileNotes,
    cached_analysis,
    file_warnings,
    scan_folder,
)
from audiosym.data.segment import SegmentSettings
from audiosym.dsp.features import FeatureConfig
from audiosym.dsp.pitch import midi_name
from audiosym.errors import ParameterError
from audiosym.io.audio import AudioInputError

MIN_NOTES = 40  # a timbre with fewer usable notes is left out of training (named)


@dataclass
class TrainingNotes:
    """What training sees of the recordings: frames and where each note came from; no pitch.
    ``frames [N, T, F]`` float16, ``length [N]`` valid frames, ``timbre [N]`` (index into
    ``timbres``), ``file [N]``, notes in recording order within each file."""

    timbres: list[str]
    frames: np.ndarray
    length: np.ndarray
    timbre: np.ndarray
    file: np.ndarray


@dataclass
class Recordings:
    """Analysed recordings (see the module docstring); ``files[i]`` is of timbre
    ``timbres[file_timbre[i]]``."""

    root: str
    timbres: list[str]
    files: list[FileNotes]
    file_timbre: np.ndarray
    skipped: list[str]
    warnings: list[str]
    analysed: int = 0  # files analysed now (the rest came from the cache)

    def notes(self, what: str) -> np.ndarray:
        """Array ``what`` (a FileNotes field) of every note, files in order."""
        parts = [getattr(f, what) for f in self.files]
        return np.concatenate(parts) if parts else np.zeros(0)

    def note_timbre(self) -> np.ndarray:
        return np.concatenate([np.full(len(f), t) for f, t in zip(self.files, self.file_timbre)]).astype(np.int64)

    def note_file(self) -> np.ndarray:
        return np.concatenate([np.full(len(f), i) for i, f in enumerate(self.files)]).astype(np.int64)

    def training_view(self) -> TrainingNotes:
        return TrainingNotes(timbres=list(self.timbres), frames=self.notes("frames"), length=self.notes("length"),
                             timbre=self.note_timbre(), file=self.note_file())

    def subset(self, keep: np.ndarray) -> Recordings:
        """The same recordings with only the files where ``keep [n_files]`` is true."""
        idx = np.flatnonzero(keep)
        return Recordings(self.root, self.timbres, [self.files[i] for i in idx], self.file_timbre[idx],
                          self.skipped, self.warnings, self.analysed)

    def split(self, holdout: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(train, test)`` boolean masks over files: per timbre, ``holdout`` of its files
        (rounded, at least one when it has two or more; never a note-level split), drawn with
        ``seed`` from the files in content order (renaming a file changes nothing)."""
        if not 0.0 <= holdout < 1.0:
            raise ParameterError(f"holdout={holdout} must be in [0, 1): the fraction of each timbre's files "
                                 "kept for evaluation")
        test = np.zeros(len(self.files), bool)
        rng = np.random.default_rng(seed)
        for t in range(len(self.timbres)):
            idx = sorted(np.flatnonzero(self.file_timbre == t), key=lambda i: self.files[i].sha)
            k = int(round(holdout * len(idx)))
            if holdout > 0 and len(idx) >= 2:
                k = min(max(k, 1), len(idx) - 1)
            else:
                k = 0
            test[rng.permutation(idx)[:k]] = True
        return ~test, test

    def source(self) -> dict:
        """What the notes came from (for a preset): per timbre files, minutes, notes; a sha256 of
        the list of (timbre, file content sha256)."""
        per: dict[str, dict] = {}
        for f, t in zip(self.files, self.file_timbre):
            d = per.setdefault(self.timbres[t], {"files": 0, "minutes": 0.0, "notes": 0})
            d["files"] += 1
            d["minutes"] = round(d["minutes"] + f.seconds / 60, 2)
            d["notes"] += len(f)
        listing = "\n".join(sorted(f"{self.timbres[t]}\t{f.sha}" for f, t in zip(self.files, self.file_timbre)))
        return {"folder": Path(self.root).name, "timbres": per, "files_sha256": hashlib.sha256(listing.encode()).hexdigest()}

    def summary_lines(self) -> list[str]:
        lines = [f"recordings in {self.root}: {len(self.files)} file(s) usable, {len(self.skipped)} skipped, "
                 f"{self.analysed} analysed now (the rest from the cache)"]
        for t, name in enumerate(self.timbres):
            fs = [f for f, ft in zip(self.files, self.file_timbre) if ft == t]
            f0 = np.concatenate([f.f0_midi for f in fs]) if fs else np.zeros(0)
            f0 = f0[np.isfinite(f0)]
            rej = sum(sum(f.rejected.values()) for f in fs)
            rng = (f"{midi_name(int(round(np.percentile(f0, 2))))}..{midi_name(int(round(np.percentile(f0, 98))))}"
                   if len(f0) else "-")
            lines.append(f"  {name}: {len(fs)} file(s), {sum(f.seconds for f in fs) / 60:.1f} min, "
                         f"{sum(len(f) for f in fs)} notes (+{rej} rejected), pitch range found {rng}")
        return lines


def load_recordings(root: str | Path, cfg: FeatureConfig, *, settings: SegmentSettings | None = None,
                    progress: bool = True, min_notes: int = 0) -> Recordings:
    """Scan ``root``, analyse (or load from the cache) every file; unusable files are skipped and
    named in ``skipped``. ``min_notes``: timbres with fewer usable notes are left out (named in
    ``warnings``); an error when none is left."""
    settings = settings or SegmentSettings()
    timbres, notes = scan_folder(root)
    names = sorted(timbres)
    files, file_timbre, skipped, warns, analysed = [], [], [], list(notes), 0
    jobs = [(t, p) for t, name in enumerate(names) for p in timbres[name]]
    for t, path in tqdm(jobs, desc="analyse recordings", unit="file", disable=not progress, file=sys.stderr):
        try:
            fn, cached = cached_analysis(path, cfg, settings)
        except AudioInputError as exc:
            skipped.append(f"{exc}; skipped")
            continue
        except OSError as exc:
            skipped.append(f"{path}: cannot be read ({exc.strerror or exc}); skipped")
            continue
        analysed += not cached
        warns.extend(file_warnings(fn, settings))
        n_chord = fn.rejected.get(CHORD_REASON, 0)
        if n_chord > CHORD_FILE_FRACTION * (n_chord + len(fn)):
            skipped.append(f"{path}: polyphonic ({n_chord} of {n_chord + len(fn)} notes are chords); skipped")
            continue
        if len(fn) == 0:
            why = ", ".join(f"{v} {k}" for k, v in fn.rejected.items()) or "no note found above the noise floor"
            skipped.append(f"{path}: no usable note ({why}); skipped")
            continue
        files.append(fn)
        file_timbre.append(t)
    recs = Recordings(str(root), names, files, np.asarray(file_timbre, np.int64), skipped, warns, analysed)
    counts = {name: int(sum(len(f) for f, ft in zip(files, file_timbre) if ft == t)) for t, name in enumerate(names)}
    few = {n: c for n, c in counts.items() if c < min_notes}
    if min_notes and len(few) == len(names):
        raise ParameterError(
            f"audio={str(root)!r}: too few usable notes to train: each timbre needs {min_notes}, found "
            + ", ".join(f"{n} {c}" for n, c in counts.items())
            + (f" ({len(skipped)} file(s) skipped: {skipped[0]})" if skipped else "")
            + "; add recordings (single notes, scales or melodies, one note at a time)")
    if few:
        warns.append("timbre(s) with too few usable notes left out (each needs "
                     f"{min_notes}): " + ", ".join(f"{n} ({c})" for n, c in few.items()))
        keep = np.array([names[t] not in few for t in recs.file_timbre], bool)
        recs = recs.subset(keep)
        kept = [n for n in names if n not in few]
        remap = {names.index(n): i for i, n in enumerate(kept)}
        recs.timbres, recs.file_timbre = kept, np.array([remap[t] for t in recs.file_timbre], np.int64)
    return recs
