"""``audiosym export OLD.asym --out NEW.asym``: a preset's match data (with band profiles) measured
again on its own graphs, nothing else changed, nothing overwritten by accident."""

from __future__ import annotations

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("torch")

from latent_fixtures import build_fixture_preset  # noqa: E402

from audiosym.cli import main as cli_main  # noqa: E402
from audiosym.errors import PresetError  # noqa: E402
from audiosym.preset.format import read_preset_files  # noqa: E402
from audiosym.preset.session import load_preset  # noqa: E402
from export.rematch import rematch_preset  # noqa: E402


@pytest.fixture(scope="module")
def old(tmp_path_factory):
    """A real preset exported without match data (as presets were before band profiles)."""
    path = tmp_path_factory.mktemp("rematch") / "old.asym"
    build_fixture_preset("sps", path, match=False)
    return path


def test_rematch_adds_band_profiles_and_keeps_the_graphs(old, tmp_path):
    before = load_preset(old, device="cpu")
    assert not before.has_band and before.match is None
    out = tmp_path / "new.asym"
    after = rematch_preset(old, out, description="re-measured", progress=False, log=open("/dev/null", "w"))
    assert after.has_band
    named = sorted(n for n, t in after.metadata["timbres"].items() if t["program"] >= 0)
    assert sorted(after.match.bands) == named == after.metadata["match"]["band_extension"]["timbres"]
    assert after.metadata["description"] == "re-measured" and after.name == before.name
    _, m_old = read_preset_files(old)
    _, m_new = read_preset_files(out)
    for member in ("encoder.onnx", "decoder.onnx"):  # same graphs; only the embedded metadata differs
        g_old, g_new = onnx.load_from_string(m_old[member]), onnx.load_from_string(m_new[member])
        assert g_old.graph.SerializeToString() == g_new.graph.SerializeToString(), member
    # the graphs decode what they did (match corrections aside)
    lat = {before.pitch_latent: before.midi_to_latent(np.array([60.0, 67.0]))[:, None, :].astype(np.float32),
           before.timbre_latent: np.repeat(before.timbre_vector(named[0])[None, None], 2, axis=0)}
    np.testing.assert_allclose(load_preset(out, device="cpu").decode(**lat), before.decode(**lat), atol=1e-5)
    assert old.exists()  # the old file is untouched


def test_rematch_refuses_to_overwrite(old, tmp_path):
    with pytest.raises(PresetError, match="is the preset being re-measured"):
        rematch_preset(old, old, progress=False)
    taken = tmp_path / "taken.asym"
    taken.write_bytes(b"keep me")
    with pytest.raises(PresetError, match="already exists; choose another path or pass overwrite=True"):
        rematch_preset(old, taken, progress=False)
    assert taken.read_bytes() == b"keep me"
    with pytest.raises(PresetError, match="must end in .asym"):
        rematch_preset(old, tmp_path / "new.zip", progress=False)


def test_cli_rematch(old, tmp_path, capsys):
    out = tmp_path / "cli.asym"
    assert cli_main(["export", str(old), "--out", str(out), "--no-progress", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["preset"] == str(out) and report["band_timbres"] and report["rematched_from"] == str(old)
    assert load_preset(out, device="cpu").has_band
    assert cli_main(["export", str(old), "--out", str(tmp_path / "x.asym"), "--metrics", "m.json"]) != 0
    err = capsys.readouterr().err
    assert "--metrics apply to exporting a training run" in err and "Traceback" not in err
    assert not (tmp_path / "x.asym").exists()


def test_presets_inspect_declares_the_band(old, tmp_path, capsys):
    """A preset says what band it plays: the model's 8 kHz and, with band profiles, above it."""
    new = tmp_path / "banded.asym"
    rematch_preset(old, new, progress=False, log=open("/dev/null", "w"))
    capsys.readouterr()
    assert cli_main(["presets", "inspect", str(old)]) == 0
    before = next(line for line in capsys.readouterr().out.splitlines() if line.lstrip().startswith("band"))
    assert "8 kHz (the model's band" in before and f"audiosym export {old.name} --out NEW.asym" in before
    assert cli_main(["presets", "inspect", str(new)]) == 0
    after = next(line for line in capsys.readouterr().out.splitlines() if line.lstrip().startswith("band"))
    assert "above it, up to 24 kHz" in after and "at 44.1 kHz" in after
