"""What every family's calibration shares: its notes, their encoder outputs, the named timbres.

Calibration describes a trained model for the engine, on labelled renders (MIDI pitch, GM
program) of its TRAINING soundfont; the labels never touch training. Each family fits its own
pitch control (:meth:`audiosym.families.base.Family.calibrate`); the named timbres are the same
for all: the mean timbre latent of each instrument's sustained frames, named by
:func:`audiosym.data.plans.timbre_name`. Torch-free: it runs on any LatentModel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from audiosym.data.notes import NoteSetSpec, NoteTable, load_notes
from audiosym.data.plans import timbre_name
from audiosym.data.soundfonts import default_train_soundfont, find_soundfont
from audiosym.dsp.features import FeatureConfig
from audiosym.errors import ParameterError
from audiosym.families.base import CalibrationSetup, LatentModel, RunSetting, encode_sustained

if TYPE_CHECKING:
    from audiosym.data.recording_set import Recordings

BATCH_NOTES = 256  # notes per encoder call (bounds memory)


def setup_from(setting: RunSetting, *, programs: tuple[int, ...], extra_programs: tuple[int, ...] = (),
               pitch_limits: tuple[int, int], skip_frames: int) -> CalibrationSetup:
    """A :class:`CalibrationSetup` with the family's ``programs``, ``pitch_limits`` and
    ``skip_frames``, and the soundfont (the run's training soundfont, else the default one),
    velocities (default 100) and note length (default 0.5 s) the run recorded."""
    sf = setting("train_soundfont", None) or setting("soundfont", None) or default_train_soundfont()
    return CalibrationSetup(
        soundfont=find_soundfont(sf),
        programs=tuple(int(p) for p in programs),
        extra_programs=tuple(int(p) for p in extra_programs),
        pitch_limits=(int(pitch_limits[0]), int(pitch_limits[1])),
        velocities=tuple(int(v) for v in setting("velocities", (100,))),
        note_seconds=float(setting("note_seconds", 0.5)),
        skip_frames=int(skip_frames),
        audio=str(setting("audio", "") or setting("train_audio", "") or ""),
        holdout=float(setting("holdout", 0.0)),
        seed=int(setting("seed", 0)),
    )


def note_table(setup: CalibrationSetup, programs: tuple[int, ...], features: FeatureConfig, *,
               progress: bool = False) -> NoteTable:
    """The single notes of ``programs`` (rendered, or from the note cache: the same
    :class:`NoteSetSpec` as training, so they usually are cached)."""
    spec = NoteSetSpec(
        soundfont=setup.soundfont, programs=programs, velocities=setup.velocities,
        note_seconds=setup.note_seconds, pitch_limits=setup.pitch_limits, features=features,
    )
    return load_notes(spec, progress=progress)


def encode_notes(model: LatentModel, table: NoteTable, skip_frames: int) -> dict[str, np.ndarray]:
    """Encoder outputs of each note's sustained frames: ``{name: [N, S, ...]}``."""
    return encode_sustained(model, table.frames, skip_frames=skip_frames, batch_notes=BATCH_NOTES)


def named_timbres(program: np.ndarray, vectors: np.ndarray, trained: set[int],
                  names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """``metadata["timbres"]``: per GM program of ``program [N]`` (each note's), the mean of its
    notes' timbre latents ``vectors [N, S, D]``; ``trained``: the programs the model trained on.
    ``names``: recorded timbres: ``program`` indexes these names (and becomes the timbre's program
    change number)."""
    out = {}
    for prog in sorted(set(int(p) for p in program)):
        v = vectors[program == prog].reshape(-1, vectors.shape[-1])
        out[names[prog] if names else timbre_name(prog)] = {
            "program": prog, "vector": [round(float(x), 6) for x in v.mean(0)],
            "trained": prog in trained, "frames": int(len(v)),
        }
    return out


@dataclass
class RecordedNotes:
    """The notes of a folder of recordings for calibration: like a NoteTable, with ``pitch`` the
    pyin MIDI pitch (float), ``program`` the timbre's index into ``names``, ``length`` the valid
    frames of each note, ``source`` what :meth:`Recordings.source` says of the folder."""

    frames: np.ndarray
    pitch: np.ndarray
    program: np.ndarray
    length: np.ndarray
    names: list[str]
    source: dict[str, Any]

    def __len__(self) -> int:
        return len(self.pitch)

    def valid(self, n_out: int, first: int) -> np.ndarray:
        """``[N, n_out]``: which sustained encoder outputs (output ``s`` is input frame ``first + s``)
        lie inside their note."""
        return (first + np.arange(n_out))[None, :] < self.length[:, None]

    def masked_median(self, z: np.ndarray, first: int) -> np.ndarray:
        """Per-note median of ``z [N, S]`` over the frames inside the note."""
        ok = self.valid(z.shape[1], first)
        return np.array([np.median(row[v]) if v.any() else np.median(row) for row, v in zip(z, ok)])


def training_files(setup: CalibrationSetup, features: FeatureConfig, *,
                   progress: bool = False) -> tuple[Recordings, int]:
    """``(recordings, held_out)``: the recordings of ``setup.audio`` (analysed, or from the
    analysis cache) the run trained on — its split by file (``setup.holdout``, ``setup.seed``)
    without the held-out files — and how many files were held out."""
    from audiosym.data.recording_set import load_recordings  # lazy: only runs trained on recordings

    recs = load_recordings(setup.audio, features, progress=progress)
    train, test = recs.split(setup.holdout, setup.seed)
    return recs.subset(train), int(test.sum())


def recorded_notes(setup: CalibrationSetup, features: FeatureConfig, *, progress: bool = False) -> RecordedNotes:
    """The notes of the run's training recordings (:func:`training_files`) that pyin gives a pitch."""
    recs, held_out = training_files(setup, features, progress=progress)
    midi = recs.notes("eval_midi").astype(np.float64)
    ok = np.isfinite(midi)
    if ok.sum() < 3:
        raise ParameterError(f"audio={setup.audio!r}: fewer than 3 notes with a pitch to calibrate on; "
                             "the recordings the run trained on must be where they were")
    return RecordedNotes(frames=recs.notes("frames")[ok].astype(np.float32), pitch=midi[ok],
                         program=recs.note_timbre()[ok], length=recs.notes("length")[ok].astype(np.int64),
                         names=list(recs.timbres), source={**recs.source(), "held_out_files": held_out})
