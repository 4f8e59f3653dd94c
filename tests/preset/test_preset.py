"""Preset files: the loader's refusals, name lookup, calibration helpers, torch-free loading, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from audiosym.cli import main as cli_main
from audiosym.cli.eval import open_model
from audiosym.errors import ParameterError, PresetError
from audiosym.families.base import LatentModel
from audiosym.preset.format import latency_samples, read_metadata
from audiosym.preset.session import compare_models, load_preset

pytest.importorskip("torch")
from latent_fixtures import build_fixture_preset  # noqa: E402

from export.save import save_preset  # noqa: E402


@pytest.fixture(scope="module")
def presets(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("AUDIOSYM_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    folder = tmp_path_factory.mktemp("presets")
    out = {kind: build_fixture_preset(kind, folder / f"fx-{kind}.asym").path for kind in ("sps", "v3")}
    mp.undo()
    return out


def _rewrite(src: Path, dst: Path, *, drop=(), replace=None) -> Path:
    """Copy a preset zip member by member, dropping or replacing members (valid zip, new CRCs)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            if name in drop:
                continue
            data = zin.read(name)
            if replace and name in replace:
                data = replace[name](data)
            zout.writestr(name, data)
    return dst


def _edit_meta(fn):
    def edit(data: bytes) -> bytes:
        meta = json.loads(data)
        fn(meta)
        return json.dumps(meta).encode()

    return edit


def test_loaded_preset_is_a_latent_model(presets):
    for kind, path in presets.items():
        p = load_preset(path)
        assert isinstance(p, LatentModel) and p.kind == kind
        x = np.random.default_rng(0).normal(-6, 2, (2, p.context_frames + 6, 190)).astype(np.float32)
        z = p.encode(x)
        assert all(v.shape[:2] == (2, 7) for v in z.values())
        lat = {k: z[k] for k in (("z_pitch", "z_timbre") if kind == "sps" else ("content_q", "style"))}
        assert p.decode(**lat).shape == (2, 7, 190)
        assert p.providers == ["CPUExecutionProvider"]  # no GPU on this machine
        assert p.latency_samples == latency_samples(p.features, p.context_frames) == 1792 + (p.context_frames - 1) * 256


def test_truncated_file_is_refused(presets, tmp_path):
    blob = presets["sps"].read_bytes()
    bad = tmp_path / "cut.asym"
    bad.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(PresetError, match="truncated"):
        load_preset(bad)
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(PresetError, match="not a complete zip"):
        load_preset(bad)


def test_flipped_byte_on_disk_is_refused(presets, tmp_path):
    blob = bytearray(presets["sps"].read_bytes())
    with zipfile.ZipFile(presets["sps"]) as zf:
        info = zf.getinfo("encoder.onnx")
    blob[info.header_offset + 30 + len(info.filename) + 100] ^= 0xFF  # inside the stored graph data
    bad = tmp_path / "flip.asym"
    bad.write_bytes(bytes(blob))
    with pytest.raises(PresetError, match="corrupt"):
        load_preset(bad)


def test_tampered_graph_is_a_hash_mismatch(presets, tmp_path):
    def flip(data: bytes) -> bytes:
        b = bytearray(data)
        b[len(b) // 2] ^= 0x01
        return bytes(b)

    bad = _rewrite(presets["v3"], tmp_path / "tampered.asym", replace={"decoder.onnx": flip})
    with pytest.raises(PresetError, match="sha256.*tampered"):
        load_preset(bad)


def test_missing_member_is_named(presets, tmp_path):
    bad = _rewrite(presets["sps"], tmp_path / "nodec.asym", drop=("decoder.onnx",))
    with pytest.raises(PresetError, match="missing decoder.onnx"):
        load_preset(bad)


def test_future_format_version_asks_to_upgrade(presets, tmp_path):
    edit = _edit_meta(lambda m: m.update(format_version=3, new_field={"x": 1}))
    bad = _rewrite(presets["sps"], tmp_path / "future.asym", replace={"metadata.json": edit})
    with pytest.raises(PresetError, match="newer audiosym; upgrade"):
        load_preset(bad)


def test_format_version_1_presets_without_match_data_still_load(presets, tmp_path, monkeypatch):
    import export.save as save_module

    p = load_preset(presets["sps"])
    with zipfile.ZipFile(presets["sps"]) as zf:
        enc, dec = zf.read("encoder.onnx"), zf.read("decoder.onnx")
    meta = {k: v for k, v in p.metadata.items() if k not in ("graphs", "format_version", "match")}
    monkeypatch.setattr(save_module, "FORMAT_VERSION", 1)  # what audiosym wrote before 2026-11-30
    save_module.save_preset(tmp_path / "v1.asym", meta, encoder_onnx=enc, decoder_onnx=dec)
    old = load_preset(tmp_path / "v1.asym")
    assert old.metadata["format_version"] == 1 and old.match is None and old.envelope("flute") is None
    assert p.metadata["format_version"] == 2 and p.match is not None


@pytest.mark.parametrize(
    "edit, field",
    [
        (lambda m: m.update(kind="rave"), "kind"),
        (lambda m: m["midi_range"].__setitem__(1, 200), "midi_range.1"),
        (lambda m: m["pitch_control"].pop("b"), "pitch_control"),
        (lambda m: m.pop("timbres"), "required property"),
        (lambda m: m.update(default_timbre="kazoo"), "default_timbre"),
        (lambda m: m["timbres"]["flute"]["vector"].append(0.0), "timbre vectors have length"),
    ],
)
def test_schema_violation_names_the_field(presets, tmp_path, edit, field):
    bad = _rewrite(presets["sps"], tmp_path / "bad.asym", replace={"metadata.json": _edit_meta(edit)})
    with pytest.raises(PresetError, match=field):
        load_preset(bad)


def test_metadata_must_match_the_copy_inside_the_graphs(presets, tmp_path):
    edit = _edit_meta(lambda m: m.update(description="swapped in later"))
    bad = _rewrite(presets["v3"], tmp_path / "swap.asym", replace={"metadata.json": edit})
    with pytest.raises(PresetError, match="differs from metadata.json"):
        load_preset(bad)


def test_names_resolve_in_the_user_folder_and_missing_ones_list_the_available(presets, monkeypatch):
    monkeypatch.setenv("AUDIOSYM_PRESETS", str(presets["sps"].parent))
    assert load_preset("fx-sps").kind == "sps"
    assert open_model("fx-v3.asym", kind="v3").kind == "v3"
    with pytest.raises(PresetError, match="available presets: .*fx-sps.*fx-v3"):
        load_preset("no-such-preset")
    with pytest.raises(ParameterError, match="holds a 'sps' model"):
        open_model("fx-sps", kind="v3")


def test_save_refuses_to_overwrite_and_checks_against_the_reference(presets, tmp_path):
    p = load_preset(presets["sps"])
    with zipfile.ZipFile(presets["sps"]) as zf:
        enc, dec = zf.read("encoder.onnx"), zf.read("decoder.onnx")
    meta = {k: v for k, v in p.metadata.items() if k not in ("graphs", "format_version", "match")}
    out = tmp_path / "copy.asym"
    with pytest.raises(ParameterError, match="match.npz"):  # metadata naming a member not given
        save_preset(out, {**meta, "match": p.metadata["match"]}, encoder_onnx=enc, decoder_onnx=dec)
    save_preset(out, meta, encoder_onnx=enc, decoder_onnx=dec, reference=p)
    with pytest.raises(PresetError, match="already exists"):
        save_preset(out, meta, encoder_onnx=enc, decoder_onnx=dec)
    other = load_preset(presets["v3"])
    with pytest.raises(PresetError):
        compare_models(p, other)  # a different model never passes the re-load check
    save_preset(out, {**meta, "description": "v2"}, encoder_onnx=enc, decoder_onnx=dec, overwrite=True)
    assert read_metadata(out)["description"] == "v2"
    assert sorted(os.listdir(tmp_path)) == ["copy.asym"]  # no temp files left behind


def test_pitch_control_round_trips(presets):
    sps = load_preset(presets["sps"])
    midi = np.array([60.0, 61.5, 72.25])
    np.testing.assert_allclose(sps.latent_to_midi(sps.midi_to_latent(midi)), midi, atol=1e-3)
    v3 = load_preset(presets["v3"])
    atom_midi = np.array(v3.pitch_control["atom_midi"])
    for m in atom_midi[atom_midi >= 0]:
        assert v3.latent_to_midi(v3.midi_to_latent(float(m))) == m
        assert v3.latent_to_midi(v3.midi_to_latent(m + 0.2)) == m  # nearest mapped pitch
    code = np.flatnonzero(atom_midi >= 0)[:1]
    assert v3.latent_to_midi(code) == atom_midi[code]
    assert v3.timbre_vector().shape == v3.timbre_vector(v3.timbre_names[0]).shape
    with pytest.raises(ParameterError, match="choose one of"):
        v3.timbre_vector("kazoo")


def test_loading_a_preset_does_not_import_torch(presets):
    code = (
        "import sys, numpy as np\n"
        "from audiosym.preset.session import load_preset\n"
        f"p = load_preset({str(presets['v3'])!r})\n"
        "z = p.encode(np.zeros((1, p.context_frames, 190), np.float32))\n"
        "p.decode(content_q=z['content_q'], style=z['style'])\n"
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.') or m == 'onnx']\n"
        "assert not bad, bad[:5]\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "ok" in out.stdout


def test_presets_list_and_inspect(presets, monkeypatch, capsys):
    monkeypatch.setenv("AUDIOSYM_PRESETS", str(presets["sps"].parent))
    assert cli_main(["presets", "list"]) == 0
    text = capsys.readouterr().out
    assert "fx-sps" in text and "fx-v3" in text and "user" in text
    assert cli_main(["presets", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["presets"]}
    assert rows["fx-v3"]["kind"] == "v3" and rows["fx-v3"]["timbres"] == 3 and rows["fx-v3"]["error"] is None
    assert cli_main(["presets", "inspect", "fx-sps"]) == 0
    text = capsys.readouterr().out
    lo, hi = read_metadata("fx-sps")["midi_range"]
    assert "linear: z_pitch" in text and "latency" in text and "samples" in text
    assert "flute" in text and "clarinet" in text and f"MIDI {lo} .. {hi}" in text
    assert "match data" in text and "corrections and note envelopes of 2 timbres, measured on TimGM6mb" in text
    assert cli_main(["presets", "inspect", "fx-v3", "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["pitch_control"]["type"] == "codebook" and meta["bytes"] > 0
    assert cli_main(["presets", "inspect", "nope"]) == 2
    assert "was not found" in capsys.readouterr().err


def test_presets_list_reports_a_broken_file_instead_of_failing(presets, tmp_path, monkeypatch, capsys):
    (tmp_path / "good.asym").write_bytes(presets["sps"].read_bytes())
    (tmp_path / "broken.asym").write_bytes(b"PK\x03\x04 half a zip")
    monkeypatch.setenv("AUDIOSYM_PRESETS", str(tmp_path))
    assert cli_main(["presets", "list"]) == 0
    text = capsys.readouterr().out
    assert "good" in text and "broken" in text and "unreadable:" in text and "truncated" in text


SHIPPED = sorted((Path(__file__).resolve().parents[2] / "presets").glob("*.asym"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_presets_load_play_and_fit(path):
    p = load_preset(path.stem)  # by name: the shipped folder is found relative to the package
    assert p.path.resolve() == path.resolve()
    assert path.stat().st_size <= 10_000_000
    lo, hi = p.midi_range
    mid = (lo + hi) // 2
    if p.kind == "v3":  # a pitch no atom stands for plays the atom of the nearest mapped pitch
        mapped = np.array([m for m in p.pitch_control["atom_midi"] if m >= 0])
        mid = int(mapped[np.argmin(np.abs(mapped - mid))])
    assert p.latent_to_midi(p.midi_to_latent(float(mid))) == pytest.approx(mid, abs=0.01)
    assert p.default_timbre in p.timbre_names
    assert p.metadata["metrics"], "a shipped preset records its evaluation"
