"""A folder of recordings -> analysed notes: the folder layout, note cutting without labels, the
content cache, the split by file, and every bad input of issue #14 (real files on disk)."""

from __future__ import annotations

import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiosym.data import recordings as R
from audiosym.data.recording_set import load_recordings
from audiosym.data.soundfonts import find_soundfont, render_melody
from audiosym.dsp.features import FeatureConfig
from audiosym.errors import ParameterError
from tests._recordings import TIMBRES, make_folder, melody, write_take

CFG = FeatureConfig()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("recs") / "my_sounds"
    played = make_folder(root)
    return root, played


def test_layout_subfolders_flat_folder_and_names(tmp_path, folder):
    root, _ = folder
    timbres, notes = R.scan_folder(root)
    assert sorted(timbres) == sorted(TIMBRES) and notes == []
    assert all(len(files) == 2 for files in timbres.values())
    # one flat folder is one timbre named after it (lower case, _ for other characters)
    flat = tmp_path / "My Cello"
    shutil.copytree(root / "violin", flat)
    timbres, _ = R.scan_folder(flat)
    assert list(timbres) == ["my_cello"]
    # loose files beside timbre folders, and an empty timbre folder: named, not fatal
    mixed = tmp_path / "mixed"
    shutil.copytree(root, mixed)
    shutil.copy(root / "flute" / "take0.flac", mixed / "stray.flac")
    (mixed / "empty_one").mkdir()
    timbres, notes = R.scan_folder(mixed)
    assert sorted(timbres) == sorted(TIMBRES)
    assert any("stray" not in n and "beside the timbre folders" in n for n in notes)
    assert any("empty_one" in n for n in notes)


def test_bad_folders_are_one_line_errors(tmp_path):
    with pytest.raises(ParameterError, match="no such folder"):
        R.scan_folder(tmp_path / "nope")
    (tmp_path / "a.wav").write_bytes(b"x")
    with pytest.raises(ParameterError, match="is a file"):
        R.scan_folder(tmp_path / "a.wav")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParameterError, match="holds no audio files"):
        R.scan_folder(tmp_path / "empty")
    (tmp_path / "twins" / "Cello").mkdir(parents=True)
    (tmp_path / "twins" / "cello!").mkdir()
    for d in ("Cello", "cello!"):
        shutil.copy(tmp_path / "a.wav", tmp_path / "twins" / d / "a.wav")
    with pytest.raises(ParameterError, match="two folders give the timbre name 'cello'"):
        R.scan_folder(tmp_path / "twins")


def test_notes_are_cut_where_they_were_played(folder):
    root, played = folder
    recs = load_recordings(root, CFG, progress=False)
    assert recs.skipped == []
    found, true_found, pitch_ok, n_true = 0, 0, 0, 0
    for f in recs.files:
        notes = played[str(Path(f.path).relative_to(root))]
        onsets = np.array([n[0] for n in notes])
        hits = [np.min(np.abs(onsets - t)) < 0.06 for t in f.onset_s[f.part == 0]]
        found += len(hits)
        true_found += sum(hits)
        n_true += len(notes)
        for t, m in zip(f.onset_s, f.eval_midi):  # the pyin reference against the note played there
            k = int(np.argmin(np.abs(onsets - t)))
            pitch_ok += abs(m - notes[k][2]) < 0.5 if np.isfinite(m) else 0
    assert true_found / found >= 0.8  # most notes start at a played onset
    assert true_found / n_true >= 0.7  # and most played notes are found
    assert pitch_ok / found >= 0.8
    # training never sees a pitch
    view = recs.training_view()
    assert not hasattr(view, "eval_midi") and view.frames.dtype == np.float16
    assert view.frames.shape[1:] == (int(round(0.5 / CFG.frame_seconds)), CFG.n_bins)


def test_cache_by_content_analyses_only_new_files(tmp_path, folder, monkeypatch):
    monkeypatch.setenv("AUDIOSYM_CACHE", str(tmp_path / "cache"))
    root, _ = folder
    work = tmp_path / "recs"
    shutil.copytree(root, work)
    first = load_recordings(work, CFG, progress=False)
    assert first.analysed == 6
    again = load_recordings(work, CFG, progress=False)
    assert again.analysed == 0
    assert np.array_equal(first.notes("frames"), again.notes("frames"))
    (work / "flute" / "take0.flac").rename(work / "flute" / "renamed.flac")  # same content: cached
    notes = melody(np.random.default_rng(7), 60, 80, 8.0)
    write_take(work / "violin" / "new.flac", 40, notes)
    third = load_recordings(work, CFG, progress=False)
    assert third.analysed == 1 and len(third.files) == 7


def test_split_is_by_file_fixed_and_name_independent(folder):
    root, _ = folder
    recs = load_recordings(root, CFG, progress=False)
    train, test = recs.split(0.5, seed=3)
    assert not (train & test).any() and (train | test).all()
    for t in range(len(recs.timbres)):
        assert test[recs.file_timbre == t].sum() == 1  # two files each: one held out
    assert np.array_equal(recs.split(0.5, seed=3)[1], test)
    assert recs.split(0.0, seed=3)[1].sum() == 0
    with pytest.raises(ParameterError, match="holdout=1.0 must be in"):
        recs.split(1.0)


def test_bad_files_are_skipped_and_named(tmp_path, folder):
    root, _ = folder
    work = tmp_path / "recs"
    shutil.copytree(root, work)
    (work / "violin" / "corrupt.wav").write_bytes(b"RIFF" + bytes(range(256)) * 8)
    data = (root / "flute" / "take0.flac").read_bytes()
    (work / "flute" / "truncated.flac").write_bytes(data[: len(data) // 3])
    sf.write(str(work / "flute" / "silent.wav"), np.zeros(44100, np.float32), 44100)
    sf.write(str(work / "trumpet" / "blip.wav"), 0.5 * np.sin(np.arange(3000) / 10).astype(np.float32), 44100)
    (work / "trumpet" / "empty.wav").write_bytes(b"")
    y = write_take(work / "trumpet" / "hot.wav", 56, melody(np.random.default_rng(2), 57, 79, 8.0), gain=4.0)
    assert np.abs(np.clip(y, -1, 1)).max() == 1.0
    chords = [(t, 0.9, p + i, 100) for t, p in zip(np.arange(0.2, 8, 1.0), [60, 62, 64, 65, 67, 69, 71, 72])
              for i in (0, 4, 7)]
    sf.write(str(work / "violin" / "chords.wav"), render_melody(find_soundfont("TimGM6mb"), 0, chords,
                                                                sample_rate=44100), 44100)
    recs = load_recordings(work, CFG, progress=False)
    skipped = "\n".join(recs.skipped)
    for name, why in [("corrupt.wav", "unreadable or corrupt"), ("silent.wav", "silent"),
                      ("blip.wav", "no usable note"), ("empty.wav", "empty file"), ("chords.wav", "polyphonic")]:
        assert name in skipped and why in skipped.split(name)[1].splitlines()[0], (name, skipped)
    assert any("hot.wav" in w and "clipped" in w for w in recs.warnings)
    assert len(recs.files) >= 6  # the good files and the start of the truncated one (or it is skipped, named)
    assert "truncated.flac" in skipped or any(f.path.endswith("truncated.flac") for f in recs.files)


def test_too_few_notes_names_each_timbre(tmp_path):
    (tmp_path / "a" / "solo").mkdir(parents=True)
    write_take(tmp_path / "a" / "solo" / "one.wav", 73, melody(np.random.default_rng(1), 62, 80, 4.0))
    with pytest.raises(ParameterError, match=r"each timbre needs 40, found solo \d+"):
        load_recordings(tmp_path / "a", CFG, progress=False, min_notes=40)
    (tmp_path / "a" / "big").mkdir()
    write_take(tmp_path / "a" / "big" / "long.wav", 40, melody(np.random.default_rng(2), 60, 84, 30.0))
    recs = load_recordings(tmp_path / "a", CFG, progress=False, min_notes=40)
    assert recs.timbres == ["big"]
    assert any("solo" in w and "too few" in w for w in recs.warnings)


def test_stereo_48k_file_reads_like_its_mono_44k_twin(tmp_path):
    notes = melody(np.random.default_rng(5), 60, 80, 8.0)
    write_take(tmp_path / "m" / "x" / "mono.wav", 73, notes, sample_rate=44100)
    write_take(tmp_path / "s" / "x" / "stereo.wav", 73, notes, sample_rate=48000, stereo=True)
    a = load_recordings(tmp_path / "m", CFG, progress=False).files[0]
    b = load_recordings(tmp_path / "s", CFG, progress=False).files[0]
    assert b.channels == 2 and b.sample_rate == 48000
    assert abs(len(a) - len(b)) <= 1
    n = min(len(a), len(b))
    assert np.median(np.abs(a.onset_s[:n] - b.onset_s[:n])) < 0.02


def test_a_long_file_is_read_in_bounded_memory(tmp_path):
    sr, minutes = 44100, 6
    notes = melody(np.random.default_rng(3), 60, 80, 6.0)
    y = render_melody(find_soundfont("TimGM6mb"), 40, notes, sample_rate=sr)
    path = tmp_path / "long.wav"
    with sf.SoundFile(str(path), "w", samplerate=sr, channels=2, subtype="FLOAT") as f:
        for _ in range(minutes * 10):  # notes every 6 s
            block = np.zeros((6 * sr, 2), np.float32)
            block[: len(y)] = y[: 6 * sr, None] * 0.5
            f.write(block)
    whole_mb = minutes * 60 * sr * 2 * 4 / 1e6  # the file as float32: 127 MB
    sf.write(str(tmp_path / "short.wav"), y, sr)
    R.analyse_file(tmp_path / "short.wav", CFG, R.SegmentSettings())  # first-use imports are not the file's
    tracemalloc.start()
    fn = R.analyse_file(path, CFG, R.SegmentSettings())
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    assert len(fn) > 100
    assert peak < 0.6 * whole_mb, f"peak {peak:.0f} MB while analysing a {whole_mb:.0f} MB file"
