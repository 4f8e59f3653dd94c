"""What `audiosym resynth` writes (issue #16 items 5, 9, 10): output names that carry the preset
and timbre, reruns that skip only what the same settings made, one up-front error for an --out
that is a file, permissions that follow the umask, and --format float|pcm24|pcm16."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiosym.offline.naming import describe_changes, name_part

REPO = Path(__file__).resolve().parents[2]
PRESET = str(REPO / "presets" / "sps-default.asym")


def _take(path, *, seconds=0.6, sample_rate=22050, hz=262.0, level=0.3):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    y = level * np.sin(2 * np.pi * hz * t) * np.minimum(t / 0.02, 1.0)
    sf.write(path, y.astype(np.float32), sample_rate)
    return path


def _cli(*argv):
    from audiosym.cli import main

    return main(["resynth", *map(str, argv), "--no-progress"])


def _json_cli(capsys, *argv):
    capsys.readouterr()  # what earlier runs printed
    rc = _cli(*argv, "--json")
    captured = capsys.readouterr()
    return rc, json.loads(captured.out), captured.err


# ------------------------------------------------------------------ item 5: names and reruns

@pytest.mark.parametrize("text,want", [("violin", "violin"), ("ref:my_clarinet", "ref-my_clarinet"),
                                       ("a b/c\\d", "a-b-c-d"), ("../../etc", "etc"), (".hidden", "hidden"),
                                       ("sps-default.v2", "sps-default.v2"), ("ÉtudeÖ", "ÉtudeÖ"), (":", "-")])
def test_name_part_is_one_safe_file_name_component(text, want):
    assert name_part(text) == want


def test_outputs_carry_preset_and_timbre_so_timbres_share_a_folder(tmp_path, capsys):
    src = _take(tmp_path / "in" / "take.wav")
    out = tmp_path / "out"
    for timbre in ("clarinet", "violin"):
        assert _cli(src, "--out", out, "--preset", PRESET, "--timbre", timbre) == 0
    clarinet, violin = out / "take.sps-default.clarinet.wav", out / "take.sps-default.violin.wav"
    assert sorted(os.listdir(out)) == [clarinet.name, violin.name]
    a, b = sf.read(clarinet, dtype="float32")[0], sf.read(violin, dtype="float32")[0]
    assert np.abs(a - b).max() > 1e-3  # two timbres, two sounds: the second run was no skip
    # the preset's file name is its part of the name (a preset file copied under another name)
    mine = tmp_path / "my preset.asym"
    shutil.copy(PRESET, mine)
    assert _cli(src, "--out", out, "--preset", mine, "--timbre", "violin") == 0
    assert (out / "take.my-preset.violin.wav").exists()
    # --timbre-from: the reference's name (ref:<stem>)
    ref = _take(tmp_path / "refs" / "bowed cello.wav", seconds=2.0, hz=196.0)
    assert _cli(src, "--out", out, "--preset", PRESET, "--timbre-from", ref) == 0
    assert (out / "take.sps-default.ref-bowed_cello.wav").exists()
    # a rerun with the same settings still skips (resume), leaving the file as it was
    stamp = violin.stat().st_mtime_ns
    rc, summary, _ = _json_cli(capsys, src, "--out", out, "--preset", PRESET, "--timbre", "violin")
    assert rc == 0 and [f["status"] for f in summary["files"]] == ["skipped"]
    assert "same settings" in summary["files"][0]["error"] and violin.stat().st_mtime_ns == stamp


def test_a_rerun_with_other_settings_is_no_silent_skip(tmp_path, capsys):
    src = _take(tmp_path / "in" / "take.wav")
    args = (src, "--out", tmp_path / "out", "--preset", PRESET, "--timbre", "clarinet")
    assert _cli(*args) == 0
    out = tmp_path / "out" / "take.sps-default.clarinet.wav"
    first = out.read_bytes()
    rc, summary, err = _json_cli(capsys, *args, "--transpose", "2", "--format", "pcm16")
    assert rc == 1 and summary["counts"] == {"ok": 0, "skipped": 0, "failed": 1}
    message = summary["files"][0]["error"]
    assert "other settings" in message and "transpose 0 -> 2" in message and "format float -> pcm16" in message
    assert "--overwrite" in message and message in err and out.read_bytes() == first
    assert _cli(*args, "--transpose", "2", "--overwrite") == 0
    assert out.read_bytes() != first
    rc, summary, _ = _json_cli(capsys, *args, "--transpose", "2")
    assert rc == 0 and summary["counts"]["skipped"] == 1  # now made with these settings
    # a MIDI file edited under the same name is another setting too
    assert describe_changes({"midi": "m.mid sha256:1", "format": "float"},
                            {"midi": "m.mid sha256:2", "format": "float"}) == "midi m.mid: the file changed"


def test_save_notes_on_a_rerun_writes_the_missing_notes(tmp_path):
    src = _take(tmp_path / "in" / "take.wav")
    args = (src, "--out", tmp_path / "out", "--preset", PRESET, "--timbre", "clarinet")
    assert _cli(*args) == 0
    notes = tmp_path / "out" / "take.sps-default.clarinet.notes.mid"
    assert not notes.exists()
    assert _cli(*args, "--save-notes") == 0
    assert notes.exists()  # beside its output, same name up to the suffix


def test_help_tells_the_output_names():
    from audiosym.cli.resynth import HELP

    assert "solo.sps-default.violin.wav" in HELP and "solo.sps-default.ref-cello.wav" in HELP
    assert "--format" in HELP and "same settings" in HELP


# ------------------------------------------------------------------ item 9: --out that is a file

def test_out_that_is_a_file_is_one_error_before_any_input(tmp_path, capsys):
    a, b = _take(tmp_path / "in" / "a.wav"), _take(tmp_path / "in" / "b.wav")
    blocker = tmp_path / "results"
    blocker.write_text("not a folder")
    for out, words in ((blocker, "is a file, not a folder"), (blocker / "sub", "is under")):
        assert _cli(a, b, "--out", out, "--preset", PRESET, "--timbre", "clarinet") == 2
        captured = capsys.readouterr()
        lines = [line for line in captured.err.splitlines() if line.strip()]
        assert len(lines) == 1 and words in lines[0] and "Errno" not in lines[0]  # one error, nothing processed
        assert captured.out == ""
    assert blocker.read_text() == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_out_under_a_read_only_folder_is_one_error(tmp_path, capsys):
    src = _take(tmp_path / "in" / "a.wav")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    assert _cli(src, "--out", locked / "out", "--preset", PRESET, "--timbre", "clarinet") == 2
    assert "not writable" in capsys.readouterr().err


# ------------------------------------------------------------------ item 10: permissions and --format

@pytest.fixture
def umask():
    """``umask(mask)`` sets the process umask for one test; it is restored afterwards."""
    saved = os.umask(0o022)
    os.umask(saved)
    yield os.umask
    os.umask(saved)


@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_get_the_mode_open_would_give(tmp_path, umask, mask, mode):
    src = _take(tmp_path / "in" / "take.wav")
    umask(mask)
    with open(tmp_path / "plain.txt", "w") as f:  # what any program's new file gets
        f.write("x")
    assert os.stat(tmp_path / "plain.txt").st_mode & 0o777 == mode
    assert _cli(src, "--out", tmp_path / "out", "--preset", PRESET, "--timbre", "clarinet", "--save-notes") == 0
    written = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in written] == ["take.sps-default.clarinet.notes.mid", "take.sps-default.clarinet.wav"]
    assert [p.stat().st_mode & 0o777 for p in written] == [mode, mode]


@pytest.mark.parametrize("fmt,subtype,step", [("float", "FLOAT", 0.0), ("pcm24", "PCM_24", 2.0**-23),
                                              ("pcm16", "PCM_16", 2.0**-15)])
def test_format_chooses_the_wav_subtype(tmp_path, fmt, subtype, step):
    src = _take(tmp_path / "in" / "take.wav")
    common = (src, "--preset", PRESET, "--timbre", "clarinet")
    assert _cli(*common, "--out", tmp_path / "ref") == 0
    assert _cli(*common, "--out", tmp_path / fmt, "--format", fmt) == 0
    name = "take.sps-default.clarinet.wav"
    assert sf.info(str(tmp_path / fmt / name)).subtype == subtype
    want = sf.read(tmp_path / "ref" / name, dtype="float64")[0]
    got = sf.read(tmp_path / fmt / name, dtype="float64")[0]
    assert np.max(np.abs(want)) > 1e-2 and np.max(np.abs(want)) < 1.0
    assert np.max(np.abs(got - want)) <= step  # within one quantisation step (libsndfile rounds down)


def test_pcm_output_that_clips_says_so(tmp_path, capsys):
    """A 0 dBFS square wave comes out beyond full scale: the PCM file is clipped (never wrapped
    around) and the run says how many samples, and how to avoid it."""
    sample_rate = 22050
    t = np.arange(sample_rate) / sample_rate
    src = tmp_path / "in" / "loud.wav"
    src.parent.mkdir()
    sf.write(src, np.sign(np.sin(2 * np.pi * 220 * t)).astype(np.float32), sample_rate)
    common = (src, "--preset", PRESET, "--timbre", "clarinet", "--dynamics", "input")
    assert _cli(*common, "--out", tmp_path / "float") == 0
    peak = np.max(np.abs(sf.read(tmp_path / "float" / "loud.sps-default.clarinet.wav")[0]))
    if peak <= 1.0:
        pytest.skip(f"this preset's output peaks at {peak:.2f}, under full scale")
    rc, summary, err = _json_cli(capsys, *common, "--out", tmp_path / "pcm", "--format", "pcm16")
    assert rc == 0 and "clipped in the pcm16 WAV" in summary["files"][0]["warning"] and "warning: " in err
    got = sf.read(tmp_path / "pcm" / "loud.sps-default.clarinet.wav", dtype="float64")[0]
    assert np.max(np.abs(got)) <= 1.0 and np.max(np.abs(got)) > 0.99
