"""Real-time phase-gradient heap integration (RTPGHI): STFT magnitude frames -> audio, streaming.

Průša & Holighaus (2017), "Phase vocoder done right" / Průša, Balazs & Søndergaard (2017),
"A noniterative method for reconstruction of phase from STFT magnitude", real-time variant.
For a Gaussian window ``exp(-pi t^2 / lam)`` the STFT phase gradient follows from the log
magnitude ``s``: with the phase referenced to the window centre, per frame (hop ``a`` samples)
and per bin (``M = n_fft``)

    dphi/dn = 2 pi a m / M + (a M / lam) ds/dm        (instantaneous frequency)
    dphi/dm = -(lam / (a M)) ds/dn                     (local group delay)

and a Hann window of ``M`` samples behaves like ``lam = 0.25645 M^2``. Each new frame's phase is
integrated from the previous frame (time direction, trapezoid rule) and along frequency, always
from the largest coefficient reached so far (a max-heap over the previous and the current frame);
coefficients below ``tol`` times the largest of the two frames get a seeded random phase.
``ds/dn`` is the centred difference with ``lookahead_frames=1`` (one frame later) or the
backward difference with ``lookahead_frames=0``.

Synthesis is a weighted overlap-add with the canonical dual of the analysis window, so an exact
phase reproduces the signal. Frame ``t`` describes input samples ``[(t + 1) hop - n_fft,
(t + 1) hop)`` (the causal framing of :mod:`audiosym.dsp.features`); its audio is final once frame
``t + 1 + lookahead`` has arrived, and blocks of any size are served from a FIFO, so the output
is the signal delayed by ``latency_samples = n_fft - 1 + lookahead_frames * hop`` samples.

Also here: :class:`LogToLinear`, the map from the 190-bin log-frequency features back to a
linear-frequency STFT magnitude. The heap integration runs in numba: with Python's heapq a
1025-bin frame took ~2.9 ms in all (one thread, this project's 2-core machine), compiled ~0.5 ms.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from audiosym.dsp.features import FeatureConfig, analysis_window, log_frequency_matrix
from audiosym.dsp.pitch import midi_to_hz
from audiosym.errors import ParameterError

HANN_LAMBDA = 0.25645  # lam / n_fft^2 of the Gaussian that stands in for a Hann window (LTFAT pghi docs)


def stft_magnitude(y: np.ndarray, *, n_fft: int = 2048, hop_length: int = 256) -> np.ndarray:
    """Causal linear STFT magnitude ``[len(y) // hop_length, n_fft // 2 + 1]`` of mono ``y``,
    framed and scaled exactly as :func:`audiosym.dsp.features.features` before its log-frequency map."""
    y = np.asarray(y, dtype=np.float64)
    buf = np.concatenate([np.zeros(n_fft - hop_length), y])
    frames = sliding_window_view(buf, n_fft)[::hop_length][: len(y) // hop_length]
    return np.abs(np.fft.rfft(frames * analysis_window(n_fft), axis=-1))


class LogToLinear:
    """Log-frequency magnitudes ``exp(logmag) [T, n_bins]`` -> linear STFT magnitude ``[T, n_fft//2+1]``.

    ``method="pinv"``: the Moore-Penrose pseudo-inverse of the features' own interpolation matrix
    ``W [n_bins, n_fft//2+1]``, applied to ``exp(logmag) - eps`` and clipped at 0. Below ~265 Hz
    the log bins are denser than the FFT bins, the system is overdetermined and the least-squares
    solution recovers the FFT bins; above, each log bin averages several FFT bins and the
    minimum-norm solution spreads its energy over them (harmonic peaks there are lost either way).
    It is consistent: mapping the result forward with ``W`` gives back the features where no
    clipping occurred. But the minimum-norm solution swings below zero between log-bin centres,
    and the clipped holes are cliffs in the log magnitude that throw the phase gradients.
    ``method="interp"``: linear interpolation of the log magnitude at each FFT bin's fractional
    log-frequency position (0 outside the feature range); smooth, no holes, not consistent.
    ``method="hybrid"`` (default): the larger of the two per bin: pinv's sharper structure where
    it is above the smooth envelope, the envelope in pinv's holes. It gave the closest RTPGHI
    output on a tuning set of notes disjoint from the benchmark's (benchmarks/rtpghi_tuning.py).
    """

    def __init__(self, cfg: FeatureConfig, *, method: str = "hybrid") -> None:
        if method not in ("pinv", "interp", "hybrid"):
            raise ParameterError(f"method={method!r} must be 'pinv', 'interp' or 'hybrid'")
        self.cfg, self.method = cfg, method
        self.matrix = np.linalg.pinv(log_frequency_matrix(cfg))  # [n_fft//2+1, n_bins]
        fft_hz = np.arange(cfg.n_fft // 2 + 1) * cfg.sample_rate / cfg.n_fft
        centre_hz = midi_to_hz(cfg.bin_midi(np.arange(cfg.n_bins)))
        with np.errstate(divide="ignore"):
            pos = cfg.midi_to_bin(69.0 + 12.0 * np.log2(fft_hz / 440.0))
        self.inside = (fft_hz >= centre_hz[0]) & (fft_hz <= centre_hz[-1])
        self.position = np.where(self.inside, pos, 0.0)

    def __call__(self, logmag: np.ndarray) -> np.ndarray:
        logmag = np.atleast_2d(np.asarray(logmag, dtype=np.float64))
        if logmag.shape[-1] != self.cfg.n_bins:
            raise ParameterError(
                f"logmag has {logmag.shape[-1]} bins; the features have n_bins={self.cfg.n_bins}"
            )
        pinv = np.clip((np.exp(logmag) - self.cfg.eps) @ self.matrix.T, 0.0, None)
        if self.method == "pinv":
            return pinv
        grid = np.arange(self.cfg.n_bins)
        interp = np.zeros_like(pinv)
        for i, row in enumerate(logmag):
            interp[i] = np.where(self.inside, np.exp(np.interp(self.position, grid, row)), 0.0)
        interp = np.clip(interp - self.cfg.eps, 0.0, None)
        return interp if self.method == "interp" else np.maximum(pinv, interp)


@dataclass(frozen=True)
class RTPGHIState:
    """Everything carried between calls: the frames waiting for their look-ahead ``pending
    [k, bins]``, the last synthesised frame (magnitude, log magnitude, phase, time gradient,
    ``[bins]`` each), frames synthesised so far, the overlap-add tail ``[n_fft - hop]`` and the
    final samples not yet returned ``fifo``."""

    pending: np.ndarray
    mag: np.ndarray
    logmag: np.ndarray
    phase: np.ndarray
    tgrad: np.ndarray
    frames_done: int
    ola: np.ndarray
    fifo: np.ndarray


class RTPGHI:
    """Streaming RTPGHI synthesiser: ``y, state = voc.process(mags, n_samples, state)``.

    ``mags [k, n_fft//2+1]`` are the magnitude frames completed during this block (frame ``t``
    completes at input sample ``(t + 1) * hop_length``), ``y [n_samples]`` float64. Any block
    size gives the same output as one whole-signal call. ``tol``: relative level below which a
    coefficient gets a random phase (seeded by ``seed`` and the frame index). The default suits
    true STFT magnitudes (-100 dB; 1e-3 loses much of their accuracy); magnitudes mapped from
    log-frequency features did best with 1e-3, decoded ones with 1e-2 (their low-level bins are
    mostly model noise; benchmarks/rtpghi_tuning.py).
    """

    def __init__(self, *, n_fft: int = 2048, hop_length: int = 256, lookahead_frames: int = 1,
                 tol: float = 1e-5, seed: int = 0) -> None:
        if n_fft <= 0 or hop_length <= 0 or n_fft % hop_length or n_fft // hop_length < 4:
            raise ParameterError(
                f"n_fft={n_fft}, hop_length={hop_length}: hop_length must divide n_fft at least "
                "4 times (phase gradients need a redundant STFT; the features use 2048/256)"
            )
        if lookahead_frames not in (0, 1):
            raise ParameterError(f"lookahead_frames={lookahead_frames!r} must be 0 or 1")
        if not 0.0 < tol < 1.0:
            raise ParameterError(f"tol={tol!r} must lie in (0, 1) (a relative magnitude)")
        self.n_fft, self.hop_length, self.lookahead_frames = n_fft, hop_length, lookahead_frames
        self.tol, self.seed = float(tol), int(seed)
        self.n_bins = n_fft // 2 + 1
        lam = HANN_LAMBDA * n_fft**2
        self._tscale = hop_length * n_fft / lam  # ds/dm -> phase advance per frame
        self._fscale = -lam / (hop_length * n_fft)  # ds/dn -> phase step per bin
        self._carrier = 2 * np.pi * hop_length * np.arange(self.n_bins) / n_fft
        # numpy's rfft references the phase to the frame start; the window centre is n_fft / 2
        # samples later, which multiplies bin m by (-1)^m.
        self._centre = np.where(np.arange(self.n_bins) % 2, -1.0, 1.0)
        w = analysis_window(n_fft)
        overlap = np.sum(w.reshape(-1, hop_length) ** 2, axis=0)  # sum of w^2 over the hops
        self.synthesis_window = w / np.tile(overlap, n_fft // hop_length)  # canonical dual
        self.latency_samples = n_fft - 1 + lookahead_frames * hop_length

    @classmethod
    def for_features(cls, cfg: FeatureConfig, **kwargs) -> RTPGHI:
        """The synthesiser matching a feature configuration's STFT (n_fft, hop)."""
        return cls(n_fft=cfg.n_fft, hop_length=cfg.hop_length, **kwargs)

    def init_state(self) -> RTPGHIState:
        z = np.zeros(self.n_bins)
        floor = np.full(self.n_bins, np.log(1e-12))
        prefill = self.lookahead_frames * self.hop_length + self.hop_length - 1
        return RTPGHIState(np.zeros((0, self.n_bins)), z, floor, z, self._carrier.copy(), 0,
                           np.zeros(self.n_fft - self.hop_length), np.zeros(prefill))

    def _log(self, mag: np.ndarray) -> np.ndarray:
        """Log magnitude floored at ``tol`` below the frame's peak (tiny values would make
        enormous, meaningless gradients)."""
        return np.log(np.maximum(mag, max(float(mag.max()) * self.tol, 1e-12)))

    def process(self, mags: np.ndarray, n_samples: int,
                state: RTPGHIState) -> tuple[np.ndarray, RTPGHIState]:
        mags = np.asarray(mags, dtype=np.float64)
        if mags.shape[-1:] != (self.n_bins,) or mags.ndim > 2:
            raise ParameterError(f"mags has shape {mags.shape}; expected [frames, {self.n_bins}] STFT magnitudes")
        if int(n_samples) < 0:
            raise ParameterError(f"n_samples={n_samples} must be >= 0")
        mags = mags.reshape(-1, self.n_bins)
        if not np.all(np.isfinite(mags)) or np.any(mags < 0):
            raise ParameterError("mags must be finite and non-negative STFT magnitudes")
        pending = np.concatenate([state.pending, mags])
        mag, logmag, phase, tgrad = state.mag, state.logmag, state.phase, state.tgrad
        done, ola = state.frames_done, state.ola
        out = [state.fifo]
        la, hop = self.lookahead_frames, self.hop_length
        integrate = _heap_kernel()
        while len(pending) > la:
            cur = pending[0]
            s = self._log(cur)
            s_next = self._log(pending[1]) if la else s
            ds_dn = 0.5 * (s_next - logmag) if la else s - logmag
            tg = self._carrier + self._tscale * np.gradient(s)
            fg = self._fscale * ds_dn
            new_phase = np.random.default_rng((self.seed, done)).uniform(-np.pi, np.pi, self.n_bins)
            integrate(mag, phase, tgrad, cur, tg, fg, self.tol, new_phase)
            frame = np.fft.irfft(cur * self._centre * np.exp(1j * new_phase), self.n_fft)
            acc = np.concatenate([ola, np.zeros(hop)]) + frame * self.synthesis_window
            out.append(acc[:hop])
            ola = acc[hop:]
            # Wrap to keep the phase small (float precision over long streams).
            mag, logmag, phase, tgrad = cur, s, np.mod(new_phase, 2 * np.pi), tg
            done += 1
            pending = pending[1:]
        ready = np.concatenate(out)
        if len(ready) < n_samples:
            raise ParameterError(
                f"{n_samples} samples asked with only {len(ready)} synthesised: pass every "
                f"magnitude frame completed in the block (one per {hop} input samples)"
            )
        return ready[:n_samples], RTPGHIState(pending.copy(), mag, logmag, phase, tgrad, done, ola,
                                              ready[n_samples:].copy())

    def synthesize(self, mags: np.ndarray) -> np.ndarray:
        """Whole-signal helper: ``[T * hop]`` samples for ``mags [T, bins]``, delayed by
        ``latency_samples`` (the tail still in the overlap-add buffer is not returned)."""
        mags = np.asarray(mags, dtype=np.float64).reshape(-1, self.n_bins)
        y, _ = self.process(mags, len(mags) * self.hop_length, self.init_state())
        return y


@functools.lru_cache(maxsize=1)
def _heap_kernel():
    """Heap integration of one frame, compiled with numba:
    ``integrate(mag_prev, phase_prev, tgrad_prev, mag, tgrad, fgrad, tol, phase)``.
    ``phase`` holds the random phases on entry and the integrated ones on exit.

    The max-heap holds (magnitude, bin, frame) with frame 0 = previous, 1 = current. Popping a
    previous-frame bin integrates in time to the same bin of the current frame; popping a
    current-frame bin integrates along frequency to its two neighbours. When the heap runs dry
    with bins left (an onset after silence), the largest remaining bin is seeded by time
    integration and the walk continues from there."""
    from audiosym.engine.vocoder.kernels import integrate

    return integrate
