"""Synthetic held-out notes for the eval tests: harmonic spectra on the feature axis, no soundfont."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from audiosym.data.notes import NoteSetSpec, NoteTable
from audiosym.dsp.features import FeatureConfig

N_FRAMES = 16  # 8 skipped (pre-onset) + 8 sustained


def harmonic_frame(midi: float, cfg: FeatureConfig, *, amps: np.ndarray | None = None) -> np.ndarray:
    """Log-magnitude ``[n_bins]`` of a harmonic tone at ``midi`` (partial n at amplitude ``amps[n-1]``)."""
    amps = 1.0 / np.arange(1, 9) if amps is None else amps
    k = np.arange(cfg.n_bins)
    mag = np.full(cfg.n_bins, 1e-4)
    for n, amp in enumerate(amps, start=1):
        mag += amp * np.exp(-0.5 * ((k - cfg.midi_to_bin(midi + 12 * np.log2(n))) / 0.6) ** 2)
    return np.log(mag)


def note_table(programs: dict[int, np.ndarray], *, cfg: FeatureConfig | None = None,
               amps=None, marker: dict[int, float] | None = None) -> NoteTable:
    """Notes ``{program: MIDI pitches}``; ``amps(program, midi)`` picks partial amplitudes;
    ``marker[program]`` is written into bin 0 (a fake model reads it)."""
    cfg = cfg or FeatureConfig()
    prog, pitch, frames = [], [], []
    for p, pitches in programs.items():
        for m in pitches:
            f = harmonic_frame(float(m), cfg, amps=amps(p, m) if amps else None)
            if marker and p in marker:
                f[0] = marker[p]
            prog.append(p)
            pitch.append(m)
            frames.append(np.repeat(f[None], N_FRAMES, axis=0))
    n = len(prog)
    spec = NoteSetSpec(soundfont="/fonts/TestFont.sf2", programs=tuple(programs), features=cfg)
    return NoteTable(spec=spec, program=np.array(prog, np.int16), pitch=np.array(pitch, np.int16),
                     velocity=np.full(n, 100, np.int16), frames=np.stack(frames).astype(np.float32),
                     level_db=np.full(n, -20.0), dropped=[])


@dataclass
class ReadPeakModel:
    """An SPS LatentModel whose z_pitch is ``a + b * (strongest bin's MIDI + jitter)``, read an
    octave up where bin 0 holds the octave marker; jitter alternates ``±jitter`` semitones by frame."""

    a: float = -3.0
    b: float = 0.05
    jitter: float = 0.3
    octave_marker: float = -5.0
    features: FeatureConfig = field(default_factory=FeatureConfig)
    metadata: dict = field(default_factory=dict)
    kind: str = "sps"
    context_frames: int = 1

    def encode(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        frames = np.asarray(frames)
        midi = self.features.bin_midi(np.argmax(frames[..., 1:], axis=-1) + 1)
        midi = midi + 12.0 * (frames[..., 0] == np.float32(self.octave_marker))
        midi = midi + self.jitter * np.where(np.arange(frames.shape[1]) % 2 == 0, 1.0, -1.0)
        z = self.a + self.b * midi
        return {"z_pitch": z[..., None].astype(np.float32),
                "z_timbre": np.zeros((*frames.shape[:2], 2), np.float32)}

    def decode(self, **latents: np.ndarray) -> np.ndarray:
        raise NotImplementedError("the eval tests do not decode")
