"""Log-frequency magnitude features: ONE function for training, evaluation and live use.

A frame is the magnitude STFT of a causal Hann window, interpolated onto a
log-frequency axis (``bins_per_semitone`` bins per semitone from ``fmin_midi``),
then ``log(. + eps)``. On a log-frequency axis a change of pitch is a
translation, which is the physical symmetry both learning methods rely on.

Frame ``t`` covers samples ``[(t + 1) * hop_length - n_fft, (t + 1) * hop_length)``
(zeros before the signal start), so it only sees the past: ``features(y)`` on a
whole signal equals the concatenation of ``features_step`` over any blocking.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from audiosym.dsp.pitch import midi_to_hz
from audiosym.errors import ParameterError


@dataclass(frozen=True)
class FeatureConfig:
    """The feature contract shared by training, export and the engine.

    Defaults: 16 kHz; ``n_fft=2048`` samples = 128 ms window; ``hop_length=256``
    samples = 16 ms per frame; 190 bins at 2 per semitone from MIDI 24 (32.7 Hz)
    up to MIDI 118.5 (~7.6 kHz).
    """

    sample_rate: int = 16000
    n_fft: int = 2048
    hop_length: int = 256
    fmin_midi: float = 24.0
    bins_per_semitone: int = 2
    n_bins: int = 190
    eps: float = 1e-5

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_fft", "hop_length", "bins_per_semitone", "n_bins"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value <= 0:
                raise ParameterError(f"{name}={value!r} must be a positive integer")
        if self.hop_length > self.n_fft:
            raise ParameterError(
                f"hop_length={self.hop_length} must not exceed n_fft={self.n_fft}"
            )
        top_hz = float(midi_to_hz(self.bin_midi(self.n_bins - 1)))
        if top_hz >= self.sample_rate / 2:
            raise ParameterError(
                f"n_bins={self.n_bins} reaches {top_hz:.0f} Hz, above the Nyquist frequency "
                f"{self.sample_rate / 2:.0f} Hz; lower n_bins or fmin_midi"
            )

    def bin_midi(self, k):
        """Fractional MIDI pitch at the centre of log-frequency bin ``k``."""
        return self.fmin_midi + np.asarray(k, dtype=np.float64) / self.bins_per_semitone

    def midi_to_bin(self, midi):
        """Fractional bin index of a MIDI pitch."""
        return (np.asarray(midi, dtype=np.float64) - self.fmin_midi) * self.bins_per_semitone

    @property
    def frame_seconds(self) -> float:
        return self.hop_length / self.sample_rate

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FeatureConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ParameterError(
                f"unknown feature setting(s) {sorted(unknown)}; allowed: {sorted(known)}"
            )
        return cls(**d)


def analysis_window(n_fft: int) -> np.ndarray:
    """The features' periodic Hann window ``[n_fft]``, float64, scaled so that a full-scale sine
    peaks at magnitude ~1 (the vocoder and RTPGHI model the same window)."""
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    return window / (window.sum() / 2.0)


@functools.lru_cache(maxsize=8)
def _analysis(cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """(window [n_fft], log-frequency matrix [n_bins, n_fft // 2 + 1]), float64."""
    n = cfg.n_fft
    window = analysis_window(n)
    fft_hz = np.arange(n // 2 + 1) * cfg.sample_rate / n
    centre_hz = midi_to_hz(cfg.bin_midi(np.arange(cfg.n_bins)))
    step = 2.0 ** (1.0 / (12 * cfg.bins_per_semitone))
    # Triangular interpolation weights, never narrower than one FFT bin, so
    # low bins interpolate between FFT bins and high bins average over them.
    half_width = np.maximum(centre_hz * (step - 1.0), cfg.sample_rate / n)
    w = 1.0 - np.abs(fft_hz[None, :] - centre_hz[:, None]) / half_width[:, None]
    w = np.clip(w, 0.0, None)
    w /= w.sum(axis=1, keepdims=True)
    return window, w


def log_frequency_matrix(cfg: FeatureConfig) -> np.ndarray:
    """The ``[n_bins, n_fft // 2 + 1]`` matrix mapping STFT magnitudes to log-frequency bins."""
    return _analysis(cfg)[1].copy()


@functools.lru_cache(maxsize=8)
def sparse_log_frequency_matrix(cfg: FeatureConfig):
    """The log-frequency matrix in CSR form (shared, cached: do not modify): ~2 k of its 195 k
    entries are non-zero (each bin is a narrow triangle), so the sparse product is ~6x cheaper
    per frame. Each output is summed over its row's non-zeros in the same order for any number
    of frames, so whole-signal and block-by-block features stay identical."""
    from scipy.sparse import csr_matrix  # lazy: ~0.2 s; `import audiosym` imports this module

    return csr_matrix(_analysis(cfg)[1])


def _frames_to_features(frames: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    window, _ = _analysis(cfg)
    mag = np.abs(np.fft.rfft(frames * window, axis=-1))
    return np.log((sparse_log_frequency_matrix(cfg) @ mag.T).T + cfg.eps).astype(np.float32)


def _as_mono(y: np.ndarray, name: str = "y") -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ParameterError(f"{name} has shape {y.shape}; a mono 1-D signal is expected")
    if not np.issubdtype(y.dtype, np.floating):
        raise ParameterError(f"{name} has dtype {y.dtype}; floating-point audio is expected")
    return y.astype(np.float64, copy=False)


def init_state(cfg: FeatureConfig) -> np.ndarray:
    """Streaming state before the first sample: ``n_fft - hop_length`` zeros of history."""
    return np.zeros(cfg.n_fft - cfg.hop_length, dtype=np.float64)


def features_step(
    y: np.ndarray, state: np.ndarray, cfg: FeatureConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Streaming features: ``frames [k, n_bins], state = features_step(block, state, cfg)``.

    ``k`` is the number of hops completed by this block (often 0 for small blocks).
    """
    buf = np.concatenate([state, _as_mono(y)])
    n_frames = (len(buf) - (cfg.n_fft - cfg.hop_length)) // cfg.hop_length
    if n_frames <= 0:
        return np.zeros((0, cfg.n_bins), np.float32), buf
    frames = sliding_window_view(buf, cfg.n_fft)[:: cfg.hop_length][:n_frames]
    return _frames_to_features(frames, cfg), buf[n_frames * cfg.hop_length :].copy()


def features(y: np.ndarray, cfg: FeatureConfig | None = None) -> np.ndarray:
    """Log-frequency features of a whole mono signal: ``[len(y) // hop_length, n_bins]`` float32."""
    cfg = cfg or FeatureConfig()
    frames, _ = features_step(y, init_state(cfg), cfg)
    return frames
