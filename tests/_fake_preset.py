"""A deterministic numpy stand-in with the preset API (audiosym.preset.session.Preset), for engine unit tests.

Its decoder draws a harmonic comb at the MIDI pitch its latent encodes (so a real pitch tracker
can check the engine), with a spectral tilt set by the timbre vector; its encoder reads the
pitch back with a harmonic-sum score. Kinds: 'sps' (linear pitch control) and 'v3' (codebook).
"""

from __future__ import annotations

import numpy as np

from audiosym import families
from audiosym.dsp.features import FeatureConfig


class FakePreset:
    def __init__(self, kind: str = "sps", *, context_frames: int = 3, timbre_dim: int = 4, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.kind = kind
        self.features = FeatureConfig()
        self.context_frames = context_frames
        self.midi_range = (36, 96)
        self.latency_samples = self.features.n_fft
        self.calls = {"encode": 0, "decode": 0}
        timbres = {
            "flute": {"program": 73, "vector": [0.2, 0.0, *rng.normal(size=timbre_dim - 2)]},
            "violin": {"program": 40, "vector": [1.0, 0.5, *rng.normal(size=timbre_dim - 2)]},
            "trumpet": {"program": 56, "vector": [0.5, 1.0, *rng.normal(size=timbre_dim - 2)]},
        }
        if kind == "sps":
            pitch_control = {"type": "linear", "a": -3.0, "b": 0.05, "residual_semitones": 0.5}
        else:
            atom_midi = list(range(36, 97))
            self._codebook = rng.normal(size=(len(atom_midi), 8)).astype(np.float32)
            pitch_control = {"type": "codebook", "atom_midi": atom_midi, "codebook": self._codebook.tolist()}
        self.metadata = {"kind": kind, "pitch_control": pitch_control, "timbres": timbres,
                         "midi_range": list(self.midi_range), "default_timbre": "flute"}
        self._timbre_map = rng.normal(size=(self.features.n_bins, timbre_dim)).astype(np.float32) * 0.01

    @property
    def family(self):
        return families.get(self.kind)

    @property
    def pitch_map(self):
        return self.family.pitch_map(self.metadata["pitch_control"])

    @property
    def continuous_pitch(self) -> bool:
        return self.pitch_map.continuous

    def input_midi(self, encoded):
        return self.latent_to_midi(encoded[self.family.pitch_readout])

    @property
    def timbre_names(self) -> list[str]:
        return sorted(self.metadata["timbres"])

    def timbre_vector(self, name: str) -> np.ndarray:
        return np.asarray(self.metadata["timbres"][name]["vector"], dtype=np.float32)

    def midi_to_latent(self, midi) -> np.ndarray:
        m = np.asarray(midi, dtype=np.float64)
        pc = self.metadata["pitch_control"]
        if pc["type"] == "linear":
            return (pc["a"] + pc["b"] * m)[..., None].astype(np.float32)
        idx = np.clip(np.round(m).astype(int) - 36, 0, len(self._codebook) - 1)
        return self._codebook[idx]

    def latent_to_midi(self, z) -> np.ndarray:
        z = np.asarray(z)
        pc = self.metadata["pitch_control"]
        if pc["type"] == "linear":
            return (z[..., 0].astype(np.float64) - pc["a"]) / pc["b"]
        if np.issubdtype(z.dtype, np.integer):  # codes, as the real preset accepts
            return (z + 36).astype(np.float64)
        d = ((z[..., None, :] - self._codebook) ** 2).sum(-1)
        return (d.argmin(-1) + 36).astype(np.float64)

    # -- the "model" ---------------------------------------------------------------
    def _pitch_of(self, frames: np.ndarray) -> np.ndarray:
        cfg = self.features
        cand = np.arange(36.0, 96.5, 0.5)
        bins = np.rint(cfg.midi_to_bin(cand[:, None] + 12 * np.log2(np.arange(1, 5))[None, :])).astype(int)
        bins = np.clip(bins, 0, cfg.n_bins - 1)
        score = (np.exp(frames[..., bins]) / np.arange(1, 5)).sum(-1)  # [..., n_cand]
        return cand[score.argmax(-1)]

    def encode(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        self.calls["encode"] += 1
        c = self.context_frames
        frames = np.asarray(frames, dtype=np.float32)
        newest = frames[:, c - 1:]  # the newest frame of each context window
        midi = self._pitch_of(newest)
        window = np.lib.stride_tricks.sliding_window_view(frames, c, axis=1).mean(-1)
        timbre = window @ self._timbre_map
        if self.kind == "sps":
            return {"z_pitch": self.midi_to_latent(midi).astype(np.float32), "z_timbre": timbre}
        content_q = self.midi_to_latent(midi)
        return {"content": content_q, "code": (np.round(midi) - 36).astype(np.int64),
                "content_q": content_q, "style": timbre}

    def decode(self, **latents: np.ndarray) -> np.ndarray:
        self.calls["decode"] += 1
        cfg = self.features
        pitch_key, timbre_key = ("z_pitch", "z_timbre") if self.kind == "sps" else ("content_q", "style")
        midi = self.latent_to_midi(latents[pitch_key])  # [N, T]
        v = np.asarray(latents[timbre_key], dtype=np.float64)
        tilt = 1.0 + np.abs(v[..., 0])  # amplitude ~ n^-tilt
        floor = 1e-3 * (1.0 + np.abs(v[..., 1]))
        k = np.arange(cfg.n_bins, dtype=np.float64)
        mag = np.zeros((*midi.shape, cfg.n_bins)) + floor[..., None]
        for n in range(1, 24):
            b = cfg.midi_to_bin(midi + 12 * np.log2(n))
            mag += (n ** -tilt)[..., None] * np.exp(-0.5 * ((k - b[..., None]) / 0.6) ** 2)
        return np.log(mag + cfg.eps).astype(np.float32)
