"""The Vocoder protocol: what :class:`audiosym.engine.engine.Engine` needs from a vocoder.

The engine decodes log-frequency magnitude frames at change points (note-on, bend, control-grid
ticks) and knows, per device sample, the pitch it wants (``f0_midi``) and the loudness
(``gain``). A vocoder turns that into audio in two pure steps:

- ``read``: decoded frames ``logmag [R, n_bins]`` (+ their target pitch, device-sample offset in
  the block, velocity scale, and whether the output was silent before) -> one opaque update
  per frame, in the vocoder's own units;
- ``run``: per-sample ``f0_midi [n]`` and ``gain [n]`` and the block's updates ->
  ``(audio [n] float64, new state)``; the state is immutable (a snapshot), so any blocking gives
  the same output.

``latency_samples`` is the delay (device samples) the vocoder adds between a new frame and its
sound reaching half level; the engine adds it to the latency it reports. Each vocoder is built as
``factory(cfg, sample_rate=..., ramp_samples=..., n_harmonics=..., n_bands=...)``
(:class:`VocoderFactory`) and registered by name in :mod:`audiosym.engine.vocoder`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

import numpy as np

from audiosym.dsp.features import FeatureConfig

StateT = TypeVar("StateT")
UpdateT = TypeVar("UpdateT")


class Vocoder(Protocol[StateT, UpdateT]):
    """Decoded magnitude frames -> audio at the device rate; see the module docstring."""

    @property
    def latency_samples(self) -> int:
        """Device samples from a frame taking effect to its sound at half level (0: at once)."""
        ...

    def init_state(self) -> StateT:
        """The state before any sound: silence."""
        ...

    def read(self, logmag: np.ndarray, f0_midi: np.ndarray, *, offsets: Sequence[int],
             scales: Sequence[float], jumps: Sequence[bool]) -> list[UpdateT]:
        """Decoded ``logmag [R, n_bins]`` (natural log, any per-frame level), target pitch
        ``f0_midi [R]`` (MIDI), each frame's device-sample ``offsets`` in the coming block,
        linear ``scales`` (velocity) and ``jumps`` (the output was silent before, so the frame may
        apply at once) -> ``R`` updates for :meth:`run`, sorted as given."""
        ...

    def run(self, f0_midi: np.ndarray, gain: np.ndarray, updates: list[UpdateT],
            state: StateT) -> tuple[np.ndarray, StateT]:
        """Audio ``[n]`` float64 at the device rate for per-sample pitch ``f0_midi [n]`` (MIDI)
        and linear ``gain [n]``; ``updates`` sorted by offset (those at ``n`` only change the
        returned state)."""
        ...


class VocoderFactory(Protocol):
    """How the engine builds a vocoder: its features (the decoder's frames), the device
    ``sample_rate`` (Hz), ``ramp_samples`` (the engine's control period: how long a new frame may
    take to fade in), and the harmonic model's size (``n_harmonics`` partials, ``n_bands`` noise
    bands; a vocoder without a harmonic model ignores them)."""

    def __call__(self, cfg: FeatureConfig, *, sample_rate: int, ramp_samples: int, n_harmonics: int,
                 n_bands: int) -> Vocoder: ...
