"""A third model family, only for the tests: proof that a family is one audiosym module and one
training module, and that nothing else changes (tests/families/test_tiny_family.py).

``tiny``: latents ``pitch [1]`` (linear in MIDI pitch) and ``colour [D]``. Its encoder reads the
pitch of each frame with a harmonic-sum score and a soft arg-max, its decoder draws a harmonic
comb at that pitch with a spectral tilt set by the colour. This one module is both halves:

- the audiosym side: :data:`TINY`, a :class:`audiosym.families.base.Family` (linear pitch
  control, calibrated like SPS, on the latent names of its own), and :func:`evaluate`;
- the training side (what ``train.core.runs`` asks of a method module): :class:`Config`,
  :data:`CONFIGS`, :func:`build_task`, :func:`load_latent_model`.

:func:`register` makes both known.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from audiosym import families
from audiosym.dsp.features import FeatureConfig
from audiosym.eval import Evaluation
from audiosym.families.base import CalibrationSetup, LatentModel, RunSetting
from audiosym.families.calibration import encode_notes, named_timbres, note_table, setup_from
from audiosym.families.sps import LinearPitch, describe_linear, fit_linear
from train.core.config import from_dict
from train.core.runs import register_method
from train.core.trainer import Task, TrainSettings

NAME = "tiny"
HARMONICS = 8


# ---------------------------------------------------------------------------- audiosym side
class TinyFamily:
    """The ``tiny`` family: linear pitch control on ``pitch``, timbre ``colour``."""

    name: str = NAME
    pitch_control_type: str = "linear"
    encoder_outputs: tuple[str, ...] = ("pitch", "colour")
    decoder_inputs: tuple[str, ...] = ("pitch", "colour")
    pitch_latent: str = "pitch"
    timbre_latent: str = "colour"
    pitch_readout: str = "pitch"
    evaluation: str = __name__

    def pitch_map(self, pitch_control: Mapping[str, Any]) -> LinearPitch:
        return LinearPitch.from_metadata(pitch_control, name="pitch")

    def check_metadata(self, meta: Mapping[str, Any], *, where: str) -> None:
        """Nothing beyond the schema."""

    def describe_pitch_control(self, meta: Mapping[str, Any]) -> list[str]:
        return describe_linear(meta, name="pitch")

    def calibration_setup(self, setting: RunSetting) -> CalibrationSetup:
        return setup_from(setting, programs=tuple(setting("programs", (71, 73))), pitch_limits=(60, 72),
                          skip_frames=4)

    def calibrate(self, model: LatentModel, setup: CalibrationSetup, *, progress: bool = False) -> dict[str, Any]:
        table = note_table(setup, setup.programs, model.features, progress=progress)
        z = encode_notes(model, table, setup.skip_frames)
        fit = fit_linear(np.median(z["pitch"][..., 0], axis=1).astype(np.float64), table.pitch.astype(np.float64),
                         table.program, setup)
        return {"pitch_control": fit["pitch_control"], "midi_range": fit["midi_range"],
                "timbres": named_timbres(table.program, z["colour"], set(setup.programs)),
                "default_timbre": min(fit["residual_per_timbre"], key=fit["residual_per_timbre"].get),
                "calibration": fit["calibration"]}


TINY = TinyFamily()


def register() -> None:
    """Make the family and its training method known (idempotent)."""
    families.register(TINY)
    register_method(NAME, __name__)


def comb(midi: np.ndarray, tilt: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Log-frequency log-magnitude frames ``[..., n_bins]`` of harmonic tones at ``midi [...]``,
    partial ``k`` at ``k^-tilt``: what the family's training data look like."""
    bins = np.arange(cfg.n_bins, dtype=np.float64)
    mag = np.full((*np.shape(midi), cfg.n_bins), 1e-3)
    for k in range(1, HARMONICS + 1):
        centre = cfg.midi_to_bin(np.asarray(midi, dtype=np.float64) + 12 * np.log2(k))
        mag += (k ** -np.asarray(tilt))[..., None] * np.exp(-0.5 * ((bins - centre[..., None]) / 0.7) ** 2)
    return np.log(mag + cfg.eps).astype(np.float32)


def evaluate(model: LatentModel, *, soundfont: str | None = None, progress: bool = True) -> Evaluation:
    """``audiosym eval tiny MODEL``: R² of the pitch latent against the pitch of synthetic tones."""
    midi = np.arange(48.0, 85.0)
    frames = comb(midi, np.ones_like(midi), model.features)[:, None, :].repeat(model.context_frames, axis=1)
    z = np.asarray(model.encode(frames)["pitch"])[:, -1, 0].astype(np.float64)
    b, a = np.polyfit(midi, z, 1)
    r2 = 1.0 - float(np.sum((z - a - b * midi) ** 2) / np.sum((z - z.mean()) ** 2))
    metrics = {"r2": r2, "slope": float(b), "notes": len(midi)}

    def plot(path: str | os.PathLike, label: str) -> None:
        import matplotlib  # noqa: PLC0415 - plots only when asked

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415

        fig, ax = plt.subplots()
        ax.plot(midi, z, ".")
        ax.set_title(f"{label}: R² {r2:.3f}")
        fig.savefig(path)
        plt.close(fig)

    return Evaluation(metrics=metrics, lines=[f"r2 {r2:.4f}, slope {b:.4f} per semitone"], plot=plot)


# ---------------------------------------------------------------------------- training side
@dataclass
class Config(TrainSettings):
    """``tiny`` settings (optimisation settings inherited from TrainSettings)."""

    soundfont: str = "TimGM6mb"  # calibration at export renders its notes from here
    programs: tuple[int, ...] = (71, 73)
    context_frames: int = 1
    colour_dim: int = 2
    batch_size: int = 16


CONFIGS: dict[str, dict[str, Any]] = {"tiny": {"steps": 5, "lr": 1e-2, "log_every": 5, "eval_every": 0, "ckpt_every": 5}}


class TinyNet(nn.Module):
    """Encoder ``frames [N, T, F] -> (pitch [N, T, 1], colour [N, T, D])`` and decoder back."""

    def __init__(self, cfg: FeatureConfig, colour_dim: int) -> None:
        super().__init__()
        cand = np.arange(36.0, 96.5, 0.5)
        weights = np.zeros((cfg.n_bins, len(cand)), np.float32)  # harmonic sum: partial k weighs 1 / k
        for k in range(1, 5):
            b = np.clip(np.rint(cfg.midi_to_bin(cand + 12 * np.log2(k))).astype(int), 0, cfg.n_bins - 1)
            weights[b, np.arange(len(cand))] += 1.0 / k
        self.register_buffer("weights", torch.from_numpy(weights))
        self.register_buffer("cand", torch.from_numpy(cand.astype(np.float32)))
        self.register_buffer("bins", torch.arange(cfg.n_bins, dtype=torch.float32))
        self.register_buffer("log_k", torch.log(torch.arange(1, HARMONICS + 1, dtype=torch.float32)))
        self.fmin, self.bps = float(cfg.fmin_midi), float(cfg.bins_per_semitone)
        self.sharp = nn.Parameter(torch.tensor(20.0))
        self.scale = nn.Parameter(torch.tensor(1.0 / 12.0))
        self.offset = nn.Parameter(torch.tensor(-5.0))
        self.colour = nn.Linear(cfg.n_bins, colour_dim)
        self.tilt = nn.Linear(colour_dim, 1)
        self.level = nn.Parameter(torch.zeros(cfg.n_bins))

    def encode(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        score = torch.log(torch.exp(frames) @ self.weights + 1e-6)  # [N, T, n_cand]
        midi = (torch.softmax(self.sharp * score, dim=-1) * self.cand).sum(-1, keepdim=True)
        return self.offset + self.scale * midi, torch.tanh(self.colour(frames / 10.0))

    def decode(self, pitch: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
        midi = (pitch - self.offset) / self.scale  # [N, T, 1]
        centre = (midi - self.fmin) * self.bps + 12.0 * self.bps * self.log_k / float(np.log(2.0))  # [N, T, K]
        gain = torch.exp(-(1.0 + nn.functional.softplus(self.tilt(colour))) * self.log_k)  # [N, T, K]
        bumps = torch.exp(-0.5 * ((self.bins - centre[..., None]) / 0.7) ** 2)  # [N, T, K, F]
        return torch.log((gain[..., None] * bumps).sum(-2) + 1e-3) + self.level

    def export_modules(self) -> tuple[nn.Module, nn.Module]:
        return _Part(self, "encode"), _Part(self, "decode")


class _Part(nn.Module):
    def __init__(self, net: TinyNet, which: str) -> None:
        super().__init__()
        self.net, self.which = net, which

    def forward(self, *args: torch.Tensor):
        return getattr(self.net, self.which)(*args)


class TinyLoss(nn.Module):
    """Reconstruction of each frame through the latents: ``forward(batch) -> (loss, logs)``."""

    def __init__(self, net: TinyNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, batch: dict[str, torch.Tensor]):
        frames = batch["frames"]
        loss = torch.mean((self.net.decode(*self.net.encode(frames)) - frames) ** 2)
        return loss, {"recon": loss.detach()}


def build_task(cfg: Config, *, device: torch.device, progress: bool = True) -> Task:
    features = FeatureConfig()

    def sample(rng: np.random.Generator, step: int) -> dict[str, torch.Tensor]:
        midi = rng.uniform(55.0, 80.0, size=(cfg.batch_size, 1))
        return {"frames": torch.from_numpy(comb(midi, rng.uniform(0.5, 2.0, size=midi.shape), features))}

    return Task(model=TinyLoss(TinyNet(features, cfg.colour_dim)), sample=sample)


@dataclass
class TinyModel:
    """A trained ``tiny`` run as a LatentModel (numpy in, numpy out)."""

    torch_model: TinyNet
    config: Config
    kind: str = NAME
    features: FeatureConfig = field(default_factory=FeatureConfig)
    metadata: dict[str, Any] = field(default_factory=lambda: {"method": NAME})

    @property
    def context_frames(self) -> int:
        return self.config.context_frames

    @torch.no_grad()
    def encode(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        out = self.torch_model.eval().encode(torch.as_tensor(np.asarray(frames, np.float32)))
        return {name: o.numpy() for name, o in zip(TINY.encoder_outputs, out)}

    @torch.no_grad()
    def decode(self, **latents: np.ndarray) -> np.ndarray:
        args = (torch.as_tensor(np.asarray(latents[n], np.float32)) for n in TINY.decoder_inputs)
        return self.torch_model.eval().decode(*args).numpy()


def load_latent_model(state: dict[str, Any]) -> TinyModel:
    cfg = from_dict(Config, {k: v for k, v in state["config"].items() if k != "name"})
    net = TinyNet(FeatureConfig(), cfg.colour_dim)
    net.load_state_dict({k[len("net."):]: v for k, v in state["model"].items() if k.startswith("net.")})
    return TinyModel(net, cfg)
