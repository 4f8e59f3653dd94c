"""V3 network: frame encoder -> (content quantised to a K-atom EMA codebook, style) -> decoder.

Shapes: a training batch holds ``B`` samples of ``L`` fragments; each fragment is ``C``
(context) feature frames of ``F`` log-frequency bins: ``frames [B, L, C, F]``. The
encoder turns the C frames ending at a frame into one content vector ``[Dc]`` and one
style vector ``[Ds]``, so it runs live one frame per hop with C - 1 frames of history.

The losses are in :mod:`train.v3.loss`, the ONNX wrappers in :mod:`train.v3.export`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from train.v3.config import Config
from train.v3.export import export_modules


def normalise_frames(x: torch.Tensor) -> torch.Tensor:
    """Standardise each frame over its bins: removes loudness (a per-frame log-gain)."""
    mu = x.mean(-1, keepdim=True)
    sd = x.std(-1, keepdim=True) + 1e-3
    return (x - mu) / sd


class EMACodebook(nn.Module):
    """K atoms of dimension D, updated by exponential moving averages (not by gradients).

    k-means initialisation on the first training batch; an atom whose usage falls
    below ``dead_fraction`` of uniform is restarted at a random content vector.
    """

    atoms: torch.Tensor
    cluster_size: torch.Tensor
    atom_sum: torch.Tensor
    initialised: torch.Tensor
    restarts: torch.Tensor

    def __init__(self, n_atoms: int, dim: int, *, decay: float = 0.99, dead_fraction: float = 0.2) -> None:
        super().__init__()
        self.n_atoms, self.dim, self.decay, self.dead_fraction = n_atoms, dim, decay, dead_fraction
        self.register_buffer("atoms", torch.randn(n_atoms, dim) * 0.1)
        self.register_buffer("cluster_size", torch.full((n_atoms,), 1.0 / n_atoms))
        self.register_buffer("atom_sum", self.atoms.clone() / n_atoms)
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))
        self.register_buffer("restarts", torch.zeros((), dtype=torch.long))

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """``z [..., D] -> code [...]`` int64 (squared distance argmin; ONNX-friendly)."""
        d = (z * z).sum(-1, keepdim=True) - 2 * z @ self.atoms.t() + (self.atoms * self.atoms).sum(-1)
        return d.argmin(-1)

    @torch.no_grad()
    def kmeans_init(self, z: torch.Tensor, iters: int = 20) -> None:
        z = z.reshape(-1, self.dim).float()
        g = torch.Generator(device="cpu").manual_seed(0)
        idx = torch.randperm(len(z), generator=g)[: self.n_atoms].to(z.device)
        c = z[idx].clone()
        for _ in range(iters):
            a = torch.cdist(z, c).argmin(1)
            for k in range(self.n_atoms):
                m = a == k
                if m.any():
                    c[k] = z[m].mean(0)
        self.atoms.copy_(c)
        counts = torch.bincount(torch.cdist(z, c).argmin(1), minlength=self.n_atoms).float()
        self.cluster_size.copy_(counts / len(z))
        self.atom_sum.copy_(c * self.cluster_size[:, None])
        self.initialised.fill_(True)

    @torch.no_grad()
    def ema_update(self, z: torch.Tensor, code: torch.Tensor, rng: torch.Generator | None = None) -> None:
        z = z.reshape(-1, self.dim).float()
        code = code.reshape(-1)
        onehot = F.one_hot(code, self.n_atoms).float()
        frac = onehot.mean(0)  # usage as a fraction of the batch, independent of batch size
        self.cluster_size.mul_(self.decay).add_(frac, alpha=1 - self.decay)
        self.atom_sum.mul_(self.decay).add_(onehot.t() @ z / len(z), alpha=1 - self.decay)
        dead = self.cluster_size < self.dead_fraction / self.n_atoms
        n_dead = int(dead.sum())
        if n_dead:
            # k-means++ style: restart at vectors the codebook currently fits worst
            err = ((z - self.atoms[code]) ** 2).sum(-1).cpu() + 1e-12
            pick = torch.multinomial(err, n_dead, replacement=True, generator=rng).to(z.device)
            new = z[pick] + 1e-3 * torch.randn(n_dead, self.dim, generator=rng).to(z.device)
            self.atoms[dead] = new
            self.cluster_size[dead] = 1.0 / self.n_atoms
            self.atom_sum[dead] = new / self.n_atoms
            self.restarts.add_(n_dead)
        self.atoms.copy_(self.atom_sum / self.cluster_size.clamp_min(1e-8)[:, None])

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``z [..., D] -> (code [...] int64, z_q [..., D])`` (no gradient path; see V3Net)."""
        code = self.nearest(z)
        return code, F.embedding(code, self.atoms)


def mlp(sizes: list[int], act=nn.GELU) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


class V3Net(nn.Module):
    """Encoder (MLP on C normalised frames, optional frequency-equivariant conv front end for
    content), EMA codebook, additive decoder: ``logmag = D_c(content_q) + D_s(style)``."""

    dft: torch.Tensor

    def __init__(
        self, *, n_bins: int, context_frames: int, content_dim: int, style_dim: int, n_atoms: int,
        hidden: int, conv_channels: int = 0, conv_kernel: int = 61, ema_decay: float = 0.99,
        dead_fraction: float = 0.2, style_dft: int = 0, content_norm: bool = False,
    ) -> None:
        super().__init__()
        self.content_norm = content_norm
        self.n_bins, self.context_frames = n_bins, context_frames
        self.content_dim, self.style_dim = content_dim, style_dim
        self.conv_channels = conv_channels
        n_in = context_frames * n_bins
        self.style_dft = style_dft
        if style_dft:
            # |DFT over the frequency axis| of a frame barely changes when the pitch (a shift on
            # this axis) changes: an easy pitch-invariant view for the style encoder. A fixed
            # matmul instead of torch.fft keeps the graph ONNX-exportable.
            k = torch.arange(1, style_dft + 1, dtype=torch.float32)[:, None]
            f = torch.arange(n_bins, dtype=torch.float32)[None, :]
            ang = 2 * torch.pi * k * f / n_bins
            self.register_buffer("dft", torch.cat([torch.cos(ang), torch.sin(ang)]).t() / n_bins**0.5)
        self.style_enc = mlp([n_in + context_frames * style_dft, hidden, hidden, style_dim])
        if conv_channels:
            # Pitch is a translation on the log-frequency axis: a convolution over bins
            # (kernel reaching up to ~5 harmonics above a bin) makes a salience map that moves
            # with the pitch and looks alike for every instrument.
            self.conv = nn.Sequential(
                nn.Conv1d(context_frames, conv_channels, conv_kernel, padding=conv_kernel // 2),
                nn.GELU(),
                nn.Conv1d(conv_channels, 1, 1),
            )
            self.content_enc = mlp([n_bins, hidden, content_dim])
        else:
            self.content_enc = mlp([n_in, hidden, hidden, content_dim])
        self.codebook = EMACodebook(n_atoms, content_dim, decay=ema_decay, dead_fraction=dead_fraction)
        self.dec_content = mlp([content_dim, hidden, n_bins])
        self.dec_style = mlp([style_dim, hidden, n_bins])

    def encode_fragments(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``frames [..., C, F]`` (raw log-magnitude) -> ``content [..., Dc]``, ``style [..., Ds]``."""
        x = normalise_frames(frames)
        flat = x.flatten(-2)
        if self.style_dft:
            spec = x @ self.dft  # [..., C, 2K]
            mag = torch.sqrt(spec[..., : self.style_dft] ** 2 + spec[..., self.style_dft :] ** 2 + 1e-6)
            style = self.style_enc(torch.cat([flat, mag.flatten(-2)], -1))
        else:
            style = self.style_enc(flat)
        if self.conv_channels:
            lead = x.shape[:-2]
            sal = self.conv(x.reshape(-1, self.context_frames, self.n_bins)).reshape(*lead, self.n_bins)
            content = self.content_enc(torch.softmax(sal, -1) * self.n_bins)
        else:
            content = self.content_enc(flat)
        if self.content_norm:
            # On a sphere of radius sqrt(Dc) the content cannot grow without bound: the hinges are
            # ratios, so nothing else fixes its scale, and a growing scale outruns the EMA atoms.
            content = F.normalize(content, dim=-1) * self.content_dim**0.5
        return content, style

    def decode(self, content_q: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """``content_q [..., Dc]``, ``style [..., Ds]`` -> ``logmag [..., F]`` (zero mean per frame)."""
        y = self.dec_content(content_q) + self.dec_style(style)
        return y - y.mean(-1, keepdim=True)

    def export_modules(self) -> tuple[nn.Module, nn.Module]:
        """(encoder, decoder) in the LatentModel layout (:mod:`train.v3.export`)."""
        return export_modules(self)


def build_net(cfg: Config) -> V3Net:
    """The (untrained) network ``cfg`` describes."""
    return V3Net(
        n_bins=cfg.features.n_bins, context_frames=cfg.context_frames, content_dim=cfg.content_dim,
        style_dim=cfg.style_dim, n_atoms=cfg.n_atoms, hidden=cfg.hidden, conv_channels=cfg.conv_channels,
        conv_kernel=cfg.conv_kernel, ema_decay=cfg.ema_decay, dead_fraction=cfg.dead_fraction,
        style_dft=cfg.style_dft, content_norm=cfg.content_norm,
    )
