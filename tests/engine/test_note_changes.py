"""Note changes in transfer mode with the timbre's note envelope (``dynamics="timbre"``, the
default of every command): no click when a note starts over the last one's release, no blip when
a note is released. Both were heard on every note change of a melody before 2026-12-05.

Real components: the shipped V3 preset (its band profiles left out, so that everything above
10 kHz in its output is a click), MuseScore_General renders of a violin melody."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import butter, sosfilt

from audiosym.data.soundfonts import find_soundfont, render_melody
from audiosym.engine.dynamics import ONSET_FADE_S, NoteEnvState, note_gain, note_gate, releasing
from audiosym.offline.render import resynthesize
from audiosym.preset.session import load_preset

REPO = Path(__file__).resolve().parents[2]
SR = 44100
#: (onset s, duration s, pitch, velocity): legato-ish notes 50 ms apart, as a player phrases
MELODY = [(0.0, 0.45, 69, 90), (0.5, 0.45, 74, 80), (1.0, 0.45, 71, 108), (1.5, 0.45, 76, 95)]


@pytest.fixture(scope="module")
def played():
    preset = load_preset(REPO / "presets" / "v3-default.asym", device="cpu").with_stored_match()
    preset = dataclasses.replace(preset, match=dataclasses.replace(preset.match, bands={}))
    y = render_melody(find_soundfont("MuseScore_General"), 40, MELODY, sample_rate=SR, tail_seconds=0.3)
    y = (0.1 * y / np.sqrt(np.mean(y ** 2))).astype(np.float32)
    from audiosym.io.midifile import MelodyNote

    notes = [MelodyNote(a, a + d, p, v) for a, d, p, v in MELODY]
    out, _ = resynthesize(preset, y, sample_rate=SR, timbre="flute", notes=notes)
    return out


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def test_no_click_at_note_changes(played):
    """Onsets and note-offs: the energy above 10 kHz near them stays near the held note's."""
    hp = sosfilt(butter(8, 10000, "hp", fs=SR, output="sos"), played)
    env = np.sqrt(np.convolve(hp ** 2, np.ones(256) / 256, "same"))
    for onset, dur, *_ in MELODY[1:]:
        k, off = int(onset * SR), int((onset + dur) * SR)
        mid = env[k + 4000:off - 4000].mean()
        around = env[k - 1000:k + 1000].max()
        assert around < 6 * mid, (onset, around / mid)  # a one-sample cut made this 36-130 x
        at_off = env[off - 1000:off + 1000].max()
        assert at_off < 6 * mid, (onset + dur, at_off / mid)  # a step down to the input's level


def test_release_is_no_louder_than_the_note(played):
    for onset, dur, *_ in MELODY[:-1]:
        off = int((onset + dur) * SR)
        before, after = _rms(played[off - 1800:off]), _rms(played[off:off + 1800])
        assert after <= 1.1 * before, (onset, after / before)  # the input's spectrum took over: 2.3 x


def test_note_gain_fades_from_the_gain_it_found():
    curve = np.array([0.0, 1.0, 1.0])
    fade = ONSET_FADE_S * SR
    st = note_gate(None, "on", (curve, 441.0), 1000, 0.8, fade)
    assert st.from_gain == 0.8 and st.fade == fade and not releasing(st)
    out = np.empty(400)
    st = note_gain(st, np.full(400, 0.5), 1000, out, release_samples=4410)
    assert out[0] == pytest.approx(0.8)  # no step at the onset
    assert np.all(np.abs(np.diff(out)) < 0.8 / fade + 0.5 / 441 + 1e-9)  # a ramp, not a cut
    np.testing.assert_allclose(out[int(fade) + 1:], 0.5 * (np.arange(int(fade) + 1, 400) / 441.0), rtol=1e-9)
    assert releasing(note_gate(st, "off", None, 1400, float(out[-1])))
    assert isinstance(note_gate(st, "legato", None, 1400, 0.1), NoteEnvState)
