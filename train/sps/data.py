"""SPS training data: the notes of a run (:func:`note_spec`) and batches of note sequences
drawn from them (:class:`SequenceSampler`)."""

from __future__ import annotations

import numpy as np
import torch

from audiosym.data.notes import NoteSetSpec, NoteTable
from audiosym.data.plans import MAJOR_SCALE_UP_AND_BACK, walk_plan
from audiosym.data.recording_set import TrainingNotes
from audiosym.data.soundfonts import default_train_soundfont, find_soundfont
from audiosym.errors import ParameterError
from train.sps.config import Config

#: Two octaves of major scale, ascending (15 notes over 24 semitones).
SCALE_TWO_OCTAVES = (0, 2, 4, 5, 7, 9, 11, 12, 14, 16, 17, 19, 21, 23, 24)


def note_spec(cfg: Config) -> NoteSetSpec:
    return NoteSetSpec(
        soundfont=find_soundfont(cfg.soundfont or default_train_soundfont()),
        programs=tuple(cfg.programs), velocities=tuple(cfg.velocities), note_seconds=cfg.note_seconds,
        features=cfg.features,
    )


class SequenceSampler:
    """Draws batches of note sequences from a NoteTable (numpy RNG from the trainer: reproducible)."""

    def __init__(self, table: NoteTable, cfg: Config) -> None:
        self.cfg, self.frames, self.program = cfg, table.frames, table.program
        self.rows: dict[int, dict[int, int]] = {}
        for i, (p, m) in enumerate(zip(table.program, table.pitch)):
            self.rows.setdefault(int(p), {})[int(m)] = i
        self.rows_list = {p: list(rows.values()) for p, rows in self.rows.items()}
        self.scales: dict[int, list[np.ndarray]] = {}
        for p, rows in self.rows.items():
            lo, hi = min(rows), max(rows)
            seqs = []
            for pattern in self._patterns(hi - lo):
                for start in range(lo, hi - max(pattern) + 1):
                    if all(start + d in rows for d in pattern):
                        seqs.append(np.array([rows[start + d] for d in pattern]))
            if seqs:
                self.scales[p] = seqs
        self.programs = sorted(p for p in self.rows if p in self.scales or cfg.plan == "walk")
        if not self.programs:
            raise ParameterError("no instrument of the note table can hold one sequence of the plan; "
                                 "add programs or use the config plan='walk'")
        self.n_frames = table.frames.shape[1]
        if self.n_frames <= cfg.skip_frames:
            raise ParameterError(f"notes have {self.n_frames} frames, not more than skip_frames={cfg.skip_frames}; "
                                 "raise note_seconds")

    def _patterns(self, span: int) -> list[tuple[int, ...]]:
        if self.cfg.plan == "scale":
            pats = [MAJOR_SCALE_UP_AND_BACK]
        elif self.cfg.plan == "scale2oct":
            pats = [SCALE_TWO_OCTAVES] if span >= 24 else [MAJOR_SCALE_UP_AND_BACK]
        else:  # walk / mixed: scales are also used by mixed
            pats = [SCALE_TWO_OCTAVES] if span >= 24 else [MAJOR_SCALE_UP_AND_BACK]
        return [p[: self.cfg.seq_len] if len(p) >= self.cfg.seq_len else p for p in pats]

    def _walk(self, rng: np.random.Generator, p: int) -> np.ndarray:
        rows = self.rows[p]
        lo, hi = min(rows), max(rows)
        for _ in range(20):
            seq = walk_plan(rng, lo, hi, length=self.cfg.seq_len, max_step=min(self.cfg.walk_max_step, hi - lo))
            if all(m in rows for m in seq):
                return np.array([rows[m] for m in seq])
        return np.array([rows[lo]] * self.cfg.seq_len)

    def __call__(self, rng: np.random.Generator, step: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        c = cfg.context_frames
        seqs = []
        for _ in range(cfg.batch_size):
            p = self.programs[int(rng.integers(len(self.programs)))]
            use_walk = cfg.plan == "walk" or (cfg.plan == "mixed" and rng.random() < 0.5) or p not in self.scales
            seqs.append(self._walk(rng, p) if use_walk else self.scales[p][int(rng.integers(len(self.scales[p])))])
        length = min(len(s) for s in seqs)
        idx = np.stack([s[:length] for s in seqs])  # [B, L] rows
        t = rng.integers(cfg.skip_frames, self.n_frames, size=cfg.batch_size)  # one frame index per sequence
        span = np.arange(-c + 1, 1)
        x = self.frames[idx[:, :, None], (t[:, None] + span[None, :])[:, None, :]]  # [B, L, C, F]
        other = []
        for row in idx[:, 0]:
            prog_rows = self.rows_list[int(self.program[row])]
            other.append(prog_rows[int(rng.integers(len(prog_rows)))])
        t2 = rng.integers(cfg.skip_frames, self.n_frames, size=cfg.batch_size)
        xt = self.frames[np.array(other)[:, None], t2[:, None] + span[None, :]]  # [B, C, F]
        return symmetry_batch(cfg, rng, step, x, xt, idx.shape)


def symmetry_batch(cfg: Config, rng: np.random.Generator, step: int, x: np.ndarray, xt: np.ndarray,
                   shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """The batch dict from note frames ``x [B, L, C, F]`` and timbre frames ``xt [B, C, F]``: the
    symmetry shifts, the blur of this step and (when used) the low-pass cutoffs."""
    shifts = rng.uniform(-cfg.shift_range, cfg.shift_range, size=(max(cfg.K, 1), cfg.batch_size))
    blur = cfg.blur_bins * max(0.0, 1.0 - step / max(1, cfg.blur_steps))
    batch = {
        "x": torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
        "x_timbre": torch.from_numpy(np.ascontiguousarray(xt, dtype=np.float32)),
        "shifts": torch.from_numpy(shifts[: cfg.K].astype(np.float32)),
        "blur": torch.tensor([blur], dtype=torch.float32),
    }
    if cfg.w_lowpass > 0:  # drawn only when used: recipes without the term keep their random stream
        batch["cutoff"] = torch.from_numpy(rng.uniform(0, x.shape[-1], size=shape).astype(np.float32))
    return batch


class RecordingSampler:
    """Batches of consecutive notes of one recording (real melodic intervals, no pitch labels):
    each sequence is ``seq_len`` notes in a row from one file, each read at a random sustained
    frame; the timbre frames come from another random note of the same timbre folder."""

    def __init__(self, notes: TrainingNotes, cfg: Config) -> None:
        self.cfg, self.notes = cfg, notes
        self.first = max(cfg.skip_frames, cfg.context_frames - 1)
        self.windows: list[np.ndarray] = []
        self.by_timbre = {t: np.flatnonzero(notes.timbre == t) for t in np.unique(notes.timbre)}
        lengths = [int((notes.file == f).sum()) for f in np.unique(notes.file)]
        self.L = min(cfg.seq_len, max(lengths)) if lengths else 0
        if self.L < 2:
            raise ParameterError("the recordings hold no file with 2 usable notes in a row; SPS learns from "
                                 "consecutive notes: add melodies or scales")
        for f in np.unique(notes.file):
            rows = np.flatnonzero(notes.file == f)
            for s in range(0, len(rows) - self.L + 1):
                self.windows.append(rows[s:s + self.L])

    def frames_at(self, rng: np.random.Generator, rows: np.ndarray) -> np.ndarray:
        C = self.cfg.context_frames
        t = rng.integers(self.first, np.maximum(self.notes.length[rows], self.first + 1))
        span = t[..., None] + np.arange(-C + 1, 1)
        return self.notes.frames[rows[..., None], span].astype(np.float32)

    def __call__(self, rng: np.random.Generator, step: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        idx = np.stack([self.windows[int(i)] for i in rng.integers(len(self.windows), size=cfg.batch_size)])
        x = self.frames_at(rng, idx)  # [B, L, C, F]
        if cfg.timbre_from == "repeat":
            other = idx[:, 0]
        else:
            other = np.array([rng.choice(self.by_timbre[int(self.notes.timbre[r])]) for r in idx[:, 0]])
        return symmetry_batch(cfg, rng, step, x, self.frames_at(rng, other), idx.shape)
