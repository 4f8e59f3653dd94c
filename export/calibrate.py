"""Calibration of a trained model on labelled renders of its TRAINING soundfont.

Labels (MIDI pitch, GM program) are used here only to describe the learned latent
for the engine; they never touch training.

- SPS: ``z_pitch ≈ a + b·midi`` fitted by least squares on the per-note median
  ``z_pitch`` over sustained frames; residual in semitones; the playable range is the
  union of the training instruments' ranges, trimmed at its ends where the fit misses
  by more than a whole tone (kept whole when less than an octave would remain).
- V3: atom -> MIDI pitch by Hungarian matching (scipy ``linear_sum_assignment``) of the
  atom x pitch frame-count matrix, plus the codebook vectors (``content_q`` of each atom).
- Both: named timbres, the mean ``z_timbre`` / ``style`` of each instrument's sustained
  frames, named by :func:`audiosym.data.plans.timbre_name`.

Works on any LatentModel (numpy API); the V3 codebook is read from the torch model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from audiosym.data.notes import NoteSetSpec, NoteTable, load_notes
from audiosym.data.plans import (
    EVAL_INSTRUMENTS,
    V3_HELDOUT_PROGRAMS,
    V3_TRAIN_PROGRAMS,
    instrument_range,
    timbre_name,
)
from audiosym.data.soundfonts import default_train_soundfont, find_soundfont
from audiosym.dsp.features import FeatureConfig
from audiosym.families.base import encode_sustained as _encode_sustained

FIT_HOLDS_SEMITONES = 2.0  # a range end whose median error exceeds a whole tone is trimmed off
OUTLIER_SEMITONES = 3.0  # notes missed by more than this are left out of the second fit
MIN_RANGE_SEMITONES = 12  # narrower than an octave: the fit failed; keep the training range
BATCH_NOTES = 256


def _cfg(model, name: str, default):
    value = getattr(getattr(model, "config", None), name, None)
    if value in (None, "", ()):
        value = getattr(model, "metadata", {}).get(name)
    return default if value in (None, "", ()) else value


def training_setup(model) -> dict[str, Any]:
    """Soundfont, instruments, pitch limits, velocities and sustained-frame start of the run."""
    sf = _cfg(model, "train_soundfont", None) or _cfg(model, "soundfont", None) or default_train_soundfont()
    if model.kind == "sps":
        programs = _cfg(model, "programs", tuple(EVAL_INSTRUMENTS.values()))
        extra: tuple[int, ...] = ()
        limits = (36, 96)
        skip = _cfg(model, "skip_frames", 8)
    else:
        programs = _cfg(model, "train_programs", V3_TRAIN_PROGRAMS)
        extra = tuple(p for p in _cfg(model, "heldout_programs", V3_HELDOUT_PROGRAMS) if p not in programs)
        limits = tuple(_cfg(model, "pitch_limits", (60, 83)))
        skip = _cfg(model, "sustain_start_frame", 8)
    return {
        "soundfont": find_soundfont(sf),
        "programs": tuple(int(p) for p in programs),
        "extra_programs": extra,  # named timbres only (not trained on); rendered from the same soundfont
        "pitch_limits": (int(limits[0]), int(limits[1])),
        "velocities": tuple(int(v) for v in _cfg(model, "velocities", (100,))),
        "note_seconds": float(_cfg(model, "note_seconds", 0.5)),
        "skip_frames": int(skip),
    }


def _notes(setup: dict[str, Any], programs: tuple[int, ...], features: FeatureConfig, progress: bool) -> NoteTable:
    # The same NoteSetSpec as training, so the renders usually come from the note cache.
    spec = NoteSetSpec(
        soundfont=setup["soundfont"], programs=programs, velocities=setup["velocities"],
        note_seconds=setup["note_seconds"], pitch_limits=setup["pitch_limits"], features=features,
    )
    return load_notes(spec, progress=progress)


def parity_notes(model, *, count: int = 32, seed: int = 0, progress: bool = False) -> np.ndarray:
    """``[count, T, n_bins]`` frames of random training notes, inputs for the export's parity check."""
    setup = training_setup(model)
    table = _notes(setup, setup["programs"], model.features, progress)
    pick = np.random.default_rng(seed).choice(len(table), size=min(count, len(table)), replace=False)
    return table.frames[np.sort(pick)]


def encode_sustained(model, table: NoteTable, skip_frames: int) -> dict[str, np.ndarray]:
    """Encoder outputs of each note's sustained frames: ``{name: [N, S, ...]}``."""
    return _encode_sustained(model, table.frames, skip_frames=skip_frames, batch_notes=BATCH_NOTES)


def _timbres(table: NoteTable, vectors: np.ndarray, trained: set[int]) -> dict[str, dict[str, Any]]:
    out = {}
    for prog in sorted(set(int(p) for p in table.program)):
        v = vectors[table.program == prog].reshape(-1, vectors.shape[-1])
        out[timbre_name(prog)] = {
            "program": prog, "vector": [round(float(x), 6) for x in v.mean(0)],
            "trained": prog in trained, "frames": int(len(v)),
        }
    return out


def calibrate_sps(model, setup: dict[str, Any], *, progress: bool = False) -> dict[str, Any]:
    table = _notes(setup, setup["programs"], model.features, progress)
    z = encode_sustained(model, table, setup["skip_frames"])
    zp = np.median(z["z_pitch"][..., 0], axis=1).astype(np.float64)  # [N] one value per note
    midi = table.pitch.astype(np.float64)
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
    per_timbre = {timbre_name(int(p)): round(float(np.sqrt(np.mean(err[table.program == p] ** 2))), 4)
                  for p in sorted(set(int(p) for p in table.program))}
    lo = min(instrument_range(p, setup["pitch_limits"])[0] for p in setup["programs"])
    hi = max(instrument_range(p, setup["pitch_limits"])[1] for p in setup["programs"])
    pitch_err = {m: float(np.median(np.abs(err[table.pitch == m]))) for m in range(lo, hi + 1) if (table.pitch == m).any()}
    holds = [m for m, e in pitch_err.items() if e <= FIT_HOLDS_SEMITONES]
    fit_holds = bool(holds) and max(holds) - min(holds) >= MIN_RANGE_SEMITONES
    trimmed = (min(holds), max(holds)) if fit_holds else (lo, hi)  # a failed fit keeps the training range
    timbres = _timbres(table, z["z_timbre"], set(setup["programs"]))
    trained = {k: v for k, v in per_timbre.items() if timbres[k]["trained"]}
    return {
        "pitch_control": {"type": "linear", "a": float(a), "b": float(b),
                          "residual_semitones": float(np.sqrt(np.mean(err**2)))},
        "midi_range": [int(trimmed[0]), int(trimmed[1])],
        "timbres": timbres,
        "default_timbre": min(trained, key=lambda k: trained[k]),  # the best-calibrated instrument
        "calibration": {
            "method": "least squares z_pitch = a + b*midi over per-note medians of sustained frames, "
                      f"refitted without notes missed by > {OUTLIER_SEMITONES:g} semitones; residual over all notes",
            "notes": int(len(table)), "programs": list(setup["programs"]),
            "training_range": [lo, hi], "fit_holds": fit_holds,
            "residual_semitones_per_timbre": per_timbre,
            "median_abs_error_semitones": float(np.median(np.abs(err))),
            "outlier_fraction": float(np.mean(np.abs(err) > OUTLIER_SEMITONES)),
            "r2": float(1 - np.sum((zp - a - b * midi) ** 2) / max(np.sum((zp - zp.mean()) ** 2), 1e-12)),
        },
    }


def codebook_of(model, dim: int) -> np.ndarray:
    """``[K, Dc]`` atoms of a V3 torch model (``codebook.atoms``, else a buffer named like it)."""
    tm = model.torch_model
    cb = getattr(getattr(tm, "codebook", None), "atoms", None)
    if cb is None:
        named = dict(tm.named_buffers()) | dict(tm.named_parameters())
        cands = [v for k, v in named.items() if ("atoms" in k or "codebook" in k) and v.ndim == 2 and v.shape[1] == dim]
        if not cands:
            raise ValueError("the V3 model has no codebook buffer (codebook.atoms) to export")
        cb = cands[0]
    return cb.detach().float().cpu().numpy()


def calibrate_v3(model, setup: dict[str, Any], *, progress: bool = False) -> dict[str, Any]:
    from scipy.optimize import linear_sum_assignment

    table = _notes(setup, setup["programs"], model.features, progress)
    z = encode_sustained(model, table, setup["skip_frames"])
    codebook = codebook_of(model, z["content_q"].shape[-1])
    k = len(codebook)
    seen = z["code"].reshape(-1)
    if not np.allclose(codebook[seen], z["content_q"].reshape(len(seen), -1), atol=1e-4):
        raise ValueError("content_q is not codebook[code]: the exported codebook would not match the encoder")
    pitches = np.arange(setup["pitch_limits"][0], setup["pitch_limits"][1] + 1)
    frame_pitch = np.repeat(table.pitch, z["code"].shape[1])
    counts = np.zeros((k, len(pitches)))
    np.add.at(counts, (seen, frame_pitch - pitches[0]), 1)
    rows, cols = linear_sum_assignment(-counts)
    atom_midi = np.full(k, -1, dtype=np.int64)
    for r, c in zip(rows, cols):
        if counts[r, c] > 0:
            atom_midi[r] = pitches[c]
    hit = atom_midi[z["code"]] == table.pitch[:, None]  # [N, S]
    per_timbre = {timbre_name(int(p)): round(float(hit[table.program == p].mean()), 4)
                  for p in sorted(set(int(p) for p in table.program))}
    mapped = atom_midi[atom_midi >= 0]
    timbre_table = table
    styles = z["style"]
    if setup["extra_programs"]:
        extra = _notes(setup, setup["extra_programs"], model.features, progress)
        styles = np.concatenate([styles, encode_sustained(model, extra, setup["skip_frames"])["style"]])
        timbre_table = NoteTable(
            spec=table.spec, program=np.concatenate([table.program, extra.program]),
            pitch=np.concatenate([table.pitch, extra.pitch]), velocity=np.concatenate([table.velocity, extra.velocity]),
            frames=np.zeros((len(table) + len(extra), 0, 0), np.float32), level_db=np.zeros(0), dropped=[],
        )
    return {
        "pitch_control": {"type": "codebook", "atom_midi": [int(m) for m in atom_midi],
                          "codebook": [[float(x) for x in row] for row in codebook],
                          "accuracy": float(hit.mean())},
        "midi_range": [int(mapped.min()), int(mapped.max())] if len(mapped) else list(setup["pitch_limits"]),
        "timbres": _timbres(timbre_table, styles, set(setup["programs"])),
        "default_timbre": max(per_timbre, key=lambda name: per_timbre[name]),  # best-matched instrument
        "calibration": {
            "method": "Hungarian matching of atoms to MIDI pitches on sustained frames",
            "notes": int(len(table)), "programs": list(setup["programs"]),
            "atoms_used": int(len(np.unique(seen))), "atoms_mapped": int(len(mapped)),
            "one_to_one_accuracy_per_timbre": per_timbre,
        },
    }


def calibrate(model, *, progress: bool = False) -> dict[str, Any]:
    """``pitch_control``, ``midi_range``, ``timbres``, ``default_timbre``, ``calibration`` for a preset."""
    setup = training_setup(model)
    out = (calibrate_sps if model.kind == "sps" else calibrate_v3)(model, setup, progress=progress)
    out["calibration"]["soundfont"] = setup["soundfont"]
    return out
