"""Train a method by name, and load a finished run as a :class:`audiosym.families.base.LatentModel`."""

from __future__ import annotations

import dataclasses
import importlib
import os
from pathlib import Path
from typing import Any

from audiosym.errors import ParameterError
from train.core.config import resolve
from train.core.trainer import Trainer, load_checkpoint, pick_device, seed_everything

METHODS = {"sps": "train.sps.method", "v3": "train.v3.method"}


def method_module(method: str):
    if method not in METHODS:
        raise ParameterError(f"method {method!r} is unknown; choose one of {sorted(METHODS)}")
    return importlib.import_module(METHODS[method])


def train_method(
    method: str,
    *,
    config: str,
    overrides: list[str],
    out: str | os.PathLike,
    device: str = "auto",
    soundfont: str | None = None,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Resolve the config, build the method's task, run the shared trainer."""
    mod = method_module(method)
    cfg = resolve(mod.Config, mod.CONFIGS, config, overrides)
    if soundfont:
        cfg = dataclasses.replace(cfg, soundfont=soundfont)
    seed_everything(cfg.seed)
    dev = pick_device(device)
    task = mod.build_task(cfg, device=dev, progress=progress)
    record = {"name": config, **dataclasses.asdict(cfg)}
    trainer = Trainer(task, cfg, Path(out), device=dev, config=record, method=method, progress=progress)
    return trainer.fit(resume=resume)


def load_run(run_dir: str | os.PathLike):
    """The trained model of a run directory, wrapped as a LatentModel (numpy in, numpy out)."""
    state = load_checkpoint(run_dir)
    mod = method_module(state["method"])
    return mod.load_latent_model(state)
