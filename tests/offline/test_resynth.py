"""audiosym.offline.resynth / audiosym.offline.render / audiosym.io.midifile / `audiosym resynth`: discovery, sharding, robustness, parity."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiosym.errors import ParameterError
from audiosym.io.midifile import list_tracks, load_melody, monophonic
from audiosym.offline.jobs import parse_shard, plan_jobs, shard_jobs


def _write(path, seconds=0.2, sample_rate=16000, hz=330.0, channels=1):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    y = (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    data = y if channels == 1 else np.stack([y] * channels, axis=1)
    fmt = {".flac": "FLAC", ".ogg": "OGG"}.get(path.suffix, "WAV")
    sf.write(path, data, sample_rate, format=fmt)
    return path


# ------------------------------------------------------------------ discovery and planning

@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "corpus"
    _write(root / "a.wav")
    _write(root / "sub" / "b.flac")
    _write(root / "sub" / "deeper" / "c.ogg")
    _write(root / "dup.wav")
    _write(root / "dup.flac")
    (root / "notes.txt").write_text("not audio")
    (root / "sub" / ".hidden.wav").write_bytes(b"")
    return root


def test_folder_is_searched_recursively_by_extension(corpus, tmp_path):
    jobs = plan_jobs([str(corpus)], tmp_path / "out")
    ins = [os.path.relpath(j.input, corpus) for j in jobs]
    assert ins == sorted(ins) and set(ins) == {"a.wav", "dup.flac", "dup.wav", "sub/b.flac", "sub/deeper/c.ogg"}
    outs = {os.path.relpath(j.input, corpus): os.path.relpath(j.output, tmp_path / "out") for j in jobs}
    assert outs["sub/deeper/c.ogg"] == "sub/deeper/c.wav"
    # two inputs that would share an output keep their suffixes instead of overwriting each other
    assert outs["dup.wav"] == "dup.wav.wav" and outs["dup.flac"] == "dup.flac.wav"
    assert all(j.error is None for j in jobs)
    assert [j.index for j in jobs] == list(range(len(jobs)))


def test_files_globs_and_missing_paths(corpus, tmp_path):
    jobs = plan_jobs(
        [str(corpus / "a.wav"), str(corpus / "**" / "*.flac"), str(tmp_path / "missing.wav"), str(tmp_path / "z*.mp3")],
        tmp_path / "out",
    )
    good = sorted(os.path.relpath(j.input, corpus) for j in jobs if j.error is None)
    assert good == ["a.wav", "dup.flac", "sub/b.flac"]
    errors = sorted(j.error for j in jobs if j.error)
    assert len(errors) == 2
    assert any("no such file" in e for e in errors) and any("matches no audio" in e for e in errors)
    # glob outputs are named relative to the pattern's fixed prefix
    assert any(j.output.endswith(os.path.join("out", "sub", "b.wav")) for j in jobs)


def test_same_file_given_twice_is_one_job(corpus, tmp_path):
    jobs = plan_jobs([str(corpus / "a.wav"), str(corpus / "a.wav"), str(corpus / "sub" / ".." / "a.wav")], tmp_path / "o")
    assert len(jobs) == 1


def test_output_over_an_input_is_refused(tmp_path):
    src = _write(tmp_path / "in" / "x.wav")
    jobs = plan_jobs([str(src)], tmp_path / "in")
    assert len(jobs) == 1 and jobs[0].error and "would overwrite an input" in jobs[0].error


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_shards_partition_the_corpus(corpus, tmp_path, n):
    jobs = plan_jobs([str(corpus)], tmp_path / "out")
    seen = [j.input for i in range(n) for j in shard_jobs(jobs, (i, n))]
    assert sorted(seen) == sorted(j.input for j in jobs) and len(seen) == len(set(seen))
    # deterministic: planning again gives the same shards
    again = plan_jobs([str(corpus)], tmp_path / "out")
    assert [j.input for j in shard_jobs(again, (0, n))] == [j.input for j in shard_jobs(jobs, (0, n))]


@pytest.mark.parametrize("text", ["3/3", "-1/2", "1", "a/b", "0/0", "1/2/3"])
def test_bad_shard_is_a_plain_error(text):
    with pytest.raises(ParameterError, match="shard="):
        parse_shard(text)


def test_good_shard():
    assert parse_shard("2/5") == (2, 5)


# ------------------------------------------------------------------ MIDI melodies

def _write_mid(path, tracks):
    import pretty_midi

    pm = pretty_midi.PrettyMIDI()
    for name, program, is_drum, notes in tracks:
        inst = pretty_midi.Instrument(program=program, is_drum=is_drum, name=name)
        for start, end, pitch, vel in notes:
            inst.notes.append(pretty_midi.Note(velocity=vel, pitch=pitch, start=start, end=end))
        pm.instruments.append(inst)
    pm.write(str(path))
    return path


def test_last_note_priority_reduction():
    notes = [(0.0, 1.0, 60, 90), (0.5, 0.75, 64, 80), (0.9, 1.5, 67, 70), (1.5, 2.0, 62, 100)]
    segs = [(round(n.onset_s, 3), round(n.offset_s, 3), n.pitch, n.velocity) for n in monophonic(notes)]
    # 64 interrupts 60; 60 (still held) resumes at 0.75; 67 takes over at 0.9; 62 follows with no overlap
    assert segs == [(0.0, 0.5, 60, 90), (0.5, 0.75, 64, 80), (0.75, 0.9, 60, 90), (0.9, 1.5, 67, 70), (1.5, 2.0, 62, 100)]


def test_chord_reduces_to_the_last_pressed_note():
    segs = monophonic([(0.0, 1.0, 60, 90), (0.0, 1.0, 64, 90), (0.0, 1.0, 67, 90)])
    assert [(n.pitch, n.onset_s, n.offset_s) for n in segs] == [(67, 0.0, 1.0)]


def test_melody_from_midi_file_and_track_selection(tmp_path):
    melody = [(0.0, 0.5, 60, 100), (0.5, 1.0, 62, 100), (1.0, 1.5, 64, 100)]
    path = _write_mid(tmp_path / "m.mid", [
        ("Drums", 0, True, [(t * 0.25, t * 0.25 + 0.1, 36, 100) for t in range(8)]),
        ("Lead", 73, False, melody),
        ("Bass", 32, False, [(0.0, 1.5, 36, 80)]),
    ])
    tracks = list_tracks(path)
    assert [(t.name, t.is_drum, t.n_notes) for t in tracks] == [("Drums", True, 8), ("Lead", False, 3), ("Bass", False, 1)]
    got = load_melody(path)  # default: the non-drum track with most notes
    assert [(n.pitch, round(n.onset_s, 3), round(n.offset_s, 3)) for n in got] == [(p, s, e) for s, e, p, _ in melody]
    assert [n.pitch for n in load_melody(path, track="bass")] == [36]
    assert [n.pitch for n in load_melody(path, track="2")] == [36]
    with pytest.raises(ParameterError, match="out of range"):
        load_melody(path, track=5)
    with pytest.raises(ParameterError, match="names no track"):
        load_melody(path, track="violin")


def test_bad_midi_files(tmp_path):
    from audiosym.errors import AudiosymError

    with pytest.raises(ParameterError, match="does not exist"):
        load_melody(tmp_path / "none.mid")
    (tmp_path / "bad.mid").write_bytes(b"MThd garbage")
    with pytest.raises(AudiosymError, match="not a readable"):
        load_melody(tmp_path / "bad.mid")
    drums = _write_mid(tmp_path / "d.mid", [("Drums", 0, True, [(0.0, 0.1, 36, 100)])])
    with pytest.raises(ParameterError, match="only drum tracks"):
        load_melody(drums)


def test_melody_events_in_samples_offs_before_ons():
    from audiosym.engine.control import NOTE_OFF, NOTE_ON, melody_events
    from audiosym.io.midifile import MelodyNote

    notes = [MelodyNote(0.0, 0.5, 60, 90), MelodyNote(0.5, 1.0, 62, 200), MelodyNote(0.9, 3.0, 64, 80)]
    events = melody_events(notes, sample_rate=1000, n_samples=2000)
    got = [(e.offset, e.kind, e.data[1]) for e in events]
    assert got == [(0, NOTE_ON, 60), (500, NOTE_OFF, 60), (500, NOTE_ON, 62), (900, NOTE_ON, 64), (1000, NOTE_OFF, 62)]
    assert events[2].data[2] == 127  # velocity clipped to the MIDI range


# ------------------------------------------------------------------ the batch through the real engine

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def preset_path(tmp_path_factory):
    """The shipped SPS preset when it exists, else a tiny exported one (needs audiosym[train])."""
    shipped = REPO / "presets" / "sps-default.asym"
    if shipped.exists():
        return str(shipped)
    pytest.importorskip("torch", reason="presets/sps-default.asym is not shipped yet and torch is missing to export one")
    pytest.importorskip("onnx")
    import io

    from latent_fixtures import tiny_latent_model

    from export.build import build_preset

    path = tmp_path_factory.mktemp("preset") / "tiny-sps.asym"
    build_preset(tiny_latent_model("sps"), path, progress=False, log=io.StringIO())
    return str(path)


@pytest.fixture(scope="session")
def preset(preset_path):
    from audiosym.preset.session import load_preset

    return load_preset(preset_path, device="cpu")


def _cli(*argv):
    from audiosym.cli import main

    return main(["resynth", *map(str, argv), "--no-progress"])


def _output(folder, stem, preset_path, timbre):
    """Where `audiosym resynth` writes input ``stem``'s output: ``stem.<preset>.<timbre>.wav``."""
    from audiosym.offline.naming import name_part

    return Path(folder) / f"{stem}.{Path(preset_path).stem}.{name_part(timbre)}.wav"


def _melody_file(tmp_path, preset):
    lo, hi = preset.midi_range
    base = max(lo, min(60, hi - 7))
    notes = [(0.05, 0.35, base, 100), (0.35, 0.7, base + 4, 90), (0.6, 1.1, base + 7, 110)]  # overlaps: legato
    return _write_mid(tmp_path / "mel.mid", [("Lead", 73, False, notes)])


def _stream(engine, y, events, sizes):
    """Engine.process block by block with block-relative event offsets (what a host does)."""
    from audiosym.engine.control import MidiEvent

    out, pos, k = [], 0, 0
    while pos < len(y):
        n = min(sizes[k % len(sizes)], len(y) - pos)
        block_events = [MidiEvent(e.offset - pos, e.data) for e in events if pos <= e.offset < pos + n]
        out.append(engine.process(y[pos:pos + n], block_events))
        pos, k = pos + n, k + 1
    return np.concatenate(out)


@pytest.mark.parametrize("use_midi,bare,input_pitch", [(False, False, None), (False, False, "stream"),
                                                       (True, False, None), (True, True, None)])
def test_file_output_equals_streaming_engine_process(tmp_path, preset_path, preset, use_midi, bare, input_pitch):
    """The CLI's file equals the engine streamed block by block; by default with the preset's
    stored match corrections and dynamics="timbre", with --no-match --dynamics input without;
    without --midi the input's own notes (audiosym.offline.pitch_track) are the engine's events, with
    --input-pitch stream there are none."""
    from audiosym.engine.control import MidiEvent, melody_events
    from audiosym.engine.engine import Engine
    from audiosym.io.midifile import load_track_notes
    from audiosym.offline.pitch_track import input_note_events

    sample_rate = 22050
    src = _write(tmp_path / "in" / "take.wav", seconds=1.2, sample_rate=sample_rate, hz=262.0, channels=2)
    midi = _melody_file(tmp_path, preset)
    timbre = preset.timbre_names[-1]
    extra = (["--midi", midi] if use_midi else []) + (["--no-match", "--dynamics", "input"] if bare else [])
    extra += ["--input-pitch", input_pitch] if input_pitch else []
    assert _cli(src, "--out", tmp_path / "out", "--preset", preset_path, "--timbre", timbre, *extra) == 0
    got, sr = sf.read(_output(tmp_path / "out", "take", preset_path, timbre), dtype="float32")
    assert sr == sample_rate and got.shape == (int(1.2 * sample_rate),)

    y, _ = sf.read(src, dtype="float32")
    y = y.mean(axis=1)
    played = preset if bare else preset.with_stored_match()
    engine = Engine(played, timbre=timbre, sample_rate=sample_rate, mode="transfer",
                    dynamics="input" if bare else "timbre")
    lat = engine.latency_samples
    if use_midi:
        events = melody_events(load_track_notes(midi), sample_rate=sample_rate, n_samples=len(y))
    elif input_pitch == "stream":
        events = []
    else:
        events = input_note_events(played, y, sample_rate, engine_rate=sample_rate, n_samples=len(y),
                                   bend_range_semitones=engine.bend_range_semitones)
        assert any(e.kind == 0x90 for e in events)  # the tone is a note
    events = [MidiEvent(e.offset + lat, e.data) for e in events]
    padded = np.concatenate([y, np.zeros(lat, np.float32)])
    want = _stream(engine, padded, events, sizes=[64, 65, 1, 128, 8193, 3000, 8192])[lat:lat + len(y)]
    assert np.max(np.abs(want)) > 1e-3  # the engine made sound
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)  # float32 oscillator rounding (-80 dBFS)
    # long files go through the engine in chunks, with events split across them: same output
    from audiosym.offline.render import render_signal

    unmoved = [MidiEvent(e.offset - lat, e.data) for e in events]
    chunked = render_signal(engine, y, unmoved, block_samples=7919)
    np.testing.assert_allclose(chunked, got, atol=1e-4, rtol=0)
    assert np.sqrt(np.mean((got - want) ** 2)) < 1e-5 * max(1.0, float(np.sqrt(np.mean(want**2))) * 10)


def test_match_and_dynamics_options_change_the_output(tmp_path, preset_path, preset):
    if preset.match is None:
        pytest.skip("this preset stores no match data")
    src = _write(tmp_path / "in" / "take.wav", seconds=1.2, sample_rate=16000, hz=262.0)
    midi = _melody_file(tmp_path, preset)
    timbre = preset.timbre_names[-1]
    outs = {}
    for name, extra in {"default": [], "no-match": ["--no-match"], "input": ["--dynamics", "input"]}.items():
        assert _cli(src, "--out", tmp_path / name, "--preset", preset_path, "--timbre", timbre, "--midi", midi,
                    *extra) == 0
        outs[name], _ = sf.read(_output(tmp_path / name, "take", preset_path, timbre), dtype="float32")
    assert np.abs(outs["default"] - outs["no-match"]).max() > 1e-3
    assert np.abs(outs["default"] - outs["input"]).max() > 1e-3
    assert _cli(src, "--out", tmp_path / "x", "--preset", preset_path, "--timbre", timbre, "--no-match",
                "--match-named") == 2


def test_bad_inputs_are_reported_and_the_batch_goes_on(tmp_path, preset_path, preset, capsys):
    import json

    src = tmp_path / "in"
    _write(src / "good.wav", seconds=0.5, sample_rate=48000)
    _write(src / "stereo22k.flac", seconds=0.5, sample_rate=22050, channels=2)
    _write(src / "low8k.wav", seconds=0.5, sample_rate=8000)
    (src / "empty.wav").write_bytes(b"")
    (src / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + bytes(range(7, 71)))
    sf.write(src / "silent.wav", np.zeros(8000, np.float32), 16000)
    _write(src / "long.wav", seconds=2.5, sample_rate=16000)
    rc = _cli(src, tmp_path / "missing.wav", "--out", tmp_path / "out", "--preset", preset_path,
              "--timbre", preset.default_timbre, "--max-seconds", "2", "--json")
    captured = capsys.readouterr()
    assert rc == 1
    summary = json.loads(captured.out)
    status = {Path(f["input"]).name: f["status"] for f in summary["files"]}
    assert status == {"good.wav": "ok", "stereo22k.flac": "ok", "low8k.wav": "ok", "empty.wav": "failed",
                      "corrupt.wav": "failed", "silent.wav": "failed", "long.wav": "failed", "missing.wav": "failed"}
    errors = [line for line in captured.err.splitlines() if line.startswith("failed: ")]
    assert len(errors) == 5 and all(f["error"] for f in summary["files"] if f["status"] == "failed")
    outs = [_output(tmp_path / "out", stem, preset_path, preset.default_timbre) for stem in ("good", "low8k", "stereo22k")]
    for out, rate in zip(outs, (48000, 8000, 22050)):
        y, sr = sf.read(out, dtype="float32")
        assert sr == rate and len(y) == int(0.5 * rate) and np.all(np.isfinite(y)) and np.max(np.abs(y)) > 1e-4
    assert sorted(os.listdir(tmp_path / "out")) == [o.name for o in outs]  # no temp files left


def test_rerun_skips_finished_outputs_and_overwrite_redoes_them(tmp_path, preset_path, preset, capsys):
    src = _write(tmp_path / "a.wav", seconds=0.3, sample_rate=16000)
    args = (src, "--out", tmp_path / "out", "--preset", preset_path, "--timbre", preset.default_timbre)
    assert _cli(*args) == 0
    out = _output(tmp_path / "out", "a", preset_path, preset.default_timbre)
    first = sf.read(out, dtype="float32")[0]
    out.write_bytes(b"sentinel: must survive a rerun")
    capsys.readouterr()
    assert _cli(*args) == 0
    assert out.read_bytes() == b"sentinel: must survive a rerun"
    assert "skipped" in capsys.readouterr().out
    assert _cli(*args, "--overwrite") == 0
    assert np.array_equal(sf.read(out, dtype="float32")[0], first)  # redone, deterministically


def test_never_writes_over_an_input(tmp_path, preset_path, preset, capsys):
    timbre = preset.default_timbre
    src = _write(tmp_path / "in" / "y.wav", seconds=0.3)
    named = _write(_output(tmp_path / "in", "y", preset_path, timbre), seconds=0.3)  # an input named as y's output
    before = {p: p.read_bytes() for p in (src, named)}
    rc = _cli(src, named, "--out", tmp_path / "in", "--preset", preset_path, "--timbre", timbre, "--overwrite")
    assert rc == 1 and "would overwrite an input" in capsys.readouterr().err
    assert all(p.read_bytes() == b for p, b in before.items())
    # an --out folder inside a folder searched for inputs: the next run would take the outputs for inputs
    _write(tmp_path / "in2" / "x.wav", seconds=0.3)
    for out in (tmp_path / "in2", tmp_path / "in2" / "sub"):
        assert _cli(tmp_path / "in2", "--out", out, "--preset", preset_path, "--timbre", timbre) == 2
        assert "a folder searched for inputs" in capsys.readouterr().err
    assert os.listdir(tmp_path / "in2") == ["x.wav"]


@pytest.mark.slow  # spawns two worker processes (a few seconds each to start)
def test_workers_and_shards_give_the_same_files(tmp_path, preset_path, preset):
    src = tmp_path / "in"
    for i in range(4):
        _write(src / f"f{i}.wav", seconds=0.3, sample_rate=16000, hz=200.0 + 50 * i)
    common = ("--preset", preset_path, "--timbre", preset.default_timbre)
    assert _cli(src, "--out", tmp_path / "one", *common) == 0
    assert _cli(src, "--out", tmp_path / "two", "--workers", "2", *common) == 0
    for i in range(2):
        assert _cli(src, "--out", tmp_path / "sharded", "--shard", f"{i}/2", *common) == 0
    for name in (_output("", f"f{i}", preset_path, preset.default_timbre).name for i in range(4)):
        # audio, not bytes: libsndfile stamps float WAVs with the time in a PEAK chunk
        ref = sf.read(tmp_path / "one" / name, dtype="float32")[0]
        assert np.array_equal(sf.read(tmp_path / "sharded" / name, dtype="float32")[0], ref)
        assert np.array_equal(sf.read(tmp_path / "two" / name, dtype="float32")[0], ref)


def test_plain_errors_before_any_file_is_touched(tmp_path, preset_path, preset, capsys):
    src = _write(tmp_path / "a.wav", seconds=0.3)
    assert _cli(src, "--out", tmp_path / "o", "--preset", preset_path, "--timbre", "kazoo") == 2
    assert "kazoo" in capsys.readouterr().err
    assert _cli(src, "--out", tmp_path / "o", "--preset", preset_path, "--timbre", preset.default_timbre,
                "--shard", "2/2") == 2
    assert "--shard" in capsys.readouterr().err
    assert _cli(src, "--out", tmp_path / "o", "--preset", preset_path, "--timbre", preset.default_timbre,
                "--midi", str(tmp_path / "m.mid"), "--input-pitch", "stream") == 2
    assert "--input-pitch stream" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("transpose", [0.0, 2.0])
def test_the_inputs_own_notes_start_at_their_pitch(preset, transpose):
    """Without MIDI, resynth's default plays the input's notes from their onsets: 50 ms into the
    second note of a clarinet melody the output already sounds its pitch. Streamed
    (input_pitch="stream", what `audiosym live` does) the short-window estimate sounds it from
    ~30 ms after the onset (#15); streamed through the encoder only (pitch_follow="encoder", as
    before) it still sounds the first note's pitch there: the encoder's value comes an analysis
    window late. All follow --transpose."""
    import librosa

    from audiosym.data.soundfonts import find_soundfont, render_melody
    from audiosym.offline.render import resynthesize

    sr = 16000
    y = render_melody(find_soundfont("TimGM6mb"), 71, [(0.1, 0.6, 60, 100), (0.7, 0.6, 67, 100)], sample_rate=sr)
    y = (y * (0.1 / np.sqrt(np.mean(y.astype(np.float64) ** 2)))).astype(np.float32)

    def pitch_at(out, t0, t1):
        f0, voiced, _ = librosa.pyin(out[int(t0 * sr) - 512 : int(t1 * sr) + 512], fmin=200, fmax=700, sr=sr,
                                     frame_length=1024, hop_length=128, center=False)
        return float(np.nanmedian(librosa.hz_to_midi(f0[voiced])))

    timbre = preset.default_timbre
    notes, _ = resynthesize(preset, y, sample_rate=sr, timbre=timbre, transpose_semitones=transpose)
    stream, _ = resynthesize(preset, y, sample_rate=sr, timbre=timbre, transpose_semitones=transpose,
                             input_pitch="stream")
    late, _ = resynthesize(preset, y, sample_rate=sr, timbre=timbre, transpose_semitones=transpose,
                           input_pitch="stream", pitch_follow="encoder")
    assert abs(pitch_at(notes, 0.3, 0.6) - (60 + transpose)) < 0.3 and abs(pitch_at(stream, 0.3, 0.6) - (60 + transpose)) < 0.3
    assert abs(pitch_at(notes, 0.73, 0.76) - (67 + transpose)) < 0.5
    assert abs(pitch_at(stream, 0.78, 0.85) - (67 + transpose)) < 0.5  # (pyin's frames reach back to 0.748 s)
    assert abs(pitch_at(late, 0.73, 0.76) - (60 + transpose)) < 1.0


@pytest.mark.parametrize("kind", ["sps", "v3"])
def test_transpose_shifts_the_input_pitch(kind):
    from _fake_preset import FakePreset

    from audiosym.offline.render import make_engine, render_signal

    fake = FakePreset(kind)
    sample_rate = 16000
    t = np.arange(sample_rate) / sample_rate
    y = (0.3 * np.sin(2 * np.pi * 261.63 * t)).astype(np.float32)  # MIDI 60

    def f0(semitones):
        out = render_signal(make_engine(fake, timbre="flute", sample_rate=sample_rate, transpose_semitones=semitones), y)
        tail = out[sample_rate // 2:] * np.hanning(sample_rate // 2)
        spec = np.abs(np.fft.rfft(tail, 8 * len(tail)))
        return np.argmax(spec) * sample_rate / (8 * len(tail))

    base = f0(0)
    assert abs(12 * np.log2(base / 261.63)) < 0.3
    for n in (3, -5):
        assert abs(12 * np.log2(f0(n) / base) - n) < 0.1


def test_transposed_preset_shifts_only_the_pitch_latent(preset, rng):
    frames = rng.normal(-6, 2, size=(2, preset.context_frames + 4, preset.features.n_bins)).astype(np.float32)
    plain, moved = preset.encode(frames), preset.transposed(2.5).encode(frames)
    shift = preset.input_midi(moved) - preset.input_midi(plain)
    np.testing.assert_allclose(shift, 2.5, atol=1e-3)
    np.testing.assert_array_equal(moved[preset.timbre_latent], plain[preset.timbre_latent])


@pytest.mark.skipif(os.path.exists("/proc/driver/nvidia/version"), reason="this machine has an NVIDIA driver")
def test_cuda_without_a_gpu_is_a_plain_error(tmp_path, preset_path, preset, capsys):
    src = _write(tmp_path / "a.wav", seconds=0.3)
    rc = _cli(src, "--out", tmp_path / "o", "--preset", preset_path, "--timbre", preset.default_timbre, "--device", "cuda")
    assert rc == 2 and "--device cuda" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_save_notes_writes_the_inputs_notes_as_midi(tmp_path, preset_path, preset, capsys):
    """--save-notes: take.wav -> take.notes.mid beside the output, holding the notes the engine
    played (read back by --midi); it needs the input's own notes."""
    from audiosym.data.soundfonts import find_soundfont, render_melody
    from audiosym.io.midifile import load_track_notes

    sr = 22050
    played = [(0.1 + 0.5 * i, 0.45, p, 100) for i, p in enumerate([60, 64, 67, 65])]
    y = render_melody(find_soundfont("TimGM6mb"), 71, played, sample_rate=sr)
    src = tmp_path / "in" / "take.wav"
    src.parent.mkdir()
    sf.write(src, y, sr)
    timbre = preset.default_timbre
    assert _cli(src, "--out", tmp_path / "out", "--preset", preset_path, "--timbre", timbre, "--save-notes") == 0
    notes = _output(tmp_path / "out", "take", preset_path, timbre).with_suffix(".notes.mid")  # beside its output
    assert notes.name == f"take.{Path(preset_path).stem}.{timbre}.notes.mid"
    found = load_track_notes(notes)
    assert [n.pitch for n in found] == [60, 64, 67, 65]
    assert all(abs(n.onset_s - p[0]) < 0.06 for n, p in zip(found, played))
    assert not [f for f in (tmp_path / "out").iterdir() if f.name.startswith(".")]  # no temp file left
    # the notes file drives another input
    assert _cli(src, "--out", tmp_path / "again", "--preset", preset_path, "--timbre", timbre,
                "--midi", notes) == 0
    assert _cli(src, "--out", tmp_path / "x", "--preset", preset_path, "--timbre", timbre, "--save-notes",
                "--input-pitch", "stream") == 2
    assert "--save-notes" in capsys.readouterr().err


def test_library_errors_name_keywords_and_the_cli_names_its_flags(tmp_path):
    """The library says ``shard='3/3'``; `audiosym resynth` says ``--shard 3/3`` for the same error."""
    with pytest.raises(ParameterError) as exc:
        parse_shard("3/3")
    assert "shard='3/3'" in str(exc.value) and "--shard" not in str(exc.value)
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(1600, np.float32), 16000)
    res = subprocess.run([sys.executable, "-m", "audiosym", "resynth", str(wav), "--out", str(tmp_path / "o"),
                          "--preset", "sps-default", "--timbre", "violin", "--shard", "3/3"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "--shard 3/3: need N >= 1" in res.stderr and "shard=" not in res.stderr
