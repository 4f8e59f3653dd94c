"""The SPS family: a pitch-linear latent, ``z = (z_pitch [1], z_timbre [D])`` (Liu et al., arXiv 2302.10890).

Latents (``T' = T - context_frames + 1``): encode -> ``z_pitch [N, T', 1]``, ``z_timbre [N, T', D]``;
decode(z_pitch, z_timbre) -> ``logmag [N, T', n_bins]``. Its pitch control is ``linear``: export
fits ``z_pitch = a + b * midi`` (:class:`LinearPitch`), so any pitch has a latent: bends and
microtones come for free, and a transposition is a shift of ``z_pitch``. Training:
``train/sps/``; evaluation: :mod:`audiosym.eval.sps`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from audiosym.data.plans import EVAL_INSTRUMENTS, instrument_range, timbre_name
from audiosym.errors import ParameterError
from audiosym.families.base import CalibrationSetup, LatentModel, RunSetting
from audiosym.families.calibration import (
    encode_notes,
    named_timbres,
    note_table,
    recorded_notes,
    setup_from,
)

FIT_HOLDS_SEMITONES = 2.0  # a range end whose median error exceeds a whole tone is trimmed off
OUTLIER_SEMITONES = 3.0  # notes missed by more than this are left out of the second fit
MIN_RANGE_SEMITONES = 12  # narrower than an octave: the fit failed; keep the training range


@dataclass(frozen=True)
class LinearPitch:
    """``latent = a + b * midi`` on the pitch latent ``name`` (``[..., 1]``): continuous pitch."""

    a: float
    b: float
    name: str = "z_pitch"

    @classmethod
    def from_metadata(cls, pitch_control: Mapping[str, Any], *, name: str = "z_pitch") -> LinearPitch:
        return cls(a=float(pitch_control["a"]), b=float(pitch_control["b"]), name=name)

    @property
    def continuous(self) -> bool:
        return True

    def midi_to_latent(self, midi: ArrayLike) -> np.ndarray:
        """MIDI pitch (float or ``[...]``) -> ``[..., 1]`` float32."""
        m = np.asarray(midi, dtype=np.float64)
        return (self.a + self.b * m)[..., None].astype(np.float32)

    def latent_to_midi(self, z: ArrayLike) -> np.ndarray:
        """``[..., 1]`` -> MIDI ``[...]`` float64."""
        z = np.asarray(z)
        if z.shape[-1:] != (1,):
            raise ParameterError(f"{self.name} has shape {z.shape}; expected [..., 1]")
        return (z[..., 0].astype(np.float64) - self.a) / self.b

    def check_transpose(self, semitones: float) -> None:
        """Any shift is exact on a line."""

    def transpose(self, encoded: dict[str, np.ndarray], semitones: float) -> dict[str, np.ndarray]:
        """``z_pitch + b * semitones``: exact and continuous."""
        out = dict(encoded)
        out[self.name] = (np.asarray(out[self.name]) + np.float32(self.b * semitones)).astype(np.float32)
        return out


def describe_linear(meta: Mapping[str, Any], *, name: str = "z_pitch") -> list[str]:
    """``audiosym presets inspect`` lines of a ``linear`` pitch control and its fit."""
    pc = meta["pitch_control"]
    out = [f"linear: {name} = {pc['a']:.4f} {pc['b']:+.6f} * midi",
           f"residual {pc['residual_semitones']:.2f} semitones RMS over all notes ("
           f"{'training recordings, against pyin' if meta.get('source', {}).get('recordings') else 'training soundfont'})"]
    cal = meta.get("calibration") or {}
    if "median_abs_error_semitones" in cal:
        out.append(f"median error {cal['median_abs_error_semitones']:.3f} semitones; "
                   f"{cal.get('outlier_fraction', 0):.1%} of notes off by > 3 semitones")
    per = cal.get("residual_semitones_per_timbre") or {}
    worst = [f"{k} {v:.1f}" for k, v in sorted(per.items(), key=lambda kv: -kv[1])[:4] if v > 1.0]
    if worst:
        out.append("worst timbres (RMS semitones): " + ", ".join(worst))
    return out


def fit_linear(zp: np.ndarray, midi: np.ndarray, program: np.ndarray, setup: CalibrationSetup,
               names: list[str] | None = None) -> dict[str, Any]:
    """The ``linear`` pitch control of per-note pitch latents ``zp [N]`` at pitches ``midi [N]``
    of programs ``program [N]``: ``z_pitch ~ a + b * midi`` by least squares, refitted without
    the gross misses; the playable range is the union of the instruments' ranges, trimmed at its
    ends where the fit misses by more than a whole tone (kept whole when less than an octave
    would remain). -> ``{pitch_control, midi_range, calibration, residual_per_timbre}``."""
    b, a = np.polyfit(midi, zp, 1)
    if abs(b) < 1e-12:
        b = 1e-12  # a constant z_pitch: the residual below reports the failure
    err = (zp - (a + b * midi)) / b  # semitones
    # One refit without the gross misses (octave errors of organ stops, a folding violin): they
    # would tilt the line for every other instrument. The residual still counts every note.
    inliers = np.abs(err) <= OUTLIER_SEMITONES
    if inliers.mean() >= 0.5 and not inliers.all():
        b, a = np.polyfit(midi[inliers], zp[inliers], 1)
        err = (zp - (a + b * midi)) / b
    per_timbre = {(names[int(p)] if names else timbre_name(int(p))): round(float(np.sqrt(np.mean(err[program == p] ** 2))), 4)
                  for p in sorted(set(int(p) for p in program))}
    if names:  # recordings: the range they hold (their pitches come from pyin: whole semitones by rounding)
        lo, hi = int(np.floor(np.percentile(midi, 1))), int(np.ceil(np.percentile(midi, 99)))
    else:
        lo = min(instrument_range(p, setup.pitch_limits)[0] for p in setup.programs)
        hi = max(instrument_range(p, setup.pitch_limits)[1] for p in setup.programs)
    semitone = np.round(midi)
    pitch_err = {m: float(np.median(np.abs(err[semitone == m]))) for m in range(lo, hi + 1) if (semitone == m).any()}
    holds = [m for m, e in pitch_err.items() if e <= FIT_HOLDS_SEMITONES]
    fit_holds = bool(holds) and max(holds) - min(holds) >= MIN_RANGE_SEMITONES
    trimmed = (min(holds), max(holds)) if fit_holds else (lo, hi)  # a failed fit keeps the training range
    return {
        "pitch_control": {"type": "linear", "a": float(a), "b": float(b),
                          "residual_semitones": float(np.sqrt(np.mean(err**2)))},
        "midi_range": [int(trimmed[0]), int(trimmed[1])],
        "residual_per_timbre": per_timbre,
        "calibration": {
            "method": "least squares z_pitch = a + b*midi over per-note medians of sustained frames, "
                      f"refitted without notes missed by > {OUTLIER_SEMITONES:g} semitones; residual over all notes",
            "notes": int(len(zp)), "programs": list(setup.programs),
            "training_range": [lo, hi], "fit_holds": fit_holds,
            "residual_semitones_per_timbre": per_timbre,
            "median_abs_error_semitones": float(np.median(np.abs(err))),
            "outlier_fraction": float(np.mean(np.abs(err) > OUTLIER_SEMITONES)),
            "r2": float(1 - np.sum((zp - a - b * midi) ** 2) / max(np.sum((zp - zp.mean()) ** 2), 1e-12)),
        },
    }


class SpsFamily:
    """The SPS :class:`audiosym.families.base.Family` (see the module docstring)."""

    name: str = "sps"
    pitch_control_type: str = "linear"
    encoder_outputs: tuple[str, ...] = ("z_pitch", "z_timbre")
    decoder_inputs: tuple[str, ...] = ("z_pitch", "z_timbre")
    pitch_latent: str = "z_pitch"
    timbre_latent: str = "z_timbre"
    pitch_readout: str = "z_pitch"
    evaluation: str = "audiosym.eval.sps"

    def pitch_map(self, pitch_control: Mapping[str, Any]) -> LinearPitch:
        return LinearPitch.from_metadata(pitch_control)

    def check_metadata(self, meta: Mapping[str, Any], *, where: str) -> None:
        """Nothing beyond the schema: a line has no further invariants."""

    def describe_pitch_control(self, meta: Mapping[str, Any]) -> list[str]:
        return describe_linear(meta)

    def calibration_setup(self, setting: RunSetting) -> CalibrationSetup:
        """The run's instruments (default: the nine evaluation instruments), MIDI 36..96."""
        return setup_from(setting, programs=tuple(setting("programs", tuple(EVAL_INSTRUMENTS.values()))),
                          pitch_limits=(36, 96), skip_frames=int(setting("skip_frames", 8)))

    def calibrate(self, model: LatentModel, setup: CalibrationSetup, *, progress: bool = False) -> dict[str, Any]:
        """:func:`fit_linear` on the per-note median ``z_pitch`` over sustained frames; the
        default timbre is the best-calibrated trained instrument. A run trained on recordings is
        calibrated on them, against pyin pitches."""
        if setup.audio:
            return self._calibrate_recorded(model, setup, progress=progress)
        table = note_table(setup, setup.programs, model.features, progress=progress)
        z = encode_notes(model, table, setup.skip_frames)
        zp = np.median(z["z_pitch"][..., 0], axis=1).astype(np.float64)  # [N] one value per note
        fit = fit_linear(zp, table.pitch.astype(np.float64), table.program, setup)
        timbres = named_timbres(table.program, z["z_timbre"], set(setup.programs))
        trained = {k: v for k, v in fit["residual_per_timbre"].items() if timbres[k]["trained"]}
        return {
            "pitch_control": fit["pitch_control"],
            "midi_range": fit["midi_range"],
            "timbres": timbres,
            "default_timbre": min(trained, key=lambda k: trained[k]),  # the best-calibrated instrument
            "calibration": fit["calibration"],
        }


    def _calibrate_recorded(self, model: LatentModel, setup: CalibrationSetup, *, progress: bool) -> dict[str, Any]:
        notes = recorded_notes(setup, model.features, progress=progress)
        z = encode_notes(model, notes, setup.skip_frames)  # type: ignore[arg-type]
        first = max(setup.skip_frames, model.context_frames - 1)
        zp = notes.masked_median(z["z_pitch"][..., 0].astype(np.float64), first)
        fit = fit_linear(zp, notes.pitch, notes.program, setup, names=notes.names)
        timbres = named_timbres(notes.program, z["z_timbre"], set(range(len(notes.names))), names=notes.names)
        fit["calibration"].update(method=fit["calibration"]["method"] + "; pitches: pyin on the training recordings",
                                  recordings=notes.source)
        return {"pitch_control": fit["pitch_control"], "midi_range": fit["midi_range"], "timbres": timbres,
                "default_timbre": min(fit["residual_per_timbre"], key=lambda k: fit["residual_per_timbre"][k]),
                "calibration": fit["calibration"]}


SPS = SpsFamily()
