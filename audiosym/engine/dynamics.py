"""The engine's loudness paths, their defaults and the timbre's note envelope.

- :data:`DEFAULT_DYNAMICS` (commands) and :data:`ENGINE_DYNAMICS` (the bare engine): which path;
- the input's level, which both paths follow: :func:`audiosym.engine.level.input_level` (peak
  hold + one pole, a numba kernel; a module of its own so that the CLI, which imports the
  defaults here, does not import numba);
- :func:`note_gate` / :func:`note_gain` (``dynamics="timbre"``): while a MIDI note is held the
  output sounds at the input's peak level since note-on times the timbre's stored note envelope
  (audiosym.timbre.envelope.NoteEnvelope); after the note-off it falls linearly over the release and stays
  silent until the input itself has gone quiet (``GATE``), then the input's level takes over.

Pure functions of an immutable state, like the engine's step: ``state = note_gain(state, ...)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

#: A note that starts while the output sounds (a new note over the last one's release, or a
#: retrigger) fades from the gain it found to its own envelope over this long: an envelope that
#: restarts at its attack's first value would cut the sound in one sample (a click across the
#: whole band, heard on every note change of a melody before 2026-12-05). A note-off fades the
#: same way to the input's level where that is lower than the note's.
ONSET_FADE_S = 0.004
GATE = 10 ** (-40 / 20)  # after a note's release the input must fall this far (-40 dB) below it

#: What shapes a held MIDI note's level in transfer mode (the ``dynamics`` argument), unless told
#: otherwise, in every command (``live``, ``resynth``, ``demo``) and offline function
#: (:mod:`audiosym.offline`): the timbre's stored note envelope at the input's level, so a
#: piano decays and an organ holds, as a musician expects of the timbre they chose.
DEFAULT_DYNAMICS = "timbre"

#: The :class:`audiosym.engine.engine.Engine` constructor's own default, kept from before note
#: envelopes existed so that code built on the bare engine keeps its output: the output follows
#: the input's level, which needs nothing from the preset beyond its graphs.
ENGINE_DYNAMICS = "input"


@dataclass(frozen=True)
class NoteEnvState:
    """``dynamics="timbre"``: the note's envelope ``curve [K]`` (linear, ``hop`` samples apart)
    from absolute sample ``onset``; ``peak``: input peak level since the note-on; after the
    note-off (``off`` >= 0) the output falls linearly from ``off_gain`` over the release and
    stays silent (input ignored) until the input falls ``GATE`` (-40 dB) below ``off_gain``.
    The first ``fade`` samples fade linearly from ``from_gain`` (the gain when the note began)
    to the envelope (``ONSET_FADE_S``)."""

    onset: int
    curve: np.ndarray
    hop: float
    peak: float = 0.0
    off: int = -1
    off_gain: float = 0.0
    from_gain: float = 0.0
    fade: float = 1.0


def starts_note(st: NoteEnvState | None, gate: str) -> bool:
    """Whether ``gate`` begins a new note envelope: 'on', or 'legato' after a released (or no)
    note; a legato change while a note is held continues that note's envelope."""
    return gate == "on" or (gate == "legato" and (st is None or st.off >= 0))


def releasing(st: NoteEnvState | None) -> bool:
    """Whether a released note's envelope is still sounding (it keeps its note's spectrum: the
    input's own pitch and spectrum take over only once it has faded, and a switch to them in the
    middle of the release was heard as a louder blip at every note-off before 2026-12-05)."""
    return st is not None and st.off >= 0


def note_gate(st: NoteEnvState | None, gate: str, curve: tuple[np.ndarray, float] | None, at: int,
              gain_before: float, fade_samples: float = 1.0) -> NoteEnvState | None:
    """The state after a gate change at absolute sample ``at``. ``curve``: (linear gains, hop in
    samples) of the note that starts (:func:`starts_note`), None when none starts or its timbre
    has no envelope (then the input's level is followed); it fades in from ``gain_before`` over
    ``fade_samples``."""
    if starts_note(st, gate):
        return None if curve is None else NoteEnvState(onset=at, curve=curve[0], hop=curve[1],
                                                       from_gain=float(gain_before), fade=max(float(fade_samples), 1.0))
    if gate in ("off", "panic") and st is not None and st.off < 0:
        return replace(st, off=at, off_gain=float(gain_before))
    return st


def note_gain(st: NoteEnvState, level: np.ndarray, start: int, out: np.ndarray,
              release_samples: float) -> NoteEnvState | None:
    """Fill ``out`` (the gain of samples ``start ...``, input ``level`` there) from the note
    envelope; -> new state (None once the note has faded and the input is quiet)."""
    n = len(level)
    if n == 0:
        return st
    t = start + np.arange(n)
    if st.off < 0:
        peak = np.maximum.accumulate(np.maximum(level, st.peak))
        pos = (t - st.onset) / st.hop
        i = np.minimum(pos.astype(np.int64), len(st.curve) - 2)  # pos >= 0: linear, held at the end
        fr = np.minimum(pos - i, 1.0)
        out[:] = peak * (st.curve[i] + fr * (st.curve[i + 1] - st.curve[i]))
        if start < st.onset + st.fade:  # the onset fade from the gain the note found
            w = np.clip(1.0 - (t - st.onset) / st.fade, 0.0, 1.0)
            out += w * (st.from_gain - out)
        # a plain constructor: dataclasses.replace costs ~5 us per call on this path
        return NoteEnvState(st.onset, st.curve, st.hop, float(peak[-1]), st.off, st.off_gain, st.from_gain, st.fade)
    ceiling = st.off_gain * np.clip(1.0 - (t - st.off) / release_samples, 0.0, 1.0)
    out[:] = np.minimum(level, ceiling)
    if start < st.off + st.fade:  # no step down to a quieter input at the note-off: the same fade as at onsets
        w = np.clip(1.0 - (t - st.off) / st.fade, 0.0, 1.0)
        out += w * (np.minimum(st.off_gain, ceiling) - out)
    quiet = np.flatnonzero((ceiling <= 0.0) & (level <= st.off_gain * GATE))
    if len(quiet):  # faded out and the input is quiet: from here on the input's level
        first = int(quiet[0])
        out[first:] = level[first:]
        return None
    return st


class NoteCurves:
    """``dynamics="timbre"`` for an engine: each (timbre, note)'s stored note envelope from
    ``preset`` (``preset.envelope(timbre)``, None where it has none) at ``sample_rate``, cached,
    and the envelope state after a gate change (:meth:`gate`)."""

    def __init__(self, preset: Any, *, sample_rate: int) -> None:
        self.preset, self.sample_rate = preset, sample_rate
        self.onset_fade_samples = ONSET_FADE_S * sample_rate
        self._curves: dict[tuple[str, int], tuple[np.ndarray, float] | None] = {}

    def gate(self, st: NoteEnvState | None, gate: str, timbre: str, note: int | None, at: int,
             gain_before: float) -> NoteEnvState | None:
        """The envelope state after ``gate`` at absolute sample ``at`` (the held ``note`` of ``timbre``)."""
        curve = self.curve(timbre, note) if starts_note(st, gate) else None
        return note_gate(st, gate, curve, at, gain_before, self.onset_fade_samples)

    def curve(self, timbre: str, note: int | None) -> tuple[np.ndarray, float] | None:
        """The timbre's stored note envelope at ``note``: (linear gains, hop in samples), cached."""
        key = (timbre, -1 if note is None else int(note))
        if key not in self._curves:
            env = self.preset.envelope(timbre)
            self._curves[key] = None if env is None or note is None else (
                env.curve(float(note)), env.hop_s * self.sample_rate)
        return self._curves[key]
