"""The whole path of issue #14 on a small folder: recordings -> train -> export -> resynth with a
folder-named timbre, and eval --audio (real files, real onnxruntime)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from audiosym.cli import main as cli_main  # noqa: E402
from tests._recordings import make_folder  # noqa: E402


def test_folder_to_preset_to_resynth(tmp_path, capsys):
    recs = tmp_path / "recs"
    make_folder(recs, seconds=14.0, takes=2)
    run, preset, out = tmp_path / "run", tmp_path / "mine.asym", tmp_path / "out"
    assert cli_main(["train", "sps", "--audio", str(recs), "--out", str(run), "--set", "steps=20",
                     "--set", "eval_every=20", "--threads", "1", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "violin: 2 file(s)" in err and "held out for evaluation" in err
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["pitch_init"] == "harmonic"  # tiny's setting for recordings (train/sps/config.py RECORDINGS)
    assert cli_main(["export", str(run), "--out", str(preset)]) == 0
    capsys.readouterr()
    assert cli_main(["presets", "inspect", str(preset), "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert sorted(meta["timbres"]) == ["flute", "trumpet", "violin"]
    # calibrated and matched on the training files: one of each timbre's two is held out
    assert meta["source"]["recordings"]["timbres"]["flute"]["files"] == 1
    assert meta["source"]["recordings"]["held_out_files"] == 3
    assert sorted(meta["match"]["timbres"]) == ["flute", "trumpet", "violin"]
    assert meta["match"]["band_extension"]["timbres"]  # 44.1 kHz files: band profiles measured
    assert cli_main(["presets", "inspect", str(preset)]) == 0
    text = capsys.readouterr().out
    assert "measured on the training recordings" in text and "3 more file(s), for evaluation only" in text
    assert "from band profiles of 3 timbres measured on the training recordings at 44.1 kHz" in text
    src = recs / "flute" / "take0.flac"
    assert cli_main(["resynth", str(src), "--preset", str(preset), "--timbre", "violin", "--out", str(out)]) == 0
    assert len(list(out.glob("*violin*.wav"))) == 1
    capsys.readouterr()
    assert cli_main(["eval", "sps", str(preset), "--audio", str(recs), "--json", "--no-progress"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert set(m["r2_per_instrument"]) <= {"flute", "trumpet", "violin"}
    assert m["n_files"] == {"flute": 2, "trumpet": 2, "violin": 2}
    assert all(m["n_notes_used"][k] > 10 for k in m["n_files"])


def test_train_audio_flag_errors(tmp_path, capsys):
    assert cli_main(["train", "sps", "--holdout", "0.3", "--out", str(tmp_path / "r")]) != 0
    assert "--holdout splits your recordings; it needs --audio DIR" in capsys.readouterr().err
    assert cli_main(["train", "sps", "--audio", str(tmp_path), "--soundfont", "TimGM6mb", "--out",
                     str(tmp_path / "r")]) != 0
    assert "give one of them" in capsys.readouterr().err
    assert cli_main(["train", "sps", "--audio", str(tmp_path / "none"), "--out", str(tmp_path / "r")]) != 0
    assert "no such folder" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
