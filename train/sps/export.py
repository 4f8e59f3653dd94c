"""SPS encoder/decoder wrappers for ONNX export: the LatentModel layout, means only, no state.

``export_modules(encoder, decoder) -> (encoder_module, decoder_module)`` with
``encoder_module(frames [N, T, F]) -> (z_pitch [N, T', 1], z_timbre [N, T', D])`` and
``decoder_module(z_pitch [N, T, 1], z_timbre [N, T, D]) -> logmag [N, T, F]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as Fn
from torch import nn

from train.core.device import model_device
from train.sps.model import PEAK_WIDTH, EquivariantDecoder, FrameEncoder, read_template


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


# -- the same maths with fewer onnxruntime nodes -------------------------------------------------
# At batch 1 (one frame per call, as the engine runs) onnxruntime's time is per-node dispatch, not
# arithmetic: the literal export of the training forward was 64 encoder + 39 decoder nodes for the
# session-1 preset (72 + 39 with the two-sided pitch kernel of today's tiny), most
# of them shape bookkeeping (window stacking, padding, reshapes, broadcasting). The rewrites
# below compute the same function from the trained weights with 18 encoder + 26 decoder nodes:
# - the encoder runs channel-first ([N, F, T]): the causal window + first Linear is one Conv1d
#   over time (kernel C), the MLP's other Linears are 1x1 convolutions;
# - the pitch head's peak picking ``relu(x - replicate-padded moving average)`` is a linear map
#   followed by a ReLU (a 1x1 convolution with the matrix ``(I - A) / floor``), and its harmonic
#   sum over the context frames (zero padded along frequency) is one Conv1d over time whose
#   [F, F, C] weight is the banded kernel; the soft-argmax read-out is a 1x1 convolution with the
#   bin positions; the frame normalisation's ``/ floor + 1`` is folded into the weights;
# - the decoder's template read-out gathers directly from ``[N, T, R]`` (no broadcast expand).
# Parity with the training forward is checked by ``audiosym export`` at every export.


def onnx_modules(encoder: FrameEncoder, decoder: nn.Module) -> tuple[nn.Module, nn.Module]:
    """Graph-friendly equivalents of :func:`export_modules` where a rewrite exists (MLP encoder
    with the harmonic pitch head; equivariant decoder), else the literal wrappers."""
    enc: nn.Module = _ExportEncoder(encoder)
    if (encoder.kind == "mlp" and encoder.pitch_head == "harmonic" and _is_silu_mlp(encoder.body)
            and len(list(encoder.body)) >= 3):  # a first and a last Linear (folded into the head)
        enc = _FastHarmonicEncoder(encoder)
    dec: nn.Module = _ExportDecoder(decoder)
    if isinstance(decoder, EquivariantDecoder) and _is_silu_mlp(decoder.body):
        dec = _FastEquivariantDecoder(decoder)
    return enc, dec


def _is_silu_mlp(body: nn.Module) -> bool:
    mods = list(body)  # type: ignore[call-overload]
    return (len(mods) >= 1 and len(mods) % 2 == 1 and all(isinstance(m, nn.Linear) for m in mods[0::2])
            and all(isinstance(m, nn.SiLU) for m in mods[1::2]))


def _moving_average_matrix(n: int, width: int) -> torch.Tensor:
    """``A [n, n]`` with ``(A @ x)[k]`` = mean of ``x`` over ``width`` bins centred on ``k``,
    replicate-padded at both ends (what ``spectral_peaks`` computes with avg_pool1d)."""
    a = torch.zeros(n, n, dtype=torch.float64)
    r = width // 2
    for k in range(n):
        for j in range(k - r, k + r + 1):
            a[k, min(max(j, 0), n - 1)] += 1.0 / width
    return a


class _FastHarmonicEncoder(nn.Module):
    """``frames [N, T, F] -> (z_pitch [N, T', 1], z_timbre [N, T', D])`` of a FrameEncoder with
    ``kind='mlp'`` and ``pitch_head='harmonic'``; weights derived from it once, in float64."""

    def __init__(self, enc: FrameEncoder) -> None:
        super().__init__()
        c, f, floor, d = enc.context, enc.n_bins, float(enc.floor_nats), enc.timbre_dim
        # the constant matrices are built on the host (the band's loop is 23k small writes) and
        # placed beside the trained weights, so the module runs where the model is
        dev = model_device(enc)
        self.floor = floor
        mods = list(enc.body)  # type: ignore[call-overload]
        linears = [m for m in mods if isinstance(m, nn.Linear)]
        first = linears[0]
        w = first.weight.detach().double()  # [H, C * F], input = concat over context of x / floor + 1
        h = w.shape[0]
        # conv over time: weight [H, F, C] with w_conv[h, f, i] = w[h, i * F + f] / floor
        self.w1 = nn.Parameter((w.reshape(h, c, f).permute(0, 2, 1) / floor).float(), requires_grad=False)
        self.b1 = nn.Parameter((first.bias.detach().double() + w.sum(1)).float(), requires_grad=False)
        # hidden Linears (each followed by SiLU) as 1x1 convolutions; the body's last Linear has
        # no activation, so it and the head's timbre rows fold into one matrix
        self.hidden = nn.ParameterList()
        for lin in linears[1:-1]:
            self.hidden.append(nn.Parameter(lin.weight.detach().clone().unsqueeze(-1), requires_grad=False))
            self.hidden.append(nn.Parameter(lin.bias.detach().clone(), requires_grad=False))
        last = linears[-1]
        head_w = enc.head.weight.detach().double()[2 : 2 + d]
        head_b = enc.head.bias.detach().double()[2 : 2 + d]
        self.w_out = nn.Parameter((head_w @ last.weight.detach().double()).float().unsqueeze(-1), requires_grad=False)
        self.b_out = nn.Parameter((head_w @ last.bias.detach().double() + head_b).float(), requires_grad=False)
        # peaks = relu((I - A) x / floor): the "+1" of the normalisation cancels (rows of A sum to 1)
        eye = torch.eye(f, dtype=torch.float64)
        self.w_peaks = nn.Parameter(((eye - _moving_average_matrix(f, PEAK_WIDTH)) / floor).float().unsqueeze(-1).to(dev),
                                    requires_grad=False)
        # harmonic sum: logits[k] = beta * sum_i sum_j kernel[i, j] * peaks_i[k + j], zero past F
        kern = enc.pitch_kernel.detach().double().cpu()  # [C, span]
        beta = float(enc.pitch_log_beta.detach().double().exp())
        band = torch.zeros(f, f, c, dtype=torch.float64)
        lo = enc.kernel_below  # the kernel's first tap reads bin k - lo
        for k in range(f):
            for j in range(kern.shape[1]):
                if 0 <= k + j - lo < f:
                    band[k, k + j - lo, :] = kern[:, j] * beta
        self.w_pitch = nn.Parameter(band.float().to(dev), requires_grad=False)
        self.w_pos = nn.Parameter(enc.bin_pos.detach().clone().reshape(1, f, 1), requires_grad=False)

    def forward(self, frames: torch.Tensor):
        x = frames.transpose(1, 2)  # [N, F, T]
        x = torch.clamp(x - x.amax(dim=1, keepdim=True), min=-self.floor)
        h = Fn.silu(Fn.conv1d(x, self.w1, self.b1))  # [N, H, T']
        for i in range(0, len(self.hidden), 2):
            h = Fn.silu(Fn.conv1d(h, self.hidden[i], self.hidden[i + 1]))
        timbre = Fn.conv1d(h, self.w_out, self.b_out).transpose(1, 2)  # [N, T', D]
        peaks = torch.relu(Fn.conv1d(x, self.w_peaks))  # [N, F, T]
        logits = Fn.conv1d(peaks, self.w_pitch)  # [N, F, T']
        z = Fn.conv1d(torch.softmax(logits, dim=1), self.w_pos).transpose(1, 2)  # [N, T', 1]
        return z, timbre


class _FastEquivariantDecoder(nn.Module):
    """``(z_pitch [N, T, 1], z_timbre [N, T, D]) -> logmag [N, T, F]`` of an EquivariantDecoder:
    envelope and template from one matrix product, the template read by two GatherElements."""

    k: torch.Tensor

    def __init__(self, dec: EquivariantDecoder) -> None:
        super().__init__()
        if not _is_silu_mlp(dec.body):
            raise ValueError("the equivariant decoder's body is an MLP of Linear and SiLU layers")
        self.body = nn.ParameterList()
        for lin in [m for m in dec.body if isinstance(m, nn.Linear)]:  # type: ignore[attr-defined]
            self.body.append(nn.Parameter(lin.weight.detach().t().clone(), requires_grad=False))
            self.body.append(nn.Parameter(lin.bias.detach().clone(), requires_grad=False))
        self.w_out = nn.Parameter(torch.cat([dec.envelope.weight, dec.template.weight]).detach().t().clone(),
                                  requires_grad=False)
        self.b_out = nn.Parameter(torch.cat([dec.envelope.bias, dec.template.bias]).detach().clone(), requires_grad=False)
        self.n_bins, self.n_rel, self.c = dec.n_bins, dec.n_rel, float(dec.bins_per_unit)
        self.register_buffer("k", dec.k.clone(), persistent=False)

    def forward(self, z_pitch: torch.Tensor, z_timbre: torch.Tensor) -> torch.Tensor:
        h = z_timbre
        for i in range(0, len(self.body), 2):  # Linear, SiLU, ..., Linear, then the decoder's SiLU
            h = Fn.silu(torch.matmul(h, self.body[i]) + self.body[i + 1])
        out = torch.matmul(h, self.w_out) + self.b_out  # [N, T, F + R]
        env, tmpl = out[..., : self.n_bins], out[..., self.n_bins :]
        pos = (self.k - self.c * z_pitch + self.n_rel / 2).clamp(0.0, self.n_rel - 1.001)  # [N, T, F], as trained
        return env + read_template(tmpl, pos)
