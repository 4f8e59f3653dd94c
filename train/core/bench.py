"""``audiosym bench train sps|v3``: optimisation steps per second of a method's config.

Runs the shared trainer (:func:`train.core.runs.train_method`) for ``steps`` steps in a temporary
directory with evaluation off, and reports the trainer's own ``steps_per_second`` (step time
only, no checkpoint writes) and the process CPU time per step. Lives in ``train`` (torch), not in
the torch-free ``audiosym.bench``; the CLI imports it only when this benchmark runs.
"""

from __future__ import annotations

import os
import tempfile
import time

import torch

from audiosym.bench.common import speed_header
from train.core.runs import train_method


def bench_train(method: str, *, steps: int = 50, device: str = "cpu", threads: int = 1, config: str = "tiny") -> dict:
    """Steps per second of ``method``'s (``"sps"`` or ``"v3"``) ``config`` for ``steps`` steps on
    ``device`` (``"cpu"``: ``threads`` torch threads, or ``"cuda"``) -> one JSON-ready dict.
    Needs the ``train`` extra (torch)."""
    if device == "cpu":
        torch.set_num_threads(max(int(threads), 1))
    with tempfile.TemporaryDirectory(prefix="audiosym-bench-train-") as out:
        c0, w0 = time.process_time(), time.perf_counter()
        summary = train_method(method, config=config, overrides=[f"steps={steps}", "eval_every=0", f"ckpt_every={steps}"],
                               out=os.path.join(out, "run"), device=device, progress=False)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return {
        **speed_header(), "method": method, "config": config, "device": device,
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "steps": int(summary["steps"]),
        "steps_per_second": summary["steps_per_second"],
        "train_seconds": summary["train_seconds"],
        "total_wall_seconds": round(wall, 2), "total_cpu_seconds": round(cpu, 2),
        "note": "steps_per_second: the trainer's step time only (sample, forward, backward, optimiser); "
                "total_*: including data preparation (cached notes) and the final checkpoint",
        "last_loss": summary.get("last_logs", {}).get("loss"),
    }
