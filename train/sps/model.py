"""SPS networks: frame encoder, (equivariant or plain) decoder, GRU prior.

Shapes: ``F`` log-frequency bins (190), ``C`` causal context frames, ``D`` timbre dims.
The encoder maps ``frames [N, T, F]`` to ``z_pitch [N, T', 1]`` and ``z_timbre [N, T', D]``
with ``T' = T - C + 1``; the decoder maps them back to ``logmag [N, T', F]`` (natural log
magnitude relative to the frame's peak, i.e. up to a per-frame additive constant).

The *equivariant* decoder draws the spectrum as ``envelope(k; timbre) + template(k - c * z_pitch;
timbre)``: pitch is a translation of the log-frequency axis, so making ``z_pitch`` a position on
that axis (``c`` bins per unit, fixed) leaves a folded or non-linear code no way to reconstruct.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as Fn
from torch import nn

HARMONIC_SPAN = 61  # bins above a candidate pitch seen by the harmonic pitch head (~5 harmonics)
PEAK_WIDTH = 13  # bins of the moving average that spectral peak picking subtracts


def spectral_peaks(x: torch.Tensor, width: int = PEAK_WIDTH) -> torch.Tensor:
    """``relu(x - moving average of x over width bins)`` along the last axis: keeps harmonic
    peaks, drops broad energy (bow noise, low rumble) that would otherwise win a harmonic sum."""
    shape = x.shape
    flat = x.reshape(-1, 1, shape[-1])
    avg = Fn.avg_pool1d(Fn.pad(flat, (width // 2, width // 2), mode="replicate"), width, stride=1)
    return torch.relu(flat - avg).reshape(shape)


def normalize_frames(x: torch.Tensor, floor_nats: float) -> torch.Tensor:
    """Per-frame loudness invariance: log-magnitude relative to the frame's peak, floored.

    ``x [..., F]`` natural-log magnitudes -> values in ``[-floor_nats, 0]``.
    """
    return torch.clamp(x - x.amax(dim=-1, keepdim=True), min=-floor_nats)


def _mlp(n_in: int, hidden: int, n_out: int, layers: int = 2) -> nn.Sequential:
    mods: list[nn.Module] = []
    d = n_in
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), nn.SiLU()]
        d = hidden
    mods.append(nn.Linear(d, n_out))
    return nn.Sequential(*mods)


class FrameEncoder(nn.Module):
    """Causal frame encoder: each output frame sees its own frame and the ``C - 1`` before it.

    ``forward(frames [N, T, F]) -> (pitch_mu, pitch_logvar [N, T', 1], timbre_mu, timbre_logvar [N, T', D])``.
    ``kind='mlp'`` flattens the context; ``kind='conv'`` runs 1-D convolutions along frequency
    with the context frames as channels (the paper's conv encoder over a note block).
    """

    bin_pos: torch.Tensor

    def __init__(self, *, n_bins: int, context: int, hidden: int, timbre_dim: int,
                 floor_nats: float, kind: str = "mlp", channels: int = 32,
                 pitch_head: str = "linear", bins_per_unit: float = 24.0,
                 pitch_init: str = "harmonic", pitch_init_scale: float = 0.3, kernel_below: int = 0) -> None:
        super().__init__()
        self.context, self.floor_nats, self.kind, self.timbre_dim = context, floor_nats, kind, timbre_dim
        self.pitch_head, self.bins_per_unit, self.n_bins = pitch_head, bins_per_unit, n_bins
        if pitch_head == "harmonic":
            # Translation-equivariant pitch head: a learnable harmonic-sum detector
            # logit[k] = beta * sum_j w[c, j] peaks[c, k + j] over the 61 bins above k, then
            # z_pitch = soft-argmax position / bins_per_unit. Shifting the spectrum shifts z exactly
            # (away from the edges). pitch_init='harmonic' starts w at harmonics 1..5 (offsets
            # 24*log2(h) bins, weights 0.8^(h-1)) minus their mean: prior knowledge that tones are
            # harmonic, no labels. NOTE: this initialisation alone is already a pitch estimator.
            # kernel_below > 0 also lets the kernel see that many bins BELOW the candidate
            # (offset j of the kernel = bin k + j - kernel_below)
            self.kernel_below = kernel_below
            w = torch.zeros(context, kernel_below + HARMONIC_SPAN)
            if pitch_init == "harmonic":
                for h in range(1, 6):
                    w[-1, kernel_below + int(round(2 * 12 * math.log2(h)))] += 0.8 ** (h - 1)
                w[-1] -= w[-1].mean()
            else:  # "random": the same head learned from nothing (tiny: std 0.003, so the
                # soft-argmax starts nearly flat and the kernel's shape comes from training)
                w.normal_(0.0, pitch_init_scale)
            self.pitch_kernel = nn.Parameter(w)
            self.pitch_log_beta = nn.Parameter(torch.tensor(math.log(40.0)))
        if pitch_head == "harmonic":
            self.register_buffer("bin_pos", (torch.arange(n_bins, dtype=torch.float32) - n_bins / 2) / bins_per_unit,
                                 persistent=False)
        if kind == "mlp":
            self.body = _mlp(context * n_bins, hidden, hidden, layers=2)
        elif kind == "conv":
            self.conv = nn.Sequential(
                nn.Conv1d(context, channels, 7, padding=3), nn.SiLU(),
                nn.Conv1d(channels, channels, 5, stride=2, padding=2), nn.SiLU(),
                nn.Conv1d(channels, channels, 5, stride=2, padding=2), nn.SiLU(),
            )
            n_conv = channels * ((n_bins + 3) // 4)
            self.body = _mlp(n_conv, hidden, hidden, layers=1)
        else:
            raise ValueError(f"encoder kind {kind!r}")
        self.head = nn.Linear(hidden, 2 + 2 * timbre_dim)

    def windows(self, frames: torch.Tensor) -> torch.Tensor:
        """``frames [N, T, F]`` log-magnitudes -> causal windows ``[N, T', C, F]`` of normalised
        frames in [0, 1] (each output frame with the ``C - 1`` before it)."""
        c, tp = self.context, frames.shape[1] - self.context + 1
        x = normalize_frames(frames, self.floor_nats) / self.floor_nats + 1.0  # [0, 1]
        return torch.stack([x[:, i : i + tp] for i in range(c)], dim=2)

    def forward(self, frames: torch.Tensor):
        n, t, f = frames.shape
        c = self.context
        tp = t - c + 1
        win = self.windows(frames)  # [N, T', C, F]
        if self.kind == "mlp":
            h = self.body(win.reshape(n, tp, c * f))
        else:
            h = self.conv(win.reshape(n * tp, c, f))
            h = self.body(h.reshape(n, tp, -1))
        out = self.head(h)
        d = self.timbre_dim
        p_mu = out[..., 0:1]
        if self.pitch_head == "harmonic":
            p_mu = self.harmonic_pitch(win)[0]
        # log-variances clamped: an unbounded logvar overflowed exp() in the KL term and killed a
        # 10k-step paper-setting run (loss inf at step 5431); means are untouched
        return (p_mu, out[..., 1:2].clamp(-12.0, 6.0), out[..., 2 : 2 + d],
                out[..., 2 + d :].clamp(-12.0, 6.0))

    def harmonic_pitch(self, win: torch.Tensor):
        """The harmonic pitch head alone: ``win [N, T', C, F]`` normalised frames in [0, 1] ->
        (z_pitch ``[N, T', 1]``, peak mass ``[N, T']`` = summed spectral peaks of the last frame,
        soft-argmax logits ``[N, T', F]`` over candidate bins, sharpness included)."""
        n, tp, c, f = win.shape
        peaks = spectral_peaks(win.reshape(n * tp, c, f))
        xw = Fn.pad(peaks, (self.kernel_below, HARMONIC_SPAN - 1))
        logits = Fn.conv1d(xw, self.pitch_kernel.unsqueeze(0)).reshape(n, tp, f)
        beta = self.pitch_log_beta.exp()
        z = (torch.softmax(logits * beta, dim=-1) * self.bin_pos).sum(-1, keepdim=True)
        return z, peaks[:, -1].sum(-1).reshape(n, tp), logits * beta

    def pitch_only(self, frames: torch.Tensor):
        """``frames [N, T, F]`` log-magnitudes -> :meth:`harmonic_pitch`'s (z, mass, logits)
        without running the timbre network (harmonic head only)."""
        return self.harmonic_pitch(self.windows(frames))


def fourier_features(z: torch.Tensor, n: int) -> torch.Tensor:
    """``z [..., 1] -> [..., 2n]``: sin/cos of pi * 2^k * z, k = 0..n-1 (lets a scalar draw sharp shapes)."""
    freqs = math.pi * (2.0 ** torch.arange(n, dtype=z.dtype, device=z.device))
    a = z * freqs
    return torch.cat([torch.sin(a), torch.cos(a)], dim=-1)


class PlainDecoder(nn.Module):
    """MLP of (Fourier features of z_pitch, z_timbre) -> logmag ``[..., F]`` (the ablation)."""

    def __init__(self, *, n_bins: int, timbre_dim: int, hidden: int, n_fourier: int = 6) -> None:
        super().__init__()
        self.n_fourier = n_fourier
        self.net = _mlp(1 + 2 * n_fourier + timbre_dim, hidden, n_bins, layers=2)

    def forward(self, z_pitch: torch.Tensor, z_timbre: torch.Tensor) -> torch.Tensor:
        z_timbre = z_timbre.expand(*z_pitch.shape[:-1], z_timbre.shape[-1])
        return self.net(torch.cat([z_pitch, fourier_features(z_pitch, self.n_fourier), z_timbre], -1))


class EquivariantDecoder(nn.Module):
    """``logmag[k] = envelope(k; timbre) + template(k - c * z_pitch; timbre)``.

    The template lives on a relative axis of ``2 F`` bins centred on 0 and is read at fractional
    positions by linear interpolation (differentiable in ``z_pitch``). ``c = bins_per_unit``
    (24 = one octave per unit of z_pitch). Shifting ``z_pitch`` by ``d`` translates the template
    part by exactly ``c * d`` bins.
    """

    k: torch.Tensor

    def __init__(self, *, n_bins: int, timbre_dim: int, hidden: int, bins_per_unit: float) -> None:
        super().__init__()
        self.n_bins, self.bins_per_unit = n_bins, bins_per_unit
        self.n_rel = 2 * n_bins
        self.body = _mlp(timbre_dim, hidden, hidden, layers=1)
        self.envelope = nn.Linear(hidden, n_bins)
        self.template = nn.Linear(hidden, self.n_rel)
        self.register_buffer("k", torch.arange(n_bins, dtype=torch.float32), persistent=False)

    def forward(self, z_pitch: torch.Tensor, z_timbre: torch.Tensor) -> torch.Tensor:
        """``z_pitch [..., 1]``, ``z_timbre [..., D]`` (leading axes broadcast) -> ``[..., F]``."""
        h = Fn.silu(self.body(z_timbre))
        env = self.envelope(h)
        tmpl = self.template(h)  # [..., R]
        pos = self.k - self.bins_per_unit * z_pitch + self.n_rel / 2  # [..., F] index into template
        pos = pos.clamp(0.0, self.n_rel - 1.001)
        # z_timbre may be shared across notes ([B, 1, D] with z_pitch [B, L, 1]): the timbre nets
        # then run once per sequence and only the cheap read-out runs per note
        tmpl = tmpl.expand(*pos.shape[:-1], tmpl.shape[-1])
        return env + read_template(tmpl, pos)


def read_template(tmpl: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """``tmpl [..., R]`` read at fractional positions ``pos [..., F]`` (in ``[0, R - 1)``, same
    leading shape) by linear interpolation; differentiable in ``pos``."""
    i0 = torch.floor(pos)
    frac = pos - i0
    i0 = i0.long()
    v0 = torch.gather(tmpl, -1, i0)
    v1 = torch.gather(tmpl, -1, i0 + 1)
    return v0 + frac * (v1 - v0)


class Prior(nn.Module):
    """GRU over a sequence of z_pitch ``[B, L, 1]`` predicting the next one ``[B, L, 1]``."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.gru = nn.GRU(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h, _ = self.gru(z)
        return z + self.head(h)  # residual: predicting the step keeps the output on z's scale
