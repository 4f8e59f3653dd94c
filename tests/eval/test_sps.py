"""audiosym.eval.sps: the pooled line, its frame errors, the preset's own line, baselines, split."""

import json

import numpy as np
import pytest

from audiosym.eval.sps import OCTAVE_ERROR_SEMITONES, frame_errors, score_notes, summary_lines

from ._notes import ReadPeakModel, note_table

PITCHES = np.arange(48, 73)  # 25 notes each: var(MIDI) = (25**2 - 1) / 12 = 52
PIANO, CLARINET, FLUTE, VIOLIN = 0, 71, 73, 40


def four_instruments(*, violin_octave_up: bool):
    model = ReadPeakModel()
    marker = {VIOLIN: model.octave_marker} if violin_octave_up else None
    table = note_table({p: PITCHES for p in (PIANO, CLARINET, FLUTE, VIOLIN)}, marker=marker)
    return model, table


def test_one_instrument_an_octave_off_sinks_the_pooled_line_not_the_per_instrument_r2():
    model, table = four_instruments(violin_octave_up=True)
    r = score_notes(model, table, excluded={})
    # per instrument every line is exact: an own intercept hides the octave
    assert r["r2_mean"] == pytest.approx(1.0)
    # one line for all: violin's +12 semitones on a quarter of the notes adds 144 * 1/4 * 3/4 = 27
    # to the variance of MIDI (52) that the line cannot explain
    assert r["pooled_r2"] == pytest.approx(52 / 79, abs=1e-6)
    assert r["pooled_line"]["b"] == pytest.approx(model.b, rel=1e-6)
    # the pooled line sits 3 semitones above the right one: frames are off by 3 -+ 0.3 semitones,
    # the violin's by 9 -+ 0.3; the median frame is 3.3 semitones off
    assert r["cents_error_median"] == pytest.approx(330.0, abs=1e-3)
    assert r["octave_error_rate"] == pytest.approx(0.25)


def test_without_the_octave_instrument_the_pooled_line_is_exact_and_only_jitter_is_left():
    model, table = four_instruments(violin_octave_up=False)
    r = score_notes(model, table, excluded={})
    assert r["pooled_r2"] == pytest.approx(1.0)
    assert r["cents_error_median"] == pytest.approx(100 * model.jitter, abs=1e-3)  # frame level, not note medians
    assert r["octave_error_rate"] == 0.0


def test_engine_line_is_the_presets_stored_pitch_control():
    model, table = four_instruments(violin_octave_up=True)
    assert "engine_line_cents_error_median" not in score_notes(model, table, excluded={})  # a run: no stored line
    model.metadata = {"pitch_control": {"type": "linear", "a": model.a, "b": model.b}}
    r = score_notes(model, table, excluded={})
    assert r["engine_line_cents_error_median"] == pytest.approx(100 * model.jitter, abs=1e-3)
    assert r["engine_line_octave_error_rate"] == pytest.approx(0.25)
    # a stored line one semitone low reads frames 1 -+ 0.3 semitones off, the median one 1.3
    model.metadata["pitch_control"]["a"] = model.a - model.b
    r = score_notes(model, table, excluded={})
    assert r["engine_line_cents_error_median"] == pytest.approx(100 * (1 + model.jitter), abs=1e-3)


def test_excluded_instruments_stay_out_of_the_pooled_line_and_the_split():
    model, table = four_instruments(violin_octave_up=True)
    r = score_notes(model, table, excluded={"violin": "pyin cannot track its renders"})
    assert r["pooled_r2"] == pytest.approx(1.0)
    assert r["octave_error_rate"] == 0.0
    assert r["split"] == {"soundfont": "TestFont", "role": "test", "programs": [PIANO, CLARINET, FLUTE],
                          "instruments": ["piano", "clarinet", "flute"]}
    r.pop("_codes"), r.pop("_fits"), r.pop("_timbres")
    json.dumps(r)  # --json prints it
    assert any("one pooled line" in line for line in summary_lines({**r, "soundfont": "x", "train_soundfont": "y"}))


def test_baselines_are_scored_on_the_same_notes():
    model = ReadPeakModel()
    # on every other note the clarinet's 2nd partial is the strongest: the strongest peak jumps
    # an octave there, a harmonic comb does not
    weak_fundamental = note_table({CLARINET: PITCHES}, amps=lambda p, m: (
        np.array([0.3, 1.0, 0.5, 0.3, 0.2, 0.1, 0.1, 0.1]) if m % 2 else 1.0 / np.arange(1, 9)))
    r = score_notes(model, weak_fundamental, excluded={})
    assert set(r["baselines"]) == {"harmonic_comb", "flat_comb", "strongest_peak"}
    assert r["baselines"]["harmonic_comb"] > 0.99
    assert r["baselines"]["flat_comb"] > 0.99
    assert r["baselines"]["strongest_peak"] < 0.9


@pytest.mark.parametrize(("err", "octave"), [(0.0, False), (5.9, False), (6.1, True), (-6.1, True),
                                             (12.0, True), (-24.0, True), (float("nan"), True)])
def test_octave_error_is_more_than_six_semitones_either_way(err, octave):
    cents, rate = frame_errors(np.array([[err]]))
    assert rate == float(octave)
    assert OCTAVE_ERROR_SEMITONES == 6.0
    if np.isfinite(err):
        assert cents == pytest.approx(100 * abs(err))
