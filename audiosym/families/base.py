"""The protocols of a model family, and of a model (a trained run or a preset) as numpy sees it.

A *family* (SPS, V3, ...) is everything audiosym knows about one kind of model: the names of
its latents, which one carries pitch and which timbre, how its calibration maps MIDI pitch to
the pitch latent and back, how a transposition moves its encoder's output, the checks on its
preset metadata, and how it is calibrated at export and evaluated. Code outside
:mod:`audiosym.families` asks the family instead of branching on a kind; a new family is one
module here (a :class:`Family`, :func:`audiosym.families.register`-ed) and one in ``train/``.

Evaluation, export checks, the engine and resynthesis talk to a model only through
:class:`LatentModel`, so ``audiosym eval sps RUN`` and ``audiosym eval sps PRESET`` run the same
code. Latent layout (``T' = T - context_frames + 1``): ``encode(frames [N, T, n_bins])`` returns
the family's ``encoder_outputs``, each ``[N, T', ...]``; ``decode(**latents)`` takes its
``decoder_inputs`` and returns ``logmag [N, T', n_bins]``, in the feature domain (natural log
magnitude) up to a per-frame constant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

from audiosym.dsp.features import FeatureConfig


@runtime_checkable
class LatentModel(Protocol):
    """A trained model, numpy in and numpy out: a training run (torch) or a preset (onnxruntime)."""

    @property
    def kind(self) -> str:
        """The model family's name: ``"sps"``, ``"v3"``, ..."""
        ...

    @property
    def features(self) -> FeatureConfig: ...

    @property
    def context_frames(self) -> int:
        """Input frames per output frame (the encoder's causal context)."""
        ...

    @property
    def metadata(self) -> dict[str, Any]:
        """What the run or the preset file records about the model (settings, calibration, ...)."""
        ...

    def encode(self, frames: np.ndarray) -> dict[str, np.ndarray]: ...

    def decode(self, **latents: np.ndarray) -> np.ndarray: ...


class CalibratedModel(LatentModel, Protocol):
    """A LatentModel with its calibration and named timbres: what measuring against a preset
    needs (timbre references, match data). :class:`audiosym.preset.model.Preset` is one."""

    @property
    def name(self) -> str: ...

    @property
    def family(self) -> Family: ...

    @property
    def midi_range(self) -> tuple[int, int]:
        """Playable MIDI pitches, inclusive."""
        ...

    @property
    def continuous_pitch(self) -> bool:
        """True: any pitch has a latent; False: only the calibrated notes."""
        ...

    @property
    def timbre_names(self) -> list[str]: ...

    def timbre_vector(self, name: str | None = None) -> np.ndarray:
        """``[D]`` float32 timbre latent of a named timbre (None: the default one)."""
        ...

    def timbre_program(self, name: str) -> int:
        """The GM program a named timbre was measured on (-1: a recording)."""
        ...

    def midi_to_latent(self, midi: ArrayLike) -> np.ndarray: ...

    def latent_to_midi(self, z: ArrayLike) -> np.ndarray: ...

    def input_midi(self, encoded: dict[str, np.ndarray]) -> np.ndarray:
        """The input's pitch (MIDI ``[N, T']``, NaN: none) read from encoder outputs."""
        ...


class PitchMap(Protocol):
    """A family's pitch calibration: MIDI pitch <-> the pitch latent its decoder takes."""

    @property
    def continuous(self) -> bool:
        """True: any pitch (bends, microtones) has a latent; False: only the calibrated notes."""
        ...

    def midi_to_latent(self, midi: ArrayLike) -> np.ndarray:
        """MIDI pitch ``[...]`` (float) -> pitch latent ``[..., D]`` float32."""
        ...

    def latent_to_midi(self, z: ArrayLike) -> np.ndarray:
        """A pitch latent (or the family's ``pitch_readout`` output) ``[..., D]`` -> MIDI ``[...]``
        float64, NaN where it stands for no pitch."""
        ...

    def check_transpose(self, semitones: float) -> None:
        """Raise ParameterError when the encoder's pitch cannot be moved by ``semitones``."""
        ...

    def transpose(self, encoded: dict[str, np.ndarray], semitones: float) -> dict[str, np.ndarray]:
        """Encoder outputs whose pitch reads ``semitones`` higher; every other output unchanged."""
        ...


@dataclass(frozen=True)
class CalibrationSetup:
    """What a model is calibrated on at export: single notes of ``programs`` (plus
    ``extra_programs``, named timbres only) from ``soundfont`` (a path) within ``pitch_limits``
    (MIDI, inclusive), at ``velocities``, ``note_seconds`` long; frames before ``skip_frames``
    (the analysis window still holds the silence before the onset) are left out."""

    soundfont: str
    programs: tuple[int, ...]
    extra_programs: tuple[int, ...]
    pitch_limits: tuple[int, int]
    velocities: tuple[int, ...]
    note_seconds: float
    skip_frames: int
    audio: str = ""  # a run trained on recordings: calibrate on that folder's notes (pyin pitches) instead
    holdout: float = 0.0  # ... on its training files only: the run's split by file (holdout, seed)
    seed: int = 0


#: A training run's setting by name, or ``default`` when the run does not record it.
RunSetting = Callable[[str, Any], Any]


class Family(Protocol):
    """One model family: see the module docstring. Implementations: :mod:`audiosym.families.sps`,
    :mod:`audiosym.families.v3`."""

    name: str  # the preset metadata's "kind" and the training method's name
    pitch_control_type: str  # the preset's pitch_control "type" (the schema knows linear, codebook)
    encoder_outputs: tuple[str, ...]  # names of the encoder graph's outputs, in order
    decoder_inputs: tuple[str, ...]  # names of the decoder graph's inputs, in order
    pitch_latent: str  # the decoder input that carries pitch (an encoder output too)
    timbre_latent: str  # the decoder input that carries timbre (an encoder output too)
    pitch_readout: str  # the encoder output PitchMap.latent_to_midi reads the input's pitch from
    evaluation: str  # module with ``evaluate(model, *, soundfont, progress) -> Evaluation``

    def pitch_map(self, pitch_control: Mapping[str, Any]) -> PitchMap:
        """The calibration of a preset's ``metadata["pitch_control"]``."""
        ...

    def check_metadata(self, meta: Mapping[str, Any], *, where: str) -> None:
        """Raise PresetError for a rule of this family the schema cannot state."""
        ...

    def describe_pitch_control(self, meta: Mapping[str, Any]) -> list[str]:
        """Lines for ``audiosym presets inspect``: the pitch control and how well it fits."""
        ...

    def calibration_setup(self, setting: RunSetting) -> CalibrationSetup:
        """The notes a run of this family is calibrated on, from its recorded settings."""
        ...

    def calibrate(self, model: LatentModel, setup: CalibrationSetup, *, progress: bool = False
                  ) -> dict[str, Any]:
        """Preset metadata fields ``pitch_control``, ``midi_range``, ``timbres``,
        ``default_timbre``, ``calibration`` of ``model``, measured on ``setup``'s notes."""
        ...


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

