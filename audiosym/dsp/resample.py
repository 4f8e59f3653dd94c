"""Streaming rational resampling with explicit state (device rate -> model rate for the encoder).

A fixed polyphase FIR (Kaiser-windowed, the window method of scipy.signal.firwin, written out
in :func:`_design` so the engine never imports scipy.signal, ~1 s of start-up per process)
applied output sample by output sample: output ``j`` is the dot product of the input samples up to ``floor(j * down / up)`` with
one phase of the filter. Every output depends only on the input, never on how it was blocked,
so ``y, state = resample_step(x, state)`` over any blocking equals one whole-signal call,
to float rounding (the dot products run in a small numba kernel, the same code for every output).

Why not ``soxr.ResampleStream``: it is also chunk-invariant (checked), but its state is an opaque
C object that cannot be snapshot, and at ``LQ`` it holds back 6-7 ms (``HQ``: 9-21 ms) before
releasing output; this filter's group delay is ~3 ms and its state is two numbers and an array.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from math import gcd

import numba
import numpy as np
from scipy.special import (
    i0 as bessel_i0,  # the Bessel function scipy's Kaiser window uses (bit for bit)
)

from audiosym.errors import ParameterError

#: Passband edge (Hz) kept for the encoder: the top feature bin is ~7.6 kHz.
CUTOFF_HZ = 7700.0
#: Transition width (Hz) and stopband attenuation (dB) of the anti-aliasing filter.
TRANSITION_HZ = 600.0
ATTENUATION_DB = 60.0


@dataclass(frozen=True)
class ResamplerState:
    """``history``: the last ``taps_per_phase - 1`` input samples (float64); ``n_in``/``n_out``:
    samples consumed/produced so far."""

    history: np.ndarray
    n_in: int = 0
    n_out: int = 0


@functools.lru_cache(maxsize=8)
def _design(sr_in: int, sr_out: int) -> tuple[int, int, np.ndarray]:
    """(up, down, polyphase filter [up, taps_per_phase]) for ``sr_in -> sr_out``.

    The filter is ``scipy.signal.firwin(numtaps, cutoff, window=("kaiser", beta), fs=fs_up)``
    with ``numtaps, beta = scipy.signal.kaiserord(ATTENUATION_DB, width)``, computed here with
    the same operations in the same order (bit for bit, tested against scipy): importing
    scipy.signal costs ~1 s of CPU, which dominated a batch of short files (issue #16).
    """
    g = gcd(sr_in, sr_out)
    up, down = sr_out // g, sr_in // g
    fs_up = sr_in * up
    cutoff = min(CUTOFF_HZ, 0.5 * min(sr_in, sr_out) - TRANSITION_HZ / 2)
    # kaiserord: Kaiser's formulas for the order and beta (attenuation > 50 dB)
    numtaps = int(np.ceil((ATTENUATION_DB - 7.95) / 2.285 / (np.pi * TRANSITION_HZ / (0.5 * fs_up)) + 1))
    beta = 0.1102 * (ATTENUATION_DB - 8.7)
    numtaps = int(np.ceil(numtaps / up) * up)
    # firwin, lowpass band [0, cutoff], scaled to unit gain at DC
    right = float(np.asarray([cutoff], dtype=np.float64)[0] / float(0.5 * fs_up))
    m = np.arange(0, numtaps, dtype=np.float64) - 0.5 * (numtaps - 1)
    h = right * np.sinc(right * m)
    n, alpha = np.arange(0, numtaps, dtype=np.float64), (numtaps - 1) / 2.0
    h *= bessel_i0(beta * np.sqrt(1 - ((n - alpha) / alpha) ** 2.0)) / bessel_i0(np.asarray(beta, dtype=np.float64))
    h /= np.sum(h * np.cos(np.pi * m * 0.0))
    h = h * up
    poly = h.reshape(-1, up).T.copy()  # poly[p, t] = h[p + t * up]
    return up, down, poly


@numba.njit(cache=True, nogil=True)
def _polyphase_kernel(buf, start, phase, rev):  # pragma: no cover - compiled
    """``y[j] = sum_t buf[start[j] + t] * rev[phase[j], t]`` with ``rev`` the polyphase filter
    with its taps reversed (``rev[p, t] = poly[p, k - 1 - t]``, so the dot product reads both
    arrays forwards), compiled with numba (a librosa dependency); each dot product is one BLAS
    ``ddot`` (SIMD, unaligned loads in a fixed order from the start of the vectors), so the
    result differs from a strictly sequential sum by float rounding (~1e-15) and each output is
    the same computation on the same inputs whatever the blocking (tested bit for bit)."""
    k = rev.shape[1]
    y = np.empty(start.shape[0])
    for j in range(start.shape[0]):
        s0 = start[j]
        y[j] = np.dot(buf[s0:s0 + k], rev[phase[j]])
    return y


class StreamResampler:
    """Resample a mono stream from ``sample_rate_in`` to ``sample_rate_out`` (Hz).

    ``delay_samples_out`` is the filter's group delay in output samples (~3 ms); a 16 kHz ->
    16 kHz resampler is the identity with no delay.
    """

    def __init__(self, *, sample_rate_in: int, sample_rate_out: int) -> None:
        for name, v in (("sample_rate_in", sample_rate_in), ("sample_rate_out", sample_rate_out)):
            if not isinstance(v, int | np.integer) or v <= 0:
                raise ParameterError(f"{name}={v!r} must be a positive integer (Hz)")
        self.sample_rate_in = int(sample_rate_in)
        self.sample_rate_out = int(sample_rate_out)
        self.identity = self.sample_rate_in == self.sample_rate_out
        if self.identity:
            self.up, self.down, self.poly = 1, 1, np.ones((1, 1))
        else:
            self.up, self.down, self.poly = _design(self.sample_rate_in, self.sample_rate_out)
            self._rev = np.ascontiguousarray(self.poly[:, ::-1])
            # Compile (or load the cached kernel) now, not inside the first audio callback.
            _polyphase_kernel(np.zeros(self.poly.shape[1]), np.zeros(1, np.int64), np.zeros(1, np.int64),
                              self._rev)

    @property
    def taps_per_phase(self) -> int:
        return self.poly.shape[1]

    @property
    def delay_samples_out(self) -> float:
        if self.identity:
            return 0.0
        return (self.poly.size - 1) / 2 / self.down

    def init_state(self) -> ResamplerState:
        return ResamplerState(history=np.zeros(self.taps_per_phase - 1, dtype=np.float64))

    def step(self, x: np.ndarray, state: ResamplerState) -> tuple[np.ndarray, np.ndarray, ResamplerState]:
        """Consume ``x [n]`` (input rate); return ``(y [m] float64, ready [m], state)``.

        ``ready[i]`` is the offset in ``x`` of the input sample whose arrival completed
        output ``i`` (all outputs are causal: they never wait for later input).
        """
        x = np.asarray(x, dtype=np.float64)
        n = len(x)
        n_total = state.n_in + n
        if self.identity:
            ready = np.arange(n)
            return x.copy(), ready, replace(state, n_in=n_total, n_out=n_total)
        up, down, k = self.up, self.down, self.taps_per_phase
        # Output j uses input samples up to i0 = floor(j * down / up).
        j_end = (n_total * up - 1) // down + 1 if n_total > 0 else 0
        j = np.arange(state.n_out, j_end, dtype=np.int64)
        buf = np.concatenate([state.history, x])
        base = state.n_in - (k - 1)  # absolute input index of buf[0]
        i0 = (j * down) // up
        phase = j * down - i0 * up
        # Output j's window is buf[i0 - base - (k - 1) .. i0 - base], read forwards with the reversed taps.
        y = _polyphase_kernel(buf, (i0 - base - (k - 1)).astype(np.int64), phase.astype(np.int64), self._rev)
        ready = i0 - state.n_in
        new_state = ResamplerState(history=buf[len(buf) - (k - 1):].copy(), n_in=n_total, n_out=int(j_end))
        return y, ready, new_state

    def resample(self, x: np.ndarray) -> np.ndarray:
        """Whole-signal convenience: ``step`` from a fresh state."""
        return self.step(x, self.init_state())[0]
