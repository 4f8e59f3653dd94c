"""V3: strict loss weights, mpd guard, purity vs Hungarian, EMA codebook, a short real training run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from audiosym.errors import ParameterError  # noqa: E402
from audiosym.eval.v3 import (  # noqa: E402
    hungarian_map,
    knn_and_prauc,
    one_to_one_accuracy,
    purity,
)
from train.core.config import resolve  # noqa: E402
from train.v3.config import CONFIGS, Config, LossWeights  # noqa: E402
from train.v3.loss import mpd  # noqa: E402
from train.v3.model import EMACodebook  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SMALL = [
    "steps=30", "train_programs=19,41,71", "heldout_programs=73", "pitch_limits=60,67",
    "velocities=100", "fragments_per_sample=8", "n_atoms=8", "hidden=32", "eval_every=30",
    "ckpt_every=30", "log_every=10", "eq_db=6",
]


def test_loss_weights_are_strict():
    with pytest.raises(ParameterError, match="comitment"):
        LossWeights.parse({"comitment": 0.1})  # the reference code's silent misspelling
    with pytest.raises(ParameterError, match="allowed"):
        resolve(Config, CONFIGS, "tiny", ["loss=recon=1,comitment=0.1"])
    w = resolve(Config, CONFIGS, "tiny", ["loss=commitment=0.5,vocab=2"]).loss
    assert (w.commitment, w.vocab, w.recon) == (0.5, 2.0, 1.0)
    with pytest.raises(ParameterError):
        resolve(Config, CONFIGS, "tiny", ["relativty=15"])


def test_mpd_one_sample_is_zero_with_finite_gradient():
    x = torch.randn(3, 1, 4, requires_grad=True)
    d = mpd(x)
    assert d.shape == (3,) and torch.all(d == 0)
    y = torch.randn(5, 4, requires_grad=True)
    v = mpd(y)
    v.backward()
    assert torch.isfinite(y.grad).all()
    ref = torch.cdist(y, y).sum() / 20
    assert torch.allclose(v, ref, atol=1e-5)
    z = torch.zeros(3, 4, requires_grad=True)  # identical points: sqrt at 0 must not give NaN
    mpd(z).backward()
    assert torch.isfinite(z.grad).all()


def test_purity_is_high_but_one_to_one_low_for_a_many_to_one_code():
    # 4 atoms, 4 pitches; atoms 0-2 all hold pitch 0 only, atom 3 holds pitches 1-3.
    conf = np.array([[10, 0, 0, 0], [10, 0, 0, 0], [10, 0, 0, 0], [0, 10, 10, 10]])
    assert purity(conf) == pytest.approx((1 + 1 + 1 + 1 / 3) / 4)
    assert one_to_one_accuracy(conf) == pytest.approx(20 / 60)
    amap = hungarian_map(conf)
    assert sorted(amap.tolist()) == [0, 1, 2, 3] and amap[3] in (1, 2, 3)
    perm = np.eye(4, dtype=int)[[2, 0, 3, 1]] * 7  # a permutation is a perfect one-to-one code
    assert one_to_one_accuracy(perm) == 1.0 and purity(perm) == 1.0


def test_knn_excludes_the_query():
    x = np.array([[0.0], [0.0], [10.0], [10.0], [10.0], [20.0], [20.0]])
    labels = np.array([0, 1, 2, 2, 2, 3, 3])
    acc, ap = knn_and_prauc(x, labels, k=1)
    # items 0 and 1 only see each other (wrong label); the rest find a same-label neighbour
    assert acc == pytest.approx(5 / 7)
    assert 0 < ap < 1


def test_ema_codebook_update_and_dead_code_restart():
    torch.manual_seed(0)
    cb = EMACodebook(4, 2, decay=0.5, dead_fraction=0.5)
    centres = torch.tensor([[5.0, 5.0], [-5.0, -5.0]])
    z = centres.repeat_interleave(50, 0) + 0.01 * torch.randn(100, 2)
    cb.atoms.copy_(torch.tensor([[4.0, 4.0], [-4.0, -4.0], [100.0, 100.0], [-100.0, 100.0]]))
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        code, zq = cb(z)
        cb.ema_update(z, code, gen)
    assert int(cb.restarts) >= 2  # the two far atoms were never used and got restarted
    assert float(cb.atoms.abs().max()) < 10  # every atom now sits on the data
    code, zq = cb(z)
    assert torch.allclose(zq, centres.repeat_interleave(50, 0), atol=0.5)
    cb2 = EMACodebook(2, 2)
    cb2.kmeans_init(z)
    assert bool(cb2.initialised)
    got = sorted(cb2.atoms.tolist())
    assert np.allclose(got, sorted(centres.tolist()), atol=0.1)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    cache = os.environ.get("AUDIOSYM_TEST_CACHE") or str(tmp_path_factory.mktemp("cache"))
    out = tmp_path_factory.mktemp("v3") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUDIOSYM_CACHE", cache)
        from train.core.runs import train_method

        torch.set_num_threads(1)
        summary = train_method("v3", config="tiny", overrides=SMALL, out=out, soundfont="TimGM6mb",
                               device="cpu", progress=False)
    return out, summary, cache


def test_training_run_writes_a_run_dir(run_dir):
    out, summary, _ = run_dir
    assert summary["steps"] == 30
    for name in ("checkpoint.pt", "config.json", "run.json", "metrics.csv", "eval.jsonl", "summary.json"):
        assert (out / name).exists(), name
    row = json.loads((out / "eval.jsonl").read_text().splitlines()[-1])
    assert 0 < row["one_to_one_accuracy"] <= 1 and 0 < row["purity"] <= 1
    assert "h_content" in (out / "metrics.csv").read_text().splitlines()[0]


def test_latent_model_layout_and_export_modules(run_dir):
    out, _, cache = run_dir
    from train.core.runs import load_run

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUDIOSYM_CACHE", cache)
        model = load_run(out)
    assert model.kind == "v3" and model.context_frames == 1
    frames = np.random.default_rng(0).normal(-5, 2, size=(3, 7, model.features.n_bins)).astype(np.float32)
    enc = model.encode(frames)
    cfg = model.config
    assert enc["content"].shape == (3, 7, cfg.content_dim)
    assert enc["content_q"].shape == (3, 7, cfg.content_dim)
    assert enc["code"].shape == (3, 7) and enc["code"].dtype == np.int64
    assert enc["style"].shape == (3, 7, cfg.style_dim)
    assert enc["code"].max() < cfg.n_atoms
    y = model.decode(content_q=enc["content_q"], style=enc["style"])
    assert y.shape == (3, 7, model.features.n_bins) and np.isfinite(y).all()
    encoder, decoder = model.torch_model.export_modules()
    outs = encoder(torch.from_numpy(frames))
    dc, ds = cfg.content_dim, cfg.style_dim
    assert [tuple(o.shape) for o in outs] == [(3, 7, dc), (3, 7), (3, 7, dc), (3, 7, ds)]
    assert np.allclose(np.linalg.norm(enc["content"], axis=-1), dc**0.5, atol=1e-4)  # content_norm
    assert decoder(outs[2], outs[3]).shape == (3, 7, model.features.n_bins)
    # content_q is the codebook atom of the code
    atoms = model.torch_model.codebook.atoms.numpy()
    assert np.allclose(atoms[enc["code"]], enc["content_q"], atol=1e-6)


def test_cli_eval_json_keys(run_dir, tmp_path):
    out, _, cache = run_dir
    plot = tmp_path / "conf.png"
    env = {**os.environ, "AUDIOSYM_CACHE": cache, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    res = subprocess.run(
        [sys.executable, "-m", "audiosym", "eval", "v3", str(out), "--json", "--no-progress", "--plot", str(plot)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    metrics = json.loads(res.stdout)
    for key in ("purity", "one_to_one_accuracy", "content_pitch_knn", "style_instrument_knn",
                "content_instrument_knn", "style_pitch_knn", "zero_shot_one_to_one_accuracy",
                "chance_instrument", "soundfont", "train_soundfont", "content_continuous_instrument_knn",
                "content_pitch_prauc"):
        assert key in metrics, key
    assert metrics["train_soundfont"] == "TimGM6mb" and metrics["soundfont"] != "TimGM6mb"
    assert metrics["chance_instrument"] == pytest.approx(1 / 3, abs=0.05)
    assert plot.stat().st_size > 1000
