"""V3 objective: :class:`V3Loss` (wraps :class:`train.v3.model.V3Net` for the shared trainer:
``forward(batch) -> (loss, logs)``) and its terms.

Losses (Wu et al., ICLR 2025, see shared/REFERENCE.md §2) on mean pairwise distances
(mpd): content CF/CS, style SS/SF, sample SS/CS and fragment CF/SF hinges with
relativity r, MSE reconstruction, commitment; plus our vocabulary-invariance term
(symmetric Chamfer distance between the content sets of every pair of samples / CF).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from audiosym.errors import ParameterError
from train.v3.config import LossWeights
from train.v3.model import V3Net


def mpd(x: torch.Tensor) -> torch.Tensor:
    """Mean pairwise Euclidean distance over axis -2: ``x [..., n, d] -> [...]``; 0 when n < 2."""
    n = x.shape[-2]
    if n < 2:
        return x.new_zeros(x.shape[:-2])
    diff = x.unsqueeze(-2) - x.unsqueeze(-3)
    # sqrt'(0) is infinite: keep the diagonal away from 0 and leave it out of the mean.
    d = torch.sqrt((diff * diff).sum(-1) + 1e-12)
    off = 1.0 - torch.eye(n, dtype=x.dtype, device=x.device)
    return (d * off).sum((-1, -2)) / (n * (n - 1))


def chamfer_pairs(c: torch.Tensor) -> torch.Tensor:
    """Mean symmetric Chamfer distance between the sets ``c[a]`` and ``c[b]`` over pairs a != b.

    ``c [B, L, D] -> []``; 0 when B < 2.
    """
    b = c.shape[0]
    if b < 2:
        return c.new_zeros(())
    d = torch.cdist(c.unsqueeze(1).expand(b, b, *c.shape[1:]).reshape(b * b, *c.shape[1:]),
                    c.unsqueeze(0).expand(b, b, *c.shape[1:]).reshape(b * b, *c.shape[1:]))
    d = d.reshape(b, b, c.shape[1], c.shape[1])
    sym = d.min(-1).values.mean(-1) + d.min(-2).values.mean(-1)  # [B, B]
    off = 1.0 - torch.eye(b, dtype=c.dtype, device=c.device)
    return (sym * off).sum() / (b * (b - 1))


class V3Loss(nn.Module):
    """Wraps :class:`V3Net` for the trainer: ``forward(batch) -> (loss, logs)``."""

    def __init__(self, net: V3Net, *, weights: LossWeights, relativity: float, seed: int = 0,
                 recon_style: str = "own") -> None:
        super().__init__()
        if recon_style not in ("own", "shuffle"):
            raise ParameterError(f"recon_style={recon_style!r} must be own or shuffle")
        self.recon_style = recon_style
        self.net = net
        self.weights = weights
        self.r = float(relativity)
        self._gen = torch.Generator(device="cpu").manual_seed(seed)

    def forward(self, batch: dict[str, torch.Tensor]):
        frames = batch["frames"]  # [B, L, C, F]
        w, r, eps = self.weights, self.r, 1e-8
        content, style = self.net.encode_fragments(frames)  # [B, L, Dc], [B, L, Ds]
        cb = self.net.codebook
        if self.training and not bool(cb.initialised):
            cb.kmeans_init(content.detach())
        code, q = cb(content.detach())
        if self.training:
            cb.ema_update(content.detach(), code, self._gen)
        q = q.detach()
        content_st = content + (q - content).detach()  # straight-through
        commit = F.mse_loss(content, q)

        target = frames[:, :, -1, :]
        target = target - target.mean(-1, keepdim=True)
        style_dec = style
        if self.training and self.recon_style == "shuffle":
            # Decode each fragment with the style of another fragment of the same sample (same
            # instrument, other pitch): style then cannot carry pitch, only what the sample shares.
            L = style.shape[1]
            shift = torch.randint(1, L, (style.shape[0], 1), generator=self._gen).to(style.device)
            idx = (torch.arange(L, device=style.device)[None, :] + shift) % L
            style_dec = torch.gather(style, 1, idx[..., None].expand_as(style))
        recon = F.mse_loss(self.net.decode(content_st, style_dec), target)

        cf = 0.5 * (mpd(content).mean() + mpd(q).mean())
        cs = 0.5 * (mpd(content.mean(1)) + mpd(q.mean(1)))
        sf = mpd(style).mean()
        ss = mpd(style.mean(1))
        hinge = {
            "content": F.relu(r - cf / (cs + eps)) / r,
            "style": F.relu(r - ss / (sf + eps)) / r,
            "sample": F.relu(r - ss / (cs + eps)) / r,
            "fragment": F.relu(r - cf / (sf + eps)) / r,
        }
        loss = w.recon * recon + w.commitment * commit
        for name, value in hinge.items():
            loss = loss + getattr(w, name) * value
        vocab = chamfer_pairs(content) / (cf + eps) if w.vocab else content.new_zeros(())
        loss = loss + w.vocab * vocab
        logs = {"recon": recon.detach(), "commit": commit.detach(), "vocab": vocab.detach(),
                "cf_cs": (cf / (cs + eps)).detach(), "ss_sf": (ss / (sf + eps)).detach(),
                "ss_cs": (ss / (cs + eps)).detach(), "cf_sf": (cf / (sf + eps)).detach(),
                "atoms_used": torch.tensor(float(torch.unique(code).numel())),
                "restarts": cb.restarts.float()}
        logs.update({f"h_{k}": v.detach() for k, v in hinge.items()})
        return loss, logs
