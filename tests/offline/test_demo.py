"""`audiosym demo`: WAVs + spectrogram PNG from the shipped presets; never overwrites silently."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiosym.offline.demo import DEMO_MELODY, contrasting_timbres, fresh_output_dir

REPO = Path(__file__).resolve().parents[2]
def test_fresh_output_dir_never_reuses_a_folder_with_files(tmp_path):
    out = tmp_path / "demo_out"
    assert fresh_output_dir(out, overwrite=False) == out  # new: used as is
    assert fresh_output_dir(out, overwrite=False) == out  # still empty: used as is
    (out / "input.wav").write_bytes(b"x")
    first = fresh_output_dir(out, overwrite=False)
    second = fresh_output_dir(out, overwrite=False)
    assert first == out / "run-001" and second == out / "run-002"
    assert fresh_output_dir(out, overwrite=True) == out
    assert (out / "input.wav").read_bytes() == b"x"  # choosing a folder deletes nothing


class _Timbres:
    default_timbre = "a"
    timbre_names = ["a", "b", "c", "d"]
    _v = {"a": [0.0, 0.0], "b": [0.1, 0.0], "c": [5.0, 0.0], "d": [0.0, 3.0]}

    def timbre_vector(self, name):
        return np.asarray(self._v[name], np.float32)


def test_contrasting_timbres_are_spread_out():
    assert contrasting_timbres(_Timbres(), 3) == ["a", "c", "d"]  # "b" is a near-duplicate of "a"
    assert contrasting_timbres(_Timbres(), 10) == ["a", "c", "d", "b"]
    assert contrasting_timbres(_Timbres(), 3, exclude={"c"}) == ["a", "d", "b"]
    assert contrasting_timbres(_Timbres(), 2, exclude={"a"}) == ["b", "c"]  # "b" stands in for the default
    assert contrasting_timbres(_Timbres(), 2, exclude={"a", "b", "c", "d"}) == []


def _check_demo_output(result, n_outputs):
    assert result.png is not None and result.png.stat().st_size > 10_000
    assert result.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    y, sr = sf.read(result.input_wav, dtype="float32")
    assert sr == 44100 and len(y) > DEMO_MELODY[-1][0] * sr
    assert len(result.outputs) == n_outputs
    for _, _, wav in result.outputs:
        z, zsr = sf.read(wav, dtype="float32")
        assert zsr == sr and len(z) == len(y)
        assert 1e-3 < np.max(np.abs(z)) <= 0.99 + 1e-6 and np.all(np.isfinite(z))


def test_demo_with_a_given_preset(tmp_path):
    """The machinery with one preset: the shipped SPS one, else a tiny exported one."""
    from audiosym.offline.demo import run_demo

    path = REPO / "presets" / "sps-default.asym"
    if not path.exists():
        pytest.importorskip("torch", reason="presets/sps-default.asym is missing and torch is needed to export a tiny one")
        pytest.importorskip("onnx")
        from latent_fixtures import tiny_latent_model

        from export.build import build_preset

        path = tmp_path / "tiny-sps.asym"
        build_preset(tiny_latent_model("sps"), path, progress=False, log=io.StringIO())
    result = run_demo(out=tmp_path / "out", presets=[str(path)], timbres_per_preset=2, log=io.StringIO())
    _check_demo_output(result, 2)
    again = run_demo(out=tmp_path / "out", presets=[str(path)], timbres_per_preset=1, plot=False, log=io.StringIO())
    assert again.out_dir == tmp_path / "out" / "run-001"  # the first run's files are untouched
    assert len(again.outputs) == 1 and again.png is None


@pytest.mark.skipif(not (REPO / "presets" / "sps-default.asym").exists(),
                    reason="shipped preset missing: presets/sps-default.asym")
def test_audiosym_demo_command_with_the_shipped_presets(tmp_path, capsys):
    from audiosym.cli import main
    from audiosym.offline.demo import shipped_presets

    assert main(["demo", "--out", str(tmp_path / "demo_out"), "--timbres", "1", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {o["preset"] for o in info["outputs"]} == {p.stem for p in shipped_presets()}
    for o in info["outputs"]:
        assert Path(o["wav"]).exists()
    assert Path(info["png"]).exists() and info["seconds"] < 60


@pytest.mark.slow
@pytest.mark.skipif(not (REPO / "presets" / "sps-default.asym").exists(),
                    reason="shipped preset missing: presets/sps-default.asym")
def test_first_run_says_it_is_preparing_the_engine(tmp_path):
    """With an empty numba cache (a fresh NUMBA_CACHE_DIR) the demo says, before the silent
    compilation, that it is preparing the engine; the second run, cache filled, does not."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(REPO), "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    args = [sys.executable, "-m", "audiosym", "demo", "--preset", "sps-default", "--timbres", "1", "--no-plot"]
    first = subprocess.run([*args, "--out", str(tmp_path / "a")], env=env, capture_output=True, text=True,
                           timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stderr.startswith("preparing the engine (first run only, up to ~"), first.stderr
    assert first.stdout.count("preparing") == 0  # stderr only: stdout carries the listing / --json
    second = subprocess.run([*args, "--out", str(tmp_path / "b")], env=env, capture_output=True, text=True,
                            timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "preparing the engine" not in second.stderr, second.stderr
