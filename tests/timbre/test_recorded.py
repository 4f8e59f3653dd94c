"""Match data of a recordings preset, measured on the recordings (audiosym.timbre.recorded): real
files rendered with TimGM6mb, the shipped SPS preset's graphs, the real engine."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from _recordings import TIMBRES, melody, write_take

from audiosym.data.recording_set import load_recordings
from audiosym.dsp.metrics import mrstft_distance
from audiosym.io.midifile import MelodyNote
from audiosym.offline.render import resynthesize
from audiosym.preset.session import load_preset
from audiosym.timbre.match import from_bytes, to_bytes
from audiosym.timbre.recorded import measure_recorded, note_spans, timbre_audio


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """violin takes at 44.1 kHz, flute takes at 22.05 kHz (no band above 11 kHz to measure)."""
    root = tmp_path_factory.mktemp("recs")
    rng = np.random.default_rng(3)
    for name, rate in (("violin", 44100), ("flute", 22050)):
        program, lo, hi = TIMBRES[name]
        for i in range(2):
            write_take(root / name / f"take{i}.flac", program, melody(rng, lo, hi, 14.0), sample_rate=rate)
    preset = load_preset("sps-default")
    recs = load_recordings(root, preset.features, progress=False)
    return preset, recs, measure_recorded(preset, recs)


def test_recorded_match_measures_every_folder_and_band_only_where_recorded(measured):
    _, recs, named = measured
    assert sorted(named.info["timbres"]) == ["flute", "violin"]
    assert sorted(named.envelopes) == ["flute", "violin"]
    assert sorted(named.bands) == ["violin"]  # the 22.05 kHz flute takes do not hold the band
    assert named.info["band_extension"]["timbres"] == ["violin"]
    for ref in named.references:
        assert ref.frames >= 100 and np.abs(ref.relative).max() > 0.05  # measured, not zeros
    back = from_bytes(to_bytes(named))
    assert sorted(back.bands) == ["violin"] and sorted(back.envelopes) == ["flute", "violin"]


def test_note_pieces_are_joined_into_whole_notes(measured):
    preset, recs, _ = measured
    fn = recs.files[0]
    spans = note_spans(fn, preset.features.frame_seconds)
    assert 0 < len(spans) <= int((fn.part == 0).sum())
    assert all(b > a for a, b, _ in spans) and all(np.isfinite(p) for *_, p in spans)
    y, sr, notes, full = timbre_audio([f for f, t in zip(recs.files, recs.file_timbre)
                                       if recs.timbres[t] == "flute"], preset.features.frame_seconds, budget_s=5.0)
    assert sr == 22050 and not full.any() and len(y) <= 5.5 * sr  # the budget bounds what is read
    assert all(b <= len(y) / sr for _, b, _ in notes)


def test_recorded_match_brings_the_output_closer_to_the_recorded_instrument(measured, tmp_path):
    """A flute melody played as 'violin': with the match data of the violin recordings (TimGM6mb's
    violin) the output is closer to TimGM6mb's violin playing that melody than with the preset's
    stored match data (FluidR3's violin)."""
    preset, _, named = measured
    program, lo, hi = TIMBRES["violin"]
    notes = melody(np.random.default_rng(11), lo, hi, 8.0)
    target = write_take(tmp_path / "t.wav", program, notes)
    source = write_take(tmp_path / "s.wav", TIMBRES["flute"][0], notes)
    melody_notes = [MelodyNote(a, a + dur, p, v) for a, dur, p, v in notes]

    def distance(p) -> float:
        out, _ = resynthesize(p.with_stored_match(), source, sample_rate=44100, timbre="violin", notes=melody_notes)
        n = min(len(out), len(target))
        return mrstft_distance(out[:n], target[:n])

    own = distance(dataclasses.replace(preset, match=named))
    stored = distance(preset)
    assert own < 0.85 * stored, (own, stored)  # measured 2026-12-05: 1.76 against 2.96
