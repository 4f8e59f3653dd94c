"""Calibration of a trained run at export, through its family (:mod:`audiosym.families`).

Labels (MIDI pitch, GM program) are used here only to describe the learned latent for the
engine; they never touch training. What is fitted is the family's business
(:meth:`audiosym.families.base.Family.calibrate`, torch-free, on the run as a LatentModel);
this module reads the run's recorded settings and adds the soundfont it used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from audiosym import families
from audiosym.families.base import CalibrationSetup, LatentModel
from audiosym.families.calibration import note_table, recorded_notes


def run_setting(model: LatentModel, name: str, default: Any) -> Any:
    """Setting ``name`` of a training run: its config's field, else its metadata's entry, else
    ``default`` (also when the run recorded it empty)."""
    value = getattr(getattr(model, "config", None), name, None)  # a run's config dataclass, when it has one
    if value in (None, "", ()):
        value = model.metadata.get(name)
    return default if value in (None, "", ()) else value


def training_setup(model: LatentModel) -> CalibrationSetup:
    """The notes ``model`` is calibrated on: its family's choice from the run's settings."""
    return families.get(model.kind).calibration_setup(lambda name, default: run_setting(model, name, default))


def parity_notes(model: LatentModel, *, count: int = 32, seed: int = 0, progress: bool = False) -> np.ndarray:
    """``[count, T, n_bins]`` frames of random training notes, inputs for the export's parity check."""
    setup = training_setup(model)
    table = (recorded_notes(setup, model.features, progress=progress) if setup.audio
             else note_table(setup, setup.programs, model.features, progress=progress))
    pick = np.random.default_rng(seed).choice(len(table), size=min(count, len(table)), replace=False)
    return table.frames[np.sort(pick)]


def calibrate(model: LatentModel, *, progress: bool = False) -> dict[str, Any]:
    """``pitch_control``, ``midi_range``, ``timbres``, ``default_timbre``, ``calibration`` for a preset."""
    setup = training_setup(model)
    out = families.get(model.kind).calibrate(model, setup, progress=progress)
    out["calibration"]["soundfont"] = "" if setup.audio else setup.soundfont
    return out
