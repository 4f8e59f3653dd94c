"""Low-latency pitch following for transfer mode with no MIDI note held (issue #15).

The encoder's pitch waits for its 2048-sample (128 ms at 16 kHz) analysis window, so a new
sung note used to sound at the old pitch for ~83 ms. Here a short-window YIN estimator (de
Cheveigné & Kawahara 2002: difference function, cumulative-mean-normalised difference
``d'``, absolute threshold, parabolic interpolation) runs on the model-rate (16 kHz) input
every ``hop`` samples and sets the pitch at onsets and note changes:

- the window is derived from the preset's playable range: YIN needs the longest period it
  must find twice (the lag range plus an integration window of the same length), so
  :func:`audiosym.dsp.pitch.short_window_samples` is twice the period of half a semitone
  below the lowest playable note:
  504 samples = 31.5 ms for sps-default (C2 = MIDI 36), 126 samples = 7.9 ms for v3-default
  (C4 = 60); a lower preset gets a longer window and a later answer (an input pitch below
  that is not found: the encoder's pitch plays it, as before). The estimate shows a new note
  once it fills half (step up) to three quarters (step down to the lowest note) of the window:
  :attr:`PitchFollower.delay_samples` reports the latter;
- :class:`YinBuffer` / :meth:`PitchFollower.estimate`: the stream's last window and the
  estimates of the frames a block completes (a numba kernel, frame by frame), pure;
- :class:`Follow` / :meth:`PitchFollower.update`: which pitch is heard. The fast estimate
  whenever it is voiced (it is more accurate than the encoder's calibrated pitch on a
  held note, BENCHMARKS.md "Low-latency pitch following"); the encoder's pitch where it is
  unvoiced for longer than the encoder's window (noise, breath), as before. Octave guard:
  once the fast estimate has held one note for the encoder's whole window, an encoder pitch
  a whole number of octaves away (within 50 cents) moves the fast estimate to the encoder's
  octave until the next note change.

States are immutable, like the engine's (audiosym.engine.state.EngineState).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numba
import numpy as np

from audiosym.dsp.pitch import (
    midi_to_hz,
    short_delay_samples,
    short_hop_samples,
    short_window_samples,
)
from audiosym.engine.control import (
    DEFAULT_PITCH_FOLLOW,
    PITCH_FOLLOW,
    ControlState,
    MidiEvent,
    apply_message,
)
from audiosym.errors import ParameterError

__all__ = ["DEFAULT_PITCH_FOLLOW", "PITCH_FOLLOW", "Cut", "Follow", "PitchFollower", "YinBuffer", "follower_for", "unheld",
           "yin_kernel"]

THRESHOLD = 0.15  # YIN's absolute threshold on d' (the paper: 0.1 .. 0.15)
NOTE_CHANGE_SEMITONES = 0.7  # a fast estimate this far from the note's first one starts a new note
AGREE_SEMITONES = 0.5  # octave guard: the encoder agrees up to whole octaves within this
DECODE_SEMITONES = 0.05  # a heard pitch this far from the last decoded one is decoded again
SILENCE = 1e-8  # mean square below this (-80 dBFS): no pitch
#: A block's short-window frames: (block offsets [k], (stream, ends [k]) of PitchFollower.frames).
Cut = tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class YinBuffer:
    """``tail``: the last ``window - 1`` model-rate samples; ``n``: model-rate samples seen."""

    tail: np.ndarray
    n: int = 0


@dataclass(frozen=True)
class Follow:
    """What decides the heard pitch (MIDI; NaN: none). ``fast``: newest fast estimate (octave
    guard applied); ``anchor``/``since``: the current note's first raw estimate and its absolute
    device sample; ``octave``: the guard's shift in octaves; ``voiced_at``: device sample of the
    newest voiced estimate; ``enc``/``enc_latent``: newest encoder pitch; ``decoded``: pitch of
    the last decode."""

    fast: float = np.nan
    anchor: float = np.nan
    since: int = 0
    octave: int = 0
    voiced_at: int = -(1 << 62)
    enc: float = np.nan
    enc_latent: np.ndarray | None = None
    decoded: float = np.nan


def follower_for(preset: Any, pitch_follow: str, *, mode: str, sample_rate: int) -> PitchFollower | None:
    """The engine's follower for ``preset`` (:class:`audiosym.preset.model.Preset`) at
    ``sample_rate`` Hz: None in synth mode and with ``pitch_follow="encoder"``."""
    if pitch_follow not in PITCH_FOLLOW:
        raise ParameterError(f"pitch_follow={pitch_follow!r} is not one of {PITCH_FOLLOW}")
    if mode != "transfer" or pitch_follow == "encoder":
        return None
    lo, hi = preset.midi_range

    def to_latent(midi: float) -> np.ndarray:
        return np.asarray(preset.midi_to_latent(float(np.clip(midi, lo, hi))), np.float32).reshape(-1)

    def quantise(midi: float) -> float:  # a codebook plays its atoms' pitches, as its encoder did
        return midi if preset.continuous_pitch else float(preset.latent_to_midi(to_latent(midi)))

    return PitchFollower(model_rate=preset.features.sample_rate, midi_range=(lo, hi), device_rate=sample_rate,
                         encoder_window=preset.features.n_fft, midi_to_latent=to_latent, quantise=quantise,
                         transpose_semitones=preset.transpose_semitones)


def unheld(offsets: np.ndarray, events: list[MidiEvent], control: ControlState, program_timbres: dict[int, str],
           note_range: tuple[int, int]) -> list[int]:
    """Indices of the frames at block ``offsets [k]`` (sorted) that arrive while no MIDI note is
    held (``events``: the block's, applied to ``control`` in order): only their pitch is heard."""
    needed, ei, cs = [], 0, control
    for i, off in enumerate(offsets):
        while ei < len(events) and events[ei].offset <= off:
            cs = apply_message(cs, events[ei].data, program_timbres, note_range)[0]
            ei += 1
        if cs.note is None:
            needed.append(i)
    return needed


class PitchFollower:
    """Short-window YIN on the model-rate stream and the choice of the heard pitch.

    ``model_rate`` Hz; ``midi_range``: the preset's playable (lo, hi); ``device_rate`` Hz;
    ``encoder_window``: the encoder's analysis window in model-rate samples (n_fft);
    ``midi_to_latent``/``quantise``: the preset's calibration (quantise: a codebook preset's
    pitch of the nearest atom, identity for linear); ``transpose_semitones`` added to estimates.
    """

    def __init__(self, *, model_rate: int, midi_range: tuple[int, int], device_rate: int, encoder_window: int,
                 midi_to_latent, quantise, transpose_semitones: float = 0.0) -> None:
        self.model_rate = int(model_rate)
        self.lowest = float(midi_range[0])
        self.window = short_window_samples(self.lowest, self.model_rate)
        self.tau_max = self.window // 2
        self.tau_min = max(int(np.floor(self.model_rate / float(midi_to_hz(midi_range[1] + 1.0)))), 2)
        self.hop = short_hop_samples(self.model_rate)
        self.encoder_window_device = encoder_window * device_rate / self.model_rate
        self.midi_to_latent, self.quantise = midi_to_latent, quantise
        self.transpose = float(transpose_semitones)

    @property
    def delay_samples(self) -> float:
        """Model-rate samples from a pitch step to the estimate that shows it, at most
        (:func:`audiosym.dsp.pitch.short_delay_samples`: 3/4 of the window + one hop)."""
        return short_delay_samples(self.lowest, self.model_rate)

    def init_buffer(self) -> YinBuffer:
        return YinBuffer(tail=np.zeros(self.window - 1))

    # ------------------------------------------------------------------ estimates
    def frames(self, y: np.ndarray, buf: YinBuffer | None) -> tuple[np.ndarray, np.ndarray, YinBuffer]:
        """New model-rate samples ``y [m]`` -> (ends [k]: index in ``y`` of each completed frame's
        last sample, the stream ``[window - 1 + m]`` they are cut from, new buffer): frame ``i`` is
        ``stream[ends[i] : ends[i] + window]``. Frames end at absolute samples ``j`` with ``(j +
        1) % hop == 0``. ``buf`` None: a fresh one."""
        buf = buf or self.init_buffer()
        stream = np.concatenate([buf.tail, y])
        first = buf.n + (-(buf.n + 1)) % self.hop  # absolute index of the first frame end >= buf.n
        ends = np.arange(first, buf.n + len(y), self.hop) - buf.n
        return ends, stream, YinBuffer(tail=stream[len(stream) - (self.window - 1):], n=buf.n + len(y))

    def estimate(self, stream: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """YIN on the frames ``stream[s : s + window]`` for ``s`` in ``starts [k]`` -> MIDI pitch
        ``[k]`` (before transposition), NaN where unvoiced (no dip of d' below THRESHOLD, or
        silence). :func:`yin_kernel`, frame by frame, so the result does not depend on how many
        frames a block completes."""
        if len(starts) == 0:
            return np.zeros(0)
        period = yin_kernel(stream, np.asarray(starts, np.int64), self.window, self.window - self.tau_max,
                            self.tau_min, self.tau_max, THRESHOLD, SILENCE)
        return 69 + 12 * np.log2(self.model_rate / period / 440.0)  # NaN stays NaN, no warning

    def run(self, offsets: np.ndarray, cut: tuple[np.ndarray, np.ndarray], events: list[MidiEvent],
            control: ControlState, program_timbres: dict[int, str], note_range: tuple[int, int]
            ) -> list[tuple[int, None, float]]:
        """The estimates of the block's frames (``cut``: (stream, ends) of :meth:`frames`, at block
        ``offsets [k]``) that arrive with no note held -> [(offset, None, raw MIDI or NaN)]."""
        free = unheld(offsets, events, control, program_timbres, note_range) if len(offsets) else []
        if not free:
            return []
        midi = self.estimate(cut[0], cut[1][free])
        return [(int(offsets[i]), None, float(m)) for i, m in zip(free, midi, strict=True)]

    # ------------------------------------------------------------------ the heard pitch
    def _heard(self, midi: float) -> tuple[float, np.ndarray]:
        m = float(self.quantise(midi))
        return m, self.midi_to_latent(m)

    def update(self, fol: Follow, kind: str, payload: Any, at: int, audible: bool = True
               ) -> tuple[Follow, tuple[float, np.ndarray] | None, bool]:
        """One fast estimate (``kind="fast"``, payload: raw MIDI or NaN) or encoder frame
        (``"enc"``, payload: (latent, midi)) at absolute device sample ``at`` -> (state, the heard
        (midi, pitch latent) or None to keep the current one, whether to decode again).
        ``audible``: whether the input's pitch sounds now (not during a released note's tail);
        if not, nothing is decoded, and the next audible frame decodes."""
        fol, heard, decode = self._update(fol, kind, payload, at)
        if not audible:
            return replace(fol, decoded=np.nan), heard, False
        return fol, heard, decode  # (Follow(...) built whole below: dataclasses.replace costs ~5 us)

    def _update(self, fol: Follow, kind: str, payload: Any, at: int
                ) -> tuple[Follow, tuple[float, np.ndarray] | None, bool]:
        f = fol
        if kind == "enc":
            latent, midi = payload
            midi = float(midi)
            if at - f.voiced_at > self.encoder_window_device or not np.isfinite(f.fast):
                # unvoiced for the encoder's whole window (or not yet voiced): the encoder's pitch, as before
                return (Follow(f.fast, f.anchor, f.since, f.octave, f.voiced_at, midi, latent, midi),
                        (midi, latent), True)
            raw = f.fast - 12 * f.octave  # the newest estimate as YIN gave it
            octaves = f.octave
            if at - f.since >= self.encoder_window_device and np.isfinite(midi):
                near = int(np.round((midi - raw) / 12))
                if abs(midi - raw - 12 * near) < AGREE_SEMITONES:
                    octaves = near
            if octaves != f.octave:
                return self._set(f, raw, f.anchor, f.since, octaves, f.voiced_at, midi, latent)
            return Follow(f.fast, f.anchor, f.since, f.octave, f.voiced_at, midi, latent, f.decoded), None, False
        raw = float(payload) + self.transpose
        if not np.isfinite(raw):
            return f, None, False  # hold: the encoder takes over once unvoiced for its window
        if not np.isfinite(f.anchor) or abs(raw - f.anchor) > NOTE_CHANGE_SEMITONES:
            return self._set(f, raw, raw, at, 0, at, f.enc, f.enc_latent)
        return self._set(f, raw, f.anchor, f.since, f.octave, at, f.enc, f.enc_latent)

    def _set(self, f: Follow, raw: float, anchor: float, since: int, octave: int, voiced_at: int, enc: float,
             enc_latent: np.ndarray | None) -> tuple[Follow, tuple[float, np.ndarray] | None, bool]:
        """The state with YIN's ``raw`` estimate heard ``octave`` octaves away, and that pitch."""
        fast = raw + 12 * octave
        heard = self._heard(fast)
        decode = not abs(heard[0] - f.decoded) <= DECODE_SEMITONES  # NaN (none yet): decode
        return (Follow(fast, anchor, since, octave, voiced_at, enc, enc_latent, heard[0] if decode else f.decoded),
                heard, decode)


@numba.njit(cache=True, nogil=True)
def yin_kernel(stream, starts, n, w, tau_min, tau_max, threshold, silence):  # pragma: no cover - compiled
    """Period in samples (NaN: unvoiced) of each frame ``stream[s : s + n]`` (``s`` in ``starts``,
    ``n >= w + tau_max``), YIN steps 2-5 on the frame reversed (so that the integration window is
    its newest ``w`` samples, compared with those ``tau`` earlier: a new note shows once it fills
    about half the frame) and mean-removed: the difference function ``d(tau) = sum_{i < w} (y[i]
    - y[i + tau])^2``, ``d'`` (cumulative-mean-normalised), the first dip below ``threshold`` in
    ``[tau_min, tau_max)`` walked down to its minimum, parabolic interpolation of ``d`` (not ``d'``:
    less biased), refined on the period's largest multiple below ``tau_max``."""
    out = np.full(len(starts), np.nan)
    d = np.empty(tau_max + 1)
    raw = np.empty(tau_max + 1)
    y = np.empty(n)
    for f in range(len(starts)):
        s = starts[f]
        mean = 0.0
        for i in range(n):
            mean += stream[s + i]
        mean /= n
        energy = 0.0
        for i in range(n):
            y[i] = stream[s + n - 1 - i] - mean
            energy += y[i] * y[i]
        if energy / n <= silence:
            continue
        # d is computed lag by lag only as far as it is read: up to the first dip below the
        # threshold and down to its minimum (a short period costs a fraction of the full lag range)
        running = 0.0
        tau, top = 0, 0  # top: the largest lag computed so far
        found = False
        while tau + 1 < tau_max and not found:
            tau += 1
            top = tau
            raw[tau] = _squared_difference(y, tau, w)
            running += raw[tau]
            d[tau] = raw[tau] * tau / running if running > 0.0 else 1.0
            found = tau >= tau_min and d[tau] < threshold
        if not found:
            continue
        while True:  # walk down to the dip's minimum
            top = tau + 1
            raw[top] = _squared_difference(y, top, w)
            running += raw[top]
            d[top] = raw[top] * top / running if running > 0.0 else 1.0
            if top < tau_max and d[top] < d[tau]:
                tau = top
            else:
                break
        # A short period is refined on the dip at its largest multiple in range: the parabola's
        # error (a few cents at 15 samples) is divided by the multiple.
        t0 = tau + _parabola(raw, tau)
        mult = max(int((tau_max - 2) / t0), 1)
        if mult > 1:
            c = int(t0 * mult + 0.5)
            for i in range(max(c - 3, top + 1), min(c + 4, tau_max + 1)):
                raw[i] = _squared_difference(y, i, w)
            j = c
            for i in range(max(c - 2, 1), min(c + 3, tau_max)):
                if raw[i] < raw[j]:
                    j = i
            out[f] = (j + _parabola(raw, j)) / mult
        else:
            out[f] = t0
    return out


@numba.njit(cache=True, nogil=True, fastmath=True)
def _squared_difference(y, tau, w):  # pragma: no cover - compiled
    """``sum_{i < w} (y[i] - y[i + tau])^2``, vectorised (fastmath: the sum's order is the
    compiler's, the same on every call, so blocking still does not change a result)."""
    acc = 0.0
    for i in range(w):
        diff = y[i] - y[i + tau]
        acc += diff * diff
    return acc


@numba.njit(cache=True, nogil=True)
def _parabola(d, i):  # pragma: no cover - compiled
    """Offset (-1 .. 1) of the vertex of the parabola through ``d[i - 1 : i + 2]``."""
    a, b, c = d[i - 1], d[i], d[i + 1]
    den = a - 2.0 * b + c
    shift = 0.5 * (a - c) / den if den > 1e-12 else 0.0
    return min(max(shift, -1.0), 1.0)
