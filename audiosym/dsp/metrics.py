"""Signal-comparison metrics shared by the benchmarks (numpy + librosa, torch-free)."""

from __future__ import annotations

import librosa
import numpy as np

MRSTFT_FFTS = (256, 512, 1024, 2048)


def mrstft_distance(x: np.ndarray, ref: np.ndarray, *, ffts: tuple[int, ...] = MRSTFT_FFTS) -> float:
    """Multi-resolution STFT distance of ``x`` to ``ref`` (equal lengths; lower is closer).

    For each ``n_fft`` (hop ``n_fft // 4``): spectral convergence ``|S_ref - S_x| / |S_ref|``
    plus the mean absolute difference of ``log(S + 1e-5)``; averaged over the resolutions.
    The log term depends on level, so callers bring both signals to the same RMS first.
    """
    total = 0.0
    for n_fft in ffts:
        sx = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=n_fft // 4))
        sref = np.abs(librosa.stft(ref, n_fft=n_fft, hop_length=n_fft // 4))
        total += float(np.linalg.norm(sref - sx)) / max(float(np.linalg.norm(sref)), 1e-9)
        total += float(np.mean(np.abs(np.log(sref + 1e-5) - np.log(sx + 1e-5))))
    return total / len(ffts)
