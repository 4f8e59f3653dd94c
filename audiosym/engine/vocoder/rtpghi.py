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
linear-frequency STFT magnitude, and :class:`RTPGHIVocoder`, the engine's ``"rtpghi"`` vocoder
(:class:`audiosym.engine.vocoder.base.Vocoder`). The heap integration runs in numba: with Python's heapq a
1025-bin frame took ~2.9 ms in all (one thread, this project's 2-core machine), compiled ~0.5 ms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from audiosym.dsp.features import FeatureConfig, analysis_window, log_frequency_matrix
from audiosym.dsp.pitch import midi_to_hz
from audiosym.dsp.resample import ResamplerState, StreamResampler
from audiosym.engine.vocoder.kernels import integrate
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


def _heap_kernel():
    """Heap integration of one frame, compiled with numba:
    ``integrate(mag_prev, phase_prev, tgrad_prev, mag, tgrad, fgrad, tol, phase)``.
    ``phase`` holds the random phases on entry and the integrated ones on exit.

    The max-heap holds (magnitude, bin, frame) with frame 0 = previous, 1 = current. Popping a
    previous-frame bin integrates in time to the same bin of the current frame; popping a
    current-frame bin integrates along frequency to its two neighbours. When the heap runs dry
    with bins left (an onset after silence), the largest remaining bin is seeded by time
    integration and the walk continues from there."""
    return integrate


@dataclass(frozen=True)
class MagnitudeUpdate:
    """The linear STFT magnitude ``[n_fft // 2 + 1]`` in effect from device sample ``offset``."""

    offset: int
    magnitude: np.ndarray


@dataclass(frozen=True)
class RTPGHIVocoderState:
    """Device samples returned so far, the magnitude in effect ``[n_fft // 2 + 1]``, the RTPGHI
    and output resampler states, and device-rate samples made but not yet returned ``fifo``."""

    n_samples: int
    magnitude: np.ndarray
    rtpghi: RTPGHIState
    resampler: ResamplerState
    fifo: np.ndarray


#: Model samples from a frame's completion to RTPGHI's output reaching half level, by look-ahead
#: frames: measured through the engine on decoded frames (see :class:`RTPGHIVocoder`), less the
#: mean wait for a hop and the output resampler. On true STFT magnitudes the step is longer
#: (bench vocoder's ``step_latency_ms``: 68 / 58 ms), decoded frames' onsets being softer.
STEP_SAMPLES = {1: 947, 0: 699}


class RTPGHIVocoder:
    """The engine's ``"rtpghi"`` vocoder: decoded frames -> linear magnitude -> RTPGHI at the model
    rate -> resampled to the device rate.

    ``read`` maps each decoded frame to a linear STFT magnitude (:class:`LogToLinear`, ``method``)
    scaled to a signal of unit RMS times the frame's velocity scale (decoded levels are arbitrary
    per frame; loudness comes from the engine). ``run`` feeds RTPGHI one magnitude per model-rate
    hop: frame ``t`` completes at model sample ``(t + 1) * hop`` (as the features do), i.e. at
    device sample ``ceil((t + 1) * hop * sample_rate / model_rate) - 1``, and takes the magnitude
    in effect there times the engine's ``gain`` there. Loudness therefore goes through the same
    synthesis window as the spectrum (16 ms steps, overlap-added) and arrives with it, so a note
    never starts with the previous note's spectrum. The pitch is the decoder's: ``f0_midi``, the
    harmonic model's target, is not used, and bends are heard as the engine re-decodes them.
    Every frame's position and value depends only on absolute sample positions, so any blocking
    gives the same output.

    Latency, measured (``latency_samples``): a new frame reaches half level ~70 ms later at any
    device rate with one frame look-ahead, ~55 ms without (shipped ``sps-default``, synth mode,
    MIDI 36-96, four onset phases per hop: single notes 54-89 ms and 41-70 ms): the wait for the
    next hop (8 ms on average), RTPGHI's synthesis window (:data:`STEP_SAMPLES`) and the output
    resampler (3 ms). The harmonic vocoder adds none, so this one suits offline rendering, where
    latency is compensated, more than playing live. Its level is what the phase reconstruction
    keeps of the mapped magnitude: 1-5 dB below the harmonic vocoder's there.
    ``n_harmonics``/``n_bands`` are the common constructor's
    (:class:`audiosym.engine.vocoder.base.VocoderFactory`) and unused: RTPGHI reconstructs every
    FFT bin. ``lookahead_frames``, ``tol``, ``method``: those chosen for decoded frames
    (benchmarks/rtpghi_tuning.py).
    """

    def __init__(self, cfg: FeatureConfig, *, sample_rate: int, ramp_samples: int, n_harmonics: int = 160,
                 n_bands: int = 16, lookahead_frames: int = 1, tol: float = 1e-2, method: str = "hybrid") -> None:
        self.cfg, self.sample_rate = cfg, int(sample_rate)
        self.to_linear = LogToLinear(cfg, method=method)
        self.rtpghi = RTPGHI.for_features(cfg, lookahead_frames=lookahead_frames, tol=tol)
        self.resampler = StreamResampler(sample_rate_in=cfg.sample_rate, sample_rate_out=self.sample_rate)
        # Parseval: a signal of RMS s gives sum |X|^2 = s^2 n_fft sum(w^2) / 2 over the rfft bins.
        w = analysis_window(cfg.n_fft)
        self._rms_per_norm = float(np.sqrt(2.0 / (cfg.n_fft * np.sum(w**2))))
        # The resampler's output lags the model-rate samples by a fraction of a model sample; a
        # few zeros up front always cover the difference, so every block can be served in full.
        self._lead = max(d - self._resampled(d * cfg.sample_rate // self.sample_rate)
                         for d in range(self.resampler.up + 1))
        # One frame now compiles (or loads the cached) heap kernel here, not in a callback.
        first = -(-cfg.hop_length * self.sample_rate // cfg.sample_rate)
        self.run(np.zeros(first), np.ones(first), [MagnitudeUpdate(0, np.ones(self.rtpghi.n_bins))], self.init_state())

    def _resampled(self, n_model: int) -> int:
        """Device samples the output resampler has made after ``n_model`` model-rate samples."""
        return (n_model * self.resampler.up - 1) // self.resampler.down + 1 if n_model > 0 else 0

    @property
    def latency_samples(self) -> int:
        model = self.cfg.hop_length / 2 + STEP_SAMPLES[self.rtpghi.lookahead_frames]
        return int(round(model * self.sample_rate / self.cfg.sample_rate + self.resampler.delay_samples_out + self._lead))

    def init_state(self) -> RTPGHIVocoderState:
        return RTPGHIVocoderState(0, np.zeros(self.rtpghi.n_bins), self.rtpghi.init_state(),
                                  self.resampler.init_state(), np.zeros(self._lead))

    def read(self, logmag: np.ndarray, f0_midi: np.ndarray, *, offsets: Sequence[int],
             scales: Sequence[float], jumps: Sequence[bool]) -> list[MagnitudeUpdate]:
        lin = self.to_linear(logmag)  # [R, n_fft // 2 + 1]
        rms = np.sqrt(np.sum(lin**2, axis=1)) * self._rms_per_norm
        return [MagnitudeUpdate(int(offset), lin[i] * (scale / rms[i] if rms[i] > 0 else 0.0))
                for i, (offset, scale) in enumerate(zip(offsets, scales))]

    def run(self, f0_midi: np.ndarray, gain: np.ndarray, updates: list[MagnitudeUpdate],
            state: RTPGHIVocoderState) -> tuple[np.ndarray, RTPGHIVocoderState]:
        n, d0 = len(gain), state.n_samples
        sr, model_sr, hop = self.sample_rate, self.cfg.sample_rate, self.cfg.hop_length
        m0, m1 = d0 * model_sr // sr, (d0 + n) * model_sr // sr  # model samples before / after
        magnitude, ui, frames = state.magnitude, 0, []
        for t in range(m0 // hop, m1 // hop):  # the frames that complete in this block
            at = -(-(t + 1) * hop * sr // model_sr) - 1 - d0
            while ui < len(updates) and updates[ui].offset <= at:
                magnitude, ui = updates[ui].magnitude, ui + 1
            frames.append(magnitude * gain[at])
        if updates[ui:]:
            magnitude = updates[-1].magnitude
        mags = np.array(frames).reshape(-1, self.rtpghi.n_bins)
        y_model, rtpghi_state = self.rtpghi.process(mags, m1 - m0, state.rtpghi)
        y, _, resampler_state = self.resampler.step(y_model, state.resampler)
        ready = np.concatenate([state.fifo, y])
        return ready[:n], RTPGHIVocoderState(d0 + n, magnitude, rtpghi_state, resampler_state, ready[n:].copy())
