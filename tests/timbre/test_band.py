"""Band extension above the model's 8 kHz band (audiosym.timbre.band): profiles measured from real
soundfont renders at 44.1 kHz, played by the engine at output rates >= 32 kHz, absent below that
and in presets without profiles.

Real components: FluidR3_GM renders (tinysoundfont), the shipped presets and their ONNX graphs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from audiosym.data.soundfonts import find_soundfont, render_note
from audiosym.engine.control import MidiEvent, note_off, note_on
from audiosym.engine.engine import Engine
from audiosym.preset.session import load_preset
from audiosym.timbre.band import (
    FLOOR_DB,
    FREQ_GRID,
    MEASURE_RATE,
    NOISE_EDGES,
    BandProfile,
    blend,
    extends,
    limit_hz,
    measure_band,
)
from audiosym.timbre.match import from_bytes, to_bytes

REPO = Path(__file__).resolve().parents[2]


def high_band_db(y: np.ndarray, sr: int, lo: float = 8000.0) -> float:
    """Energy above ``lo`` over the total, dB."""
    p = np.abs(np.fft.rfft(y * np.hanning(len(y)))) ** 2
    f = np.fft.rfftfreq(len(y), 1 / sr)
    return float(10 * np.log10(p[f >= lo].sum() / p.sum() + 1e-30))


@pytest.fixture(scope="module")
def sps():
    return load_preset(REPO / "presets" / "sps-default.asym", device="cpu")


@pytest.fixture(scope="module")
def fluid():
    return find_soundfont("FluidR3_GM")


def _profile(sf: str, program: int, pitches=range(60, 73)) -> BandProfile | None:
    notes = [(float(m), render_note(sf, program, m, note_seconds=0.5, sample_rate=MEASURE_RATE)) for m in pitches]
    return measure_band(notes, MEASURE_RATE, source=f"test program {program}")


def test_profile_of_a_real_violin_render_has_harmonics_above_8k(fluid):
    prof = _profile(fluid, 40)
    assert prof is not None and prof.source == "test program 40"
    harm, noise = prof.at(66.0)
    assert harm.shape == (len(FREQ_GRID),) and noise.shape == (len(NOISE_EDGES) - 1,)
    above = harm[(FREQ_GRID > 8000) & (FREQ_GRID < 14000)]
    assert np.all(above > FLOOR_DB + 30), above  # a violin has real partials up there
    assert np.all(above < 0), above  # and they are weaker than the 2.5-7 kHz anchor
    # interpolation between grid pitches, clamped outside
    assert np.allclose(prof.at(-1.0)[0], prof.harm_db[0]) and np.allclose(prof.at(200.0)[0], prof.harm_db[-1])
    mid = prof.at(60.5)[0]
    assert np.all(mid <= np.maximum(prof.harm_db[0], prof.harm_db[1]) + 1e-9)


def test_notes_without_an_anchor_give_no_profile():
    """A pure 440 Hz sine has no harmonic between 2.5 and 7 kHz to anchor a profile on; silence
    neither; and a rate that cannot hold the band is refused."""
    sr = MEASURE_RATE
    t = np.arange(sr // 2) / sr
    sine = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    assert measure_band([(69.0, sine)], sr) is None
    assert measure_band([(69.0, np.zeros(sr // 2, np.float32))], sr) is None
    with pytest.raises(ValueError, match="must be >= 32000"):
        measure_band([(69.0, sine)], 24000)


def test_blend_mixes_in_power():
    a = (np.full(16, -10.0), np.full(5, -20.0))
    b = (np.full(16, -30.0), np.full(5, -40.0))
    assert np.allclose(blend(a, b, 0.0)[0], -10) and np.allclose(blend(a, b, 1.0)[1], -40)
    half = blend(a, b, 0.5)[0]
    assert np.allclose(half, 10 * np.log10(0.5 * (0.1 + 0.001)))
    assert np.allclose(blend(a, b, 7.0)[0], -30)  # weights are clamped


def test_rates_that_extend():
    assert not extends(16000) and not extends(24000) and extends(44100) and extends(48000)
    assert limit_hz(44100) == pytest.approx(0.49 * 44100) and limit_hz(48000) == pytest.approx(0.49 * 48000) and limit_hz(96000) == 24000


@pytest.mark.parametrize("name", ["sps-default", "v3-default"])
def test_shipped_presets_carry_band_profiles_for_their_named_timbres(name):
    preset = load_preset(REPO / "presets" / f"{name}.asym", device="cpu")
    trained = sorted(n for n, t in preset.metadata["timbres"].items() if t["program"] >= 0)
    assert preset.has_band
    assert sorted(preset.match.bands) == trained == preset.metadata["match"]["band_extension"]["timbres"]
    assert preset.band("no-such-timbre") is None and preset.band(None) is None


def test_band_profiles_survive_the_match_file(sps):
    back = from_bytes(to_bytes(sps.match))
    assert sorted(back.bands) == sorted(sps.match.bands)
    for name, prof in sps.match.bands.items():
        got = back.bands[name]
        assert np.array_equal(got.pitch_grid, prof.pitch_grid) and np.allclose(got.harm_db, prof.harm_db)
        assert np.allclose(got.noise_db, prof.noise_db) and got.source == prof.source


@pytest.mark.parametrize("timbre,program", [("violin", 40), ("trumpet", 56), ("flute", 73)])
def test_engine_output_reaches_the_target_band_at_44k_and_48k(sps, fluid, timbre, program):
    """A held G4 in synth mode: above 8 kHz the output carries about what the real instrument does
    (FluidR3 render at the same rate) at 44.1 and 48 kHz; at 24 kHz there is no extension."""
    for sr in (44100, 48000):
        e = Engine(sps, timbre=timbre, sample_rate=sr, mode="synth")
        assert e.extends_band
        out = e.render(sr, [note_on(0, 67)])[sr // 10:]
        real = render_note(fluid, program, 67, note_seconds=1.0, sample_rate=sr)[sr // 10: sr]
        got, want = high_band_db(out, sr), high_band_db(real, sr)
        assert abs(got - want) <= 6.0, (timbre, sr, got, want)
    low = Engine(sps, timbre=timbre, sample_rate=24000, mode="synth")
    assert not low.extends_band


def test_a_preset_without_band_profiles_stays_in_the_model_band(sps):
    bare = dataclasses.replace(sps, match=dataclasses.replace(sps.match, bands={}))
    assert not bare.has_band
    e = Engine(bare, timbre="violin", sample_rate=44100, mode="synth")
    assert not e.extends_band
    y = e.render(44100, [note_on(0, 67)])[4410:]
    banded = Engine(sps, timbre="violin", sample_rate=44100, mode="synth").render(44100, [note_on(0, 67)])[4410:]
    assert high_band_db(y, 44100) < high_band_db(banded, 44100) - 15


def test_band_output_does_not_depend_on_the_block_size(sps):
    sr = 44100
    n = int(0.25 * sr)
    t = np.arange(n) / sr
    x = (0.2 * np.sin(2 * np.pi * 392 * t) * (t > 0.01)).astype(np.float32)
    events = [note_on(2000, 67), note_off(7000, 67), note_on(7100, 71)]
    e = Engine(sps, timbre="violin", sample_rate=sr, mode="transfer", morph_timbre="trumpet")
    assert e.extends_band
    whole = e.render(x, events)
    assert high_band_db(whole[4000:], sr) > -55
    for block in (64, 65, 128, 8193):
        e.reset()
        out = []
        for i in range(0, n, block):
            evs = [MidiEvent(ev.offset - i, ev.data) for ev in events if i <= ev.offset < i + block]
            out.append(e.process(x[i:i + block], evs))
        np.testing.assert_allclose(np.concatenate(out), whole, atol=1e-4, err_msg=f"block {block}")


def test_a_reference_recording_at_44k_brings_its_own_band_profile(sps, fluid):
    """``--timbre-from REF.wav``: the recording's notes give the reference timbre a band profile
    (at 32 kHz and more), which the engine plays; a 22.05 kHz recording gives none."""
    from audiosym.data.soundfonts import render_melody
    from audiosym.timbre.reference import reference_from_audio

    melody = [(0.5 * i, 0.45, p, 100) for i, p in enumerate([62, 65, 67, 69, 72, 70, 67, 64])]
    notes = [(a, a + d, p) for a, d, p, _ in melody]
    y = render_melody(fluid, 56, melody, sample_rate=44100)  # a trumpet
    ref = reference_from_audio(sps, y, sample_rate=44100, name="ref:trumpet", notes=notes)
    assert ref.band is not None and list(ref.band.pitch_grid) == sorted({p for _, _, p in notes})
    with_ref = sps.with_references([ref])
    assert with_ref.band("ref:trumpet") is ref.band and with_ref.has_band
    e = Engine(with_ref, timbre="ref:trumpet", sample_rate=44100, mode="synth")
    out = e.render(44100, [note_on(0, 67)])[4410:]
    real = render_note(fluid, 56, 67, note_seconds=1.0, sample_rate=44100)[4410:44100]
    assert abs(high_band_db(out, 44100) - high_band_db(real, 44100)) <= 6.0
    y22 = render_melody(fluid, 56, melody, sample_rate=22050)
    assert reference_from_audio(sps, y22, sample_rate=22050, name="ref:t22", notes=notes).band is None


def test_extension_leaves_out_partials_far_under_the_strongest():
    """Partials PRUNE_DB under the frame's strongest cost an oscillator each and are not heard:
    they are not synthesised; the ones above that level are."""
    from audiosym.timbre.band import PRUNE_DB, extend

    f0 = 200.0
    amps = np.zeros(100)
    amps[:30] = 0.1  # harmonics to 6 kHz, the anchor among them
    amps[0] = 1.0
    noise = np.zeros(len(NOISE_EDGES) - 1)
    harm = np.linspace(-20.0, -90.0, len(FREQ_GRID))  # falling toward the floor
    extend(amps, noise, f0, (harm, np.full(len(noise), -60.0)), 20000.0)
    f = np.arange(1, 101) * f0
    ext = amps[(f >= 7000) & (f < 20000)]
    assert ext[0] > 0 and ext[-1] == 0.0
    assert np.all(ext[ext > 0] >= 10 ** (PRUNE_DB / 20) - 1e-12)
    assert np.all(noise > 0)
