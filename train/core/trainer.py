"""One trainer for every method: device, bf16 autocast, DDP, checkpoints, resume, logs, progress.

A method supplies a :class:`Task`: a model whose ``forward(batch)`` returns
``(loss, logs)``, a batch sampler, and optionally an evaluation callback. The
trainer owns everything else, so SPS and V3 share the machinery instead of copies.

Distributed: launch with ``torchrun --nproc_per_node N -m audiosym train ...``;
the trainer reads ``RANK``/``WORLD_SIZE`` and wraps the model in
DistributedDataParallel (NCCL on CUDA, gloo on CPU). Only rank 0 writes files.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

import audiosym
from audiosym.dsp.features import FeatureConfig
from audiosym.errors import ParameterError
from train.core.device import to_model


@dataclass
class TrainSettings:
    """Settings shared by all methods: optimisation, and the features trained on."""

    steps: int = 2000
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"  # adam | adamw
    lr_final_ratio: float = 0.1  # cosine decay to lr * ratio (the reference code never decayed)
    warmup_steps: int = 0
    grad_clip: float = 1.0
    seed: int = 0
    log_every: int = 50
    eval_every: int = 500  # 0 = never evaluate during training
    ckpt_every: int = 500
    # data: a folder of the musician's recordings instead of soundfont renders (audiosym.data.recording_set)
    audio: str = ""  # '' = soundfont renders
    holdout: float = 0.2  # with audio: the fraction of each timbre's files kept for evaluation (split by file)

    @property
    def features(self) -> FeatureConfig:
        """The features every part of this config's run computes and reads: notes, model input
        width (``n_bins``), evaluation, the exported preset. The runtime's defaults (16 kHz,
        2048-sample window, 256-sample hop, 190 bins): the engine computes the same features
        live. A property, not a config key: no recipe has chosen other features, and a key
        would change every run's recorded config (and refuse ``--resume`` of older runs)."""
        return FeatureConfig()


#: Settings added after runs existed, with the value older runs had in effect (for resume).
ADDED_SETTINGS: dict[str, Any] = {"audio": "", "holdout": 0.2}


@dataclass
class Task:
    """What a method gives the trainer."""

    model: nn.Module
    sample: Callable[[np.random.Generator, int], dict[str, torch.Tensor]]
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None
    extra_state: Callable[[], dict[str, Any]] = field(default=lambda: {})


def seed_everything(seed: int) -> None:

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ParameterError("device='cuda' was asked for but torch sees no CUDA GPU; use device='cpu'")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise ParameterError(f"device={name!r} must be cpu, cuda, cuda:N or auto")
    return torch.device(name)


def git_commit() -> str:
    try:
        root = Path(__file__).resolve().parents[2]
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True, timeout=5
        )
        commit = out.stdout.strip() or "unknown"
        return commit + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:

    return {
        "audiosym": audiosym.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def usable_cores() -> int:
    """The CPU cores this process may run on: its affinity mask (taskset, a container's cpuset),
    else ``os.cpu_count()``."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def local_world_size() -> int:
    """How many training processes torchrun runs on this machine (``LOCAL_WORLD_SIZE``; 1 without torchrun)."""
    return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", 1)))


def default_threads(*, cores: int | None = None, local_processes: int | None = None) -> int:
    """torch threads per training process when neither ``--threads`` nor ``OMP_NUM_THREADS``
    chooses: half the usable cores, shared among torchrun's processes on this machine, at least 1.

    torch's own default (a thread per core) makes every step wait for its slowest thread: as
    soon as anything else runs (a browser, a DAW, another run), one descheduled thread stalls
    the rest, and the tiny config ran 2-20x slower than on one thread. Half the cores leaves the
    other half to the rest of the machine. ``cores``/``local_processes``: default
    :func:`usable_cores` / :func:`local_world_size`.
    """
    cores = usable_cores() if cores is None else cores
    local = local_world_size() if local_processes is None else local_processes
    return max(1, cores // 2 // max(1, local))


#: How this process's torch threads were chosen (by :func:`set_threads`), for run.json.
_threads_chosen_by = "not set by audiosym (torch's default, OMP_NUM_THREADS or the caller's setting)"


def set_threads(threads: int | None = None) -> int:
    """Set torch's intra-op and inter-op thread counts for training, before any torch work runs:
    ``threads`` when given, else ``$OMP_NUM_THREADS`` when set (outside torchrun, which sets it to
    1 in every process it starts), else :func:`default_threads`. Returns the count; run.json
    records it (``threads``)."""
    global _threads_chosen_by
    torchrun = "LOCAL_WORLD_SIZE" in os.environ
    env = "" if torchrun else os.environ.get("OMP_NUM_THREADS", "").strip()
    if threads is not None:
        n, how = threads, "threads"
    elif env:
        try:
            n = int(env)
        except ValueError:
            raise ParameterError(f"OMP_NUM_THREADS={env!r} must be a whole number of threads; "
                                 "unset it or pass threads=N") from None
        how = "OMP_NUM_THREADS"
    else:
        n = default_threads()
        how = f"default: half of {usable_cores()} usable cores / {local_world_size()} local process(es)"
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ParameterError(f"{how}={n!r} must be a whole number of threads >= 1 (e.g. threads=1)")
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # already set, or inter-op work already ran: torch allows it once, first
        pass
    _threads_chosen_by = how
    return n


def thread_record() -> dict[str, Any]:
    """The threads this process trains with, for run.json."""
    return {"torch_threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
            "chosen_by": _threads_chosen_by, "usable_cores": usable_cores(),
            "local_world_size": local_world_size()}


def dist_info() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from torchrun's environment (0, 0, 1 when absent)."""
    return (
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("LOCAL_RANK", 0)),
        int(os.environ.get("WORLD_SIZE", 1)),
    )


class Trainer:
    """Runs ``settings.steps`` optimisation steps of ``task`` and records everything in ``run_dir``."""

    def __init__(
        self,
        task: Task,
        settings: TrainSettings,
        run_dir: str | os.PathLike,
        *,
        device: torch.device,
        config: dict[str, Any],
        method: str,
        progress: bool = True,
    ) -> None:
        self.task = task
        self.settings = settings
        self.run_dir = Path(run_dir)
        self.device = device
        self.config = config
        self.method = method
        self.progress = progress
        self.rank, self.local_rank, self.world = dist_info()
        if self.world > 1 and not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend=backend)
        if device.type == "cuda" and self.world > 1:
            self.device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(self.device)
        self.model = task.model.to(self.device)
        self.ddp: nn.Module = self.model
        if self.world > 1:
            self.ddp = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        params = [p for p in self.model.parameters() if p.requires_grad]
        if settings.optimizer == "adam":
            self.opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=settings.lr, weight_decay=settings.weight_decay)
        elif settings.optimizer == "adamw":
            self.opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
        else:
            raise ParameterError(f"optimizer={settings.optimizer!r} must be adam or adamw")
        self.step = 0
        self.elapsed = 0.0
        self.rng = np.random.default_rng([settings.seed, self.rank])

    # -- bookkeeping -------------------------------------------------------------------
    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def lr_at(self, step: int) -> float:
        s = self.settings
        if s.warmup_steps and step < s.warmup_steps:
            return s.lr * (step + 1) / s.warmup_steps
        t = min(1.0, step / max(1, s.steps))
        return s.lr * (s.lr_final_ratio + (1 - s.lr_final_ratio) * 0.5 * (1 + np.cos(np.pi * t)))

    def _write_run_info(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.json").write_text(json.dumps(self.config, indent=2, sort_keys=True))
        info = {
            "method": self.method,
            "seed": self.settings.seed,
            "git_commit": git_commit(),
            "versions": versions(),
            "command": sys.argv,
            "device": str(self.device),
            "world_size": self.world,
            "threads": thread_record(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (self.run_dir / "run.json").write_text(json.dumps(info, indent=2))

    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoint.pt"

    def save(self) -> None:
        if not self.is_main:
            return
        state = {
            "method": self.method,
            "config": self.config,
            "step": self.step,
            "elapsed": self.elapsed,
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "extra": self.task.extra_state(),
        }
        tmp = self.checkpoint_path().with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint_path())  # atomic: a crash keeps the previous checkpoint

    def resume(self) -> bool:
        path = self.checkpoint_path()
        if not path.exists():
            return False
        # on the host: load_state_dict copies weights and optimizer state onto the model's device,
        # and the CPU RNG state must stay a CPU tensor (torch.set_rng_state refuses a CUDA one)
        state = load_checkpoint(self.run_dir)
        # The run length and logging cadence may change on resume (to extend a run); nothing else.
        free = {"steps", "log_every", "eval_every", "ckpt_every"}
        # a run recorded before a setting existed ran with that setting's default
        old = {**{k: v for k, v in self.config.items() if k in ADDED_SETTINGS and v == ADDED_SETTINGS[k]},
               **state["config"]}
        if {k: v for k, v in old.items() if k not in free} != {
            k: v for k, v in self.config.items() if k not in free
        }:
            raise ParameterError(
                f"resume=True: {path} was trained with a different config; use a new run directory "
                "or the same config and overrides"
            )
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.elapsed = float(state.get("elapsed", 0.0))
        if self.rank == 0:
            self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        return True

    def _log_eval(self, metrics: dict[str, float]) -> None:
        row = {"step": self.step, "elapsed_s": round(self.elapsed, 2), **metrics}
        with open(self.run_dir / "eval.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")

    # -- the loop ----------------------------------------------------------------------
    def fit(self, *, resume: bool = False) -> dict[str, Any]:

        if self.is_main and not resume and self.checkpoint_path().exists():
            raise ParameterError(
                f"{self.run_dir} already holds a run; pass resume=True to continue it or choose a new run_dir=..."
            )
        # resume (and its config check) before writing run info, so a refused resume changes nothing
        if resume and self.resume() and self.is_main:
            print(f"resumed {self.run_dir} at step {self.step}", file=sys.stderr)
        if self.is_main:
            self._write_run_info()
        s = self.settings
        autocast = self.device.type == "cuda"
        log_path = self.run_dir / "metrics.csv"
        writer = None
        log_file = None
        bar = tqdm(
            total=s.steps, initial=self.step, desc=f"train {self.method}", file=sys.stderr,
            disable=not (self.progress and self.is_main), dynamic_ncols=True,
        )
        last_logs: dict[str, float] = {}
        eval_metrics: dict[str, float] = {}
        try:
            while self.step < s.steps:
                t0 = time.perf_counter()
                self.model.train()
                for g in self.opt.param_groups:
                    g["lr"] = self.lr_at(self.step)
                batch = {k: to_model(v, self.model, dtype=None) for k, v in self.task.sample(self.rng, self.step).items()}
                with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=autocast):
                    loss, logs = self.ddp(batch)
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                if s.grad_clip > 0:
                    nn.utils.clip_grad_norm_(self.model.parameters(), s.grad_clip)
                self.opt.step()
                self.step += 1
                self.elapsed += time.perf_counter() - t0
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"loss became {loss.item()} at step {self.step}; lower the config's lr")
                if self.is_main and (self.step % s.log_every == 0 or self.step == s.steps):
                    last_logs = {"loss": float(loss.detach()), **{k: float(v) for k, v in logs.items()}}
                    row = {"step": self.step, "elapsed_s": round(self.elapsed, 3), "lr": self.opt.param_groups[0]["lr"], **last_logs}
                    if writer is None:
                        new = not log_path.exists()
                        log_file = open(log_path, "a", newline="")
                        writer = csv.DictWriter(log_file, fieldnames=list(row))
                        if new:
                            writer.writeheader()
                    writer.writerow({k: row.get(k) for k in writer.fieldnames})
                    assert log_file is not None  # opened together with writer
                    log_file.flush()
                    bar.set_postfix(loss=f"{last_logs['loss']:.4f}")
                bar.update(1)
                if self.is_main and self.task.evaluate and s.eval_every > 0 and (
                    self.step % s.eval_every == 0 or self.step == s.steps
                ):
                    self.model.eval()
                    with torch.no_grad():
                        eval_metrics = self.task.evaluate(self.model)
                    self._log_eval(eval_metrics)
                    bar.write(  # stderr: stdout carries only the --json summary
                        f"step {self.step}: "
                        + ", ".join(f"{k}={v:.4f}" for k, v in eval_metrics.items() if isinstance(v, float)),
                        file=sys.stderr,
                    )
                if self.step % s.ckpt_every == 0 or self.step == s.steps:
                    self.save()
        finally:
            bar.close()
            if log_file:
                log_file.close()
            if self.world > 1 and dist.is_initialized():
                dist.barrier()
        summary = {
            "method": self.method,
            "steps": self.step,
            "train_seconds": round(self.elapsed, 2),
            "steps_per_second": round(self.step / max(self.elapsed, 1e-9), 3),
            "last_logs": last_logs,
            "last_eval": eval_metrics,
        }
        if self.is_main:
            (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary


def load_checkpoint(run_dir: str | os.PathLike, map_location: str = "cpu") -> dict[str, Any]:
    """The checkpoint of a run, its tensors on ``map_location`` (the host by default, whatever
    device trained it: export and evaluation of a GPU-trained run then work on a CPU machine)."""
    path = Path(run_dir) / "checkpoint.pt"
    if not path.exists():
        raise ParameterError(f"{run_dir} holds no checkpoint.pt: is it a run directory made by `audiosym train`?")
    return torch.load(path, map_location=map_location, weights_only=False)
