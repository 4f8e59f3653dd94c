"""SPS encoder/decoder wrappers for ONNX export: the LatentModel layout, means only, no state.

``export_modules(encoder, decoder) -> (encoder_module, decoder_module)`` with
``encoder_module(frames [N, T, F]) -> (z_pitch [N, T', 1], z_timbre [N, T', D])`` and
``decoder_module(z_pitch [N, T, 1], z_timbre [N, T, D]) -> logmag [N, T, F]``.
"""

from __future__ import annotations

import torch
from torch import nn

from .sps_model import FrameEncoder


def export_modules(encoder: FrameEncoder, decoder: nn.Module) -> tuple[nn.Module, nn.Module]:
    return _ExportEncoder(encoder), _ExportDecoder(decoder)


class _ExportEncoder(nn.Module):
    def __init__(self, enc: FrameEncoder) -> None:
        super().__init__()
        self.enc = enc

    def forward(self, frames: torch.Tensor):
        pm, _, tm, _ = self.enc(frames)
        return pm, tm


class _ExportDecoder(nn.Module):
    def __init__(self, dec: nn.Module) -> None:
        super().__init__()
        self.dec = dec

    def forward(self, z_pitch: torch.Tensor, z_timbre: torch.Tensor) -> torch.Tensor:
        return self.dec(z_pitch, z_timbre)
