"""audiosym: interpretable pitch/timbre latents, ONNX presets, and a low-latency engine.

``import audiosym`` never imports torch: training and export live in the
``train`` and ``export`` packages, installed with the ``audiosym[train]`` extra.

The public API: :func:`load_preset`, :class:`Engine`, :func:`resynthesize`, the features
(:class:`FeatureConfig`, :func:`features`, :func:`features_step`) and the errors.
``Engine``, ``load_preset`` and ``resynthesize`` are imported on first use, so that
``import audiosym`` (and ``audiosym --help``) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from audiosym.dsp.features import FeatureConfig, features, features_step  # noqa: F401
from audiosym.errors import (  # noqa: F401
    AudiosymError,
    DeviceError,
    MissingExtraError,
    ParameterError,
    PresetError,
    SoundfontError,
)

#: public name -> the module that defines it (imported lazily: the engine imports numba and scipy)
_LAZY = {
    "Engine": "audiosym.engine.engine",
    "load_preset": "audiosym.preset.session",
    "resynthesize": "audiosym.offline.render",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'audiosym' has no attribute {name!r}")
