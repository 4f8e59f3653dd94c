"""audiosym.timbre.match: stored match corrections and note envelopes of named timbres, and the
engine's ``dynamics="timbre"`` that plays the envelopes.

Real components where they exist: the FluidR3 soundfont the shipped presets trained on, the
shipped presets (onnxruntime), the real engine; a numpy stand-in preset for the engine's
arithmetic.
"""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from _fake_preset import FakeDecoder, FakePreset

from audiosym.dsp.features import FeatureConfig
from audiosym.engine.control import MidiEvent, note_off, note_on
from audiosym.engine.engine import Engine
from audiosym.errors import ParameterError
from audiosym.timbre.envelope import NoteEnvelope, pitch_row
from audiosym.timbre.match import MatchTable, NamedMatch, from_bytes, to_bytes
from audiosym.timbre.reference import TimbreReference

REPO = Path(__file__).resolve().parents[2]


def _refs(rng, n_refs=3, dim=4, n_bins=190):
    refs = []
    for i in range(n_refs):
        g0 = float(rng.integers(40, 60))
        grid = g0 + np.arange(rng.integers(1, 20), dtype=np.float64)
        refs.append(TimbreReference(
            name=f"t{i}", vector=rng.normal(size=dim).astype(np.float32), pitch_grid=grid,
            relative=rng.normal(size=(len(grid), 2 * n_bins - 1)).astype(np.float32),
            absolute=rng.normal(size=n_bins).astype(np.float32), frames=100 + i, midi_range=(g0, grid[-1]),
            source=f"sf program {i}"))
    return refs


def _per_row(out, timbre, midi, refs, scales, cfg):
    """The definition, one row at a time (what the reference layers did before MatchTable)."""
    out = out.astype(np.float32, copy=True)
    n_bins = out.shape[-1]
    bins = np.arange(n_bins, dtype=np.float64)
    offsets = np.arange(-(n_bins - 1), n_bins, dtype=np.float64)
    for ref, scale in zip(refs, scales):
        w = np.clip(1.0 - np.linalg.norm(timbre - ref.vector, axis=-1) / scale, 0.0, 1.0)
        for i, j in zip(*np.nonzero(w > 0)):
            m = float(midi[i, j]) if np.isfinite(midi[i, j]) else 60.0
            row = pitch_row(ref.relative, ref.pitch_grid, m)
            corr = np.interp(bins - cfg.midi_to_bin(m), offsets, row) + ref.absolute
            out[i, j] += np.float32(w[i, j]) * corr.astype(np.float32)
    return out


def test_match_table_equals_the_per_row_definition(rng):
    cfg = FeatureConfig()
    refs = _refs(rng)
    scales = [1.5, 2.0, 0.7]
    table = MatchTable(refs, scales, cfg)
    n, t = 40, 3
    # rows on a reference, between two (morphs), far from all, at pitches inside, outside and NaN
    timbre = rng.normal(size=(n, t, 4)).astype(np.float32) * 3
    timbre[:10] = refs[0].vector
    timbre[10:20] = 0.6 * refs[1].vector + 0.4 * refs[2].vector
    timbre[20:25] = refs[2].vector + 0.1
    midi = rng.uniform(20, 100, size=(n, t))
    midi[0, 0] = np.nan
    out = rng.normal(size=(n, t, cfg.n_bins)).astype(np.float32)
    want = _per_row(out, timbre, midi, refs, scales, cfg)
    got = table.apply(out, timbre, midi)
    assert np.abs(got - out).max() > 0.1  # it corrected something
    np.testing.assert_allclose(got, want, atol=2e-5)
    for i in range(0, n, 7):  # one row at a time, as the engine asks
        np.testing.assert_allclose(table.apply(out[i:i + 1, :1], timbre[i:i + 1, :1], midi[i:i + 1, :1]),
                                   want[i:i + 1, :1], atol=2e-5)
    far = rng.normal(size=(2, 1, 4)).astype(np.float32) + 100.0
    assert table.apply(out[:2, :1], far, midi[:2, :1]) is out[:2, :1] or np.array_equal(
        table.apply(out[:2, :1], far, midi[:2, :1]), out[:2, :1])


def test_stored_match_round_trips_through_bytes(rng):
    refs = _refs(rng)
    env = {"t0": NoteEnvelope(np.array([40.0, 44.0]), rng.uniform(-60, 0, (2, 200)).astype(np.float32))}
    back = from_bytes(to_bytes(NamedMatch(refs, env)))
    assert [r.name for r in back.references] == [r.name for r in refs]
    for a, b in zip(refs, back.references):
        np.testing.assert_array_equal(a.pitch_grid, b.pitch_grid)
        np.testing.assert_array_equal(a.vector, b.vector)
        np.testing.assert_allclose(a.relative, b.relative, atol=4e-3 * np.abs(a.relative).max())
        np.testing.assert_allclose(a.absolute, b.absolute, atol=4e-3 * np.abs(a.absolute).max())
        assert (a.frames, a.midi_range, a.source) == (b.frames, b.midi_range, b.source)
    np.testing.assert_allclose(back.envelopes["t0"].db, env["t0"].db, atol=0.05)
    from audiosym.errors import PresetError

    with pytest.raises(PresetError, match="re-export"):
        from_bytes(b"not an npz")


def test_note_envelope_curve_interpolates_registers_and_clamps():
    env = NoteEnvelope(np.array([50.0, 60.0]), np.array([[0.0, -20.0], [-20.0, -40.0]], np.float32))
    np.testing.assert_allclose(env.curve(55.0), [0.1 ** 0.5, 0.01 ** 0.5 * 0.1 ** 0.5], rtol=1e-6)
    np.testing.assert_allclose(env.curve(30.0), [1.0, 0.1], rtol=1e-6)  # below the grid: lowest row
    np.testing.assert_allclose(env.curve(99.0), [0.1, 0.01], rtol=1e-6)
    np.testing.assert_allclose(env.curve(float("nan")), [1.0, 0.1], rtol=1e-6)


def test_measured_envelopes_decay_for_piano_and_hold_for_an_organ():
    """FluidR3 (the shipped presets' training soundfont): after 1.5 s a piano note has lost far
    more than an organ note (whose slight sag and chorus beating FluidR3 does have)."""
    from audiosym.timbre.match import measure_notes

    fake = FakePreset(timbres={"acoustic_grand_piano": {"program": 0, "vector": [0, 0, 0, 0]},
                               "drawbar_organ": {"program": 16, "vector": [1, 0, 0, 0]}},
                      calibration={"soundfont": "FluidR3_GM"})
    env, _ = measure_notes(fake, ["acoustic_grand_piano", "drawbar_organ"])
    k = int(1.5 / env["drawbar_organ"].hop_s)
    piano, organ = env["acoustic_grand_piano"], env["drawbar_organ"]
    assert len(piano.pitch_grid) >= 3 and piano.db.shape == (len(piano.pitch_grid), 200)
    assert piano.db[:, k].mean() < -15.0 and organ.db[:, k].mean() > -6.0
    assert np.all(piano.db[:, k] < organ.db[:, k] - 5.0)  # in every register
    assert np.all(organ.db[:, 10:] > -9.0)  # the organ holds: no register fades
    assert np.all(piano.db.max(axis=1) == 0.0)  # relative to each note's peak


@pytest.mark.parametrize("note_s", [0.5, 1.2])
def test_a_recordings_envelope_matches_the_stored_measurement(note_s):
    """A melody of short notes gives the envelope that 2 s single notes give (FluidR3): within
    the notes as measured, beyond them continued at the rate they were falling."""
    from audiosym.data.soundfonts import find_soundfont, render_melody
    from audiosym.timbre.envelope import recording_envelope
    from audiosym.timbre.match import measure_notes

    fake = FakePreset(timbres={"acoustic_grand_piano": {"program": 0, "vector": [0, 0, 0, 0]},
                               "clarinet": {"program": 71, "vector": [1, 0, 0, 0]}},
                      calibration={"soundfont": "FluidR3_GM"})
    stored, _ = measure_notes(fake, fake.timbre_names)
    notes = [(i * (note_s + 0.1), i * (note_s + 0.1) + note_s, p) for i, p in enumerate([60, 64, 67, 72, 60, 62])]
    for name, program in (("acoustic_grand_piano", 0), ("clarinet", 71)):
        y = render_melody(find_soundfont("FluidR3_GM"), program, [(a, b - a, p, 100) for a, b, p in notes],
                          sample_rate=16000)
        env = recording_envelope(y, 16000, notes)
        assert env is not None and env.pitch_grid[0] == 60 and env.pitch_grid[-1] == 72
        got, want = 20 * np.log10(env.curve(64)), 20 * np.log10(stored[name].curve(64))
        inside = int(note_s / 0.01) - 5
        assert np.abs(got[10:inside] - want[10:inside]).max() < 2.0, name
        assert abs(got[150] - want[150]) < 7.0, name  # 1.5 s: extrapolated (a piano decays ever slower)
    assert 20 * np.log10(env.curve(64)[150]) > -3.0  # the clarinet (last) holds


def test_a_recordings_envelope_needs_notes_long_enough():
    from audiosym.timbre.envelope import recording_envelope

    y = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    assert recording_envelope(y, 16000, [(0.0, 0.1, 60), (0.5, 0.55, 62)]) is None
    assert recording_envelope(y, 16000, []) is None
    assert recording_envelope(y, 16000, [(0.0, 0.5, 60)]) is not None


def test_notes_of_a_recording_without_a_melody():
    """Runs of pitched frames become notes, each backed up to its attack: what the envelope
    reads when a reference comes without its melody."""
    from audiosym.data.soundfonts import find_soundfont, render_melody
    from audiosym.dsp.features import FeatureConfig, features
    from audiosym.timbre.envelope import recording_notes
    from audiosym.timbre.reference import _steady_frames

    played = [(0.2, 0.6, 60), (0.8, 1.3, 67), (1.5, 1.9, 64)]
    y = render_melody(find_soundfont("FluidR3_GM"), 71, [(a, b - a, p, 100) for a, b, p in played],
                      sample_rate=16000)
    cfg = FeatureConfig()
    idx, midi = _steady_frames(y, features(y, cfg), cfg, 36, 96)
    notes = recording_notes(y, 16000, idx, midi, hop_length=cfg.hop_length, n_fft=cfg.n_fft)
    assert [round(n[2]) for n in notes] == [60, 67, 64]
    for (onset, offset, _), (a, b, _) in zip(notes, played):
        assert abs(onset - a) < 0.04 and abs(offset - b) < 0.04, (notes, played)


# ---------------------------------------------------------------------------- engine
def EnvelopePreset():  # noqa: N802 - it stands for a class
    """The fake preset with stored note envelopes: 'flute' falls 20 dB per second, 'violin' holds."""
    t = np.arange(200) * 0.01
    grid = np.array([36.0, 96.0])
    return FakePreset(match=NamedMatch(envelopes={
        "flute": NoteEnvelope(grid, np.tile(-20.0 * t, (2, 1)).astype(np.float32)),
        "violin": NoteEnvelope(grid, np.zeros((2, 200), np.float32)),
    }))


def _rms(y):
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))


@pytest.fixture(scope="module")
def env_preset():
    return EnvelopePreset()


def test_timbre_dynamics_play_the_stored_envelope_at_the_input_level(env_preset):
    sr = 48000
    t = np.arange(2 * sr) / sr
    x = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)  # steady input
    events = [note_on(100, 60, 127)]
    e = Engine(env_preset, timbre="flute", sample_rate=sr, mode="transfer", dynamics="timbre")
    y = e.render(x, events)
    a, b = _rms(y[int(0.2 * sr):int(0.3 * sr)]), _rms(y[int(1.2 * sr):int(1.3 * sr)])
    assert 20 * np.log10(a / b) == pytest.approx(20.0, abs=0.5)  # the envelope's 20 dB per second
    assert _rms(y[int(0.2 * sr):int(0.3 * sr)]) == pytest.approx(0.2 / np.sqrt(2) * 10 ** (-5 / 20), rel=0.1)
    # the same input under dynamics="input" stays level
    flat = Engine(env_preset, timbre="flute", sample_rate=sr, mode="transfer").render(x, events)
    assert _rms(flat[int(1.2 * sr):int(1.3 * sr)]) == pytest.approx(_rms(flat[int(0.2 * sr):int(0.3 * sr)]), rel=0.05)


def test_timbre_dynamics_hold_a_decaying_input_at_its_peak(env_preset):
    sr = 48000
    t = np.arange(sr) / sr
    x = (0.3 * np.exp(-3 * t) * np.sin(2 * np.pi * 220 * t)).astype(np.float32)  # a decaying input
    y = Engine(env_preset, timbre="violin", sample_rate=sr, mode="transfer", dynamics="timbre").render(
        x, [note_on(0, 57, 127)])
    early, late = _rms(y[int(0.1 * sr):int(0.2 * sr)]), _rms(y[int(0.8 * sr):int(0.9 * sr)])
    assert late == pytest.approx(early, rel=0.02)  # an organ-like (held) timbre holds
    assert early == pytest.approx(0.3 / np.sqrt(2), rel=0.05)  # at the input's peak level


def test_timbre_dynamics_release_then_wait_for_a_quiet_input(env_preset):
    sr = 48000
    e = Engine(env_preset, timbre="violin", sample_rate=sr, mode="transfer", dynamics="timbre")
    t = np.arange(2 * sr) / sr
    x = (0.2 * np.sin(2 * np.pi * 220 * t) * (t < 1.2)).astype(np.float32)  # input stops at 1.2 s
    off = int(0.5 * sr)
    y = e.render(x, [note_on(0, 60, 127), note_off(off, 60)])
    release = int(e.adsr.release_s * sr)
    assert _rms(y[off + release + 100:int(1.2 * sr)]) == 0.0  # faded, input still loud: silent
    assert _rms(y[off:off + release // 4]) > 0.5 * _rms(y[off - release // 4:off])  # a fade, not a cut
    # once the input has been quiet, input-level following resumes for the next sound
    x2 = np.concatenate([x, 0.2 * np.sin(2 * np.pi * 220 * t[: sr // 2])]).astype(np.float32)
    y2 = e.render(x2, [note_on(0, 60, 127), note_off(off, 60)])
    assert _rms(y2[2 * sr + sr // 4:]) == pytest.approx(0.2 / np.sqrt(2), rel=0.1)


@pytest.mark.parametrize("block", [64, 127, 4096])
def test_timbre_dynamics_do_not_depend_on_block_size(env_preset, block):
    sr = 44100
    e = Engine(env_preset, timbre="flute", sample_rate=sr, mode="transfer", dynamics="timbre")
    t = np.arange(sr // 2) / sr
    x = (0.2 * np.sin(2 * np.pi * 220 * t) * np.exp(-2 * t)).astype(np.float32)
    events = [note_on(1003, 60, 100), note_on(9000, 62, 90), note_off(15011, 62), note_on(17000, 64, 100)]
    whole = e.render(x, events)
    e.reset()
    out = []
    for i in range(0, len(x), block):
        evs = [MidiEvent(ev.offset - i, ev.data) for ev in events if i <= ev.offset < i + block]
        out.append(e.process(x[i:i + block], evs))
    np.testing.assert_allclose(np.concatenate(out), whole, atol=1e-5)


def test_timbres_without_an_envelope_follow_the_input(env_preset):
    sr = 48000
    t = np.arange(sr) / sr
    x = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    events = [note_on(0, 60, 127)]
    a = Engine(env_preset, timbre="trumpet", sample_rate=sr, dynamics="timbre").render(x, events)
    b = Engine(env_preset, timbre="trumpet", sample_rate=sr, dynamics="input").render(x, events)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ParameterError, match="dynamics"):
        Engine(env_preset, timbre="flute", sample_rate=sr, dynamics="loud")


# ---------------------------------------------------------------------------- shipped presets
@pytest.mark.parametrize("name", ["sps-default", "v3-default"])
def test_shipped_presets_store_match_data_for_every_named_timbre(name):
    from audiosym.preset.session import load_preset

    preset = load_preset(REPO / "presets" / f"{name}.asym", device="cpu")
    assert preset.match is not None, f"presets/{name}.asym stores no match data: rebuild it (presets/README.md)"
    trained = sorted(n for n, t in preset.metadata["timbres"].items() if t["program"] >= 0)
    assert sorted(r.name for r in preset.match.references) == trained
    assert sorted(preset.match.envelopes) == trained
    wrapped = preset.with_stored_match()
    assert wrapped.applies_stored_match and not preset.applies_stored_match
    assert wrapped.with_stored_match() is wrapped  # never applied twice
    timbre = preset.default_timbre
    lo, hi = preset.midi_range
    midi = np.arange(lo, hi + 1, dtype=np.float64)
    key, tkey = preset.pitch_latent, preset.timbre_latent
    lat = {key: preset.midi_to_latent(midi)[:, None, :].astype(np.float32),
           tkey: np.repeat(preset.timbre_vector(timbre)[None, None], len(midi), axis=0)}
    diff = wrapped.decode(**lat) - preset.decode(**lat)
    assert np.abs(diff).max() > 0.1  # the correction is applied to the named timbre


def test_a_timbre_that_cannot_be_measured_is_skipped_not_fatal():
    """A named timbre whose program has no note inside the preset's range gets no match data
    (and says why); the others are measured."""
    from audiosym.preset.session import load_preset
    from audiosym.timbre.match import measure_named

    preset = load_preset(REPO / "presets" / "v3-default.asym", device="cpu")
    names = [preset.default_timbre]
    real = preset.metadata["timbres"]
    meta = dict(preset.metadata)
    # an acoustic bass (GM 32, playable 36..60) in a preset that plays 61..83: no note to measure
    meta["timbres"] = {**real, "acoustic_bass": {**real[names[0]], "program": 32}}
    meta["midi_range"] = [61, 83]
    named = measure_named(dataclasses.replace(preset, metadata=meta), names + ["acoustic_bass"])
    assert [r.name for r in named.references] == names and sorted(named.envelopes) == names
    assert "acoustic_bass" in named.info["skipped"] and named.info["timbres"] == names


def test_subharmonic_measurement_flags_only_the_16_foot_organ():
    from audiosym.timbre.match import measure_notes
    from audiosym.timbre.reference import SUBHARMONIC_RATIO

    fake = FakePreset(timbres={n: {"program": p, "vector": [0, 0, 0, 0]}
                               for n, p in (("drawbar_organ", 16), ("flute", 73), ("acoustic_grand_piano", 0),
                                            ("violin", 40))},
                      calibration={"soundfont": "FluidR3_GM"})
    _, ratio = measure_notes(fake, fake.timbre_names)
    assert ratio["drawbar_organ"] > 2 * SUBHARMONIC_RATIO
    assert max(ratio[n] for n in ("flute", "acoustic_grand_piano", "violin")) < 0.1 * SUBHARMONIC_RATIO


class SubOctaveDecoder(FakeDecoder):
    """The fake decoder with a sub-octave partial series added (half-harmonics as strong as the
    harmonics, like a 16' organ stop)."""

    def spectrum(self, midi, v):
        out = super().spectrum(midi, v)
        k = np.arange(self.cfg.n_bins, dtype=np.float64)
        for half in (0.5, 1.5, 2.5, 3.5):
            b = self.cfg.midi_to_bin(midi + 12 * np.log2(half))
            out += 0.5 * np.exp(-0.5 * ((k - b[..., None]) / 0.6) ** 2)
        return out


def SubOctavePreset():  # noqa: N802 - it stands for a class
    """The fake preset whose timbres all decode with a sub-octave series; 'violin' says so (its
    stored sub-harmonic ratio), 'flute' has the same spectrum but does not."""
    return FakePreset(match=NamedMatch(subharmonic={"violin": 1.0}), decoder=SubOctaveDecoder)


def test_a_subharmonic_timbre_plays_its_sub_octave_as_partials_not_noise():
    sr = 48000
    preset = SubOctavePreset()
    events = [note_on(0, 60, 127)]
    f0 = 261.63
    spectra = {}
    for timbre in ("violin", "flute"):
        y = Engine(preset, timbre=timbre, sample_rate=sr, mode="synth").render(sr // 2, events)[sr // 10:]
        spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
        freqs = np.fft.rfftfreq(len(y), 1 / sr)

        def level(hz, spec=spec, freqs=freqs):
            return float(spec[np.abs(freqs - hz) < 3].max())

        near = (np.abs(freqs - f0 / 2) > 5) & (np.abs(freqs - f0 / 2) < 40)  # around f0 / 2, off the peak
        spectra[timbre] = (level(f0 / 2), level(f0), level(1.5 * f0), float(np.median(spec[near])))
    sub, fund, three_halves, around = spectra["violin"]
    assert sub > 0.2 * fund and three_halves > 0.2 * fund  # sub-octave partials at full strength ...
    assert sub > 100 * around  # ... and tonal: a line, not a noise band
    sub, fund, three_halves, around = spectra["flute"]
    assert sub < 20 * around  # on the f0 series the same energy can only be band noise there
