"""V3 encoder/decoder wrappers for ONNX export: the LatentModel layout, no state.

``export_modules(net) -> (encoder_module, decoder_module)`` with
``encoder_module(frames [N, T, F]) -> (content, code, content_q, style)`` (``T' = T - C + 1``) and
``decoder_module(content_q [N, T, Dc], style [N, T, Ds]) -> logmag [N, T, F]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:  # the network imports this module for its export_modules()
    from train.v3.model import V3Net


def export_modules(net: V3Net) -> tuple[nn.Module, nn.Module]:
    return V3Encoder(net), V3Decoder(net)


class V3Encoder(nn.Module):
    """``frames [N, T, F] -> (content [N, T', Dc], code [N, T'] int64, content_q [N, T', Dc], style [N, T', Ds])``."""

    def __init__(self, net: V3Net) -> None:
        super().__init__()
        self.net = net

    def forward(self, frames: torch.Tensor):
        c = self.net.context_frames
        t_out = frames.shape[1] - c + 1
        # window [N, T', C, F]: frame t' sees input frames t' .. t' + C - 1 (causal context)
        window = torch.stack([frames[:, i : i + t_out] for i in range(c)], dim=2)
        content, style = self.net.encode_fragments(window)
        code, content_q = self.net.codebook(content)
        return content, code, content_q, style


class V3Decoder(nn.Module):
    """``(content_q [N, T', Dc], style [N, T', Ds]) -> logmag [N, T', F]``."""

    def __init__(self, net: V3Net) -> None:
        super().__init__()
        self.net = net

    def forward(self, content_q: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.net.decode(content_q, style)
