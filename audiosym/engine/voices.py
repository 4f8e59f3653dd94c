"""Polyphony in synth mode: a bank of voices, each with its own note, ADSR and vocoder state,
all decoded in one batched model call per block (issue #15).

:class:`Polyphony` is the synth-mode step of an :class:`audiosym.engine.engine.Engine` built with
``voices > 1`` (``voices=1`` keeps the monophonic, last-note-priority step, whose output it
reproduces to the bit). Its memory is one immutable :class:`PolyState` inside the engine's
:class:`audiosym.engine.state.EngineState`, so ``out, state = engine.step(block, events, state)``
stays pure and any blocking gives the same output.

MIDI, all channels (omni), per channel where MIDI says so:

- note-on: a voice for it, chosen as: the voice already sounding this note on this channel
  (retriggered), else a free (silent) voice, else the oldest *releasing* one (key up, ADSR
  release), else the oldest one held only by the sustain pedal, else the oldest held one; its
  spectrum is decoded at once (same sample), its loudness is ``synth_level x (velocity / 127)^2``
  times its ADSR; note-off releases it (or leaves it to the pedal);
- CC64 (sustain pedal, per channel): while down (>= 64), released keys sound on; pedal up
  releases them;
- pitch bend (per channel): moves every voice of that channel at once (its spectrum follows on
  the control grid, ``TICK_DECODES`` voices per tick in turn: the per-block cost stays flat);
  CC1 morph and program change: every sounding voice;
- CC123 (all notes off): every voice released, pedal-held ones too; CC120 (all sound off): every
  voice faded out over ``Adsr.panic_s``; CC121 (reset controllers): bends and mod to 0, pedals up;
- a note outside the preset's playable range is folded in by octaves and counted, as in mono.

Blocking invariance: a voice that starts a note from silence starts its vocoder from a fresh
state at that sample, so what a silent voice's oscillators did before (or whether they ran at
all) never reaches the output; silent stretches are not synthesised.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from audiosym.engine.control import (
    CC_ALL_NOTES_OFF,
    CC_ALL_SOUND_OFF,
    CC_RESET_CONTROLLERS,
    CONTROL_CHANGE,
    NOTE_OFF,
    NOTE_ON,
    PITCH_BEND,
    AdsrState,
    ControlState,
    adsr_gate,
    adsr_run,
    apply_message,
    fold_note,
)
from audiosym.errors import ParameterError

if TYPE_CHECKING:  # annotations only: the engine imports this module
    from audiosym.engine.engine import Engine

#: Voices the commands (``live --voices``) play by default in synth mode; the bare engine's own
#: default is 1 (monophonic), which keeps the output of code built on it.
DEFAULT_VOICES = 8
MAX_VOICES = 64
#: Dirty voices (a bend, CC1) decoded per control-grid tick, besides the note-ons decoded at once:
#: a bend on a held 8-note chord refreshes its spectra over 4 ticks (8 ms at the default 2 ms grid)
#: instead of in one block, so no block pays for 8 decodes; each voice's pitch follows the bend
#: at once (its oscillators), only the spectrum read for the new pitch waits its turn.
TICK_DECODES = 2
CC_SUSTAIN = 64
N_CHANNELS = 16
_IDLE = AdsrState()


class Voice(NamedTuple):
    """One voice (a named tuple: the step replaces voices many times per block, and a tuple's
    ``_replace`` costs a fraction of ``dataclasses.replace``). ``key``: 'free' (never played),
    'held' (key down), 'pedal' (key up, the sustain pedal holds it), 'released' (key up);
    ``age``: note-on serial (larger = newer); ``synth``: its vocoder state (None: none yet);
    ``dirty``: a decode is due on the control grid."""

    note: int = -1
    channel: int = 0
    velocity: int = 100
    age: int = -1
    key: str = "free"
    adsr: AdsrState = _IDLE
    synth: Any = None
    dirty: bool = False

    @property
    def sounding(self) -> bool:
        return self.adsr.stage != "idle"


@dataclass(frozen=True)
class PolyState:
    """The voices, each channel's pitch bend (-1 .. 1) and sustain pedal, the next note serial."""

    voices: tuple[Voice, ...]
    bends: tuple[float, ...] = (0.0,) * N_CHANNELS
    pedals: tuple[bool, ...] = (False,) * N_CHANNELS
    serial: int = 0

    @property
    def active(self) -> int:
        """Voices sounding now (attack .. release)."""
        return sum(v.sounding for v in self.voices)


def check_voices(voices: int) -> int:
    if not isinstance(voices, int | np.integer) or not 1 <= int(voices) <= MAX_VOICES:
        raise ParameterError(f"voices={voices!r} must be an integer from 1 to {MAX_VOICES} "
                             f"(1: monophonic; the commands play {DEFAULT_VOICES})")
    return int(voices)


def allocate(voices: tuple[Voice, ...], channel: int, note: int) -> int:
    """Index of the voice a note-on of ``note`` on ``channel`` plays on: the one sounding that
    note there, else a free voice, else the oldest releasing, pedal-held, held one (in that order)."""
    for i, v in enumerate(voices):
        if v.sounding and v.note == note and v.channel == channel:
            return i
    for i, v in enumerate(voices):
        if not v.sounding:
            return i
    for key in ("released", "pedal", "held"):
        ages = [(v.age, i) for i, v in enumerate(voices) if v.key == key]
        if ages:
            return min(ages)[1]
    return min((v.age, i) for i, v in enumerate(voices))[1]  # unreachable: every voice has a key


class Polyphony:
    """The synth-mode step over ``n_voices`` voices for ``engine`` (its preset, ADSR, vocoder,
    control grid and decoder); see the module docstring."""

    def __init__(self, engine: Engine, n_voices: int) -> None:
        self.engine, self.n_voices = engine, n_voices

    def init_state(self) -> PolyState:
        return PolyState(voices=(Voice(),) * self.n_voices)

    # ------------------------------------------------------------------ MIDI
    def _message(self, ps: PolyState, cs: ControlState, data: tuple[int, ...], at: int,
                 voices: list[Voice], starts: list[list[int]], immediate: set[int]
                 ) -> tuple[PolyState, ControlState]:
        """Apply one message at block offset ``at`` to ``voices`` (in place) -> (poly, control)."""
        e = self.engine
        kind = data[0] & 0xF0 if data else 0
        ch = data[0] & 0x0F if data else 0
        d1 = data[1] if len(data) > 1 else 0
        d2 = data[2] if len(data) > 2 else 0
        if kind in (NOTE_ON, NOTE_OFF):
            note = fold_note(d1, *e.note_range)
            if kind == NOTE_ON and d2 > 0:
                if note != d1:
                    cs = replace(cs, folded_notes=cs.folded_notes + 1)
                i = allocate(tuple(voices), ch, note)
                v = voices[i]
                if not v.sounding:  # from silence: a fresh vocoder state from this sample on
                    starts[i].append(at)
                adsr = adsr_gate(v.adsr, "on", e.adsr, e.sample_rate)
                voices[i] = Voice(note, ch, d2, ps.serial, "held", adsr, v.synth, False)
                immediate.add(i)
                return replace(ps, serial=ps.serial + 1), cs
            for i, v in enumerate(voices):
                if v.key == "held" and v.note == note and v.channel == ch:
                    voices[i] = self._release(v) if not ps.pedals[ch] else v._replace(key="pedal")
            return ps, cs
        if kind == CONTROL_CHANGE and d1 == CC_SUSTAIN:
            down = d2 >= 64
            if not down:
                for i, v in enumerate(voices):
                    if v.key == "pedal" and v.channel == ch:
                        voices[i] = self._release(v)
            return replace(ps, pedals=_set(ps.pedals, ch, down)), cs
        cs, change = apply_message(cs, data, e.program_timbres, e.note_range)
        if kind == PITCH_BEND:
            ps = replace(ps, bends=_set(ps.bends, ch, cs.bend))
            voices[:] = [v._replace(dirty=True) if v.sounding and v.channel == ch else v for v in voices]
        elif kind == CONTROL_CHANGE and d1 in (CC_ALL_NOTES_OFF, CC_ALL_SOUND_OFF):
            gate = "off" if d1 == CC_ALL_NOTES_OFF else "panic"
            voices[:] = [self._release(v, gate) if v.sounding else v for v in voices]
        elif kind == CONTROL_CHANGE and d1 == CC_RESET_CONTROLLERS:
            voices[:] = [self._release(v) if v.key == "pedal" else v for v in voices]
            ps = replace(ps, bends=(0.0,) * N_CHANNELS, pedals=(False,) * N_CHANNELS)
        if change.spectrum:
            voices[:] = [v._replace(dirty=True) if v.sounding else v for v in voices]
        return ps, cs

    def _release(self, v: Voice, gate: str = "off") -> Voice:
        if v.key == "released" and gate == "off":
            return v
        return v._replace(key="released", adsr=adsr_gate(v.adsr, gate, self.engine.adsr, self.engine.sample_rate))

    # ------------------------------------------------------------------ the step
    def step(self, n: int, events: list, state: Any) -> tuple[np.ndarray, dict]:
        """Synth-mode audio ``[n]`` float64 for the block's ``events`` (sorted MidiEvents) from
        engine ``state`` -> (audio, the EngineState fields that changed)."""
        e = self.engine
        ps: PolyState = state.poly
        cs: ControlState = state.control
        voices = list(ps.voices)
        n_v = len(voices)
        f0 = np.zeros((n_v, n))
        gain = np.zeros((n_v, n))
        starts: list[list[int]] = [[] for _ in range(n_v)]  # offsets where a voice starts from silence
        requests: list[dict] = []
        owners: list[int] = []
        at: dict[int, list] = {}
        for ev in events:
            at.setdefault(ev.offset, []).append(ev.data)
        points = sorted(at)
        period = e.control_period
        tick = (-state.n_samples) % period if any(v.dirty for v in voices) else n
        prev, pi = 0, 0
        while True:
            event_p = points[pi] if pi < len(points) else n
            p = min(event_p, tick)
            if p > prev:
                shift = e._basis_shift(cs)
                for i, v in enumerate(voices):
                    if not v.sounding:
                        continue
                    f0[i, prev:p] = self._f0(v, ps) - shift
                    if v.adsr.stage == "sustain":  # constant: adsr_run would say so, slower
                        gain[i, prev:p] = v.adsr.level * e.synth_level
                    else:
                        env, adsr = adsr_run(v.adsr, p - prev, e.adsr, e.sample_rate)
                        gain[i, prev:p] = env * e.synth_level
                        voices[i] = v._replace(adsr=adsr)
            if p == n:
                break
            immediate: set[int] = set()
            silent = [v.adsr.level <= 0.0 for v in voices]  # before this point's messages
            if p == event_p:
                for data in at[p]:
                    ps, cs = self._message(ps, cs, data, p, voices, starts, immediate)
                pi += 1
            on_tick = (state.n_samples + p) % period == 0
            due = self._due(voices, immediate, (state.n_samples + p) // period if on_tick else None)
            for i in due:
                v = voices[i]
                if v.sounding:
                    requests.append(self._request(p, cs, v, ps, silent[i] or p in starts[i]))
                    owners.append(i)
                if v.dirty:
                    voices[i] = v._replace(dirty=False)
            tick = n if not any(v.dirty for v in voices) else p + 1 + (-(state.n_samples + p + 1)) % period
            prev = p
        updates = e._decode(requests)  # one batched decoder call for every voice's requests
        out = np.zeros(n)
        for i, v in enumerate(voices):
            if not (starts[i] or ps.voices[i].sounding):
                continue  # silent all block
            mine = [(r["offset"], u) for k, r, u in zip(owners, requests, updates) if k == i]
            voices[i] = v._replace(synth=self._synthesise(v, ps.voices[i].synth, gain[i], f0[i], starts[i], mine, out))
        poly = replace(ps, voices=tuple(voices))
        return out, {"control": cs, "poly": poly, "decodes": state.decodes + len(requests),
                     "last_gain": float(gain[:, -1].sum()) if n else state.last_gain}

    def _due(self, voices: list[Voice], immediate: set[int], tick: int | None) -> list[int]:
        """The voices decoded at this point, in voice order: those started or changed here
        (``immediate``: a note-on's spectrum is never late), and on control-grid tick number
        ``tick`` (None: not a tick) at most ``TICK_DECODES`` of the dirty ones, taken in turn
        from voice ``tick * TICK_DECODES`` on (absolute: blocking cannot move it)."""
        n_v = len(voices)
        due = set(immediate)
        if tick is not None:
            start = (tick * TICK_DECODES) % n_v
            waiting = [(start + k) % n_v for k in range(n_v)]
            due.update([i for i in waiting if voices[i].dirty and i not in immediate][:TICK_DECODES])
        return sorted(due)

    def _synthesise(self, v: Voice, synth: Any, gain: np.ndarray, f0: np.ndarray, starts: list[int],
                    updates: list[tuple[int, Any]], out: np.ndarray) -> Any:
        """Run a voice's vocoder (state ``synth`` at the block start) over the block, adding into
        ``out``, in segments cut where the voice starts from silence (a fresh state there);
        ``updates``: (offset, update). A segment the voice is silent through up to such a cut or
        the block's end (silent there too) is skipped. -> its vocoder state after the block."""
        e = self.engine
        n = len(gain)
        cuts = sorted(set(starts))
        bounds = ([0] if not cuts or cuts[0] > 0 else []) + cuts + [n]
        for a, b in zip(bounds[:-1], bounds[1:]):
            fresh = a in cuts
            if fresh:
                synth = e.vocoder.init_state()
            if synth is None or (not fresh and (b in cuts or not v.sounding) and not gain[a:b].any()):
                continue  # nothing to hear, and nothing of it reaches a later sample
            seg = [_moved(u, -a) for off, u in updates if a <= off < b]
            y, synth = e.vocoder.run(f0[a:b], gain[a:b], seg, synth)
            out[a:b] += y
        return synth

    def _f0(self, v: Voice, ps: PolyState) -> float:
        return float(v.note) + ps.bends[v.channel] * self.engine.bend_range_semitones

    def _request(self, offset: int, cs: ControlState, v: Voice, ps: PolyState, jump: bool) -> dict:
        """A decode request (the engine's ``_request`` form) for voice ``v`` at ``offset``."""
        e = self.engine
        f0_midi = self._f0(v, ps)
        midi = f0_midi if e.linear else float(v.note)
        pitch = e.preset.midi_to_latent(float(np.clip(midi, e.midi_lo, e.midi_hi)))
        return {"offset": offset, "pitch": np.asarray(pitch, np.float32).reshape(-1),
                "timbre": e._timbre_vector(cs), "f0": f0_midi - e._basis_shift(cs),
                "scale": (v.velocity / 127.0) ** 2, "jump": jump,
                "band": e._band_rows.row(cs.timbre, f0_midi, e.morph_timbre, cs.mod) if e.extends_band else None}


def _set(values: tuple, index: int, value: Any) -> tuple:
    return values[:index] + (value,) + values[index + 1:]


def _moved(update: Any, by: int) -> Any:
    """``update`` (a vocoder's, with an ``offset``) moved by ``by`` samples."""
    return replace(update, offset=update.offset + by)
