"""A deterministic numpy preset for engine unit tests: a real :class:`audiosym.preset.model.Preset`
whose two graphs are numpy functions instead of onnxruntime sessions.

Its decoder draws a harmonic comb at the MIDI pitch its latent encodes (so a real pitch tracker
can check the engine), with a spectral tilt set by the timbre vector; its encoder reads the
pitch back with a harmonic-sum score. Kinds: 'sps' (linear pitch control) and 'v3' (codebook,
one atom per MIDI pitch 36..96).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audiosym import families
from audiosym.dsp.features import FeatureConfig
from audiosym.families.base import PitchMap
from audiosym.preset.format import latency_samples
from audiosym.preset.model import Preset
from audiosym.timbre.match import NamedMatch

LOWEST = 36  # the v3 fake's atom k plays MIDI LOWEST + k


def _pitch_of(frames: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Harmonic-sum pitch (MIDI, half-semitone steps) of feature frames ``[..., n_bins]``."""
    cand = np.arange(36.0, 96.5, 0.5)
    bins = np.rint(cfg.midi_to_bin(cand[:, None] + 12 * np.log2(np.arange(1, 5))[None, :])).astype(int)
    bins = np.clip(bins, 0, cfg.n_bins - 1)
    score = (np.exp(frames[..., bins]) / np.arange(1, 5)).sum(-1)  # [..., n_cand]
    return cand[score.argmax(-1)]


class FakeEncoder:
    """``run(names, {"frames": [N, T, n_bins]})``: the newest frame's pitch, a timbre from the window's mean."""

    def __init__(self, kind: str, pitch: PitchMap, codebook: np.ndarray | None, timbre_map: np.ndarray,
                 context_frames: int, cfg: FeatureConfig):
        self.kind, self.pitch, self.codebook, self.timbre_map = kind, pitch, codebook, timbre_map
        self.context_frames, self.cfg = context_frames, cfg

    def run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        c = self.context_frames
        frames = np.asarray(feed["frames"], dtype=np.float32)
        midi = _pitch_of(frames[:, c - 1:], self.cfg)  # the newest frame of each context window
        timbre = np.lib.stride_tricks.sliding_window_view(frames, c, axis=1).mean(-1) @ self.timbre_map
        if self.kind == "sps":
            out = {"z_pitch": self.pitch.midi_to_latent(midi), "z_timbre": timbre}
        else:
            assert self.codebook is not None
            code = np.clip(np.round(midi).astype(np.int64) - LOWEST, 0, len(self.codebook) - 1)
            out = {"content": self.codebook[code], "code": code, "content_q": self.codebook[code], "style": timbre}
        return [out[n] for n in names]

    def get_providers(self) -> list[str]:
        return ["CPUExecutionProvider"]


class FakeDecoder:
    """``run(["logmag"], latents)``: a harmonic comb at the latent's pitch, ``n^-(1 + |v0|)`` partials
    over a noise floor ``1e-3 (1 + |v1|)`` (``v``: the timbre vector)."""

    def __init__(self, kind: str, pitch: PitchMap, cfg: FeatureConfig):
        self.pitch, self.cfg = pitch, cfg
        self.pitch_key, self.timbre_key = ("z_pitch", "z_timbre") if kind == "sps" else ("content_q", "style")

    def spectrum(self, midi: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Linear magnitude ``[N, T, n_bins]`` at ``midi [N, T]`` with timbre ``v [N, T, D]``."""
        cfg = self.cfg
        tilt = 1.0 + np.abs(v[..., 0])  # amplitude ~ n^-tilt
        floor = 1e-3 * (1.0 + np.abs(v[..., 1]))
        k = np.arange(cfg.n_bins, dtype=np.float64)
        mag = np.zeros((*midi.shape, cfg.n_bins)) + floor[..., None]
        for n in range(1, 24):
            b = cfg.midi_to_bin(midi + 12 * np.log2(n))
            mag += (n ** -tilt)[..., None] * np.exp(-0.5 * ((k - b[..., None]) / 0.6) ** 2)
        return mag

    def run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        midi = self.pitch.latent_to_midi(feed[self.pitch_key])  # [N, T]
        mag = self.spectrum(midi, np.asarray(feed[self.timbre_key], dtype=np.float64))
        return [np.log(mag + self.cfg.eps).astype(np.float32)]

    def get_providers(self) -> list[str]:
        return ["CPUExecutionProvider"]


def FakePreset(kind: str = "sps", *, context_frames: int = 3, timbre_dim: int = 4, seed: int = 0,  # noqa: N802 - it stands for a class
               timbres: dict[str, dict] | None = None, calibration: dict | None = None,
               match: NamedMatch | None = None, decoder: type[FakeDecoder] = FakeDecoder) -> Preset:
    """The fake preset: named timbres flute, violin, trumpet (or ``timbres``), MIDI 36..96,
    ``match``: stored match data (e.g. note envelopes), ``decoder``: the decoder's class."""
    rng = np.random.default_rng(seed)
    cfg = FeatureConfig()
    if timbres is None:
        timbres = {
            "flute": {"program": 73, "vector": [0.2, 0.0, *rng.normal(size=timbre_dim - 2)]},
            "violin": {"program": 40, "vector": [1.0, 0.5, *rng.normal(size=timbre_dim - 2)]},
            "trumpet": {"program": 56, "vector": [0.5, 1.0, *rng.normal(size=timbre_dim - 2)]},
        }
    codebook = None
    if kind == "sps":
        pitch_control: dict = {"type": "linear", "a": -3.0, "b": 0.05, "residual_semitones": 0.5}
    else:
        atom_midi = list(range(LOWEST, 97))
        codebook = rng.normal(size=(len(atom_midi), 8)).astype(np.float32)
        pitch_control = {"type": "codebook", "atom_midi": atom_midi, "codebook": codebook.tolist()}
    metadata = {"name": f"fake-{kind}", "kind": kind, "features": cfg.to_dict(), "context_frames": context_frames,
                "latency_samples": latency_samples(cfg, context_frames), "pitch_control": pitch_control, "timbres": timbres,
                "midi_range": [36, 96], "default_timbre": "flute" if "flute" in timbres else sorted(timbres)[0],
                **({"calibration": calibration} if calibration else {})}
    timbre_map = rng.normal(size=(cfg.n_bins, timbre_dim)).astype(np.float32) * 0.01
    pitch = families.get(kind).pitch_map(pitch_control)
    return Preset(path=Path("<fake>"), metadata=metadata,
                  encoder=FakeEncoder(kind, pitch, codebook, timbre_map, context_frames, cfg),
                  decoder=decoder(kind, pitch, cfg), match=match)
