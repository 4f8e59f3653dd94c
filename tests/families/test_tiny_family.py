"""A third model family through every seam: registered from the test (tests/tiny_family.py), it
trains a few steps, exports through export/build.py, loads as a preset, plays through the
engine at the pitch asked, is inspected and evaluated by the CLI; no other module knows it."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")
import tiny_family  # noqa: E402

from audiosym import families  # noqa: E402
from audiosym.cli import main as cli_main  # noqa: E402
from audiosym.engine.control import note_off, note_on  # noqa: E402
from audiosym.engine.engine import Engine  # noqa: E402
from audiosym.preset.session import load_preset  # noqa: E402

tiny_family.register()


@pytest.fixture(scope="module")
def tiny_preset(tmp_path_factory):
    import torch

    from export.build import export_run
    from train.core.runs import train_method

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("tiny")
    summary = train_method("tiny", config="tiny", overrides=[], out=folder / "run", device="cpu", progress=False)
    assert summary["steps"] == 5 and np.isfinite(summary["last_logs"]["loss"])
    path = folder / "tiny.asym"
    export_run(folder / "run", path, progress=False, log=io.StringIO())
    return path


def _pitch(y: np.ndarray, sample_rate: int) -> float:
    """Median pyin pitch (MIDI) of ``y``."""
    import librosa

    f0, voiced, _ = librosa.pyin(y.astype(np.float64), fmin=100.0, fmax=1000.0, sr=sample_rate, frame_length=2048)
    return float(np.median(librosa.hz_to_midi(f0[voiced])))


def test_a_registered_family_trains_exports_loads_and_plays_at_the_pitch_asked(tiny_preset):
    preset = load_preset(tiny_preset, device="cpu")
    assert preset.kind == "tiny" and preset.family is tiny_family.TINY
    assert (preset.pitch_latent, preset.timbre_latent, preset.continuous_pitch) == ("pitch", "colour", True)
    assert set(preset.timbre_names) == {"clarinet", "flute"} and preset.match is not None
    lo, hi = preset.midi_range
    assert lo <= 62 and hi >= 70
    sr = 16000
    for note in (62, 70):
        engine = Engine(preset.with_stored_match(), timbre=preset.default_timbre, sample_rate=sr, mode="synth")
        y = engine.render(sr, [note_on(0, note, 100), note_off(sr - 1000, note)])
        assert np.sqrt(np.mean(y[sr // 10 : sr // 2] ** 2)) > 0.01  # sound comes out ...
        assert abs(_pitch(y[sr // 10 : sr // 2], sr) - note) < 0.3  # ... at the pitch asked


def test_the_cli_inspects_and_evaluates_it_through_the_family(tiny_preset, capsys, tmp_path):
    assert "tiny" in families.names()
    assert cli_main(["presets", "inspect", str(tiny_preset)]) == 0
    out = capsys.readouterr().out
    assert "kind" in out and "tiny" in out and "linear: pitch = " in out
    assert cli_main(["eval", "tiny", str(tiny_preset), "--json", "--plot", str(tmp_path / "tiny.png")]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["notes"] == 37 and metrics["r2"] > 0.9 and (tmp_path / "tiny.png").stat().st_size > 0
