"""The shared trainer: two-process DistributedDataParallel on CPU (gloo), and run-dir safety."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
SETS = [
    "programs=40,73", "batch_size=4", "seq_len=6", "plan=scale", "K=1", "encoder_hidden=32",
    "decoder_hidden=32", "prior_hidden=8", "timbre_dim=4", "log_every=5", "eval_every=0",
    "ckpt_every=5",
]


def _args(out: Path, steps: int) -> list[str]:
    args = ["train", "sps", "--config", "tiny", "--out", str(out), "--soundfont", "TimGM6mb",
            "--device", "cpu", "--no-progress", "--json"]
    for s in [*SETS, f"steps={steps}"]:
        args += ["--set", s]
    return args


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


@pytest.mark.slow
def test_two_process_ddp_on_cpu(tmp_path):
    if shutil.which("torchrun") is None:
        pytest.skip("torchrun is not on PATH")
    out = tmp_path / "ddp"
    cmd = ["torchrun", "--standalone", "--nproc_per_node", "2", "-m", "audiosym", *_args(out, 10)]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    run = json.loads((out / "run.json").read_text())
    assert run["world_size"] == 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 10
    state = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert state["step"] == 10
    # DDP keeps replicas identical: rank 0's saved weights must be finite and loadable
    from train.core.runs import load_run

    model = load_run(out)
    assert all(torch.isfinite(p).all() for p in model.torch_model.parameters())


def test_refuses_to_overwrite_a_run_without_resume(tmp_path):
    out = tmp_path / "run"
    first = subprocess.run([sys.executable, "-m", "audiosym", *_args(out, 5)], capture_output=True,
                           text=True, cwd=ROOT, env=_env())
    assert first.returncode == 0, first.stderr[-3000:]
    before = (out / "checkpoint.pt").read_bytes()
    config_before = (out / "config.json").read_text()
    second = subprocess.run([sys.executable, "-m", "audiosym", *_args(out, 5)], capture_output=True,
                            text=True, cwd=ROOT, env=_env())
    assert second.returncode != 0
    assert "--resume" in second.stderr
    assert (out / "checkpoint.pt").read_bytes() == before
    assert (out / "config.json").read_text() == config_before
