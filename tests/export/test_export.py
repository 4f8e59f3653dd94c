"""ONNX export: parity with torch at new batch sizes and lengths, refusal of broken graphs, real runs."""

from __future__ import annotations

import dataclasses
import json
import zipfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from latent_fixtures import FixtureConfig, TinyModel, TorchLatentModel, tiny_latent_model  # noqa: E402

from audiosym.cli import main as cli_main  # noqa: E402
from audiosym.errors import PresetError  # noqa: E402
from audiosym.preset.session import load_preset  # noqa: E402
from export.build import build_preset  # noqa: E402
from export.onnx_graphs import EXAMPLE_FRAMES, check_parity, export_graphs  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _max_err(a: dict, b: dict) -> float:
    return max(float(np.max(np.abs(a[k].astype(np.float64) - b[k]))) for k in a if k != "code")


@pytest.mark.parametrize("kind", ["sps", "v3"])
def test_export_round_trip_matches_torch(kind, tmp_path, capsys):
    model = tiny_latent_model(kind)
    preset, report = build_preset(model, tmp_path / f"{kind}.asym", progress=False)
    assert report.ok and report.max_abs_err <= 1e-4
    assert any(r["batch"] > 1 for r in report.rows)
    assert all(r["frames"] != EXAMPLE_FRAMES for r in report.rows)
    assert "parity PASS" in capsys.readouterr().err  # the table is printed on stderr
    # the file on disk, at a batch and a length the export never saw
    loaded = load_preset(tmp_path / f"{kind}.asym")
    x = np.random.default_rng(5).normal(-6, 2, (3, model.context_frames + 56, 190)).astype(np.float32)
    zt, zo = model.encode(x), loaded.encode(x)
    assert zo[next(iter(zo))].shape[:2] == (3, 57)
    assert _max_err(zt, zo) <= 1e-4
    if kind == "v3":
        assert np.array_equal(zt["code"], zo["code"]) and zo["code"].dtype == np.int64
        lat = {"content_q": zt["content_q"], "style": zt["style"]}
    else:
        lat = {"z_pitch": zt["z_pitch"], "z_timbre": zt["z_timbre"]}
    assert np.max(np.abs(model.decode(**lat) - loaded.decode(**lat))) <= 1e-4
    meta = loaded.metadata
    assert meta["kind"] == kind and meta["train_soundfont"] == "TimGM6mb"
    assert [t["name"] for t in meta["latent"]["encoder_outputs"]] == list(zt)
    assert set(meta["timbres"]) >= {"flute", "clarinet"}
    with zipfile.ZipFile(tmp_path / f"{kind}.asym") as zf:
        assert sorted(zf.namelist()) == ["decoder.onnx", "encoder.onnx", "match.npz", "metadata.json"]
    # the named timbres' match corrections and note envelopes, measured on the exported graphs
    named = sorted(n for n, t in meta["timbres"].items() if t["program"] >= 0)
    assert meta["match"]["timbres"] == named and meta["match"]["soundfont"] == "TimGM6mb"
    assert sorted(r.name for r in loaded.match.references) == named == sorted(loaded.match.envelopes)
    assert loaded.envelope("flute") is not None and loaded.envelope("no such timbre") is None


def test_match_data_is_optional_and_tamper_checked(tmp_path):
    model = tiny_latent_model("sps")
    build_preset(model, tmp_path / "bare.asym", progress=False, match=False)
    bare = load_preset(tmp_path / "bare.asym")
    assert bare.match is None and "match" not in bare.metadata and bare.envelope("flute") is None
    build_preset(model, tmp_path / "full.asym", progress=False)
    bad = tmp_path / "bad.asym"
    with zipfile.ZipFile(tmp_path / "full.asym") as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.namelist():
            data = zin.read(item)
            zout.writestr(item, data[:-1] + bytes([data[-1] ^ 1]) if item == "match.npz" else data)
    with pytest.raises(PresetError, match="match.npz does not match its recorded sha256"):
        load_preset(bad)


def test_graph_that_does_not_reproduce_torch_is_refused(tmp_path):
    model = TorchLatentModel(TinyModel("sps", bake=True), config=FixtureConfig())
    out = tmp_path / "baked.asym"
    with pytest.raises(PresetError, match="do not reproduce the torch model.*no preset was written"):
        build_preset(model, out, progress=False)
    assert not out.exists()


def test_existing_preset_is_not_overwritten(tmp_path):
    out = tmp_path / "x.asym"
    out.write_bytes(b"keep me")
    with pytest.raises(PresetError, match="already exists"):
        build_preset(tiny_latent_model("sps"), out, progress=False)
    assert out.read_bytes() == b"keep me"


def _real_model(kind: str, **overrides):
    """An untrained model of the real train/ architecture, wrapped as its LatentModel."""
    if kind == "sps":
        sps = pytest.importorskip("train.sps.method")
        cfg = sps.Config(soundfont="TimGM6mb", programs=(73, 71), **overrides)
        return sps, cfg, sps.load_latent_model({"method": "sps", "config": dataclasses.asdict(cfg),
                                                "model": sps.SPSModel(cfg, 190).state_dict()})
    v3 = pytest.importorskip("train.v3.method")
    cfg = v3.Config(soundfont="TimGM6mb", train_programs=(73, 71), heldout_programs=(40,),
                    pitch_limits=(60, 71), velocities=(100,), **overrides)
    state = {f"net.{k}": v for k, v in v3.build_net(cfg).state_dict().items()}
    return v3, cfg, v3.load_latent_model({"method": "v3", "config": dataclasses.asdict(cfg), "model": state})


@pytest.mark.parametrize(
    "kind, overrides",
    [("sps", {}), ("sps", {"encoder": "conv", "context_frames": 5}),
     ("sps", {"context_frames": 3, "decoder": "mlp", "pitch_init": "random"}),
     ("sps", {"pitch_init": "random", "pitch_init_scale": 0.003, "kernel_below": 60, "w_lowpass": 1.0}),
     ("v3", {}), ("v3", {"context_frames": 4, "conv_channels": 8})],
)
def test_real_architectures_export_with_parity(kind, overrides):
    _, _, model = _real_model(kind, **overrides)
    enc, dec = export_graphs(model)
    report = check_parity(model, enc, dec, cases=((1, 1), (3, 23)), repeats=1)
    assert report.ok, report.table()


def test_sps_graphs_are_rewritten_with_fewer_nodes():
    """The SPS graphs come from onnx_modules() (same function, fewer onnxruntime nodes): what
    makes the per-frame call fast. The literal export of the training forward is the baseline."""
    onnx = pytest.importorskip("onnx")

    _, _, model = _real_model("sps")
    fast = [len(onnx.load_from_string(b).graph.node) for b in export_graphs(model)]
    literal = [len(onnx.load_from_string(b).graph.node) for b in export_graphs(model, rewrite=False)]
    assert fast[0] * 2 < literal[0] and fast[1] < literal[1], (fast, literal)


@pytest.mark.parametrize("kind", ["sps", "v3"])
def test_cli_exports_a_run_directory(kind, tmp_path, capsys):
    _, cfg, model = _real_model(kind)
    run = tmp_path / "run"
    run.mkdir()
    state = model.torch_model.state_dict()
    if kind == "v3":
        state = {f"net.{k}": v for k, v in state.items()}
    torch.save({"method": kind, "config": {"name": "tiny", **dataclasses.asdict(cfg)}, "model": state, "step": 0},
               run / "checkpoint.pt")
    (run / "summary.json").write_text(json.dumps({"steps": 0, "last_eval": {"score": 0.5}}))
    out = tmp_path / f"{kind}.asym"
    assert cli_main(["export", str(run), "--out", str(out), "--no-progress", "--json"]) == 0
    captured = capsys.readouterr()
    assert "parity PASS" in captured.err
    summary = json.loads(captured.out)
    assert summary["kind"] == kind and summary["parity"]["max_abs_err"] <= 1e-4
    meta = load_preset(out).metadata
    assert meta["metrics"]["last_eval"]["score"] == 0.5 and meta["source"]["run"] == "run"
    assert cli_main(["export", str(run), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.slow
def test_tiny_v3_training_run_exports(tmp_path):
    from train.core.runs import train_method

    run = tmp_path / "v3run"
    train_method("v3", config="tiny", out=run, device="cpu", progress=False, overrides=[
        "steps=20", "soundfont=TimGM6mb", "train_programs=73,71", "heldout_programs=40",
        "pitch_limits=60,71", "velocities=100", "eval_heldout_soundfont=false",
    ])
    assert cli_main(["export", str(run), "--out", str(tmp_path / "v3.asym"), "--no-progress"]) == 0
    p = load_preset(tmp_path / "v3.asym")
    assert p.kind == "v3" and len(p.pitch_control["codebook"]) == 24
