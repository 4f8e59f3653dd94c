"""The model protocol shared by trained runs (torch) and presets (onnxruntime).

Evaluation, export checks, the engine and resynthesis talk to a model only
through :class:`LatentModel`, so ``audiosym eval sps RUN`` and
``audiosym eval sps PRESET`` run the same code.

Latent layout by kind (``T' = T - context_frames + 1``):

- ``sps``: encode -> ``z_pitch [N, T', 1]``, ``z_timbre [N, T', D]``;
  decode(z_pitch, z_timbre) -> ``logmag [N, T', n_bins]``.
- ``v3``: encode -> ``content [N, T', Dc]`` (before quantisation), ``code [N, T']`` int64,
  ``content_q [N, T', Dc]``, ``style [N, T', Ds]``; decode(content_q, style) -> ``logmag``.

``logmag`` is in the feature domain (natural log magnitude) up to a per-frame constant.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from audiosym.dsp.features import FeatureConfig
from audiosym.errors import ParameterError


@runtime_checkable
class LatentModel(Protocol):
    kind: str  # "sps" | "v3"
    features: FeatureConfig
    context_frames: int
    metadata: dict[str, Any]

    def encode(self, frames: np.ndarray) -> dict[str, np.ndarray]: ...

    def decode(self, **latents: np.ndarray) -> np.ndarray: ...


def encode_sustained(
    model: LatentModel, frames: np.ndarray, *, skip_frames: int, batch_notes: int = 256
) -> dict[str, np.ndarray]:
    """Encoder outputs of each note's sustained frames: ``frames [N, T, F]`` -> ``{name: [N, S, ...]}``.

    Output frame ``t'`` ends at input frame ``t' + C - 1``; outputs whose newest input frame is
    before ``skip_frames`` (their window still holds pre-onset silence) are left out, so output
    ``s`` belongs to input frame ``max(skip_frames, C - 1) + s``. Notes go through the encoder
    ``batch_notes`` at a time to bound memory.
    """
    first = max(0, int(skip_frames) - model.context_frames + 1)
    outs: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(frames), batch_notes):
        for name, value in model.encode(frames[i : i + batch_notes]).items():
            outs.setdefault(name, []).append(np.asarray(value)[:, first:])
    return {name: np.concatenate(parts) for name, parts in outs.items()}


def open_model(path: str | os.PathLike, *, kind: str | None = None) -> LatentModel:
    """A preset file/name (torch-free) or a training run directory (needs ``audiosym[train]``)."""
    p = Path(path)
    if p.is_dir():
        from audiosym.cli._common import require_torch

        require_torch("eval on a run directory")
        from train.core.runs import load_run  # noqa: PLC0415 - torch only when a run is opened

        model = load_run(p)
    else:
        from audiosym.preset.session import load_preset

        model = load_preset(path)
    if kind is not None and model.kind != kind:
        raise ParameterError(f"{path} holds a {model.kind!r} model, but {kind!r} was asked for")
    return model
