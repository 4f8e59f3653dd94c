"""No-training pitch readers on the features SPS reads: the floor under every SPS number.

The SPS harmonic pitch head is a soft-argmax over a fixed log-frequency axis; what training adds
is its kernel. These readers use the same axis with a kernel written by hand (or none), so an
SPS ``r2_mean`` means something only next to theirs:

- ``harmonic_comb``: harmonics 1..5 weighted ``0.8^(h-1)``, minus their mean over the kernel's
  span (the SPS head's ``pitch_init='harmonic'`` kernel), soft-argmax at sharpness 40;
- ``flat_comb``: the same with every harmonic weighted 1;
- ``strongest_peak``: the bin of the frame's largest log-magnitude.

All read the newest frame only (no context); input ``frames [..., T, n_bins]`` natural-log
magnitudes, output MIDI pitch ``[..., T]`` float64.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from audiosym.dsp.features import FeatureConfig

FLOOR_NATS = 10.0  # log-magnitudes floored this far below the frame peak (the SPS encoder's floor)
PEAK_WIDTH = 13  # bins of the moving average that peak picking subtracts (as the SPS head)
HARMONICS = 5
SPAN_SEMITONES = 30.5  # the kernel sees 61 bins above the candidate at 2 bins a semitone (~5 harmonics)
SHARPNESS = 40.0  # soft-argmax sharpness (the SPS head's initial beta)


def normalize(frames: np.ndarray, *, floor_nats: float = FLOOR_NATS) -> np.ndarray:
    """Per-frame log-magnitude relative to the frame's peak, floored, scaled to ``[0, 1]``."""
    x = np.asarray(frames, np.float64)
    return np.maximum(x - x.max(axis=-1, keepdims=True), -floor_nats) / floor_nats + 1.0


def spectral_peaks(x: np.ndarray, *, width: int = PEAK_WIDTH) -> np.ndarray:
    """``max(x - moving average of x over width bins, 0)`` along the last axis (edges repeated)."""
    half = width // 2
    pad = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(half, half)], mode="edge")
    c = np.cumsum(pad, axis=-1)
    c = np.concatenate([np.zeros_like(c[..., :1]), c], axis=-1)
    avg = (c[..., width:] - c[..., :-width]) / width
    return np.maximum(x - avg, 0.0)


def comb_kernel(features: FeatureConfig, *, decay: float) -> np.ndarray:
    """Kernel ``[span]`` over the bins at and above a candidate: harmonic ``h`` at its bin offset
    with weight ``decay^(h-1)``, minus the kernel's mean (broadband energy scores nothing)."""
    span = int(round(SPAN_SEMITONES * features.bins_per_semitone)) + 1
    w = np.zeros(span)
    for h in range(1, HARMONICS + 1):
        off = int(round(features.bins_per_semitone * 12 * np.log2(h)))
        if off < span:
            w[off] += decay ** (h - 1)
    return w - w.mean()


def comb_pitch(frames: np.ndarray, features: FeatureConfig, *, decay: float,
               sharpness: float = SHARPNESS) -> np.ndarray:
    """Soft-argmax over candidate bins of the comb's harmonic sum of spectral peaks -> MIDI."""
    peaks = spectral_peaks(normalize(frames))
    kern = comb_kernel(features, decay=decay)
    n_bins = peaks.shape[-1]
    padded = np.concatenate([peaks, np.zeros((*peaks.shape[:-1], len(kern) - 1))], axis=-1)
    logits = sum(kern[j] * padded[..., j : j + n_bins] for j in np.flatnonzero(kern))
    logits = sharpness * np.asarray(logits)
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    pos = (p * np.arange(n_bins)).sum(-1) / p.sum(-1)
    return features.bin_midi(pos)


def strongest_peak_pitch(frames: np.ndarray, features: FeatureConfig) -> np.ndarray:
    """MIDI pitch of the bin with the largest log-magnitude in each frame."""
    return features.bin_midi(np.argmax(frames, axis=-1))


BASELINES: dict[str, Callable[[np.ndarray, FeatureConfig], np.ndarray]] = {
    "harmonic_comb": lambda f, cfg: comb_pitch(f, cfg, decay=0.8),
    "flat_comb": lambda f, cfg: comb_pitch(f, cfg, decay=1.0),
    "strongest_peak": strongest_peak_pitch,
}
