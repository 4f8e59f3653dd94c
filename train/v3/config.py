"""V3 settings: :class:`Config` (strict: a bad value is an error when the config is made), its
:class:`LossWeights`, and the named recipes :data:`CONFIGS`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from audiosym.data.plans import V3_HELDOUT_PROGRAMS, V3_TRAIN_PROGRAMS
from audiosym.errors import ParameterError
from train.core.trainer import TrainSettings

ORDERS = ("random", "chromatic", "mixed")


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms. Strict: an unknown name is an error, never silently dropped."""

    recon: float = 1.0
    content: float = 1.0  # ReLU(r - CF/CS)/r
    style: float = 1.0  # ReLU(r - SS/SF)/r
    sample: float = 1.0  # ReLU(r - SS/CS)/r
    fragment: float = 1.0  # ReLU(r - CF/SF)/r
    commitment: float = 0.1
    vocab: float = 0.0  # Chamfer(content sets of two samples) / CF (not in the paper)

    @classmethod
    def parse(cls, value: LossWeights | dict | str | None) -> LossWeights:
        """From a dict or a ``"name=value,name=value"`` string (defaults for names left out)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            items = {}
            for part in (p.strip() for p in value.split(",")):
                if not part:
                    continue
                if "=" not in part and ":" not in part:
                    raise ParameterError(f"loss weight {part!r} must look like name=value (e.g. vocab=1)")
                k, v = part.replace(":", "=", 1).split("=", 1)
                items[k.strip()] = v.strip()
            value = items
        if not isinstance(value, dict):
            raise ParameterError(f"loss={value!r} must be a dict or a 'name=value,...' string")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - names)
        if unknown:
            raise ParameterError(f"unknown loss weight(s) {unknown}; allowed: {sorted(names)}")
        try:
            return cls(**{k: float(v) for k, v in value.items()})
        except ValueError as exc:
            raise ParameterError(f"loss weights {value!r} must be numbers") from exc


@dataclass
class Config(TrainSettings):
    """V3 settings. Pitches 60..83 (C4..B5, two octaves) fit every held-out instrument and all
    but four training ones, whose samples then hold the part of the range they can play."""

    soundfont: str = ""  # '' = default_train_soundfont() (FluidR3_GM when installed)
    test_soundfont: str = ""  # '' = default_test_soundfont(train) (MuseScore_General here)
    train_programs: tuple[int, ...] = V3_TRAIN_PROGRAMS
    heldout_programs: tuple[int, ...] = V3_HELDOUT_PROGRAMS
    pitch_limits: tuple[int, ...] = (60, 83)
    velocities: tuple[int, ...] = (80, 100, 120)
    note_seconds: float = 0.5
    sustain_start_frame: int = 8
    fragments_per_sample: int = 24
    samples_per_batch: int = 0  # 0 = one sample per training instrument
    fragment_order: str = "random"  # random | chromatic | mixed
    loudness_db: float = 6.0  # std of the smooth random gain envelope
    eq_db: float = 0.0  # std of a random smooth spectral envelope (EQ) per sample, 0 = off
    eq_components: int = 4  # cosines over the frequency axis making up that EQ curve
    context_frames: int = 1
    content_dim: int = 16
    style_dim: int = 16
    n_atoms: int = 24
    hidden: int = 256
    conv_channels: int = 0  # > 0: frequency-equivariant conv front end for content
    conv_kernel: int = 61
    content_norm: bool = False  # content on a sphere of radius sqrt(content_dim)
    style_dft: int = 0  # > 0: style also sees |DFT over frequency| (pitch-shift invariant), this many terms
    ema_decay: float = 0.99
    dead_fraction: float = 0.2
    relativity: float = 15.0
    recon_style: str = "own"  # own | shuffle: decode with the style of another fragment of the sample
    loss: LossWeights = field(default_factory=LossWeights)
    eval_heldout_soundfont: bool = True

    def __post_init__(self) -> None:
        self.loss = LossWeights.parse(self.loss)
        if self.fragment_order not in ORDERS:
            raise ParameterError(f"fragment_order={self.fragment_order!r} must be one of {ORDERS}")
        if len(self.pitch_limits) != 2 or self.pitch_limits[0] > self.pitch_limits[1]:
            raise ParameterError(f"pitch_limits={self.pitch_limits} must be (low, high) MIDI pitches, e.g. 60,83")
        if self.pitch_limits[0] < 24:
            raise ParameterError(f"pitch_limits={self.pitch_limits}: the feature axis starts at MIDI 24")
        for name in ("context_frames", "content_dim", "style_dim", "n_atoms", "hidden", "fragments_per_sample"):
            if getattr(self, name) < 1:
                raise ParameterError(f"{name}={getattr(self, name)} must be a positive integer")
        if self.fragments_per_sample < 2:
            raise ParameterError("fragments_per_sample must be >= 2: content must vary within a sample")


# Our measured best (BENCHMARKS.md, V3 section); "paper" is the authors' scale for a GPU.
CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": {"steps": 3000, "lr": 1e-3, "eval_every": 500, "ckpt_every": 500,
             "eq_db": 10.0, "recon_style": "shuffle", "content_norm": True, "loss": {"vocab": 1.0}},
    "paper": {"steps": 100000, "lr": 1e-3, "optimizer": "adamw", "weight_decay": 0.1,
              "samples_per_batch": 32, "hidden": 1024, "content_dim": 64, "style_dim": 64,
              "context_frames": 4, "eval_every": 5000, "ckpt_every": 5000, "warmup_steps": 1000,
              "eq_db": 10.0, "recon_style": "shuffle", "content_norm": True, "loss": {"vocab": 1.0}},
}
