"""V3 network: frame encoder -> (content quantised to a K-atom EMA codebook, style) -> decoder.

Shapes: a training batch holds ``B`` samples of ``L`` fragments; each fragment is ``C``
(context) feature frames of ``F`` log-frequency bins: ``frames [B, L, C, F]``. The
encoder turns the C frames ending at a frame into one content vector ``[Dc]`` and one
style vector ``[Ds]``, so it runs live one frame per hop with C - 1 frames of history.

Losses (Wu et al., ICLR 2025, see shared/REFERENCE.md §2) on mean pairwise distances
(mpd): content CF/CS, style SS/SF, sample SS/CS and fragment CF/SF hinges with
relativity r, MSE reconstruction, commitment; plus our vocabulary-invariance term
(symmetric Chamfer distance between the content sets of every pair of samples / CF).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from audiosym.errors import ParameterError


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
        return V3Encoder(self), V3Decoder(self)


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
