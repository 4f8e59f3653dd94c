"""Harmonic-plus-noise vocoder: decoded log-frequency magnitude frames -> audio at the device rate.

The engine's default vocoder (``"harmonic"``): :class:`HarmonicNoiseVocoder` implements
:class:`audiosym.engine.vocoder.base.Vocoder` with a :class:`SpectrumReader` and a
:class:`HarmonicNoiseSynth`.

Why this and not phase reconstruction: the pitch is known exactly (MIDI through the preset's
calibration), so oscillators at ``n * f0`` give exact pitch and an immediate note-on, and run
directly at the device rate (no output resampling, no synthesis window to wait for).

Analysis (once per decoded frame, :meth:`SpectrumReader.read`): the frame's harmonic comb is
aligned to the target pitch (a +-1 semitone search absorbs calibration residual), each harmonic's
amplitude is read at its log-frequency bin and divided by the response a unit-amplitude comb
would give there (a model of the feature extractor: Hann kernel magnitudes summed on the FFT
grid, mapped by the same log-frequency matrix), so unresolved high harmonics are not
under-estimated. What the harmonic model does not explain is noise, summed into ``n_bands``
log-spaced bands. Amplitudes are normalised to unit RMS: the decoded level is arbitrary (a
per-frame constant), loudness comes from the engine.

Synthesis (:meth:`HarmonicNoiseSynth.run`): phase-continuous oscillators, amplitudes ramped
linearly sample by sample towards each new frame over ``ramp_samples`` (no clicks at frame or
block boundaries), harmonics faded out before ``min(top feature bin, 0.45 * sample_rate)``;
noise = periodic band-limited noise tables (seeded, looping seamlessly) times band gains, the top
band continued at the same density up to the model rate's Nyquist frequency.

Band extension (``band_extension=True``, output rates >= 32 kHz, :mod:`audiosym.timbre.band`):
the synth gets ``EXTENDED_HARMONICS`` partials up to ``0.49 * sample_rate`` (24 kHz at most) and
five more noise bands from 8 to 24 kHz (above 22.05 kHz, where a 44.1 kHz measurement ends, the
profile's top values go on: stopping there measured worse at 48 kHz, 0.739 against 0.702). A frame read with a band row (its timbre's stored profile
at the frame's pitch) has its harmonics from 7 kHz up and its high noise bands filled from that
row, anchored on its own decoded harmonics between 2.5 and 7 kHz; a frame without one sounds as
without the extension (the same 8 kHz taper, silent high bands).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from audiosym.dsp.features import FeatureConfig, analysis_window, sparse_log_frequency_matrix
from audiosym.dsp.pitch import midi_to_hz
from audiosym.engine.vocoder.kernels import read_rows, synth
from audiosym.timbre import band as bandmod

_OVERSAMPLE = 32  # Hann kernel table resolution (points per FFT bin)
_KERNEL_HALF = 4  # kernel support: +-4 FFT bins (the Hann sidelobes beyond are < -40 dB)
_RAYLEIGH_MEAN = 0.8862  # mean / rms of a Rayleigh-distributed noise magnitude
_NOISE_TABLE = 1 << 16
EXTENDED_HARMONICS = 360  # partials with a band extension: f0 >= 60 Hz reaches 21.6 kHz


def band_edges_hz(cfg: FeatureConfig, n_bands: int) -> np.ndarray:
    """``n_bands + 1`` log-spaced noise band edges from 50 Hz to the top feature bin."""
    top = float(midi_to_hz(cfg.bin_midi(cfg.n_bins - 1)))
    return np.geomspace(50.0, top, n_bands + 1)


class SpectrumReader:
    """Turns decoded ``logmag [R, n_bins]`` + pitch ``f0_midi [R]`` into harmonic amplitudes
    ``[R, n_harmonics]`` and noise band gains ``[R, n_bands]``, both in linear units of a signal
    with unit RMS."""

    def __init__(self, cfg: FeatureConfig, *, n_harmonics: int = 160, n_bands: int = 16) -> None:
        self.cfg, self.n_harmonics, self.n_bands = cfg, n_harmonics, n_bands
        self.top_hz = float(midi_to_hz(cfg.bin_midi(cfg.n_bins - 1)))
        self.bin_hz = cfg.sample_rate / cfg.n_fft
        self.wlog = sparse_log_frequency_matrix(cfg)
        n = cfg.n_fft
        spec = np.abs(np.fft.rfft(analysis_window(n), n * _OVERSAMPLE))  # the features' window
        self.kernel = spec[: _KERNEL_HALF * _OVERSAMPLE + 2]  # |W(delta)|, delta >= 0
        centres = midi_to_hz(cfg.bin_midi(np.arange(cfg.n_bins)))
        edges = band_edges_hz(cfg, n_bands)
        self.band_of_bin = np.clip(np.searchsorted(edges, centres, side="right") - 1, -1, n_bands)
        self.band_width_hz = np.diff(edges)
        # Band noise of RMS s gives a mean feature magnitude s * sqrt(sr / (2 BW)) * sqrt(6 / N) * 0.886.
        self.noise_scale = 1.0 / (
            np.sqrt(cfg.sample_rate / (2 * self.band_width_hz)) * np.sqrt(6.0 / n) * _RAYLEIGH_MEAN
        )
        self._align_deltas = np.linspace(-1.0, 1.0, 17)  # semitones searched around the target
        counts = np.bincount(self.band_of_bin[(self.band_of_bin >= 0) & (self.band_of_bin < n_bands)],
                             minlength=n_bands)
        self._band_norm = self.noise_scale / np.maximum(counts, 1)  # mean residual -> band RMS
        # Scalars for the compiled reader: bin_hz, top_hz, fmin_midi, bins_per_semitone, -, FFT bins,
        # the features' eps, kernel oversampling, kernel half-width (FFT bins).
        self._params = np.array([self.bin_hz, self.top_hz, cfg.fmin_midi, cfg.bins_per_semitone, 0.0,
                                 n // 2 + 1, cfg.eps, _OVERSAMPLE, _KERNEL_HALF], dtype=np.float64)
        self.read(np.zeros((1, cfg.n_bins)), np.array([60.0]))  # compile now, not in a callback

    def read(self, logmag: np.ndarray, f0_midi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logmag = np.atleast_2d(np.asarray(logmag, dtype=np.float64))
        f0_midi = np.atleast_1d(np.asarray(f0_midi, dtype=np.float64))
        amps = np.zeros((len(logmag), self.n_harmonics))
        noise = np.zeros((len(logmag), self.n_bands))
        _reader_kernel()(np.ascontiguousarray(logmag), f0_midi, self._params, self.kernel, self.wlog.data,
                         self.wlog.indices, self.wlog.indptr, self._align_deltas, self.band_of_bin,
                         self._band_norm, amps, noise)
        return amps, noise


def _reader_kernel():
    """The analysis of one decoded frame, compiled with numba (see SpectrumReader): align the
    comb, read each harmonic at its bin divided by the unit comb's response there, put what the
    harmonic model leaves into the noise bands, normalise to unit RMS. ``read_rows(logmag [R, bins],
    f0 [R], ...)`` does every row (``exp(logmag - max)`` first); writes ``amps``/``noise``."""
    return read_rows


@functools.lru_cache(maxsize=4)
def noise_tables(sample_rate: int, edges_hz: tuple[float, ...], length: int = _NOISE_TABLE) -> np.ndarray:
    """``[n_bands, length]`` float64 unit-RMS band-limited noise, periodic in ``length`` (seed 0)."""
    rng = np.random.default_rng(0)
    freqs = np.fft.rfftfreq(length, 1.0 / sample_rate)
    out = np.zeros((len(edges_hz) - 1, length), dtype=np.float64)
    for b in range(len(edges_hz) - 1):
        band = (freqs >= edges_hz[b]) & (freqs < min(edges_hz[b + 1], 0.5 * sample_rate))
        spec = np.where(band, np.exp(2j * np.pi * rng.random(len(freqs))), 0.0)
        x = np.fft.irfft(spec, length)
        rms = np.sqrt(np.mean(x**2))
        out[b] = x / rms if rms > 0 else 0.0
    return out


@functools.lru_cache(maxsize=4)
def _scaled_tables(sample_rate: int, edges_hz: tuple[float, ...], top_gain: float, top_index: int = -1) -> np.ndarray:
    """``noise_tables`` with band ``top_index``'s RMS times ``top_gain`` (read-only): the model's
    top band, the last one unless band-extension bands follow it."""
    tables = noise_tables(sample_rate, edges_hz).copy()
    tables[top_index] *= top_gain
    tables.flags.writeable = False
    return tables


@functools.lru_cache(maxsize=4)
def _noise_tables_frames(sample_rate: int, edges_hz: tuple[float, ...], top_gain: float,
                         top_index: int = -1) -> np.ndarray:
    """``_scaled_tables`` transposed to ``[length, n_bands]`` (one sample's bands contiguous)."""
    return np.ascontiguousarray(_scaled_tables(sample_rate, edges_hz, top_gain, top_index).T)


def _synth_kernel():
    """The whole synthesis loop, compiled with numba (a librosa dependency) on first use.

    Per sample ``t``: apply the updates at ``t``; phase += f0 / sample_rate (wrapped to [0, 1));
    ramp weight ``w = min((ramp_done + 1) / ramp, 1)``; if ``gain[t] != 0``:
    ``y[t] = gain[t] (sum_n a_n taper_n sin(2 pi n phase) + sum_b g_b table[pos, b])`` with
    ``a = to + (w - 1)(to - from)`` (likewise the band gains ``g``). Each harmonic is a phasor
    rotated by its own ``exp(i 2 pi n f0 / sample_rate)`` per sample (independent lanes, so the
    compiler vectorises them), re-spun from the exact phase accumulator every 256 samples and
    whenever f0, the amplitudes or a silent gap intervene, so rounding never accumulates beyond
    ~1e-14. The sum stops at the last harmonic with a non-zero amplitude and at the band limit
    (the taper is 0 there). Blocking changes the result only by float rounding.
    Returns ``(y, phase, ramp_done, noise_pos)``; ``amps_*``/``noise_*`` are updated in place.
    """
    return synth


@dataclass(frozen=True)
class SynthState:
    """Oscillator phase (cycles, 0..1), amplitude ramp (from, to, samples done), noise position."""

    phase: float
    amps_from: np.ndarray
    amps_to: np.ndarray
    noise_from: np.ndarray
    noise_to: np.ndarray
    ramp_done: int
    noise_pos: int = 0


@dataclass(frozen=True)
class Update:
    """New targets from sample ``offset`` on; ``jump``: set at once (only when silent)."""

    offset: int
    amps: np.ndarray
    noise: np.ndarray
    jump: bool = False


class HarmonicNoiseSynth:
    """Oscillator bank + band noise at ``sample_rate``; ``ramp_samples`` per amplitude change."""

    def __init__(self, cfg: FeatureConfig, *, sample_rate: int, ramp_samples: int,
                 n_harmonics: int = 160, n_bands: int = 16, extend_hz: float | None = None) -> None:
        self.sample_rate, self.ramp_samples = int(sample_rate), max(int(ramp_samples), 1)
        ext = len(bandmod.NOISE_EDGES) - 1 if extend_hz else 0
        self.n_harmonics, self.n_bands = n_harmonics, n_bands + ext
        top = float(midi_to_hz(cfg.bin_midi(cfg.n_bins - 1)))
        self.limit_hz = float(extend_hz) if extend_hz else min(top, 0.45 * sample_rate)
        # The top noise band goes on past the top feature bin up to the model rate's Nyquist
        # frequency (what the features cannot see, a recording at the model rate still holds; an
        # empty gap there costs the output its "air"), at the spectral density the reader measured.
        edges = band_edges_hz(cfg, n_bands)
        self.noise_top_hz = min(max(float(edges[-1]), 0.5 * cfg.sample_rate), 0.5 * self.sample_rate)
        measured = min(float(edges[-1]), 0.5 * self.sample_rate) - edges[-2]
        top_gain = float(np.sqrt((self.noise_top_hz - edges[-2]) / measured)) if measured > 0 else 1.0
        edges[-1] = self.noise_top_hz
        if ext:  # the extension's bands, from where the model's top band ends
            edges = np.r_[edges, np.maximum(bandmod.NOISE_EDGES[1:], self.noise_top_hz + 1.0)]
        edges_key = tuple(float(e) for e in edges)
        top = n_bands - 1  # the model's top band (extension bands follow it)
        self.tables = _scaled_tables(self.sample_rate, edges_key, top_gain, top)  # [n_bands, length]
        self._tables_t = _noise_tables_frames(self.sample_rate, edges_key, top_gain, top)  # [length, n_bands]
        self.harmonic_numbers = np.arange(1, n_harmonics + 1, dtype=np.float64)
        self.run(np.full(1, 60.0), np.ones(1), [Update(0, np.ones(n_harmonics), np.ones(self.n_bands))],
                 self.init_state())  # compile (or load the cached kernel) now, not in a callback

    def init_state(self) -> SynthState:
        zh, zb = np.zeros(self.n_harmonics), np.zeros(self.n_bands)
        return SynthState(0.0, zh, zh, zb, zb, self.ramp_samples, 0)

    def run(self, f0_midi: np.ndarray, gain: np.ndarray, updates: list[Update],
            state: SynthState) -> tuple[np.ndarray, SynthState]:
        """Audio ``[n]`` float64 for per-sample ``f0_midi [n]`` and ``gain [n]``; ``updates``
        sorted by offset (those at offset ``n`` only change the returned state). One compiled
        loop over the samples (see ``_synth_kernel``); no per-update Python."""
        u = len(updates)
        u_off = np.fromiter((up.offset for up in updates), np.int64, u)
        u_amps = np.empty((u, self.n_harmonics))
        u_noise = np.empty((u, self.n_bands))
        for i, up in enumerate(updates):
            u_amps[i], u_noise[i] = up.amps, up.noise
        u_jump = np.fromiter((bool(up.jump) for up in updates), np.bool_, u)
        af, at = state.amps_from.astype(np.float64), state.amps_to.astype(np.float64)
        nf, nt = state.noise_from.astype(np.float64), state.noise_to.astype(np.float64)
        y, phase, ramp_done, noise_pos = _synth_kernel()(
            np.ascontiguousarray(f0_midi, dtype=np.float64), np.ascontiguousarray(gain, dtype=np.float64),
            u_off, u_amps, u_noise, u_jump, af, at, nf, nt, float(state.phase), int(state.ramp_done),
            int(state.noise_pos), self._tables_t, self.ramp_samples, self.limit_hz, float(self.sample_rate))
        return y, SynthState(float(phase), af, at, nf, nt, int(ramp_done), int(noise_pos))


class HarmonicNoiseVocoder:
    """The :class:`audiosym.engine.vocoder.base.Vocoder` of harmonic-plus-noise: ``read`` is
    :meth:`SpectrumReader.read` times each frame's scale, ``run`` is :meth:`HarmonicNoiseSynth.run`.
    No added latency: a frame sounds from its offset, ramped in over ``ramp_samples``.

    ``band_extension``: at output rates >= ``audiosym.timbre.band.MIN_RATE`` the synth reaches up to
    ``band.limit_hz(sample_rate)`` and ``read`` takes per-frame band rows (see the module
    docstring); ``extends_band`` says whether it does."""

    latency_samples = 0

    def __init__(self, cfg: FeatureConfig, *, sample_rate: int, ramp_samples: int, n_harmonics: int = 160,
                 n_bands: int = 16, band_extension: bool = False) -> None:
        self.reader = SpectrumReader(cfg, n_harmonics=n_harmonics, n_bands=n_bands)
        self.extends_band = bool(band_extension) and bandmod.extends(sample_rate)
        self._n_read_harmonics, self._n_read_bands = n_harmonics, n_bands
        if self.extends_band:
            self.extend_hz = bandmod.limit_hz(sample_rate)
            self.synth = HarmonicNoiseSynth(cfg, sample_rate=sample_rate, ramp_samples=ramp_samples,
                                            n_harmonics=max(n_harmonics, EXTENDED_HARMONICS), n_bands=n_bands,
                                            extend_hz=self.extend_hz)
            # What the plain synth's taper does to a frame without a band row (applied in read).
            self._plain_limit = min(self.reader.top_hz, 0.45 * sample_rate)
        else:
            self.synth = HarmonicNoiseSynth(cfg, sample_rate=sample_rate, ramp_samples=ramp_samples,
                                            n_harmonics=n_harmonics, n_bands=n_bands)

    def init_state(self) -> SynthState:
        return self.synth.init_state()

    def read(self, logmag: np.ndarray, f0_midi: np.ndarray, *, offsets: Sequence[int],
             scales: Sequence[float], jumps: Sequence[bool],
             bands: Sequence[tuple[np.ndarray, np.ndarray] | None] | None = None) -> list[Update]:
        amps, noise = self.reader.read(logmag, f0_midi)
        if self.extends_band:
            amps, noise = self._extend(amps, noise, np.atleast_1d(np.asarray(f0_midi, dtype=np.float64)),
                                       bands or [None] * len(amps))
        return [Update(offset, amps[i] * scale, noise[i] * scale, jump)
                for i, (offset, scale, jump) in enumerate(zip(offsets, scales, jumps))]

    def _extend(self, amps: np.ndarray, noise: np.ndarray, f0_midi: np.ndarray,
                bands: Sequence[tuple[np.ndarray, np.ndarray] | None]) -> tuple[np.ndarray, np.ndarray]:
        r = len(amps)
        full_a = np.zeros((r, self.synth.n_harmonics))
        full_n = np.zeros((r, self.synth.n_bands))
        full_a[:, : amps.shape[1]] = amps
        full_n[:, : noise.shape[1]] = noise
        for i in range(r):
            f0 = float(midi_to_hz(f0_midi[i]))
            row = bands[i] if i < len(bands) else None
            if row is None:  # as the plain synth's taper would play it
                fh = np.arange(1, amps.shape[1] + 1) * f0
                lim = self._plain_limit
                full_a[i, : amps.shape[1]] *= np.where(fh >= lim, 0.0,
                                                       np.where(fh > 0.9 * lim, (lim - fh) / (0.1 * lim), 1.0))
                continue
            bandmod.extend(full_a[i], full_n[i, noise.shape[1]:], f0, row, self.extend_hz)
        return full_a, full_n

    def run(self, f0_midi: np.ndarray, gain: np.ndarray, updates: list[Update],
            state: SynthState) -> tuple[np.ndarray, SynthState]:
        return self.synth.run(f0_midi, gain, updates, state)
