"""SPS objective: :class:`SPSModel` (encoder + decoder + prior; ``forward(batch) -> (loss, logs)``
for the shared trainer) and its loss terms.

A batch holds ``B`` sequences of ``L`` notes, ``C`` context frames of ``F`` log-frequency bins
each; see :class:`train.sps.data.SequenceSampler` for how they are drawn.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as Fn
from torch import nn

from train.sps.config import Config
from train.sps.export import export_modules, onnx_modules
from train.sps.model import EquivariantDecoder, FrameEncoder, PlainDecoder, Prior


class SPSModel(nn.Module):
    """Encoder + decoder + prior; ``forward(batch) -> (loss, logs)`` for the shared trainer."""

    def __init__(self, cfg: Config, n_bins: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = FrameEncoder(
            n_bins=n_bins, context=cfg.context_frames, hidden=cfg.encoder_hidden,
            timbre_dim=cfg.timbre_dim, floor_nats=cfg.floor_nats, kind=cfg.encoder,
            channels=cfg.conv_channels, pitch_head=cfg.pitch_head, bins_per_unit=cfg.bins_per_unit,
            pitch_init=cfg.pitch_init, pitch_init_scale=cfg.pitch_init_scale,
            kernel_below=cfg.kernel_below,
        )
        if cfg.decoder == "equivariant":
            self.decoder: nn.Module = EquivariantDecoder(
                n_bins=n_bins, timbre_dim=cfg.timbre_dim, hidden=cfg.decoder_hidden,
                bins_per_unit=cfg.bins_per_unit,
            )
        else:
            self.decoder = PlainDecoder(n_bins=n_bins, timbre_dim=cfg.timbre_dim, hidden=cfg.decoder_hidden)
        self.prior = Prior(cfg.prior_hidden)

    def _sample(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return reparameterize(mu, logvar) if (self.cfg.vae and self.training) else mu

    def forward(self, batch: dict[str, torch.Tensor]):
        """batch: ``x [B, L, C, F]`` note frames, ``x_timbre [B, C, F]``, ``shifts [K, B]``, ``blur [1]``."""
        cfg = self.cfg
        x = batch["x"]
        b, seq, c, f = x.shape
        sigma = float(batch["blur"][0])
        pm, plv, tm, tlv = self.encoder(x.reshape(b * seq, c, f))  # [B*L, 1, .]
        pm, plv = pm.reshape(b, seq, 1), plv.reshape(b, seq, 1)
        z = self._sample(pm, plv)
        if cfg.timbre_from == "other":
            _, _, t_mu, t_lv = self.encoder(batch["x_timbre"])  # [B, 1, D]
        else:
            t_mu, t_lv = tm.reshape(b, seq, -1)[:, :1], tlv.reshape(b, seq, -1)[:, :1]
        timbre = self._sample(t_mu, t_lv)  # [B, 1, D]: one timbre per sequence, broadcast over notes
        target = torch.clamp(x[:, :, -1] - x[:, :, -1].amax(-1, keepdim=True), min=-cfg.floor_nats)
        recon = frame_mse(self.decoder(z, timbre), target, sigma)
        loss = cfg.w_recon * recon
        logs = {"recon": recon.detach()}
        if cfg.vae and cfg.kl_weight > 0:
            kl = kl_normal(pm, plv) + kl_normal(t_mu, t_lv)
            loss = loss + cfg.kl_weight * kl
            logs["kl"] = kl.detach()
        # prior: predict note i+1 from notes <= i; targets are detached encoder means
        z_in, z_next, x_next, tim = z[:, :-1], pm[:, 1:].detach(), target[:, 1:], timbre
        pred = self.prior(z_in)
        p_mse = ((pred - z_next) ** 2).mean()
        p_rec = frame_mse(self.decoder(pred, tim), x_next, sigma)
        loss = loss + cfg.w_prior_mse * p_mse + cfg.w_prior_recon * p_rec
        logs.update(prior_mse=p_mse.detach(), prior_recon=p_rec.detach())
        if cfg.K > 0:
            shifts = batch["shifts"].to(z.dtype)  # [K, B]
            zk = z_in.unsqueeze(0) + shifts[:, :, None, None]  # [K, B, L-1, 1]
            pk = self.prior(zk.reshape(cfg.K * b, seq - 1, 1)).reshape(cfg.K, b, seq - 1, 1)
            pk = pk - shifts[:, :, None, None]
            s_mse = ((pk - z_next.unsqueeze(0)) ** 2).mean()
            s_rec = frame_mse(
                self.decoder(pk, tim.unsqueeze(0)),
                x_next.unsqueeze(0).expand(cfg.K, -1, -1, -1), sigma,
            )
            loss = loss + cfg.w_sym_mse * s_mse + cfg.w_sym_recon * s_rec
            logs.update(sym_mse=s_mse.detach(), sym_recon=s_rec.detach())
        if cfg.w_lowpass > 0 and cfg.pitch_head == "harmonic":
            lp, kept = filter_invariance_loss(
                self.encoder, x.reshape(b * seq, c, f), batch["cutoff"].reshape(-1), slope=cfg.lowpass_slope,
                min_mass=cfg.lowpass_min_mass, sharpen=cfg.lowpass_sharpen)
            loss = loss + cfg.w_lowpass * lp
            logs.update(lowpass=lp.detach(), lowpass_kept=kept)
        over = torch.relu(pm.abs() - cfg.z_limit)
        loss = loss + (over**2).mean()
        z_std = pm.detach().std()
        logs["z_std"] = z_std
        return loss, logs

    def export_modules(self) -> tuple[nn.Module, nn.Module]:
        """(encoder, decoder) with the SPS layout: encoder(frames) -> (z_pitch, z_timbre);
        decoder(z_pitch, z_timbre) -> logmag. Means only (no sampling), no Python-side state."""
        return export_modules(self.encoder, self.decoder)

    def onnx_modules(self) -> tuple[nn.Module, nn.Module]:
        """``export_modules`` rewritten for onnxruntime (same numbers, fewer graph nodes); what
        export/onnx_graphs.py exports when a model offers it."""
        return onnx_modules(self.encoder, self.decoder)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``mu + exp(0.5 * logvar) * eps`` (the reference code wrongly used ``exp(logvar) * 0.5``)."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) summed over the last axis, averaged over the rest."""
    return (0.5 * (mu**2 + logvar.exp() - 1.0 - logvar)).sum(-1).mean()


def gaussian_blur(x: torch.Tensor, sigma_bins: float) -> torch.Tensor:
    """Blur ``x [..., F]`` along frequency (coarse-to-fine training); identity for sigma < 0.3."""
    if sigma_bins < 0.3:
        return x
    r = int(math.ceil(3 * sigma_bins))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma_bins) ** 2)
    k = (k / k.sum()).view(1, 1, -1)
    shape = x.shape
    y = Fn.conv1d(Fn.pad(x.reshape(-1, 1, shape[-1]), (r, r), mode="replicate"), k)
    return y.reshape(shape)


def frame_mse(pred: torch.Tensor, target: torch.Tensor, sigma_bins: float = 0.0) -> torch.Tensor:
    """MSE between log spectra after removing each frame's mean (loudness is not reconstructed)."""
    pred, target = gaussian_blur(pred, sigma_bins), gaussian_blur(target, sigma_bins)
    pred = pred - pred.mean(-1, keepdim=True)
    target = target - target.mean(-1, keepdim=True)
    return ((pred - target) ** 2).mean()


def filter_invariance_loss(encoder: FrameEncoder, frames: torch.Tensor, cutoff_bins: torch.Tensor, *,
                           slope: float, min_mass: float, sharpen: float):
    """Pitch does not change when a filter removes upper partials: low-pass each note above a
    random cutoff and ask the harmonic head's candidate posterior on the filtered frame to match
    the sharpened (``sharpen`` x logits), detached posterior on the unfiltered one (cross-entropy).

    ``frames [N, C, F]`` log-magnitudes (one output frame each), ``cutoff_bins [N]``. The roll-off
    (``slope`` nats per bin above the cutoff) acts through the per-frame normalisation: partials
    that end up more than ``floor_nats`` below the strongest survivor vanish. A note whose filtered
    frame keeps less than ``min_mass`` of its spectral-peak mass is left out (little left to read).
    Returns (mean cross-entropy over kept notes, kept fraction).
    Unlike an MSE on z_pitch, a cross-entropy cannot be met by flattening both posteriors (an MSE
    version collapsed the kernel to ~0), and its gradient raises the target candidate's logit
    wherever the filtered posterior's mass currently is (the soft-argmax gradient is only local).
    """
    f = frames.shape[-1]
    k = torch.arange(f, dtype=frames.dtype, device=frames.device)
    att = -slope * torch.relu(k - cutoff_bins.to(frames.dtype)[:, None])  # [N, F] nats
    _, mass_lp, q_logits = encoder.pitch_only(frames + att[:, None, :])
    _, mass, p_logits = encoder.pitch_only(frames)
    q_logits, p_logits = q_logits[:, -1], p_logits[:, -1]
    target = torch.softmax(sharpen * p_logits.detach(), -1)
    per = -(target * torch.log_softmax(q_logits, -1)).sum(-1)  # [N]
    keep = (mass_lp[:, -1] > min_mass * mass[:, -1]).to(frames.dtype)
    return (keep * per).sum() / keep.sum().clamp(min=1.0), keep.mean()
