"""`audiosym live` with notes below the preset's range (issue #16 item 4), on a real JACK dummy
server: the note sounds in the nearest octave inside the range, and the count is reported at exit."""

import json
from pathlib import Path

import pytest
from test_live import _midi_out, _play, _record, _stable_pitches, _start_live, jack_env  # noqa: F401

pytestmark = [pytest.mark.live, pytest.mark.slow]

V3 = Path(__file__).resolve().parents[2] / "presets" / "v3-default.asym"  # playable C4 .. B5


def test_live_folds_notes_below_the_range_and_reports_them(jack_env, monkeypatch, tmp_path):  # noqa: F811
    if not V3.exists():
        pytest.skip("presets/v3-default.asym is not shipped")
    midi = _midi_out(jack_env, monkeypatch, "audiosym-keys-range")
    try:
        proc = _start_live(jack_env, "--preset", str(V3), "--mode", "synth", "--midi-port", "audiosym-keys-range",
                           "--midi-api", "jack", "--seconds", "4", "--json")
        rec = _record(jack_env, "PortAudio:out_0", tmp_path / "out.wav", 2.5)
        _play(midi, [57, 64])  # A3 (below C4: played as A4), then E4 (in range, as played)
        rec.wait(timeout=15)
        out, err = proc.communicate(timeout=30)
    finally:
        midi.close_port()
        midi.delete()
    assert proc.returncode == 0, err[-2000:]
    assert "playable range C4 .. B5 (MIDI 60 .. 83)" in err
    assert "warning: 1 note outside the playable range of v3-default" in err, err[-2000:]
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["folded_notes"] == 1 and stats["midi_messages"] == 4 and stats["callback_errors"] == 0
    assert stats["ignored_midi_messages"] == 0 and "were ignored" not in err
    runs = _stable_pitches(tmp_path / "out.wav")
    assert [r for r, _ in runs] == [69, 64], runs
