"""Band extension: what a timbre sounds like above the model's band, measured per register.

Every model analyses and decodes at 16 kHz, so nothing it decodes lies above 8 kHz, while a
violin or a trumpet carries a tenth to a thirtieth of its energy there. A :class:`BandProfile`
holds, for one named timbre and every pitch of a grid, the level of its harmonics on a fixed
frequency grid from 6 to 22 kHz and of its noise in five bands from 8 to 24 kHz, both in dB
relative to an **anchor**: the mean power of its harmonics between ``ANCHOR_LOW_HZ`` and
``EXT_START_HZ``. Those harmonics lie inside the model's band, so at play time the engine takes
the anchor from the *decoded* frame and hangs the stored shape under it: the extension follows
the model's loudness and brightness frame by frame, and the profile only says how the spectrum
continues above the band (:func:`extend`).

Profiles are measured at export from the timbre's own soundfont renders at 44.1 kHz
(:func:`measure_band`, called by :func:`audiosym.timbre.match.measure_bands`) and stored in the
preset's ``match.npz``. Numpy only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from audiosym.dsp.pitch import midi_to_hz

EXT_START_HZ = 7000.0  # harmonics from here on come from the profile, below from the decoder
ANCHOR_LOW_HZ = 2500.0  # anchor: decoded harmonics between this and EXT_START_HZ
EXT_TOP_HZ = 24000.0  # highest frequency the extension ever reaches ...
TOP_FRACTION = 0.49  # ... and never above this fraction of the output rate
MIN_RATE = 32000  # below this output rate the model's 8 kHz band is (nearly) all there is
MEASURE_RATE = 44100  # renders for measuring
FREQ_GRID = np.geomspace(6000.0, 22000.0, 16)  # harmonic level grid (Hz)
NOISE_EDGES = np.array([8000.0, 10000.0, 12500.0, 16000.0, 20000.0, 24000.0])  # noise bands (Hz)
FLOOR_DB = -90.0
PRUNE_DB = -80.0  # extension partials this far under the frame's strongest partial are left out
_N_FFT = 4096
_HOP = 1024
_LOBE = 3  # FFT bins either side of a harmonic's peak that belong to it (Hann main lobe: 2)


@dataclass(frozen=True)
class BandProfile:
    """``harm_db [G, len(FREQ_GRID)]`` and ``noise_db [G, len(NOISE_EDGES) - 1]`` relative to the
    anchor (dB, mean-square units) at pitches ``pitch_grid [G]`` (MIDI, ascending)."""

    pitch_grid: np.ndarray
    harm_db: np.ndarray
    noise_db: np.ndarray
    source: str = ""

    def at(self, midi: float) -> tuple[np.ndarray, np.ndarray]:
        """``(harm_db [16], noise_db [5])`` at ``midi``: linear between grid pitches, clamped."""
        g = self.pitch_grid
        x = float(np.clip(midi if np.isfinite(midi) else g[0], g[0], g[-1]))
        if len(g) == 1:
            return self.harm_db[0], self.noise_db[0]
        i = min(int(np.searchsorted(g, x, side="right")) - 1, len(g) - 2)
        fr = (x - g[i]) / (g[i + 1] - g[i])
        return (self.harm_db[i] * (1 - fr) + self.harm_db[i + 1] * fr,
                self.noise_db[i] * (1 - fr) + self.noise_db[i + 1] * fr)


def blend(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray],
          weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Two profile rows (:meth:`BandProfile.at`) mixed in power: ``weight`` 0 is ``a``, 1 is ``b``."""
    w = float(np.clip(weight, 0.0, 1.0))

    def mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return 10 * np.log10((1 - w) * 10 ** (x / 10) + w * 10 ** (y / 10) + 1e-30)

    return mix(a[0], b[0]), mix(a[1], b[1])


class BandRows:
    """Band profile rows by timbre and pitch, cached per cent, for a player: ``profile(name)`` is
    a timbre's :class:`BandProfile` or None (e.g. ``Preset.band``). A morph mixes two timbres'
    rows (:func:`blend`); a timbre without a profile (or a morph with one) has no row, and plays
    without the extension."""

    MAX_ROWS = 4096  # the cache starts again beyond this (bends and morphs make new keys)

    def __init__(self, profile: Callable[[str], BandProfile | None]) -> None:
        self.profile = profile
        self._rows: dict[tuple[str, float], tuple[np.ndarray, np.ndarray] | None] = {}

    def row(self, timbre: str, midi: float, morph: str | None = None,
            weight: float = 0.0) -> tuple[np.ndarray, np.ndarray] | None:
        """``timbre``'s row at ``midi``, mixed with ``morph``'s by ``weight`` (0: ``timbre`` alone)."""
        w = weight if morph is not None else 0.0
        key = (timbre if w <= 0 else f"{timbre}|{morph}|{w:.3f}", round(float(midi), 2))
        if key not in self._rows:
            if len(self._rows) > self.MAX_ROWS:
                self._rows.clear()
            a = self.profile(timbre)
            row = a.at(midi) if a is not None else None
            if w > 0 and row is not None and morph is not None:
                b = self.profile(morph)
                row = blend(row, b.at(midi), w) if b is not None else None
            self._rows[key] = row
        return self._rows[key]


def limit_hz(sample_rate: int) -> float:
    """Top of the extension at an output rate: ``min(EXT_TOP_HZ, TOP_FRACTION * sample_rate)``."""
    return min(EXT_TOP_HZ, TOP_FRACTION * float(sample_rate))


def extends(sample_rate: int) -> bool:
    """Whether an output at ``sample_rate`` gets a band extension (``>= MIN_RATE``)."""
    return int(sample_rate) >= MIN_RATE


# ------------------------------------------------------------------ measuring
def note_spectrum(y: np.ndarray, sr: int) -> np.ndarray:
    """``[n_fft // 2 + 1]`` mean-square spectrum of ``y`` (Hann frames averaged, one-sided,
    scaled so that its sum is the signal's mean square)."""
    y = np.asarray(y, dtype=np.float64)
    if len(y) < _N_FFT:
        y = np.pad(y, (0, _N_FFT - len(y)))
    w = np.hanning(_N_FFT + 1)[:-1]
    starts = np.arange(0, len(y) - _N_FFT + 1, _HOP)
    frames = np.stack([y[s:s + _N_FFT] for s in starts]) * w
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    power[:, 1:-1] *= 2.0
    return power.mean(axis=0) / (_N_FFT * np.sum(w ** 2))


def harmonic_levels(spec: np.ndarray, sr: int, f0_hz: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(freqs [H], power [H], lobe_mask [bins])``: each harmonic below ``0.5 sr``'s mean square
    (its main lobe summed around the strongest bin within +-2 % of ``k f0``) and which bins
    belong to harmonics."""
    bin_hz = sr / _N_FFT
    n = len(spec)
    mask = np.zeros(n, dtype=bool)
    freqs, power = [], []
    k = 1
    while k * f0_hz < 0.5 * sr - 2 * bin_hz:
        f = k * f0_hz
        lo = max(int(np.floor(f * 0.98 / bin_hz)), 1)
        hi = min(int(np.ceil(f * 1.02 / bin_hz)), n - 1)
        peak = lo + int(np.argmax(spec[lo:hi + 1]))
        a, b = max(peak - _LOBE, 0), min(peak + _LOBE + 1, n)
        if not mask[a:b].any():  # unresolved harmonics (low notes, high up) share their lobes
            freqs.append(f)
            power.append(float(spec[a:b].sum()))
            mask[a:b] = True
        k += 1
    return np.asarray(freqs), np.asarray(power), mask


def anchor_power(freqs: np.ndarray, power: np.ndarray) -> float:
    """Mean power of the harmonics in ``[ANCHOR_LOW_HZ, EXT_START_HZ)``; the highest one below
    ``EXT_START_HZ`` when none lies there (a note above ~2.3 kHz); 0 when there is none."""
    sel = (freqs >= ANCHOR_LOW_HZ) & (freqs < EXT_START_HZ)
    if sel.any():
        return float(power[sel].mean())
    below = np.flatnonzero(freqs < EXT_START_HZ)
    return float(power[below[-1]]) if len(below) else 0.0


def measure_row(y: np.ndarray, sr: int, midi: float) -> tuple[np.ndarray, np.ndarray] | None:
    """One note's ``(harm_db [16], noise_db [5])`` relative to its anchor; None when it has no
    anchor (silent, or no harmonic below ``EXT_START_HZ``)."""
    spec = note_spectrum(y, sr)
    freqs, power, mask = harmonic_levels(spec, sr, float(midi_to_hz(midi)))
    anchor = anchor_power(freqs, power)
    if anchor <= 1e-14 or len(freqs) == 0:
        return None
    level = 10 * np.log10(np.maximum(power, 1e-30) / anchor)
    # Above the last harmonic this rate resolves, the level keeps falling as the last two did.
    harm = np.interp(np.log(FREQ_GRID), np.log(freqs), level, left=level[0], right=FLOOR_DB)
    harm = np.maximum(harm, FLOOR_DB)
    bin_f = np.arange(len(spec)) * sr / _N_FFT
    resid = np.where(mask, 0.0, spec)
    noise = np.empty(len(NOISE_EDGES) - 1)
    for b in range(len(noise)):
        sel = (bin_f >= NOISE_EDGES[b]) & (bin_f < NOISE_EDGES[b + 1])
        noise[b] = 10 * np.log10(max(float(resid[sel].sum()), 1e-30) / anchor) if sel.any() else FLOOR_DB
    return harm, np.maximum(noise, FLOOR_DB)


def measure_band(notes: list[tuple[float, np.ndarray]], sr: int, *, source: str = "",
                 smooth_semitones: int = 5) -> BandProfile | None:
    """The profile of one timbre from ``(midi, y)`` single notes rendered at ``sr`` (>= MIN_RATE;
    attack included: its transients are much of a real instrument's top band). Rows are
    median-smoothed over ``smooth_semitones`` grid pitches (one odd note does not make a
    register). None when no note has an anchor."""
    if sr < MIN_RATE:
        raise ValueError(f"sr={sr} must be >= {MIN_RATE}: a band profile needs the band it describes")
    pitches, harm, noise = [], [], []
    for midi, y in sorted(notes, key=lambda t: t[0]):
        row = measure_row(y, sr, midi)
        if row is not None:
            pitches.append(float(midi))
            harm.append(row[0])
            noise.append(row[1])
    if not pitches:
        return None
    h, nz = np.asarray(harm), np.asarray(noise)
    if smooth_semitones > 1 and len(pitches) > 2:
        half = smooth_semitones // 2
        h = np.stack([np.median(h[max(i - half, 0):i + half + 1], axis=0) for i in range(len(h))])
        nz = np.stack([np.median(nz[max(i - half, 0):i + half + 1], axis=0) for i in range(len(nz))])
    return BandProfile(np.asarray(pitches), h.astype(np.float32), nz.astype(np.float32), source)


# ------------------------------------------------------------------ applying
def extend(amps: np.ndarray, noise_hi: np.ndarray, f0_hz: float, row: tuple[np.ndarray, np.ndarray],
           limit: float) -> None:
    """Fill one frame's harmonics from ``EXT_START_HZ`` up to ``limit`` and its high noise bands
    from ``row`` (:meth:`BandProfile.at`), anchored on the decoded harmonics ``amps [H]``
    (amplitudes; harmonic ``n`` at ``(n + 1) f0_hz``). In place: ``amps`` above ``EXT_START_HZ``
    and ``noise_hi [len(NOISE_EDGES) - 1]`` (RMS per band) are overwritten."""
    n = np.arange(1, len(amps) + 1) * f0_hz
    ms = 0.5 * amps ** 2  # a sinusoid's mean square
    anchor = anchor_power(n, ms)
    if anchor <= 0.0:
        amps[n >= EXT_START_HZ] = 0.0
        noise_hi[:] = 0.0
        return
    harm_db, noise_db = row
    up = (n >= EXT_START_HZ) & (n < limit)
    level = np.interp(np.log(n[up]), np.log(FREQ_GRID), harm_db, left=harm_db[0], right=harm_db[-1])
    amps[n >= EXT_START_HZ] = 0.0
    ext = np.sqrt(2.0 * anchor * 10.0 ** (level / 10.0))
    # partials PRUNE_DB under the frame's strongest are not synthesised (each costs an oscillator
    # per sample; the synth stops at the last partial it has to play)
    ext[ext < float(amps.max(initial=0.0)) * 10.0 ** (PRUNE_DB / 20.0)] = 0.0
    amps[up] = ext
    noise_hi[:] = np.sqrt(anchor * 10.0 ** (np.asarray(noise_db, dtype=np.float64) / 10.0))
