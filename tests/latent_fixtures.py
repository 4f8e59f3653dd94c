"""Small torch models that follow the LatentModel / export_modules layout exactly (test fixtures).

They stand in for train/sps/method.py and train/v3/method.py models where a test needs a model
in milliseconds: a causal conv over ``context_frames`` frames, an MLP decoder and,
for V3, a nearest-atom codebook.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from audiosym import families
from audiosym.dsp.features import FeatureConfig


class _Encoder(nn.Module):
    def __init__(self, kind: str, n_bins: int, context: int, dims: tuple[int, ...], codebook: nn.Parameter | None,
                 bake: bool = False):
        super().__init__()
        self.kind = kind
        self.bake = bake
        self.conv = nn.Conv1d(n_bins, 32, kernel_size=context)
        self.head = nn.Linear(32, sum(dims))
        self.dims = dims
        self.codebook = codebook

    def forward(self, frames: torch.Tensor):
        h = torch.tanh(self.conv(frames.transpose(1, 2))).transpose(1, 2)  # [N, T', 32]
        z = self.head(h)
        if self.bake:
            # A Python float taken from the input: tracing freezes the example's value into the
            # graph, the classic export bug the parity check must catch.
            z = z + float(frames.mean())
        if self.kind == "sps":
            return z[..., :1], z[..., 1:]
        dc = self.dims[0]
        content, style = z[..., :dc], z[..., dc:]
        assert self.codebook is not None
        d = (content.unsqueeze(-2) - self.codebook).pow(2).sum(-1)  # [N, T', K]
        code = d.argmin(-1)
        content_q = self.codebook[code]
        return content, code, content_q, style


class _Decoder(nn.Module):
    def __init__(self, dims: tuple[int, ...], n_bins: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(sum(dims), 48), nn.GELU(), nn.Linear(48, n_bins))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([a, b], dim=-1)) - 6.0


class TinyModel(nn.Module):
    """``kind='sps'``: z_pitch [1] + z_timbre [4]; ``kind='v3'``: content [3] (8 atoms) + style [4]."""

    def __init__(self, kind: str, *, n_bins: int = 190, context_frames: int = 3, seed: int = 0, bake: bool = False):
        super().__init__()
        torch.manual_seed(seed)
        self.kind = kind
        self.context_frames = context_frames
        dims = (1, 4) if kind == "sps" else (3, 4)
        self.codebook = nn.Parameter(torch.randn(8, 3)) if kind == "v3" else None
        self.encoder = _Encoder(kind, n_bins, context_frames, dims, self.codebook, bake)
        self.decoder = _Decoder(dims, n_bins)

    def export_modules(self) -> tuple[nn.Module, nn.Module]:
        return self.encoder, self.decoder


@dataclass
class TorchLatentModel:
    """numpy-in / numpy-out wrapper, like ``train.core.runs.load_run`` returns."""

    torch_model: TinyModel
    config: Any = None
    features: FeatureConfig = field(default_factory=FeatureConfig)
    metadata: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.torch_model.kind

    @property
    def context_frames(self) -> int:
        return self.torch_model.context_frames

    @torch.no_grad()
    def encode(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        enc, _ = self.torch_model.eval().export_modules()
        outs = enc(torch.as_tensor(np.asarray(frames, np.float32)))
        return {n: o.numpy() for n, o in zip(families.get(self.kind).encoder_outputs, outs)}

    @torch.no_grad()
    def decode(self, **latents: np.ndarray) -> np.ndarray:
        _, dec = self.torch_model.eval().export_modules()
        names = families.get(self.kind).decoder_inputs
        return dec(*(torch.as_tensor(np.asarray(latents[n], np.float32)) for n in names)).numpy()

    def codebook(self) -> np.ndarray:
        """V3: ``[K, Dc]`` atoms (export's calibration reads them)."""
        assert self.torch_model.codebook is not None, "only a V3 fixture has a codebook"
        return self.torch_model.codebook.detach().float().numpy()


@dataclass
class FixtureConfig:
    """The config fields calibration reads (names as in train/sps/config.py and train/v3/config.py)."""

    soundfont: str = "TimGM6mb"
    programs: tuple[int, ...] = (73, 71)  # sps
    train_programs: tuple[int, ...] = (73, 71)  # v3
    heldout_programs: tuple[int, ...] = (40,)
    pitch_limits: tuple[int, int] = (60, 71)


def tiny_latent_model(kind: str, **kw) -> TorchLatentModel:
    return TorchLatentModel(TinyModel(kind, **kw), config=FixtureConfig())


def build_fixture_preset(kind: str, path, **kw):
    """A real preset file from the fixture model (export, parity check, calibration, save)."""
    from export.build import build_preset

    torch.set_num_threads(1)
    with open(os.devnull, "w") as quiet:
        preset, _ = build_preset(tiny_latent_model(kind), path, progress=False, log=quiet, **kw)
    return preset
