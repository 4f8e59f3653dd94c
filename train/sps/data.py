"""SPS training data: the notes of a run (:func:`note_spec`) and batches of note sequences
drawn from them (:class:`SequenceSampler`)."""

from __future__ import annotations

import numpy as np
import torch

from audiosym.data.notes import NoteSetSpec, NoteTable
from audiosym.data.plans import MAJOR_SCALE_UP_AND_BACK, walk_plan
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
        shifts = rng.uniform(-cfg.shift_range, cfg.shift_range, size=(max(cfg.K, 1), cfg.batch_size))
        blur = cfg.blur_bins * max(0.0, 1.0 - step / max(1, cfg.blur_steps))
        batch = {
            "x": torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
            "x_timbre": torch.from_numpy(np.ascontiguousarray(xt, dtype=np.float32)),
            "shifts": torch.from_numpy(shifts[: cfg.K].astype(np.float32)),
            "blur": torch.tensor([blur], dtype=torch.float32),
        }
        if cfg.w_lowpass > 0:  # drawn only when used: recipes without the term keep their random stream
            batch["cutoff"] = torch.from_numpy(rng.uniform(0, self.frames.shape[2], size=idx.shape).astype(np.float32))
        return batch
