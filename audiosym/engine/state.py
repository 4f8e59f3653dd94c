"""The engine's building blocks: its modes, argument and block checks, and its memory (:class:`EngineState`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audiosym.dsp.resample import ResamplerState
from audiosym.engine.control import AdsrState, ControlState
from audiosym.engine.dynamics import NoteEnvState
from audiosym.engine.pitch_follow import Follow, YinBuffer
from audiosym.engine.vocoder.harmonic import SynthState
from audiosym.engine.voices import PolyState
from audiosym.errors import ParameterError
from audiosym.preset.model import Preset

MODES = ("transfer", "synth")
DYNAMICS = ("input", "timbre")
MAX_BLOCK_HINT = 8192


@dataclass(frozen=True)
class EngineState:
    """All engine memory. Arrays are never modified in place, so a state is a snapshot."""

    n_samples: int  # device samples processed so far
    control: ControlState
    adsr: AdsrState
    env_history: np.ndarray  # last hold-1 |x| samples
    env_zi: np.ndarray  # one-pole smoother state
    last_gain: float
    resampler: ResamplerState
    feature_state: np.ndarray
    frame_history: np.ndarray  # [context_frames - 1, n_bins] previous feature frames
    input_latent: np.ndarray | None  # newest encoder pitch latent (transfer mode)
    input_midi: float | None
    f0_midi: float
    dirty: bool
    synth: SynthState
    decodes: int = 0
    frames: int = 0
    note_env: NoteEnvState | None = None  # dynamics="timbre": the sounding note's envelope
    poly: PolyState | None = None  # synth mode with voices > 1: the voices (audiosym.engine.voices)
    yin: YinBuffer | None = None  # transfer mode, pitch_follow="fast": the short window's input
    follow: Follow | None = None  # ... and what decides the heard pitch (audiosym.engine.pitch_follow)


def check_arguments(preset: Preset, *, timbre: str, morph_timbre: str | None, sample_rate: int, model_rate: int,
                    block_size: int | None, mode: str, dynamics: str) -> None:
    """Raise ParameterError for an :class:`audiosym.engine.engine.Engine` argument that this engine or
    ``preset`` (model rate ``model_rate`` Hz) cannot take."""
    if mode not in MODES:
        raise ParameterError(f"mode={mode!r} is not one of {MODES}")
    if dynamics not in DYNAMICS:
        raise ParameterError(f"dynamics={dynamics!r} is not one of {DYNAMICS}")
    names = list(preset.timbre_names)
    for label, name in (("timbre", timbre), ("morph_timbre", morph_timbre)):
        if name is not None and name not in names:
            raise ParameterError(f"{label}={name!r} is not a timbre of this preset; choose one of {names}")
    if not isinstance(sample_rate, int | np.integer) or sample_rate < model_rate:
        raise ParameterError(
            f"sample_rate={sample_rate!r} must be an integer >= the model rate {model_rate} Hz"
        )
    if block_size is not None and not 1 <= int(block_size) <= MAX_BLOCK_HINT * 2:
        raise ParameterError(f"block_size={block_size!r} must be between 1 and {MAX_BLOCK_HINT * 2}")


def as_block(audio_block: np.ndarray | int, mode: str) -> np.ndarray:
    """``audio_block`` as the mono float64 block ``[n]`` the engine steps on (in synth mode a
    sample count ``n`` stands for ``n`` zeros); ParameterError for anything else."""
    if isinstance(audio_block, int | np.integer):
        if mode == "transfer":
            raise ParameterError("transfer mode needs an audio block, not a sample count")
        return np.zeros(int(audio_block))
    x = np.asarray(audio_block)
    if x.ndim == 2 and 1 in x.shape:
        x = x.reshape(-1)
    if x.ndim != 1 or not np.issubdtype(x.dtype, np.floating):
        raise ParameterError(
            f"audio_block has shape {x.shape} and dtype {x.dtype}; a mono 1-D float block is expected"
        )
    return x.astype(np.float64, copy=False)
