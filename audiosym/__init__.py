"""audiosym: interpretable pitch/timbre latents, ONNX presets, and a low-latency engine.

``import audiosym`` never imports torch: training and export live in the
``train`` and ``export`` packages, installed with the ``audiosym[train]`` extra.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import (  # noqa: F401
    AudiosymError,
    DeviceError,
    MissingExtraError,
    ParameterError,
    PresetError,
    SoundfontError,
)
from .features import FeatureConfig, features, features_step  # noqa: F401
