"""V3 training data: the notes of a run (:func:`note_spec`) and batches of fragments drawn from
them (:class:`FragmentSampler`).

A sample is a sequence of ``L`` fragments (one note each) played by one instrument; a fragment is
``C`` consecutive frames from the note's sustained part (frames >= ``sustain_start_frame``; the
first 8 frames of a 2048-sample window still hold the silence before the onset). Each sample gets
a smooth random loudness envelope. A batch holds one sample per training instrument
(``samples_per_batch=0``) or that many random ones.
"""

from __future__ import annotations

import numpy as np
import torch

from audiosym.data.notes import NoteSetSpec
from audiosym.data.recording_set import TrainingNotes
from audiosym.errors import ParameterError
from train.v3.config import Config


def note_spec(cfg: Config, soundfont: str, programs: tuple[int, ...]) -> NoteSetSpec:
    return NoteSetSpec(
        soundfont=soundfont, programs=tuple(int(p) for p in programs), velocities=tuple(cfg.velocities),
        note_seconds=cfg.note_seconds, pitch_limits=(int(cfg.pitch_limits[0]), int(cfg.pitch_limits[1])),
        features=cfg.features,
    )


class FragmentSampler:
    """Draws batches ``frames [B, L, C, F]`` (+ ``pitch [B, L]``, ``program [B]`` for logging)."""

    def __init__(self, table, cfg: Config) -> None:
        self.cfg = cfg
        self.frames = table.frames
        self.programs = [int(p) for p in cfg.train_programs if np.any(table.program == p)]
        if not self.programs:
            raise ParameterError(f"no training notes rendered for programs {cfg.train_programs}")
        # rows[i][pitch] -> row indices (one per velocity) of instrument i
        self.rows: list[dict[int, np.ndarray]] = []
        for p in self.programs:
            m = np.flatnonzero(table.program == p)
            self.rows.append({int(k): m[table.pitch[m] == k] for k in np.unique(table.pitch[m])})
        n_frames = self.frames.shape[1]
        self.t_lo = cfg.sustain_start_frame
        self.t_hi = n_frames - cfg.context_frames  # inclusive start of the last context window
        if self.t_hi < self.t_lo:
            raise ParameterError(
                f"note_seconds={cfg.note_seconds} gives {n_frames} frames: too few for sustain_start_frame="
                f"{cfg.sustain_start_frame} and context_frames={cfg.context_frames}"
            )

    def _pitches(self, rng: np.random.Generator, avail: list[int]) -> list[int]:
        L = self.cfg.fragments_per_sample
        order = self.cfg.fragment_order
        if order == "mixed":
            order = "random" if rng.random() < 0.5 else "chromatic"
        if order == "chromatic":  # ascending chromatic cycle from a random start (the paper's order)
            start = int(rng.integers(len(avail)))
            return [avail[(start + i) % len(avail)] for i in range(L)]
        out: list[int] = []
        while len(out) < L:  # every pitch once (shuffled), then again, so coverage is even
            out.extend(int(x) for x in rng.permutation(avail))
        return out[:L]

    def envelope(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """A smooth random log-gain (natural log units) over ``n`` frames."""
        if self.cfg.loudness_db <= 0:
            return np.zeros(n)
        k = 9
        noise = rng.normal(size=n + k - 1)
        smooth = np.convolve(noise, np.hanning(k + 2)[1:-1], mode="valid")
        smooth = smooth / (smooth.std() + 1e-9)
        return smooth * self.cfg.loudness_db * np.log(10) / 20

    def eq(self, rng: np.random.Generator, n_samples: int, n_bins: int) -> np.ndarray:
        """Random smooth log-gain curves over frequency ``[n_samples, n_bins]``, one per sample.

        A smooth spectral envelope is what separates instruments in a source-filter view, so
        an EQ shared by all fragments of a sample makes a new "instrument" each time: content
        must not depend on it, style may.
        """
        if self.cfg.eq_db <= 0:
            return np.zeros((n_samples, n_bins))
        k = np.arange(1, self.cfg.eq_components + 1)
        f = np.arange(n_bins) / n_bins
        amp = rng.normal(size=(n_samples, len(k))) / np.sqrt(len(k))
        phase = rng.uniform(0, 2 * np.pi, size=(n_samples, len(k)))
        curve = (amp[:, :, None] * np.cos(np.pi * k[None, :, None] * f[None, None, :] + phase[:, :, None])).sum(1)
        return curve * self.cfg.eq_db * np.log(10) / 20

    def instruments(self, rng: np.random.Generator) -> np.ndarray:
        """The instrument of each sample of a batch: every one once, or ``samples_per_batch`` at random."""
        if self.cfg.samples_per_batch:
            return rng.integers(len(self.programs), size=self.cfg.samples_per_batch)
        return np.arange(len(self.programs))

    def select(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(inst [B], rows [B, L], pitch [B, L], t0 [B, L])``: which notes, and the first frame read."""
        cfg = self.cfg
        inst = self.instruments(rng)
        B, L = len(inst), cfg.fragments_per_sample
        rows = np.empty((B, L), np.int64)
        pitch = np.empty((B, L), np.int64)
        for b, i in enumerate(inst):
            avail = sorted(self.rows[i])
            for j, m in enumerate(self._pitches(rng, avail)):
                cand = self.rows[i][m]
                rows[b, j] = cand[rng.integers(len(cand))]
                pitch[b, j] = m
        t0 = rng.integers(self.t_lo, self.t_hi + 1, size=(B, L))
        return inst, rows, pitch, t0

    def __call__(self, rng: np.random.Generator, step: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        inst, rows, pitch, t0 = self.select(rng)
        B, L, C = rows.shape[0], rows.shape[1], cfg.context_frames
        x = self.frames[rows[..., None], t0[..., None] + np.arange(C)].astype(np.float64)  # [B, L, C, F]
        gain = np.stack([self.envelope(rng, L * C).reshape(L, C) for _ in range(B)])[..., None]
        gain = gain + self.eq(rng, B, x.shape[-1])[:, None, None, :]
        eps = cfg.features.eps
        # The gain acts on magnitudes, not on log values: the eps floor stays where it is.
        x = np.log(np.maximum(np.exp(x) - eps, 0.0) * np.exp(gain) + eps)
        return {
            "frames": torch.from_numpy(x.astype(np.float32)),
            "pitch": torch.from_numpy(pitch),
            "program": torch.as_tensor([self.programs[i] for i in inst]),
        }


class RecordingFragmentSampler(FragmentSampler):
    """Samples from a folder of recordings: a sample is ``fragments_per_sample`` consecutive notes
    of one timbre folder (files in order, a random start), each read at a random sustained frame;
    ``pitch`` is -1 (unknown: recordings carry no labels). Augmentation as FragmentSampler."""

    def __init__(self, notes: TrainingNotes, cfg: Config) -> None:
        self.cfg = cfg
        self.frames, self.length = notes.frames, notes.length.astype(np.int64)
        self.programs = [int(t) for t in np.unique(notes.timbre)]  # timbre indices stand for instruments
        self.order = [np.flatnonzero(notes.timbre == t) for t in self.programs]  # file order, then note order
        self.t_lo = cfg.sustain_start_frame
        if int(self.length.max(initial=0)) - cfg.context_frames < self.t_lo:
            raise ParameterError(f"recorded notes are too short for sustain_start_frame={cfg.sustain_start_frame} "
                                 f"and context_frames={cfg.context_frames}")

    def select(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        cfg = self.cfg
        inst = self.instruments(rng)
        L = cfg.fragments_per_sample
        rows = np.empty((len(inst), L), np.int64)
        for b, i in enumerate(inst):
            order = self.order[i]
            start = int(rng.integers(len(order)))
            rows[b] = order[(start + np.arange(L)) % len(order)]
        hi = np.maximum(self.length[rows] - cfg.context_frames, self.t_lo)
        t0 = rng.integers(self.t_lo, hi + 1)
        return inst, rows, np.full(rows.shape, -1, np.int64), t0
