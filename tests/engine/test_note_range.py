"""Notes outside a preset's playable range (issue #16 item 4): folded into it by octaves, counted
by the engine, and reported, never played in a wrong octave silently."""

import json
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from audiosym.engine.control import ControlState, apply_message, fold_note, note_off, note_on

REPO = Path(__file__).resolve().parents[2]
V3 = REPO / "presets" / "v3-default.asym"  # playable C4 .. B5 = MIDI 60 .. 83
SR = 48000


@pytest.mark.parametrize("note,lo,hi,want", [
    (57, 60, 83, 69),  # A3 -> A4: the only A in range
    (48, 60, 83, 60),  # C3 -> C4
    (59, 60, 83, 71),  # B3 -> B4
    (84, 60, 83, 72),  # C6 -> C5
    (100, 60, 83, 76),  # E7 -> E5, two octaves down
    (12, 36, 96, 36),  # C0 -> C2, the nearest C in range (C2 .. C7 all are)
    (60, 60, 83, 60), (83, 60, 83, 83), (70, 60, 83, 70),  # in range: unchanged
    (61, 64, 67, 61),  # no C# in E4 .. G4: the octave nearest the range
])
def test_fold_note_moves_by_octaves_into_the_range(note, lo, hi, want):
    folded = fold_note(note, lo, hi)
    assert folded == want and (folded - note) % 12 == 0


def test_fold_note_without_the_pitch_class_in_range_picks_the_nearest_octave():
    assert fold_note(50, 64, 67) == 62  # D3 -> D4 (2 below E4), not D5 (7 above G4)
    assert fold_note(80, 64, 67) == 68  # G#5 -> G#4 (1 above G4)


def test_control_folds_note_on_and_off_and_counts_note_ons():
    cs = ControlState(timbre="flute")
    cs, change = apply_message(cs, note_on(0, 57).data, {}, (60, 83))
    assert cs.note == 69 and cs.last_note == 69 and cs.folded_notes == 1 and change.gate == "on"
    cs, _ = apply_message(cs, note_on(0, 64).data, {}, (60, 83))  # in range: as played, not counted
    assert cs.note == 64 and cs.folded_notes == 1
    cs, change = apply_message(cs, note_off(0, 64).data, {}, (60, 83))
    assert cs.note == 69 and change.gate == "legato"
    cs, change = apply_message(cs, note_off(0, 57).data, {}, (60, 83))  # the folded note is released
    assert cs.note is None and change.gate == "off" and cs.folded_notes == 1
    # without a range notes pass as they come (the old behaviour, for code that wants it)
    assert apply_message(ControlState(), note_on(0, 57).data, {})[0].note == 57


def _pitch(y, sr=SR):
    import librosa

    f0, voiced, _ = librosa.pyin(np.asarray(y, dtype=np.float64), fmin=100, fmax=1500, sr=sr, frame_length=4096)
    return float(np.nanmedian(librosa.hz_to_midi(f0[voiced])))


@pytest.fixture(scope="module")
def v3():
    from audiosym.preset.session import load_preset

    if not V3.exists():
        pytest.skip("presets/v3-default.asym is not shipped")
    return load_preset(V3, device="cpu").with_stored_match()


def _synth(preset, note, *, note_range="preset"):
    from audiosym.engine.engine import Engine

    engine = Engine(preset, timbre=preset.default_timbre, sample_rate=SR, mode="synth")
    if note_range is None:
        engine.note_range = None  # notes as they come, as before issue #16
    out = engine.process(SR // 2, [note_on(0, note), note_off(SR // 2 - 1, note)])
    return out, engine.folded_notes


def test_v3_default_plays_a3_at_a4_and_counts_it(v3):
    a3, folded = _synth(v3, 57)
    a4, in_range = _synth(v3, 69)
    assert folded == 1 and in_range == 0
    assert abs(_pitch(a3[2400:]) - 69) < 0.3  # measured: A4, where it used to sound near C#4
    np.testing.assert_array_equal(a3, a4)  # exactly what playing A4 plays


@pytest.mark.parametrize("note", [60, 67, 72, 83])
def test_in_range_notes_are_unchanged(v3, note):
    played, folded = _synth(v3, note)
    unfolded, _ = _synth(v3, note, note_range=None)
    assert folded == 0
    np.testing.assert_array_equal(played, unfolded)


def _melody(path, pitches, *, note_s=0.5):
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=56)
    inst.notes = [pretty_midi.Note(velocity=100, pitch=p, start=0.05 + i * note_s, end=0.05 + (i + 1) * note_s - 0.05)
                  for i, p in enumerate(pitches)]
    pm.instruments.append(inst)
    pm.write(str(path))
    return path


def _take(path, seconds=1.2, sr=22050):
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * 196.0 * t) * np.minimum(t / 0.01, 1)).astype(np.float32), sr)
    return path


def test_resynth_warns_once_per_file_and_plays_the_folded_octave(v3, tmp_path, capsys):
    from audiosym.cli import main

    for name in ("a.wav", "b.wav"):
        _take(tmp_path / name)
    low = _melody(tmp_path / "low.mid", [57, 57])  # A3 twice: below C4
    capsys.readouterr()
    rc = main(["resynth", str(tmp_path / "a.wav"), str(tmp_path / "b.wav"), "--out", str(tmp_path / "out"),
               "--preset", str(V3), "--timbre", v3.default_timbre, "--midi", str(low), "--no-progress", "--json"])
    captured = capsys.readouterr()
    assert rc == 0
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, captured.err  # one line per file
    for line, name in zip(warnings, ("a.wav", "b.wav"), strict=True):
        assert name in line and "2 notes outside the playable range" in line and "C4 .. B5 (MIDI 60 .. 83)" in line
        assert f"move the notes of {low}" in line and "a preset whose range covers them" in line
    summary = json.loads(captured.out)
    assert [f["folded_notes"] for f in summary["files"]] == [2, 2]
    out, sr = sf.read(summary["files"][0]["output"], dtype="float32")
    assert abs(_pitch(out[int(0.1 * sr):int(0.5 * sr)], sr) - 69) < 0.3  # A4, not A3 or a wrong octave

    capsys.readouterr()
    rc = main(["resynth", str(tmp_path / "a.wav"), "--out", str(tmp_path / "in-range"), "--preset", str(V3),
               "--timbre", v3.default_timbre, "--midi", str(_melody(tmp_path / "ok.mid", [69, 72])),
               "--no-progress", "--json"])
    captured = capsys.readouterr()
    assert rc == 0 and "warning" not in captured.err
    assert json.loads(captured.out)["files"][0]["folded_notes"] == 0


def test_resynth_input_pitch_below_range_names_transpose(v3, tmp_path, capsys):
    """The input's own notes below the range (a G3 take, transposed down further) are folded too,
    and the warning names --transpose."""
    from audiosym.cli import main

    _take(tmp_path / "g3.wav")
    capsys.readouterr()
    rc = main(["resynth", str(tmp_path / "g3.wav"), "--out", str(tmp_path / "out"), "--preset", str(V3),
               "--timbre", v3.default_timbre, "--transpose", "-12", "--no-progress", "--json"])
    captured = capsys.readouterr()
    assert rc == 0
    (line,) = [x for x in captured.err.splitlines() if x.startswith("warning:")]
    assert "outside the playable range" in line and "--transpose N" in line
    assert json.loads(captured.out)["files"][0]["folded_notes"] >= 1
