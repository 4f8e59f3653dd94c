"""MIDI events, monophonic control (last-note priority) and the ADSR envelope."""

import numpy as np
import pytest

from audiosym.engine.control import (
    Adsr,
    AdsrState,
    ControlState,
    MidiEvent,
    adsr_gate,
    adsr_run,
    apply_message,
    as_events,
    control_change,
    note_off,
    note_on,
    pitch_bend,
    program_change,
)
from audiosym.errors import ParameterError

PROGRAMS = {40: "violin", 73: "flute"}


def run(messages, cs=None):
    cs = cs or ControlState(timbre="flute")
    changes = []
    for ev in messages:
        cs, ch = apply_message(cs, ev.data, PROGRAMS)
        changes.append(ch)
    return cs, changes


def test_as_events_accepts_tuples_bytes_and_sorts():
    evs = as_events([(5, 0x90, 60, 100), (2, bytes([0x80, 60, 0])), note_on(3, 62)], block_length=8)
    assert [e.offset for e in evs] == [2, 3, 5]
    assert evs[0].data == (0x80, 60, 0) and evs[2].data == (0x90, 60, 100)


@pytest.mark.parametrize("offset", [-1, 8])
def test_as_events_rejects_offsets_outside_the_block(offset):
    with pytest.raises(ParameterError, match="outside the block"):
        as_events([(offset, 0x90, 60, 100)], block_length=8)


def test_last_note_priority_and_legato():
    cs, ch = run([note_on(0, 60), note_on(0, 64), note_on(0, 67)])
    assert cs.note == 67 and [c.gate for c in ch] == ["on", "legato", "legato"]
    cs, ch = run([note_off(0, 67)], cs)
    assert cs.note == 64 and ch[0].gate == "legato"  # falls back to the newest note still held
    cs, ch = run([note_off(0, 60)], cs)  # releasing a non-sounding note changes nothing audible
    assert cs.note == 64 and ch[0].gate is None
    cs, ch = run([note_off(0, 64)], cs)
    assert cs.note is None and ch[0].gate == "off" and cs.last_note == 64


def test_note_on_velocity_zero_is_note_off():
    cs, _ = run([note_on(0, 60)])
    cs, ch = run([MidiEvent(0, (0x90, 60, 0))], cs)
    assert cs.note is None and ch[0].gate == "off"


def test_pitch_bend_range_and_centre():
    for value in (-1.0, -0.5, 0.0, 0.5, 1.0):
        cs, _ = run([pitch_bend(0, value)])
        assert cs.bend == pytest.approx(value, abs=1.0 / 8192)


def test_modwheel_program_change_and_unknown_program_counted():
    cs, ch = run([control_change(0, 1, 127), program_change(0, 40), program_change(0, 5)])
    assert cs.mod == 1.0 and cs.timbre == "violin" and cs.ignored_programs == 1
    assert ch[0].spectrum and ch[1].spectrum and not ch[2].spectrum


def test_all_notes_off_and_all_sound_off():
    cs, _ = run([note_on(0, 60), note_on(0, 62)])
    cs2, ch = run([control_change(0, 123, 0)], cs)
    assert cs2.held == () and ch[0].gate == "off"
    cs3, ch = run([control_change(0, 120, 0)], cs)
    assert cs3.held == () and ch[0].gate == "panic"


def test_adsr_shape():
    adsr = Adsr(attack_s=0.01, decay_s=0.02, sustain=0.5, release_s=0.04)
    sr = 1000
    st = adsr_gate(AdsrState(), "on", adsr, sr)
    env, st = adsr_run(st, 50, adsr, sr)
    assert env[0] == pytest.approx(0.1) and env[9] == pytest.approx(1.0)
    assert env[29] == pytest.approx(0.5) and np.all(env[30:] == 0.5) and st.stage == "sustain"
    st = adsr_gate(st, "off", adsr, sr)
    env, st = adsr_run(st, 50, adsr, sr)
    assert env[0] == pytest.approx(0.5 - 0.5 / 40) and env[39] == pytest.approx(0.0) and st.stage == "idle"
    assert np.all(np.diff(env) <= 0)


@pytest.mark.parametrize("split", [1, 7, 64])
def test_adsr_is_block_invariant(split):
    adsr = Adsr(attack_s=0.013, decay_s=0.031, sustain=0.6, release_s=0.05)
    sr = 1000
    st = adsr_gate(AdsrState(), "on", adsr, sr)
    whole, _ = adsr_run(st, 80, adsr, sr)
    parts = []
    for i in range(0, 80, split):
        e, st = adsr_run(st, min(split, 80 - i), adsr, sr)
        parts.append(e)
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-12)
