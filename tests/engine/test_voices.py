"""Polyphonic synth mode (audiosym.engine.voices) on a shipped preset and real onnxruntime:
chords, voice allocation, sustain pedal, all-notes-off / all-sound-off, velocity, channel bend,
one batched decoder call per block, blocking invariance, note floods."""

import numpy as np
import pytest

from audiosym.dsp.pitch import midi_to_hz
from audiosym.engine.control import MidiEvent, control_change, note_off, note_on, pitch_bend
from audiosym.engine.engine import Engine
from audiosym.engine.voices import MAX_VOICES, TICK_DECODES, Voice, allocate
from audiosym.errors import ParameterError
from audiosym.preset.session import load_preset

SR = 48000


@pytest.fixture(scope="module")
def preset():
    return load_preset("sps-default", device="cpu", intra_op_threads=1).with_stored_match()


def synth(preset, voices=8, **kw):
    return Engine(preset, timbre=preset.default_timbre, sample_rate=SR, mode="synth", voices=voices, **kw)


def rms(y):
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))


def peak_db(y, midi):
    """Strongest spectral magnitude (dB) within +-30 cents of ``midi``'s fundamental."""
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    freqs = np.fft.rfftfreq(len(y), 1 / SR)
    lo, hi = midi_to_hz(midi - 0.3), midi_to_hz(midi + 0.3)
    return 20 * np.log10(spec[(freqs >= lo) & (freqs <= hi)].max() + 1e-12)


def blockwise(engine, n, events, block):
    engine.reset()
    out = []
    for i in range(0, n, block):
        evs = [MidiEvent(e.offset - i, e.data) for e in events if i <= e.offset < i + block]
        out.append(engine.process(min(block, n - i), evs))
    return np.concatenate(out)


CHORD = (60, 64, 67, 72)


def test_a_chord_sounds_all_its_pitches(preset):
    y = synth(preset).render(int(0.5 * SR), [note_on(100 + i, n, 100) for i, n in enumerate(CHORD)])
    seg = y[int(0.2 * SR):int(0.45 * SR)]
    played = [peak_db(seg, n) for n in CHORD]
    for absent in (62, 66, 70):  # not a note of the chord, nor one of its partials
        assert min(played) > peak_db(seg, absent) + 20


def test_one_voice_is_the_monophonic_engine(preset):
    events = [note_on(100, 60, 100), note_on(5000, 64, 90), note_off(9000, 64), note_off(12000, 60)]
    mono = Engine(preset, timbre=preset.default_timbre, sample_rate=SR, mode="synth")
    np.testing.assert_array_equal(synth(preset, voices=1).render(20000, events), mono.render(20000, events))
    assert mono.voices == 1 and mono.state.poly is None


def test_transfer_mode_stays_monophonic(preset):
    x = (0.2 * np.sin(2 * np.pi * 220 * np.arange(12000) / SR)).astype(np.float32)
    events = [note_on(100, 60, 100), note_on(3000, 64, 100), note_off(8000, 64)]
    kw = {"timbre": preset.default_timbre, "sample_rate": SR, "mode": "transfer"}
    np.testing.assert_array_equal(Engine(preset, voices=8, **kw).render(x, events), Engine(preset, **kw).render(x, events))


def scenario():
    """Chord, bend, mod, pedal, a note re-struck, all-notes-off, a note after it."""
    return [*(note_on(100 + 7 * i, n, 100) for i, n in enumerate(CHORD)), pitch_bend(4003, 0.5),
            control_change(6001, 1, 90), note_off(8002, 64), control_change(9000, 64, 127),
            note_off(10001, 60), note_on(11000, 62, 80), note_on(12005, 60, 70), control_change(14003, 64, 0),
            note_on(15000, 74, 127), control_change(17003, 123, 0), note_on(19000, 71, 60),
            control_change(21001, 120, 0)]


@pytest.mark.parametrize("block", [64, 65, 128, 8193])
def test_output_does_not_depend_on_block_size(preset, block):
    eng = synth(preset, voices=4)  # 4 voices: note 74 steals one
    n = 23000
    whole = eng.render(n, scenario())
    assert rms(whole) > 1e-3
    np.testing.assert_allclose(blockwise(eng, n, scenario(), block), whole, atol=1e-5)


def test_allocation_takes_a_free_voice_else_the_oldest_released_else_the_oldest_held():
    from audiosym.engine.control import AdsrState

    on = AdsrState("sustain", 0.7)
    rel = AdsrState("release", 0.3, 0.001)
    free = Voice()
    assert allocate((Voice(60, 0, 100, 0, "held", on), free), 0, 64) == 1
    voices = (Voice(60, 0, 100, 0, "held", on), Voice(62, 0, 100, 3, "released", rel),
              Voice(64, 0, 100, 1, "released", rel), Voice(65, 0, 100, 2, "pedal", on))
    assert allocate(voices, 0, 70) == 2  # the oldest released
    assert allocate(voices[:1] + voices[3:], 0, 70) == 1  # then the pedal-held one
    assert allocate((Voice(60, 0, 100, 5, "held", on), Voice(62, 0, 100, 4, "held", on)), 0, 70) == 1
    assert allocate(voices, 0, 65) == 3  # the note already sounding there is re-struck
    assert allocate(voices, 1, 65) == 2  # ... on its own channel only


def test_a_full_bank_steals_the_oldest_note(preset):
    eng = synth(preset, voices=2)
    eng.process(2000, [note_on(0, 60), note_on(10, 64), note_on(20, 67)])
    notes = sorted(v.note for v in eng.state.poly.voices if v.key == "held")
    assert notes == [64, 67]
    assert eng.active_voices == 2


def test_sustain_pedal_holds_released_notes_until_it_goes_up(preset):
    eng = synth(preset)
    eng.process(4800, [control_change(0, 64, 127), note_on(10, 60), note_on(20, 64), note_off(2000, 60),
                       note_off(2010, 64)])
    assert eng.active_voices == 2 and {v.key for v in eng.state.poly.voices if v.sounding} == {"pedal"}
    held = eng.process(4800)
    assert rms(held) > 0.5 * rms(eng.process(480))  # still at sustain level
    eng.process(480, [control_change(0, 64, 0)])
    tail = eng.process(int(0.3 * SR))  # the ADSR release is 0.2 s
    assert eng.active_voices == 0 and rms(tail[-4800:]) == 0.0
    # without the pedal the same note-offs release at once
    eng.reset()
    eng.process(4800, [note_on(10, 60), note_off(2000, 60)])
    assert {v.key for v in eng.state.poly.voices if v.sounding} == {"released"}


@pytest.mark.parametrize("cc, within_s", [(123, 0.21), (120, 0.01)])
def test_all_notes_off_and_all_sound_off_silence_every_voice(preset, cc, within_s):
    eng = synth(preset)
    eng.process(4800, [control_change(0, 64, 127), *(note_on(10 + i, n) for i, n in enumerate(CHORD))])
    eng.process(100, [note_off(0, 60)])  # pedal-held
    assert eng.active_voices == 4
    eng.process(1, [control_change(0, cc, 0)])
    eng.process(int(within_s * SR))
    assert eng.active_voices == 0 and rms(eng.process(4800)) == 0.0


def test_velocity_scales_the_level(preset):
    levels = [rms(synth(preset).render(int(0.4 * SR), [note_on(0, 67, v)])[int(0.2 * SR):]) for v in (127, 64)]
    assert levels[0] / levels[1] == pytest.approx((127 / 64) ** 2, rel=0.05)  # DLS: 40 log10(v / 127) dB
    chord = rms(synth(preset).render(int(0.4 * SR), [note_on(0, 60, 127), note_on(0, 67, 64)])[int(0.2 * SR):])
    assert levels[0] < chord < levels[0] + levels[1]  # two voices add (their partials do not all coincide)


def test_pitch_bend_moves_every_voice_of_its_channel_only(preset):
    events = [note_on(0, 60, 100), note_on(0, 67, 100), note_on(0, 76, 100, channel=1),
              pitch_bend(100, 0.5)]  # +1 semitone (range 2) on channel 0
    y = synth(preset).render(int(0.5 * SR), events)[int(0.2 * SR):]
    for moved in (61, 68):
        assert peak_db(y, moved) > peak_db(y, moved - 1) + 20
    assert peak_db(y, 76) > peak_db(y, 77) + 20  # channel 1 unbent


def test_voices_decode_in_one_batched_call_per_block_and_a_bend_refreshes_them_in_turn(preset):
    """Note-ons decode at once, all in one call; a change that moves every voice (CC1, a bend)
    refreshes ``TICK_DECODES`` voices per control tick in turn, so no block pays for all."""
    calls: list[int] = []
    original = preset.decode

    class Counting:  # the preset's decoder, counted (a Preset is frozen)
        def __getattr__(self, name):
            return getattr(preset, name)

        def decode(self, **inputs):
            calls.append(len(next(iter(inputs.values()))))
            return original(**inputs)

    assert TICK_DECODES == 2
    eng = synth(preset)
    eng.preset = Counting()
    block = eng.control_period  # one control step per block
    eng.process(block, [note_on(0, n, 100) for n in CHORD])
    assert calls == [4]  # the chord's four note-ons: one call
    eng.process(block * 3)
    assert calls == [4]  # nothing changed: no decode
    eng.process(block, [control_change(5, 1, 64)])  # CC1 moves every voice's spectrum
    for _ in range(3):
        eng.process(block)
    assert calls == [4, 2, 2]  # two voices per tick, each once
    eng.process(block, [pitch_bend(0, 0.25), note_on(1, 79, 90)])
    for _ in range(3):
        eng.process(block)
    assert calls[3:] == [3, 2]  # two bent voices + the new note at once, then the other two


def test_a_note_flood_neither_crashes_nor_leaves_a_note_on(preset):
    rng = np.random.default_rng(0)
    n = SR  # one second, 1000 note-ons and their note-offs, notes 0..127 (outside the range too)
    events = []
    for k in range(1000):
        note = int(rng.integers(0, 128))
        at = k * 48
        events += [note_on(at, note, int(rng.integers(1, 128)), channel=k % 3), note_off(at + 40, note, channel=k % 3)]
    eng = synth(preset)
    y = blockwise(eng, n, events, 128)
    assert np.isfinite(y).all() and np.abs(y).max() < 4.0
    assert eng.folded_notes > 0
    tail = eng.process(int(0.3 * SR))
    assert eng.active_voices == 0 and rms(tail[-4800:]) == 0.0


def test_voices_is_checked(preset):
    for bad in (0, MAX_VOICES + 1, 2.5):
        with pytest.raises(ParameterError, match="voices="):
            synth(preset, voices=bad)
