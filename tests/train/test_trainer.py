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

ROOT = Path(__file__).resolve().parents[2]
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
    # torchrun sets OMP_NUM_THREADS=1 in every process: the default rule applies, per process
    from train.core.trainer import default_threads

    threads = run["threads"]
    assert threads["local_world_size"] == 2 and threads["chosen_by"].startswith("default"), threads
    assert threads["torch_threads"] == default_threads(local_processes=2), threads
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


def test_default_threads_rule():
    """Half the usable cores, shared among torchrun's processes on the machine, at least 1."""
    from train.core.trainer import default_threads

    assert default_threads(cores=2, local_processes=1) == 1
    assert default_threads(cores=16, local_processes=1) == 8
    assert default_threads(cores=16, local_processes=4) == 2
    assert default_threads(cores=16, local_processes=16) == 1
    assert default_threads(cores=1, local_processes=1) == 1


def _threads_used(tmp_path, name, *extra, env=None):
    out = tmp_path / name
    res = subprocess.run([sys.executable, "-m", "audiosym", *_args(out, 2), *extra], capture_output=True,
                         text=True, cwd=ROOT, env=env or _env())
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads((out / "run.json").read_text())["threads"]


def test_a_run_trains_with_the_threads_asked_for_and_records_them(tmp_path):
    """--threads wins over OMP_NUM_THREADS; OMP_NUM_THREADS over the default; without either, the
    default rule. run.json says which and how many (intra-op and inter-op)."""
    from train.core.trainer import default_threads

    asked = _threads_used(tmp_path, "asked", "--threads", "2")  # _env() sets OMP_NUM_THREADS=1
    assert asked["torch_threads"] == 2 and asked["interop_threads"] == 2 and asked["chosen_by"] == "threads"
    env = {k: v for k, v in _env().items() if k != "OMP_NUM_THREADS"}
    omp = _threads_used(tmp_path, "omp", env={**env, "OMP_NUM_THREADS": "2"})
    assert omp["torch_threads"] == 2 and omp["chosen_by"] == "OMP_NUM_THREADS", omp
    default = _threads_used(tmp_path, "default", env=env)
    assert default["chosen_by"].startswith("default"), default
    assert default["torch_threads"] == default["interop_threads"] == default_threads(), default
    assert default["usable_cores"] == len(os.sched_getaffinity(0))


def test_threads_must_be_positive(tmp_path):
    res = subprocess.run([sys.executable, "-m", "audiosym", *_args(tmp_path / "run", 2), "--threads", "0"],
                         capture_output=True, text=True, cwd=ROOT, env=_env())
    assert res.returncode == 2 and "--threads 0 must be a whole number of threads >= 1" in res.stderr, res.stderr
    assert not (tmp_path / "run").exists()
