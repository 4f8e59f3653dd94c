"""Train a method by name, and load a finished run as a :class:`audiosym.families.base.LatentModel`.

A training method is a module with ``Config`` (a :class:`train.core.trainer.TrainSettings`
dataclass), ``CONFIGS`` (named presets of it), ``build_task(cfg, *, device, progress) -> Task``
and ``load_latent_model(state) -> LatentModel``. SPS and V3 are registered here; a new model
family registers its module with :func:`register_method` under the family's name.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from audiosym.errors import ParameterError
from train.core.config import resolve
from train.core.trainer import Trainer, load_checkpoint, pick_device, seed_everything

_METHODS: dict[str, str] = {"sps": "train.sps.method", "v3": "train.v3.method"}


def register_method(name: str, module: str) -> None:
    """Train (and load runs of) method ``name`` with the module importable as ``module``."""
    known = _METHODS.get(name)
    if known is not None and known != module:
        raise ParameterError(f"training method {name!r} is already registered (as {known}); choose another name")
    _METHODS[name] = module


def method_names() -> list[str]:
    """The registered training methods, sorted."""
    return sorted(_METHODS)


def method_module(method: str) -> ModuleType:
    if method not in _METHODS:
        raise ParameterError(f"method {method!r} is unknown; choose one of {method_names()}")
    return importlib.import_module(_METHODS[method])


def resolve_config(mod: Any, config: str, overrides: list[str]) -> Any:
    """Method module ``mod``'s config ``config`` with ``overrides``; when they name recordings
    (``audio=DIR``), the config's own settings for recordings (``mod.RECORDINGS[config]``) come
    first, so the user's ``--set`` still wins."""
    cfg = resolve(mod.Config, mod.CONFIGS, config, overrides)
    recorded = getattr(mod, "RECORDINGS", {}).get(config, {})
    if cfg.audio and recorded:
        cfg = resolve(mod.Config, mod.CONFIGS, config, [f"{k}={v}" for k, v in recorded.items()] + overrides)
    return cfg


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
    cfg = resolve_config(mod, config, overrides)
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
