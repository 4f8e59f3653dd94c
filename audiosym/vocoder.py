"""Harmonic-plus-noise vocoder: decoded log-frequency magnitude frames -> audio at the device rate.

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
noise = periodic band-limited noise tables (seeded, looping seamlessly) times band gains.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .features import FeatureConfig, log_frequency_matrix
from .pitch import midi_to_hz

_OVERSAMPLE = 32  # Hann kernel table resolution (points per FFT bin)
_KERNEL_HALF = 4  # kernel support: +-4 FFT bins (the Hann sidelobes beyond are < -40 dB)
_RAYLEIGH_MEAN = 0.8862  # mean / rms of a Rayleigh-distributed noise magnitude
_NOISE_TABLE = 1 << 16
_CHUNK = 4096


def band_edges_hz(cfg: FeatureConfig, n_bands: int) -> np.ndarray:
    """``n_bands + 1`` log-spaced noise band edges from 50 Hz to the top feature bin."""
    top = float(midi_to_hz(cfg.bin_midi(cfg.n_bins - 1)))
    return np.geomspace(50.0, top, n_bands + 1)


class SpectrumReader:
    """Turns decoded ``logmag [R, n_bins]`` + pitch ``f0_midi [R]`` into harmonic amplitudes
    ``[R, n_harmonics]`` and noise band gains ``[R, n_bands]``, both in linear units of a signal
    with unit RMS."""

    def __init__(self, cfg: FeatureConfig, *, n_harmonics: int = 160, n_bands: int = 16) -> None:
        from scipy.sparse import csr_matrix

        self.cfg, self.n_harmonics, self.n_bands = cfg, n_harmonics, n_bands
        self.top_hz = float(midi_to_hz(cfg.bin_midi(cfg.n_bins - 1)))
        self.bin_hz = cfg.sample_rate / cfg.n_fft
        self.wlog = csr_matrix(log_frequency_matrix(cfg))
        n = cfg.n_fft
        window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
        window /= window.sum() / 2.0  # as features.py: a unit sine peaks at magnitude 1
        spec = np.abs(np.fft.rfft(window, n * _OVERSAMPLE))
        self.kernel = spec[: _KERNEL_HALF * _OVERSAMPLE + 2]  # |W(delta)|, delta >= 0
        centres = midi_to_hz(cfg.bin_midi(np.arange(cfg.n_bins)))
        edges = band_edges_hz(cfg, n_bands)
        self.band_of_bin = np.clip(np.searchsorted(edges, centres, side="right") - 1, -1, n_bands)
        self.band_width_hz = np.diff(edges)
        # Band noise of RMS s gives a mean feature magnitude s * sqrt(sr / (2 BW)) * sqrt(6 / N) * 0.886.
        self.noise_scale = 1.0 / (
            np.sqrt(cfg.sample_rate / (2 * self.band_width_hz)) * np.sqrt(6.0 / n) * _RAYLEIGH_MEAN
        )
        self.log2n = 12.0 * np.log2(np.arange(1, n_harmonics + 1))
        self._align_deltas = np.linspace(-1.0, 1.0, 17)  # semitones searched around the target
        self._align_offsets = self._align_deltas[:, None] + self.log2n[None, :8]
        self._align_weights = 1.0 / np.arange(1, 9)
        self._band_bins = np.flatnonzero((self.band_of_bin >= 0) & (self.band_of_bin < n_bands))
        self._band_idx = self.band_of_bin[self._band_bins]
        counts = np.bincount(self._band_idx, minlength=n_bands)
        self._band_norm = self.noise_scale / np.maximum(counts, 1)  # mean residual -> band RMS
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}

    def _comb_matrix(self, f_hz: np.ndarray) -> np.ndarray:
        """``[n_bins, h]``: modelled feature magnitudes of a unit sine at each of ``f_hz``
        (Hann kernel on the FFT grid, then the log-frequency matrix; no interference)."""
        pos = f_hz / self.bin_hz
        k = np.floor(pos)[:, None] + np.arange(-_KERNEL_HALF + 1, _KERNEL_HALF + 1)[None, :]
        d = np.abs(k - pos[:, None]) * _OVERSAMPLE
        lo = np.minimum(d.astype(np.int64), len(self.kernel) - 2)
        frac = np.minimum(d - lo, 1.0)
        kv = self.kernel[lo] * (1 - frac) + self.kernel[lo + 1] * frac
        kv[d >= _KERNEL_HALF * _OVERSAMPLE] = 0.0
        n_fft_bins = self.cfg.n_fft // 2 + 1
        ok = (k >= 0) & (k < n_fft_bins)
        cols = np.broadcast_to(np.arange(len(f_hz))[:, None], k.shape)
        spectra = np.zeros((n_fft_bins, len(f_hz)))
        spectra[k[ok].astype(np.int64), cols[ok]] = kv[ok]
        return np.asarray(self.wlog @ spectra)

    def _interp(self, mag: np.ndarray, bins: np.ndarray) -> np.ndarray:
        return np.interp(bins, np.arange(len(mag)), mag, left=0.0, right=0.0)

    def read(self, logmag: np.ndarray, f0_midi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logmag = np.atleast_2d(np.asarray(logmag, dtype=np.float64))
        f0_midi = np.atleast_1d(np.asarray(f0_midi, dtype=np.float64))
        amps = np.zeros((len(logmag), self.n_harmonics))
        noise = np.zeros((len(logmag), self.n_bands))
        for r in range(len(logmag)):
            amps[r], noise[r] = self._read_one(logmag[r], float(f0_midi[r]))
        return amps, noise

    def _harmonics(self, cents: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For a comb at ``cents / 100`` MIDI: (frequencies [h] Hz, fractional bins [h], unit-comb
        response at those bins [h], comb matrix [n_bins, h]) of the harmonics below the top bin.
        Cached per cent (at most 256 combs, a few MB)."""
        hit = self._cache.get(cents)
        if hit is None:
            m0 = cents / 100.0
            f = float(midi_to_hz(m0)) * np.arange(1, self.n_harmonics + 1)
            h = int(np.count_nonzero(f < self.top_hz))
            bins = self.cfg.midi_to_bin(m0 + self.log2n[:h])
            comb = self._comb_matrix(f[:h])
            rho = np.maximum(self._interp(comb.sum(axis=1), bins), 1e-3)
            hit = (f[:h], bins, rho, comb)
            if len(self._cache) >= 256:
                self._cache.pop(next(iter(self._cache)))  # oldest first
            self._cache[cents] = hit
        return hit

    def _read_one(self, logmag: np.ndarray, f0_midi: float) -> tuple[np.ndarray, np.ndarray]:
        mag = np.exp(logmag - logmag.max())
        # Align the comb: the decoded pitch may sit a little off the target (calibration residual).
        grid = self.cfg.midi_to_bin(f0_midi + self._align_offsets)
        score = (self._interp(mag, grid.ravel()).reshape(grid.shape) * self._align_weights).sum(1)
        m0 = f0_midi + self._align_deltas[int(np.argmax(score))]
        f, bins, rho, comb = self._harmonics(int(round(m0 * 100)))
        amps = np.zeros(self.n_harmonics)
        amps[: len(f)] = self._interp(mag, bins) / rho
        residual = np.maximum(mag - comb @ amps[: len(f)], 0.0)
        sums = np.bincount(self._band_idx, residual[self._band_bins], minlength=self.n_bands)
        noise = sums * self._band_norm
        power = 0.5 * np.sum(amps**2) + np.sum(noise**2)
        scale = 1.0 / np.sqrt(power) if power > 0 else 0.0
        return amps * scale, noise * scale


@functools.lru_cache(maxsize=4)
def noise_tables(sample_rate: int, edges_hz: tuple[float, ...], length: int = _NOISE_TABLE) -> np.ndarray:
    """``[n_bands, length]`` float32 unit-RMS band-limited noise, periodic in ``length`` (seed 0)."""
    rng = np.random.default_rng(0)
    freqs = np.fft.rfftfreq(length, 1.0 / sample_rate)
    out = np.zeros((len(edges_hz) - 1, length), dtype=np.float32)
    for b in range(len(edges_hz) - 1):
        band = (freqs >= edges_hz[b]) & (freqs < min(edges_hz[b + 1], 0.5 * sample_rate))
        spec = np.where(band, np.exp(2j * np.pi * rng.random(len(freqs))), 0.0)
        x = np.fft.irfft(spec, length)
        rms = np.sqrt(np.mean(x**2))
        out[b] = x / rms if rms > 0 else 0.0
    return out


@functools.lru_cache(maxsize=1)
def _oscillator_kernel():
    """The oscillator bank, compiled with numba (a librosa dependency) on first use:
    ``y[t] = sum_n (to_n + wm1[t] d_n) taper_n(t) sin(2 pi n cycles[t])`` for n = 1..len(to),
    with the sines as powers of one phasor per sample (rounding grows ~n * 1e-16, harmless).
    Each sample depends only on its own inputs, so blocking never changes the result."""
    import numba

    @numba.njit(cache=True, nogil=True)
    def bank(cycles, f0, to, d, wm1, limit):  # pragma: no cover - compiled
        m, top = cycles.shape[0], to.shape[0]
        y = np.zeros(m)
        fade = 0.9 * limit
        for t in range(m):
            angle = 2.0 * np.pi * cycles[t]
            zr, zi = np.cos(angle), np.sin(angle)
            pr, pi = zr, zi
            acc = 0.0
            for n in range(top):
                amp = to[n] + wm1[t] * d[n]
                fh = (n + 1) * f0[t]
                if fh > fade:
                    amp *= min(max((limit - fh) / (0.1 * limit), 0.0), 1.0)
                acc += amp * pi
                pr, pi = pr * zr - pi * zi, pr * zi + pi * zr
            y[t] = acc
        return y

    return bank


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
                 n_harmonics: int = 160, n_bands: int = 16) -> None:
        self.sample_rate, self.ramp_samples = int(sample_rate), max(int(ramp_samples), 1)
        self.n_harmonics, self.n_bands = n_harmonics, n_bands
        top = float(midi_to_hz(cfg.bin_midi(cfg.n_bins - 1)))
        self.limit_hz = min(top, 0.45 * sample_rate)
        edges = band_edges_hz(cfg, n_bands)
        self.tables = noise_tables(self.sample_rate, tuple(float(e) for e in edges))
        self.harmonic_numbers = np.arange(1, n_harmonics + 1, dtype=np.float64)
        self._bank = _oscillator_kernel()
        self._bank(np.zeros(1), np.ones(1), np.zeros(1), np.zeros(1), np.zeros(1), 1.0)  # compile now, not in a callback

    def init_state(self) -> SynthState:
        zh, zb = np.zeros(self.n_harmonics), np.zeros(self.n_bands)
        return SynthState(0.0, zh, zh, zb, zb, self.ramp_samples, 0)

    def run(self, f0_midi: np.ndarray, gain: np.ndarray, updates: list[Update],
            state: SynthState) -> tuple[np.ndarray, SynthState]:
        """Audio ``[n]`` float64 for per-sample ``f0_midi [n]`` and ``gain [n]``; ``updates``
        sorted by offset. The oscillators are computed once per chunk of up to 4096 samples;
        updates only split the (cheap) amplitude weighting."""
        n = len(gain)
        out = np.zeros(n, dtype=np.float64)
        ui = 0
        for c0 in range(0, max(n, 1), _CHUNK):
            c1 = min(n, c0 + _CHUNK)
            chunk_updates = []
            while ui < len(updates) and updates[ui].offset < c1:
                chunk_updates.append(updates[ui])
                ui += 1
            out[c0:c1], state = self._chunk(f0_midi[c0:c1], gain[c0:c1], chunk_updates, c0, state)
        while ui < len(updates):  # updates at offset n (none expected) still take effect
            state = self._apply(updates[ui], state)
            ui += 1
        return out, state

    def _weights(self, state: SynthState, m: int) -> np.ndarray:
        return np.minimum((state.ramp_done + np.arange(1, m + 1)) / self.ramp_samples, 1.0)

    def _apply(self, u: Update, state: SynthState) -> SynthState:
        if u.jump:
            return SynthState(state.phase, u.amps, u.amps, u.noise, u.noise, self.ramp_samples, state.noise_pos)
        w = min(state.ramp_done / self.ramp_samples, 1.0)
        amps_now = state.amps_from + w * (state.amps_to - state.amps_from)
        noise_now = state.noise_from + w * (state.noise_to - state.noise_from)
        return SynthState(state.phase, amps_now, u.amps, noise_now, u.noise, 0, state.noise_pos)

    def _chunk(self, f0_midi: np.ndarray, gain: np.ndarray, updates: list[Update], base: int,
               state: SynthState) -> tuple[np.ndarray, SynthState]:
        m = len(gain)
        f0 = midi_to_hz(f0_midi)
        cycles = state.phase + np.cumsum(f0 / self.sample_rate)
        length = self.tables.shape[1]
        y = np.zeros(m)
        bank = tab = None
        top = 0
        if m and np.any(gain):
            # Harmonics that can sound in this chunk: below the limit for the lowest f0 and with
            # a non-zero amplitude in some state the chunk passes through.
            h = int(min(self.n_harmonics, np.ceil(self.limit_hz / max(f0.min(), 1.0))))
            used = np.zeros(h, bool)
            for a in (state.amps_from, state.amps_to, *[u.amps for u in updates]):
                used |= a[:h] > 0
            top = int(np.flatnonzero(used)[-1]) + 1 if used.any() else 0
            if top:
                bank = self._bank
            pos = state.noise_pos
            tab = self.tables[:, pos:pos + m] if pos + m <= length else self.tables[:, (pos + np.arange(m)) % length]
        cuts = [0, *[u.offset - base for u in updates], m]
        ui = 0
        for a, b in zip(cuts[:-1], cuts[1:]):
            while ui < len(updates) and updates[ui].offset - base == a:
                state = self._apply(updates[ui], state)
                ui += 1
            if b <= a:
                continue
            settled = state.ramp_done >= self.ramp_samples
            w = None if settled else self._weights(state, b - a)
            if bank is not None:  # amps(t) = to + (w(t) - 1) (to - from), w ramping 0 -> 1
                to = state.amps_to[:top]
                wm1 = np.zeros(b - a) if w is None else w - 1.0
                y[a:b] = bank(cycles[a:b], f0[a:b], to, to - state.amps_from[:top], wm1, self.limit_hz)
            if tab is not None and (np.any(state.noise_from) or np.any(state.noise_to)):
                seg_tab = tab[:, a:b]
                y[a:b] += state.noise_to @ seg_tab
                if w is not None:
                    y[a:b] += (w - 1.0) * ((state.noise_to - state.noise_from) @ seg_tab)
            state = SynthState(state.phase, state.amps_from, state.amps_to, state.noise_from, state.noise_to,
                               min(state.ramp_done + (b - a), self.ramp_samples), state.noise_pos)
        new = SynthState(
            float(cycles[-1] % 1.0) if m else state.phase, state.amps_from, state.amps_to,
            state.noise_from, state.noise_to, state.ramp_done, (state.noise_pos + m) % length,
        )
        return y * gain, new
