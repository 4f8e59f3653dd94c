"""audiosym.timbre.reference and `audiosym resynth --timbre-from`: timbre measured from a recording.

Real components: the shipped presets (onnxruntime), references rendered from a real soundfont
and written to disk, the real engine.
"""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiosym.errors import AudiosymError, ParameterError
from audiosym.io.midifile import MelodyNote

REPO = Path(__file__).resolve().parents[2]
SR = 16000


def _preset(name):
    path = REPO / "presets" / f"{name}.asym"
    if not path.exists():
        pytest.skip(f"presets/{name}.asym is not shipped")
    from audiosym.preset.session import load_preset

    return load_preset(path, device="cpu")


@pytest.fixture(scope="module")
def sps():
    return _preset("sps-default")


def _melody(pitches, note_s=0.4):
    return [MelodyNote(i * note_s, (i + 1) * note_s - 0.04, int(p), 100) for i, p in enumerate(pitches)]


def _render(program, notes, soundfont="TimGM6mb"):
    from audiosym.data.soundfonts import find_soundfont, render_melody

    y = render_melody(find_soundfont(soundfont), program, [(n.onset_s, n.duration_s, n.pitch, n.velocity)
                                                           for n in notes], sample_rate=SR, tail_seconds=0.2)
    return (y * (0.1 / np.sqrt(np.mean(y.astype(np.float64) ** 2)))).astype(np.float32)


@pytest.fixture(scope="module")
def clarinet_ref(tmp_path_factory):
    """A 3.2 s clarinet melody (GM 71) from TimGM6mb, as a 44.1 kHz stereo file on disk."""
    from audiosym.io.audio import resample

    notes = _melody([60, 62, 64, 65, 67, 65, 64, 62])
    y = resample(_render(71, notes), orig_sample_rate=SR, target_sample_rate=44100)
    path = tmp_path_factory.mktemp("ref") / "my clarinet.wav"
    sf.write(path, np.stack([y, 0.5 * y], axis=1), 44100)
    return path, notes


@pytest.fixture(scope="module")
def reference(sps, clarinet_ref):
    from audiosym.timbre.reference import reference_from_file

    return reference_from_file(sps, clarinet_ref[0])


def test_reference_from_a_file_measures_the_played_pitches_and_a_timbre_vector(sps, reference, clarinet_ref):
    from audiosym.timbre.reference import MIN_FRAMES

    assert reference.name == "ref:my_clarinet"
    assert reference.vector.shape == sps.timbre_vector().shape and np.all(np.isfinite(reference.vector))
    assert reference.frames >= MIN_FRAMES
    lo, hi = reference.midi_range  # pyin, in the preset's octave
    assert abs(lo - 60) <= 0.5 and abs(hi - 67) <= 0.5
    assert reference.relative.shape == (len(reference.pitch_grid), 2 * sps.features.n_bins - 1)
    assert np.abs(reference.relative).max() > 0.1  # a correction was measured


def test_the_correction_moves_the_decoded_spectrum_towards_the_reference(sps, reference, clarinet_ref):
    from audiosym.dsp.features import features
    from audiosym.timbre.reference import _normalise

    wrapped = sps.with_references([reference])
    y, sr = sf.read(clarinet_ref[0], dtype="float32")
    from audiosym.io.audio import resample

    frames = features(resample(y.mean(axis=1), orig_sample_rate=sr, target_sample_rate=SR), sps.features)
    gains = []
    for note in clarinet_ref[1][1:5]:
        t = int((note.onset_s + 0.3) * SR / sps.features.hop_length) - 1  # window inside the note
        truth = _normalise(frames[t][None].astype(np.float64))
        lat = {"z_pitch": sps.midi_to_latent(np.array([float(note.pitch)]))[:, None, :],
               "z_timbre": reference.vector[None, None, :]}
        plain = _normalise(sps.decode(**lat)[0].astype(np.float64))
        matched = _normalise(wrapped.decode(**lat)[0].astype(np.float64))
        gains.append(np.abs(plain - truth).mean() - np.abs(matched - truth).mean())
    assert np.mean(gains) > 0.2  # nats of mean |log-magnitude error| removed


def test_reference_preset_adds_a_timbre_and_leaves_named_ones_alone(sps, reference):
    wrapped = sps.with_references([reference])
    assert set(wrapped.timbre_names) == set(sps.timbre_names) | {reference.name}
    np.testing.assert_array_equal(wrapped.timbre_vector(reference.name), reference.vector)
    named = sps.default_timbre
    lat = {"z_pitch": sps.midi_to_latent(np.array([60.0, 64.0]))[:, None, :],
           "z_timbre": np.stack([sps.timbre_vector(named)] * 2)[:, None, :]}
    np.testing.assert_array_equal(wrapped.decode(**lat), sps.decode(**lat))
    with pytest.raises(ParameterError, match="already a timbre"):
        sps.with_references([reference, reference])


def test_engine_plays_the_reference_timbre(sps, reference):
    from audiosym.offline.render import resynthesize
    notes = _melody([62, 65])
    y = _render(0, notes)  # a piano input
    wrapped = sps.with_references([reference])
    out, rate = resynthesize(wrapped, y, sample_rate=SR, timbre=reference.name, notes=notes)
    named, _ = resynthesize(sps, y, sample_rate=SR, timbre=sps.default_timbre, notes=notes)
    assert rate == SR and out.shape == y.shape and np.all(np.isfinite(out))
    assert np.sqrt(np.mean(out**2)) > 0.01
    assert np.abs(out - named).max() > 1e-3  # another timbre than the default
    # and the reference's correction, not only its vector, reaches the engine's output
    flat = dataclasses.replace(reference, relative=np.zeros_like(reference.relative),
                               absolute=np.zeros_like(reference.absolute))
    uncorrected, _ = resynthesize(sps.with_references([flat]), y, sample_rate=SR, timbre=reference.name, notes=notes)
    assert np.abs(out - uncorrected).max() > 1e-3


def test_known_melody_labels_the_frames(sps, clarinet_ref):
    from audiosym.io.audio import read_audio
    from audiosym.timbre.reference import reference_from_audio

    y, info = read_audio(clarinet_ref[0])
    ref = reference_from_audio(sps, y, sample_rate=info.sample_rate, notes=clarinet_ref[1], correct=False)
    assert ref.midi_range == (60.0, 67.0)
    assert np.all(ref.relative == 0) and np.all(ref.absolute == 0)


@pytest.mark.parametrize("with_melody", [True, False])
def test_a_references_note_envelope_is_measured_and_played(sps, with_melody):
    """A piano reference decays and a clarinet reference holds, with or without its melody; the
    engine plays that envelope in transfer mode with dynamics="timbre" (a held input stays
    level under a clarinet reference, falls under a piano one)."""
    from audiosym.offline.render import resynthesize
    from audiosym.timbre.reference import reference_from_audio

    notes = _melody([60, 64, 67, 72, 67, 64], note_s=0.6)
    refs = {}
    for program, name in ((0, "my piano"), (71, "my clarinet")):
        refs[name] = reference_from_audio(sps, _render(program, notes), sample_rate=SR, name=name,
                                          notes=notes if with_melody else None)
        assert refs[name].envelope is not None
    at = int(0.5 / refs["my piano"].envelope.hop_s)
    piano, clarinet = (20 * np.log10(refs[n].envelope.curve(66)[at]) for n in ("my piano", "my clarinet"))
    assert piano < -6.0 and clarinet > -3.0, (piano, clarinet)
    wrapped = sps.with_references(list(refs.values()))
    assert wrapped.envelope("my piano") is refs["my piano"].envelope
    assert wrapped.envelope(sps.default_timbre) is sps.envelope(sps.default_timbre)  # named: as stored
    held = [MelodyNote(0.0, 1.2, 66, 100)]
    y = _render(71, held)  # a held clarinet note as the input
    level = {}
    for name in refs:
        out, _ = resynthesize(wrapped, y, sample_rate=SR, timbre=name, notes=held, dynamics="timbre")
        level[name] = [np.sqrt(np.mean(out[int(a * SR):int((a + 0.1) * SR)] ** 2)) for a in (0.2, 1.0)]
    assert 20 * np.log10(level["my piano"][1] / level["my piano"][0]) < -6.0, level
    assert abs(20 * np.log10(level["my clarinet"][1] / level["my clarinet"][0])) < 3.0, level


def test_unusable_references_are_plain_errors(sps, tmp_path):
    from audiosym.timbre.reference import reference_from_audio, reference_from_file

    noise = (0.1 * np.random.default_rng(0).standard_normal(SR * 2)).astype(np.float32)
    with pytest.raises(ParameterError, match="steady pitched frames"):
        reference_from_audio(sps, noise, sample_rate=SR, source="noise.wav")
    short = _render(71, _melody([60], note_s=0.2))
    with pytest.raises(ParameterError, match="fewer than"):
        reference_from_audio(sps, short, sample_rate=SR)
    with pytest.raises(AudiosymError, match="no such file"):
        reference_from_file(sps, tmp_path / "missing.wav")
    blip = tmp_path / "blip.wav"  # under one analysis hop: no feature frame at all
    sf.write(blip, short[:100], SR)
    with pytest.raises(ParameterError, match="shorter than"):
        reference_from_file(sps, blip)


def _cli(*argv):
    from audiosym.cli import main

    return main(["resynth", *map(str, argv), "--no-progress"])


def test_cli_timbre_from_writes_the_reference_timbre(sps, clarinet_ref, tmp_path, capsys):
    src = tmp_path / "in" / "take.wav"
    src.parent.mkdir()
    sf.write(src, _render(0, _melody([62, 64, 65])), SR)
    preset = str(REPO / "presets" / "sps-default.asym")
    assert _cli(src, "--out", tmp_path / "out", "--preset", preset, "--timbre-from", clarinet_ref[0]) == 0
    (out,) = (tmp_path / "out").glob("take.*.wav")  # take.<preset>.<timbre>.wav
    got, rate = sf.read(out, dtype="float32")
    assert rate == SR and np.sqrt(np.mean(got**2)) > 0.01
    # the same file through the Python API
    from audiosym.io.audio import read_audio
    from audiosym.offline.render import resynthesize
    from audiosym.timbre.reference import reference_from_file

    base = sps.with_stored_match()  # the named timbres' stored corrections stay under the reference
    wrapped = base.with_references([reference_from_file(base, clarinet_ref[0], name="clar")])
    y, _ = read_audio(src)
    want, _ = resynthesize(wrapped, y, sample_rate=SR, timbre="clar")
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    # no timbre at all, a name that clashes, an unusable reference: plain errors, nothing written
    capsys.readouterr()
    assert _cli(src, "--out", tmp_path / "o2", "--preset", preset) == 2
    assert "--timbre-from" in capsys.readouterr().err
    assert _cli(src, "--out", tmp_path / "o2", "--preset", preset, "--timbre-from", clarinet_ref[0],
                "--timbre", sps.default_timbre) == 2
    assert "already a timbre" in capsys.readouterr().err
    assert _cli(src, "--out", tmp_path / "o2", "--preset", preset, "--timbre-from", tmp_path / "nope.wav") == 2
    assert "--timbre-from" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()


def test_named_corrections_generalise_to_unseen_pitches_of_the_training_soundfont(sps):
    from audiosym.dsp.features import features
    from audiosym.timbre.match import named_corrections
    from audiosym.timbre.reference import _normalise

    name = "clarinet"
    (ref,) = named_corrections(sps, [name])  # even steps from the bottom of the range
    assert ref.name == name and ref.source.startswith(sps.metadata["calibration"]["soundfont"])
    np.testing.assert_array_equal(ref.vector, sps.timbre_vector(name))
    wrapped = sps.with_references([ref], replace_named=True)
    assert wrapped.timbre_names == sps.timbre_names
    lo = int(ref.pitch_grid[0])
    unseen = [lo + 5, lo + 9, lo + 13]  # odd steps: never measured
    notes = _melody(unseen, note_s=0.5)
    frames = features(_render(71, notes, soundfont=sps.metadata["calibration"]["soundfont"]), sps.features)
    gains = []
    for note in notes:
        t = int((note.onset_s + 0.4) * SR / sps.features.hop_length) - 1
        truth = _normalise(frames[t][None].astype(np.float64))
        lat = {"z_pitch": sps.midi_to_latent(np.array([float(note.pitch)]))[:, None, :],
               "z_timbre": sps.timbre_vector(name)[None, None, :]}
        plain = _normalise(sps.decode(**lat)[0].astype(np.float64))
        matched = _normalise(wrapped.decode(**lat)[0].astype(np.float64))
        gains.append(np.abs(plain - truth).mean() - np.abs(matched - truth).mean())
    assert np.mean(gains) > 0.2


def test_cli_match_named(sps, tmp_path, capsys):
    src = tmp_path / "take.wav"
    sf.write(src, _render(0, _melody([62, 64])), SR)
    preset = str(REPO / "presets" / "sps-default.asym")
    timbre = "clarinet"
    assert _cli(src, "--out", tmp_path / "out", "--preset", preset, "--timbre", timbre, "--match-named") == 0
    assert _cli(src, "--out", tmp_path / "plain", "--preset", preset, "--timbre", timbre, "--no-match") == 0
    got = sf.read(next((tmp_path / "out").glob("take.*.wav")), dtype="float32")[0]
    plain = sf.read(next((tmp_path / "plain").glob("take.*.wav")), dtype="float32")[0]
    from audiosym.offline.render import resynthesize
    from audiosym.timbre.match import named_corrections
    y = sf.read(src, dtype="float32")[0]
    want, _ = resynthesize(sps.with_references(named_corrections(sps, [timbre]), replace_named=True), y,
                           sample_rate=SR, timbre=timbre)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    assert np.abs(got - plain).max() > 1e-3
    capsys.readouterr()
    assert _cli(src, "--out", tmp_path / "o2", "--preset", preset, "--timbre-from", src, "--match-named") == 2
    assert "--match-named" in capsys.readouterr().err


@pytest.mark.slow
def test_worker_processes_reuse_the_parent_measurement(sps, clarinet_ref, tmp_path):
    """--workers 2 with --timbre-from: the workers wrap the preset with the reference the parent
    measured (not measured again per process) and write what one worker does."""
    from audiosym.offline.jobs import plan_jobs
    from audiosym.offline.resynth import ResynthSettings, batch_references, load_for_batch, run_jobs

    src = tmp_path / "in"
    src.mkdir()
    for i, pitches in enumerate(([62, 64], [65, 67])):
        sf.write(src / f"take{i}.wav", _render(0, _melody(pitches)), SR)
    preset = str(REPO / "presets" / "sps-default.asym")
    outs = {}
    for workers in (1, 2):
        settings = ResynthSettings(preset=preset, timbre="clar", timbre_from=str(clarinet_ref[0]))
        loaded = load_for_batch(settings)
        stages = batch_references(loaded[0])
        assert [(len(refs), stored) for refs, _, stored in stages] == [(len(sps.match.references), True), (1, False)]
        assert stages[-1][0][0].name == "clar"
        jobs = plan_jobs([str(src)], tmp_path / f"out{workers}")
        results = run_jobs(jobs, settings, workers=workers, progress=False, loaded=loaded)
        assert [r.status for r in results] == ["ok", "ok"]
        outs[workers] = [sf.read(r.output, dtype="float32")[0] for r in results]
    for a, b in zip(outs[1], outs[2]):
        np.testing.assert_array_equal(a, b)


def test_cli_timbre_from_midi_labels_the_reference(sps, clarinet_ref, tmp_path, capsys):
    """--timbre-from-midi: the reference's pitch comes from its melody (what
    reference_from_file(notes=...) measures), not from pyin; without --timbre-from it is an error."""
    import pretty_midi

    from audiosym.io.midifile import load_track_notes
    from audiosym.offline.render import resynthesize
    from audiosym.timbre.reference import reference_from_file

    path, notes = clarinet_ref
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=71, name="ref")
    inst.notes += [pretty_midi.Note(velocity=n.velocity, pitch=n.pitch, start=n.onset_s, end=n.offset_s) for n in notes]
    pm.instruments.append(inst)
    mid = tmp_path / "ref.mid"
    pm.write(str(mid))
    src = tmp_path / "in" / "take.wav"
    src.parent.mkdir()
    sf.write(src, _render(0, _melody([62, 64])), SR)
    preset = str(REPO / "presets" / "sps-default.asym")
    assert _cli(src, "--out", tmp_path / "out", "--preset", preset, "--timbre-from", path,
                "--timbre-from-midi", mid) == 0
    got = sf.read(next((tmp_path / "out").glob("take.*.wav")), dtype="float32")[0]
    base = sps.with_stored_match()
    labelled = reference_from_file(base, path, name="ref:my_clarinet", notes=load_track_notes(mid))
    assert labelled.midi_range == (60.0, 67.0)  # the played notes exactly
    want, _ = resynthesize(base.with_references([labelled]), sf.read(src, dtype="float32")[0], sample_rate=SR,
                           timbre="ref:my_clarinet")
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    capsys.readouterr()
    assert _cli(src, "--out", tmp_path / "o2", "--preset", preset, "--timbre", "clarinet", "--timbre-from-midi", mid) == 2
    assert "--timbre-from-midi" in capsys.readouterr().err and not (tmp_path / "o2").exists()


def test_a_reference_of_a_16_foot_organ_is_played_on_the_sub_octave_series(sps, reference):
    """A reference recording is tested for sub-harmonics like a named timbre at export: an organ
    with a 16' stop (FluidR3's drawbar organ, its melody given) is flagged, the clarinet is not."""
    from audiosym.engine.engine import Engine
    from audiosym.timbre.reference import reference_from_audio

    notes = _melody([55, 57, 59, 60, 62, 64, 65, 67])
    organ = reference_from_audio(sps, _render(16, notes, soundfont="FluidR3_GM"), sample_rate=SR, name="ref:organ",
                                 notes=notes)
    assert organ.subharmonic > 1.0 and reference.subharmonic < 0.1
    wrapped = sps.with_references([organ, reference])
    assert wrapped.subharmonic("ref:organ") and not wrapped.subharmonic(reference.name)
    assert wrapped.subharmonic("drawbar_organ") == sps.subharmonic("drawbar_organ")  # named: the preset's
    engine = Engine(wrapped, timbre="ref:organ", sample_rate=48000, mode="synth")
    assert engine._basis_shift(engine.state.control) == 12.0


def test_live_timbre_from_errors_come_before_any_device(tmp_path, capsys):
    """`audiosym live --timbre-from` with a recording that cannot be measured, or a melody without
    its recording: a plain error naming the file, exit code 2, no audio device opened."""
    from audiosym.cli import main

    missing = tmp_path / "nothing here.wav"
    assert main(["live", "--preset", "sps-default", "--timbre-from", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"--timbre-from {missing}" in err and "PortAudio" not in err
    sf.write(tmp_path / "click.wav", np.zeros(800, np.float32), 16000)
    assert main(["live", "--preset", "sps-default", "--timbre-from", str(tmp_path / "click.wav")]) == 2
    assert "click.wav: silent" in capsys.readouterr().err
    assert main(["live", "--preset", "sps-default", "--timbre-from-midi", "ref.mid"]) == 2
    assert "labels a --timbre-from recording" in capsys.readouterr().err
