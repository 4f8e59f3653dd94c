"""MIDI that is not note-on/off (sysex, clock, a status byte missing, a message cut short), a note
flood and notes outside the preset's range: the engine ignores or folds them, counts them,
never crashes and leaves no note stuck (part of issue #15's "bad input").

Real components: the shipped SPS preset at 48 kHz, 128-sample blocks as a sound server asks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audiosym.engine.control import MidiEvent, control_change, note_off, note_on
from audiosym.engine.engine import Engine
from audiosym.preset.session import load_preset

REPO = Path(__file__).resolve().parents[2]
SR, BLOCK = 48000, 128

GARBAGE = [
    (0xF0, 0x7E, 0x7F, 0x06, 0x01, 0xF7),  # sysex (identity request)
    (0xF8,), (0xFA,), (0xFC,), (0xFE,),  # clock, start, stop, active sensing
    (0x45, 0x64),  # data bytes without a status byte (running status not expanded)
    (),  # nothing
    (0x90,),  # a note-on cut short
    (0xB0, 0x07),  # a control change cut short
    (0xA0, 60, 30), (0xD0, 40),  # poly and channel pressure
    (0xF2, 0x10, 0x20), (0xF3, 0x01), (0xFF,),  # song position, song select, reset
]


@pytest.fixture(scope="module")
def sps():
    return load_preset(REPO / "presets" / "sps-default.asym", device="cpu")


def _play(engine: Engine, events: list[MidiEvent], n_blocks: int) -> np.ndarray:
    out = []
    for b in range(n_blocks):
        lo = b * BLOCK
        block = [MidiEvent(e.offset - lo, e.data) for e in events if lo <= e.offset < lo + BLOCK]
        out.append(engine.process(BLOCK, block))
    return np.concatenate(out)


def test_garbage_between_notes_is_ignored_and_counted(sps):
    e = Engine(sps, timbre="flute", sample_rate=SR, mode="synth")
    events = [note_on(0, 67)] + [MidiEvent(100 + 7 * i, g) for i, g in enumerate(GARBAGE)] + [note_off(24000, 67)]
    y = _play(e, events, 375)  # 1 s
    assert np.all(np.isfinite(y)) and np.sqrt(np.mean(y[2000:20000] ** 2)) > 1e-3  # the note sounds
    assert np.abs(y[-4800:]).max() < 1e-6  # and ends: the release is 0.2 s
    # all but the cut-short note-on, which reads as note 0 at velocity 0 (a note-off: nothing to stop)
    assert e.ignored_messages == len(GARBAGE) - 1


def test_a_note_flood_leaves_no_note_stuck(sps):
    """1,000 note-ons per second for 2 s over the whole MIDI range, each released 5 ms later,
    some outside the preset's range (folded into it, counted): silence after the last release."""
    e = Engine(sps, timbre="violin", sample_rate=SR, mode="synth")
    rng = np.random.default_rng(3)
    events = []
    for i in range(2000):
        t, note = i * 48, int(rng.integers(0, 128))
        events += [note_on(t, note, int(rng.integers(1, 128))), note_off(t + 240, note)]
    events.sort(key=lambda ev: ev.offset)
    y = _play(e, events, int(2.5 * SR) // BLOCK)
    assert np.all(np.isfinite(y)) and np.abs(y).max() < 4.0
    assert np.abs(y[-SR // 10:]).max() < 1e-6  # nothing stuck
    assert e.folded_notes > 0 and e.folded_notes < 2000


def test_all_notes_off_and_panic_release_held_notes(sps):
    for cc in (123, 120):
        e = Engine(sps, timbre="flute", sample_rate=SR, mode="synth")
        events = [note_on(0, 60), note_on(10, 64), note_on(20, 67), control_change(9600, cc, 0)]
        y = _play(e, events, 200)
        assert np.sqrt(np.mean(y[2000:9000] ** 2)) > 1e-3
        assert np.abs(y[-4800:]).max() < 1e-6, cc
