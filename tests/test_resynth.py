"""audiosym.resynth / audiosym.midifile / `audiosym resynth`: discovery, sharding, robustness, parity."""

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiosym.errors import ParameterError
from audiosym.midifile import list_tracks, load_melody, monophonic
from audiosym.resynth import parse_shard, plan_jobs, shard_jobs


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
    with pytest.raises(ParameterError, match="--shard"):
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
    from audiosym.midi import NOTE_OFF, NOTE_ON
    from audiosym.midifile import MelodyNote, melody_events

    notes = [MelodyNote(0.0, 0.5, 60, 90), MelodyNote(0.5, 1.0, 62, 200), MelodyNote(0.9, 3.0, 64, 80)]
    events = melody_events(notes, sample_rate=1000, n_samples=2000)
    got = [(e.offset, e.kind, e.data[1]) for e in events]
    assert got == [(0, NOTE_ON, 60), (500, NOTE_OFF, 60), (500, NOTE_ON, 62), (900, NOTE_ON, 64), (1000, NOTE_OFF, 62)]
    assert events[2].data[2] == 127  # velocity clipped to the MIDI range
