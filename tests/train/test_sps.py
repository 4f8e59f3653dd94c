"""SPS training method: configs, the maths of its parts, a short real training run, eval CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from audiosym.errors import ParameterError  # noqa: E402
from train.core.config import resolve  # noqa: E402
from train.sps import method as sps  # noqa: E402
from train.sps.loss import filter_invariance_loss, reparameterize  # noqa: E402
from train.sps.model import EquivariantDecoder, FrameEncoder  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TINY_SET = [
    "programs=0,40,73", "steps=30", "batch_size=4", "seq_len=6", "plan=scale", "K=2",
    "encoder_hidden=32", "decoder_hidden=32", "prior_hidden=8", "timbre_dim=4",
    "log_every=10", "eval_every=0", "ckpt_every=10", "blur_steps=10",
]


def test_config_rejects_unknown_and_bad_values():
    with pytest.raises(ParameterError, match="unknown"):
        resolve(sps.Config, sps.CONFIGS, "tiny", ["no_such_key=1"])
    with pytest.raises(ParameterError, match="plan"):
        resolve(sps.Config, sps.CONFIGS, "tiny", ["plan=zigzag"])
    cfg = resolve(sps.Config, sps.CONFIGS, "paper", ["K=0", "vae=false"])
    assert cfg.K == 0 and cfg.vae is False and cfg.encoder == "conv"


def test_reparameterisation_uses_half_logvar():
    torch.manual_seed(0)
    mu = torch.full((200_000, 1), 3.0)
    logvar = torch.full((200_000, 1), float(np.log(4.0)))  # variance 4 -> std 2
    z = reparameterize(mu, logvar)
    assert abs(float(z.std()) - 2.0) < 0.03  # the reference's exp(logvar)*0.5 would give 2.0 only by luck: 4*0.5
    assert abs(float(z.mean()) - 3.0) < 0.03
    z1 = reparameterize(mu, torch.full_like(logvar, float(np.log(0.25))))
    assert abs(float(z1.std()) - 0.5) < 0.01  # reference formula would give 0.125


def test_equivariant_decoder_translates_with_z_pitch():
    torch.manual_seed(0)
    dec = EquivariantDecoder(n_bins=190, timbre_dim=4, hidden=16, bins_per_unit=24.0)
    timbre = torch.randn(3, 1, 4)
    z = torch.tensor([[[-0.5]], [[0.0]], [[0.75]]])  # whole bins, so a half-bin shift is a plain average
    env = dec.envelope(torch.nn.functional.silu(dec.body(timbre)))
    base = dec(z, timbre) - env
    shift_bins = 7
    moved = dec(z + shift_bins / 24.0, timbre) - env
    # the template part moves up by exactly 7 bins (interior bins, away from the template edge)
    assert torch.allclose(moved[..., 40 + shift_bins:150], base[..., 40:150 - shift_bins], atol=1e-5)
    # and a fractional shift interpolates between neighbours
    half = dec(z + 0.5 / 24.0, timbre) - env
    assert torch.allclose(half[..., 41:150], 0.5 * (base[..., 41:150] + base[..., 40:149]), atol=1e-5)


def test_harmonic_pitch_head_follows_a_shifted_spectrum():
    torch.manual_seed(0)
    enc = FrameEncoder(n_bins=190, context=2, hidden=16, timbre_dim=4, floor_nats=10.0,
                       pitch_head="harmonic", pitch_init="harmonic")
    k = torch.arange(190.0)
    frames = []
    for f0 in (40, 70, 100):  # a harmonic comb (fundamental bin f0), then shifted copies
        spec = torch.full((190,), -10.0)
        for h in range(1, 5):
            b = f0 + round(24 * np.log2(h))
            spec = torch.maximum(spec, -0.5 * (k - b) ** 2 - 0.5 * h)
        frames.append(spec)
    x = torch.stack(frames)[:, None].repeat(1, 3, 1)  # [3, T=3, F]
    z = enc(x)[0][:, :, 0]  # [3, T'=2]
    dz = (z[1:, 0] - z[:-1, 0]) * 24.0  # bins moved per 30-bin shift
    assert torch.allclose(dz, torch.full_like(dz, 30.0), atol=1.0), dz


def _comb(f0_bins, harmonics=(1, 2, 3, 4), n_frames=3):
    """Log-magnitude frames ``[N, n_frames, 190]``: harmonic combs with fundamental bin f0."""
    k = torch.arange(190.0)
    frames = []
    for f0 in f0_bins:
        spec = torch.full((190,), -10.0)
        for h in harmonics:
            b = f0 + round(24 * np.log2(h))
            spec = torch.maximum(spec, -0.5 * (k - b) ** 2 - 0.5 * h)
        frames.append(spec)
    return torch.stack(frames)[:, None].repeat(1, n_frames, 1)


def _encoder(kernel_below=0, pitch_init="harmonic", **kw):
    return FrameEncoder(n_bins=190, context=2, hidden=16, timbre_dim=4, floor_nats=10.0,
                        pitch_head="harmonic", pitch_init=pitch_init, kernel_below=kernel_below, **kw)


def test_kernel_below_shifts_the_kernel_window_not_the_maths():
    torch.manual_seed(0)
    a, b = _encoder(0), _encoder(20)
    with torch.no_grad():  # the same taps, placed after the 20 new ones below the candidate
        b.pitch_kernel.zero_()
        b.pitch_kernel[:, 20:] = a.pitch_kernel
    x = _comb((40, 70, 100))
    assert torch.allclose(a(x)[0], b(x)[0], atol=1e-5)
    # a single tap 10 bins BELOW the candidate puts the candidate 10 bins above a lone peak
    with torch.no_grad():
        b.pitch_kernel.zero_()
        b.pitch_kernel[-1, 20 - 10] = 1.0
    z = b(_comb((60,), harmonics=(1,)))[0][0, 0, 0].detach()
    assert abs(float(z) * 24.0 + 95.0 - 70.0) < 0.5, float(z) * 24 + 95


def test_graph_rewrite_of_the_pitch_head_follows_kernel_below():
    """train/sps/export.py's ONNX-friendly encoder computes the same z_pitch with a two-sided kernel."""
    from train.sps.export import export_modules, onnx_modules

    cfg = resolve(sps.Config, sps.CONFIGS, "tiny", ["pitch_init_scale=0.3"])
    assert cfg.kernel_below > 0
    torch.manual_seed(0)
    model = sps.SPSModel(cfg, 190).eval()
    x = torch.randn(3, 23, 190) * 2 - 5
    with torch.no_grad():
        ref, fast = export_modules(model.encoder, model.decoder)[0](x), onnx_modules(model.encoder, model.decoder)[0](x)
    assert type(onnx_modules(model.encoder, model.decoder)[0]).__name__ != type(export_modules(model.encoder, model.decoder)[0]).__name__
    assert torch.allclose(ref[0], fast[0], atol=1e-4) and torch.allclose(ref[1], fast[1], atol=1e-4)


def test_default_pitch_head_is_not_a_pitch_detector_at_initialisation():
    """The `tiny` recipe learns its pitch kernel: at step 0, shifting a harmonic spectrum by 30 bins
    moves z_pitch by a small fraction of the 30 bins a pitch detector would report."""
    cfg = resolve(sps.Config, sps.CONFIGS, "tiny", [])
    assert cfg.pitch_init == "random"
    torch.manual_seed(0)
    model = sps.SPSModel(cfg, 190)
    harmonic = sps.SPSModel(resolve(sps.Config, sps.CONFIGS, "tiny", ["pitch_init=harmonic"]), 190)
    with torch.no_grad():
        z = model.encoder(_comb((40, 70, 100)))[0][:, 0, 0] * 24.0  # bins
        zh = harmonic.encoder(_comb((40, 70, 100)))[0][:, 0, 0] * 24.0
    assert float((z[1:] - z[:-1]).abs().max()) < 6.0, z  # a centroid drift of a few bins, not 30
    assert torch.allclose(zh[1:] - zh[:-1], torch.full((2,), 30.0), atol=1.0), zh


def test_filter_invariance_loss_flags_a_kernel_that_misreads_lone_fundamentals():
    """A harmonic-sum kernel whose strongest tooth is the 3rd harmonic and which lacks the
    fundamental's tooth reads a full comb like the harmonic kernel but puts a lone fundamental
    (everything above it filtered off) 38 bins low: the loss must rank it clearly worse."""
    torch.manual_seed(0)
    good, bad = _encoder(24), _encoder(24)
    with torch.no_grad():
        for enc, teeth in ((good, {1: 1.0, 2: 0.8, 3: 0.6, 4: 0.5}), (bad, {2: 0.8, 3: 1.0, 4: 0.5})):
            enc.pitch_kernel.zero_()
            for h, w in teeth.items():
                enc.pitch_kernel[-1, 24 + round(24 * np.log2(h))] = w
    f0 = torch.tensor([40, 55, 70, 85])
    x = _comb(f0.tolist(), n_frames=2)  # [N, C=2, F]
    cut = f0.float() + 12.0  # between the fundamental and the 2nd harmonic
    kw = dict(slope=0.5, min_mass=0.1, sharpen=2.0)
    with torch.no_grad():
        loss_good, kept = filter_invariance_loss(good, x, cut, **kw)
        loss_bad, _ = filter_invariance_loss(bad, x, cut, **kw)
        # with no cut at all both kernels read the full comb alike: the loss is about filtering
        none = torch.full_like(cut, 500.0)
        gap_unfiltered = float(filter_invariance_loss(bad, x, none, **kw)[0] - filter_invariance_loss(good, x, none, **kw)[0])
    assert float(kept) == 1.0
    assert float(loss_bad) > 5.0 * float(loss_good) + 1.0, (float(loss_good), float(loss_bad))
    assert abs(gap_unfiltered) < 0.5, gap_unfiltered


def _train(out: Path, extra: list[str] = ()) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "audiosym", "train", "sps", "--config", "tiny", "--out", str(out),
           "--soundfont", "TimGM6mb", "--device", "cpu", "--no-progress", "--json"]
    for s in [*TINY_SET, *extra]:
        cmd += ["--resume"] if s == "--resume" else ["--set", s]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                          env={**_env(), "OMP_NUM_THREADS": "1"})


def _env():
    import os

    return dict(os.environ)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sps") / "run"
    res = _train(out, ["steps=20"])
    assert res.returncode == 0, res.stderr[-3000:]
    return out, json.loads(res.stdout)


def test_training_run_writes_run_dir_and_loads(tiny_run):
    out, summary = tiny_run
    for name in ("config.json", "run.json", "metrics.csv", "checkpoint.pt", "summary.json"):
        assert (out / name).exists(), name
    assert summary["steps"] == 20
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,") and len(rows) == 3  # header + steps 10, 20
    assert "lowpass" in rows[0].split(",")  # the default recipe trains with the filter-invariance term
    from train.core.runs import load_run

    model = load_run(out)
    assert model.kind == "sps" and model.context_frames == 2
    frames = np.random.default_rng(0).normal(-5, 2, size=(3, 9, 190)).astype(np.float32)
    z = model.encode(frames)
    assert z["z_pitch"].shape == (3, 8, 1) and z["z_timbre"].shape == (3, 8, 4)
    y = model.decode(**z)
    assert y.shape == (3, 8, 190) and np.isfinite(y).all()
    enc, dec = model.torch_model.export_modules()
    zp, zt = enc(torch.from_numpy(frames))
    assert zp.shape == (3, 8, 1) and zt.shape == (3, 8, 4)
    assert dec(zp, zt).shape == (3, 8, 190)


def test_resume_continues_at_the_right_step(tiny_run, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    again = _train(out, ["steps=30"])
    assert again.returncode != 0 and "--resume" in again.stderr  # never overwrites silently
    changed = _train(out, ["steps=30", "lr=0.5", "--resume"])
    assert changed.returncode != 0 and "different config" in changed.stderr
    res = _train(out, ["steps=30", "--resume"])
    assert res.returncode == 0, res.stderr[-2000:]
    assert "at step 20" in res.stderr
    assert json.loads(res.stdout)["steps"] == 30
    steps = [int(r.split(",")[0]) for r in (out / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == [10, 20, 30]


@pytest.mark.slow
def test_eval_cli_reports_the_required_keys(tiny_run, tmp_path):
    out, _ = tiny_run
    plot = tmp_path / "z.png"
    res = subprocess.run(
        [sys.executable, "-m", "audiosym", "eval", "sps", str(out), "--json", "--no-progress",
         "--plot", str(plot)],
        capture_output=True, text=True, cwd=ROOT, env={**_env(), "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    m = json.loads(res.stdout)
    for key in ("r2_mean", "r2_mean_all", "r2_per_instrument", "semitone_slope", "slope_cv",
                "synthesis_r2_mean", "soundfont", "train_soundfont", "excluded"):
        assert key in m, key
    assert m["train_soundfont"] == "TimGM6mb" and m["soundfont"] != "TimGM6mb"
    assert len(m["r2_per_instrument"]) == 9
    assert all(0.0 <= v <= 1.0 for v in m["r2_per_instrument"].values())
    assert set(m["excluded"]) <= set(m["r2_per_instrument"]) | {"piano"}
    assert plot.stat().st_size > 10_000


def test_tiny_on_recordings_starts_from_the_harmonic_comb_unless_told_otherwise():
    """resolve_config applies RECORDINGS[config] when the data are recordings; --set wins."""
    from train.core.runs import resolve_config

    assert resolve_config(sps, "tiny", []).pitch_init == "random"  # soundfonts: learned from noise
    assert resolve_config(sps, "tiny", ["audio=/x"]).pitch_init == "harmonic"
    assert resolve_config(sps, "tiny", ["audio=/x", "pitch_init=random"]).pitch_init == "random"
    assert resolve_config(sps, "paper", ["audio=/x"]).pitch_init == sps.Config().pitch_init  # no entry
