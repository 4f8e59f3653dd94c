"""MIDI for the engine: timed events, monophonic control state, and the ADSR envelope.

An event is ``MidiEvent(offset, data)``: ``offset`` is the sample index inside the audio block
it arrives with (0 <= offset < block length), ``data`` the raw status + data bytes of one
channel-voice message (any channel; the engine is omni). ``as_events`` also accepts tuples
``(offset, status, data1, data2)`` and ``(offset, bytes)``.

Control is monophonic with last-note priority: releasing the sounding note falls back to the
most recent note still held (legato, no retrigger); releasing the last one starts the release.
A note outside the preset's playable range is folded into it by octaves (:func:`fold_note`) and
counted (``ControlState.folded_notes``), never played in a wrong octave silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np

from audiosym.errors import ParameterError

#: What sets the pitch in transfer mode while no MIDI note is held (the engine's ``pitch_follow``,
#: audiosym.engine.pitch_follow): ``"fast"`` a short-window estimate (default), ``"encoder"`` the
#: encoder's pitch only, as before 2026-12-05. Here, not there, so that the CLI's parser can
#: name them without importing numba.
PITCH_FOLLOW = ("fast", "encoder")
DEFAULT_PITCH_FOLLOW = "fast"
NOTE_OFF, NOTE_ON, CONTROL_CHANGE, PROGRAM_CHANGE, PITCH_BEND = 0x80, 0x90, 0xB0, 0xC0, 0xE0
CC_MODWHEEL, CC_ALL_SOUND_OFF, CC_RESET_CONTROLLERS, CC_ALL_NOTES_OFF = 1, 120, 121, 123


@dataclass(frozen=True, order=True)
class MidiEvent:
    """One MIDI message at sample ``offset`` of the block it comes with; ``data``: raw bytes."""

    offset: int
    data: tuple[int, ...] = field(compare=False)

    @property
    def kind(self) -> int:
        return self.data[0] & 0xF0 if self.data else 0


def note_on(offset: int, note: int, velocity: int = 100, channel: int = 0) -> MidiEvent:
    return MidiEvent(offset, (NOTE_ON | channel, note, velocity))


def note_off(offset: int, note: int, channel: int = 0) -> MidiEvent:
    return MidiEvent(offset, (NOTE_OFF | channel, note, 0))


def control_change(offset: int, number: int, value: int, channel: int = 0) -> MidiEvent:
    return MidiEvent(offset, (CONTROL_CHANGE | channel, number, value))


def program_change(offset: int, program: int, channel: int = 0) -> MidiEvent:
    return MidiEvent(offset, (PROGRAM_CHANGE | channel, program))


def pitch_bend(offset: int, value: float, channel: int = 0) -> MidiEvent:
    """``value`` in [-1, 1] (full bend down .. up) -> the 14-bit pitch-bend message."""
    v = int(np.clip(round(8192 + value * 8192), 0, 16383))
    return MidiEvent(offset, (PITCH_BEND | channel, v & 0x7F, v >> 7))


def as_events(events: Iterable, *, block_length: int) -> list[MidiEvent]:
    """Normalise ``events`` to a list of MidiEvent sorted by offset (stable for equal offsets)."""
    out = []
    for ev in events:
        if not isinstance(ev, MidiEvent):
            ev = tuple(ev)
            if len(ev) == 2 and isinstance(ev[1], bytes | bytearray | list | tuple):
                ev = MidiEvent(int(ev[0]), tuple(int(b) for b in ev[1]))
            else:
                ev = MidiEvent(int(ev[0]), tuple(int(b) for b in ev[1:]))
        if not 0 <= ev.offset < max(block_length, 1):
            raise ParameterError(
                f"MIDI event offset={ev.offset} is outside the block [0, {block_length}); "
                "offsets count samples from the start of the block the event comes with"
            )
        out.append(ev)
    return sorted(out, key=lambda e: e.offset)


def melody_events(notes: Iterable, *, sample_rate: int, n_samples: int | None = None) -> list[MidiEvent]:
    """Engine events for ``notes`` (:class:`audiosym.io.midifile.MelodyNote` or anything with
    ``onset_s``, ``offset_s``, ``pitch``, ``velocity``) with offsets in samples
    from the start of the signal at ``sample_rate`` Hz, sorted; at equal offsets note-offs come
    before note-ons. Overlapping notes are passed as played: the engine applies last-note
    priority itself (legato when an earlier note is still held), exactly as it does live.
    Events at or after ``n_samples`` are dropped.
    """
    keyed = []
    for seq, n in enumerate(notes):
        on = int(round(n.onset_s * sample_rate))
        off = max(int(round(n.offset_s * sample_rate)), on + 1)
        keyed.append((on, 1, seq, note_on(on, n.pitch, max(1, min(127, n.velocity)))))
        keyed.append((off, 0, seq, note_off(off, n.pitch)))
    keyed.sort(key=lambda k: k[:3])
    return [ev for offset, _, _, ev in keyed if n_samples is None or offset < n_samples]


def fold_note(note: int, lo: int, hi: int) -> int:
    """``note`` moved by whole octaves into the playable range ``[lo, hi]`` (MIDI numbers): the
    in-range note of the same pitch class nearest to it (A3 = 57 in C4 .. B5 = 60 .. 83 -> A4 =
    69). Notes in range are returned as they are. A range narrower than an octave may lack the
    pitch class: then the octave nearest the range (the engine clips what is still outside)."""
    if lo <= note <= hi:
        return note
    if note < lo:
        first = lo + (note - lo) % 12  # the lowest note of the pitch class >= lo
        candidates = (first, first - 12)
    else:
        first = hi - (hi - note) % 12  # the highest note of the pitch class <= hi
        candidates = (first, first + 12)
    return min(candidates, key=lambda n: (max(lo - n, n - hi, 0), abs(n - note)))


@dataclass(frozen=True)
class ControlState:
    """Everything MIDI has set. ``held``: (note, velocity) pairs, newest last."""

    held: tuple[tuple[int, int], ...] = ()
    last_note: int | None = None
    last_velocity: int = 100
    bend: float = 0.0  # -1 .. 1
    mod: float = 0.0  # CC1 / 127
    timbre: str = ""
    ignored_programs: int = 0
    ignored_messages: int = 0
    folded_notes: int = 0  # note-ons outside the playable range, played octaves up or down (fold_note)

    @property
    def note(self) -> int | None:
        return self.held[-1][0] if self.held else None

    @property
    def velocity(self) -> int:
        return self.held[-1][1] if self.held else self.last_velocity


@dataclass(frozen=True)
class Change:
    """What one message changed: ``gate`` 'on' (new attack), 'legato', 'off', 'panic' or None;
    ``timbre``/``pitch``: whether the decoded spectrum must be recomputed."""

    gate: str | None = None
    spectrum: bool = False


def apply_message(cs: ControlState, data: tuple[int, ...], program_timbres: dict[int, str],
                  note_range: tuple[int, int] | None = None) -> tuple[ControlState, Change]:
    """Apply one message. ``program_timbres``: GM program -> timbre name (unknown programs are
    ignored and counted in ``ignored_programs``). ``note_range``: the playable ``(lo, hi)`` MIDI
    notes; note-ons and note-offs outside it are folded into it (:func:`fold_note`), the
    note-ons counted in ``folded_notes``. None: notes are taken as they come."""
    if not data:
        return replace(cs, ignored_messages=cs.ignored_messages + 1), Change()
    kind = data[0] & 0xF0
    d1 = data[1] if len(data) > 1 else 0
    d2 = data[2] if len(data) > 2 else 0
    folded = 0
    if note_range is not None and kind in (NOTE_OFF, NOTE_ON):
        note = fold_note(d1, *note_range)
        folded, d1 = int(note != d1), note
    if kind == NOTE_ON and d2 > 0:
        held = tuple(h for h in cs.held if h[0] != d1) + ((d1, d2),)
        gate = "legato" if cs.held else "on"
        return (replace(cs, held=held, last_note=d1, last_velocity=d2, folded_notes=cs.folded_notes + folded),
                Change(gate=gate, spectrum=True))
    if kind in (NOTE_OFF, NOTE_ON):
        was = cs.note
        held = tuple(h for h in cs.held if h[0] != d1)
        cs = replace(cs, held=held)
        if was is not None and not held:
            return cs, Change(gate="off")
        if held and held[-1][0] != was:
            return replace(cs, last_note=held[-1][0]), Change(gate="legato", spectrum=True)
        return cs, Change()
    if kind == PITCH_BEND:
        bend = (((d2 << 7) | d1) - 8192) / 8192.0
        return replace(cs, bend=max(-1.0, bend)), Change(spectrum=True)
    if kind == CONTROL_CHANGE:
        if d1 == CC_MODWHEEL:
            return replace(cs, mod=d2 / 127.0), Change(spectrum=True)
        if d1 == CC_ALL_NOTES_OFF:
            return replace(cs, held=()), Change(gate="off" if cs.held else None)
        if d1 == CC_ALL_SOUND_OFF:
            return replace(cs, held=()), Change(gate="panic")
        if d1 == CC_RESET_CONTROLLERS:
            return replace(cs, bend=0.0, mod=0.0), Change(spectrum=True)
        return replace(cs, ignored_messages=cs.ignored_messages + 1), Change()
    if kind == PROGRAM_CHANGE:
        name = program_timbres.get(d1)
        if name is None:
            return replace(cs, ignored_programs=cs.ignored_programs + 1), Change()
        return replace(cs, timbre=name), Change(spectrum=True)
    return replace(cs, ignored_messages=cs.ignored_messages + 1), Change()


# ----------------------------------------------------------------------------- ADSR
@dataclass(frozen=True)
class Adsr:
    """Times in seconds, ``sustain`` as a fraction of the peak. Linear segments (no clicks:
    every segment starts where the previous one stopped). ``panic_s``: fade on all-sound-off."""

    attack_s: float = 0.005
    decay_s: float = 0.150
    sustain: float = 0.7
    release_s: float = 0.200
    panic_s: float = 0.005


@dataclass(frozen=True)
class AdsrState:
    """``stage``: 'idle' | 'attack' | 'decay' | 'sustain' | 'release'; ``level`` 0..1;
    ``rate``: level change per sample of the current release."""

    stage: str = "idle"
    level: float = 0.0
    rate: float = 0.0


def adsr_gate(st: AdsrState, gate: str, adsr: Adsr, sample_rate: int) -> AdsrState:
    """Apply a gate change ('on', 'legato', 'off', 'panic') at the current sample."""
    if gate == "on":
        return AdsrState("attack", st.level, 0.0)
    if gate == "legato":
        return st if st.stage in ("attack", "decay", "sustain") else AdsrState("attack", st.level)
    if gate in ("off", "panic") and st.stage != "idle":
        secs = adsr.release_s if gate == "off" else adsr.panic_s
        return AdsrState("release", st.level, st.level / max(secs * sample_rate, 1.0))
    return st


def adsr_run(st: AdsrState, n: int, adsr: Adsr, sample_rate: int) -> tuple[np.ndarray, AdsrState]:
    """Envelope for the next ``n`` samples with no gate change: ``(env [n] float64, state)``.

    Each output sample is the level *after* that sample's step, so a note-on at offset ``k``
    makes sample ``k`` already non-zero.
    """
    out = np.empty(n, dtype=np.float64)
    i = 0
    up = 1.0 / max(adsr.attack_s * sample_rate, 1.0)
    down = (1.0 - adsr.sustain) / max(adsr.decay_s * sample_rate, 1.0)
    while i < n:
        stage, level = st.stage, st.level
        if stage in ("idle", "sustain"):
            out[i:] = level
            break
        if stage == "attack":
            steps = int(np.ceil((1.0 - level) / up - 1e-9))
            target, rate, nxt = 1.0, up, "decay"
        elif stage == "decay":
            steps = int(np.ceil((level - adsr.sustain) / down - 1e-9))
            target, rate, nxt = adsr.sustain, -down, "sustain"
        else:  # release
            steps = int(np.ceil(level / st.rate - 1e-9)) if st.rate > 0 else 0
            target, rate, nxt = 0.0, -st.rate, "idle"
        m = min(max(steps, 0), n - i)
        seg = level + rate * np.arange(1, m + 1)
        out[i:i + m] = np.minimum(seg, 1.0) if rate > 0 else np.maximum(seg, target)
        i += m
        if m == max(steps, 0):
            st = AdsrState(nxt, target, 0.0)
        else:
            st = replace(st, level=float(out[i - 1]))
    return out, st
