"""Evaluate a model on a folder of recordings (``audiosym eval sps|v3 MODEL --audio DIR``).

The pitch reference is pyin (librosa), measured per note when the recordings are analysed
(:mod:`audiosym.data.recordings`, ``eval_midi``): an independent tracker used only here and for
export calibration, never in training. Notes pyin finds unvoiced are left out and counted.
The keys follow the soundfont evaluations (:mod:`audiosym.eval.sps`, :mod:`audiosym.eval.v3`),
with the timbre folder names as instrument names, plus ``n_files``, ``n_notes_used`` and
``n_notes_rejected`` per timbre (rejected: cut too short, chords, unvoiced for pyin).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from audiosym.data.recording_set import Recordings
from audiosym.errors import ParameterError
from audiosym.eval.sps import fit_line, frame_errors
from audiosym.eval.v3 import confusion, hungarian_map, mapped_accuracy, one_to_one_accuracy, purity
from audiosym.families.base import LatentModel, encode_sustained

SKIP_FRAMES = 8
UNVOICED = "no pitch for pyin (unvoiced)"


def note_latents(model: LatentModel, recs: Recordings) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Encoder outputs of every note's sustained frames ``{name: [N, S, ...]}`` and which of those
    frames lie inside the note ``valid [N, S]``."""
    frames = recs.notes("frames")
    out: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(frames), 256):
        part = encode_sustained(model, frames[i:i + 256].astype(np.float32), skip_frames=SKIP_FRAMES)
        for k, v in part.items():
            out.setdefault(k, []).append(v)
    z = {k: np.concatenate(v) for k, v in out.items()}
    S = next(iter(z.values())).shape[1]
    first = max(SKIP_FRAMES, model.context_frames - 1)
    valid = (first + np.arange(S))[None, :] < recs.notes("length")[:, None]
    return z, valid


def _counts(recs: Recordings, used: np.ndarray) -> dict[str, Any]:
    timbre = recs.note_timbre()
    out: dict[str, Any] = {"n_files": {}, "n_notes_used": {}, "n_notes_rejected": {}}
    for t, name in enumerate(recs.timbres):
        fs = [f for f, ft in zip(recs.files, recs.file_timbre) if ft == t]
        rejected: dict[str, int] = {}
        for f in fs:
            for k, v in f.rejected.items():
                rejected[k] = rejected.get(k, 0) + int(v)
        unvoiced = int(((timbre == t) & ~used).sum())
        if unvoiced:
            rejected[UNVOICED] = unvoiced
        out["n_files"][name] = len(fs)
        out["n_notes_used"][name] = int(((timbre == t) & used).sum())
        out["n_notes_rejected"][name] = rejected
    out["pitch_reference"] = "pyin (librosa), median over each note; evaluation only"
    out["audio"] = recs.root
    return out


def evaluate_sps_recordings(model: LatentModel, recs: Recordings) -> dict[str, Any]:
    """R² of the per-note median ``z_pitch`` against pyin per timbre, one pooled line's frame
    errors, slopes (see :func:`audiosym.eval.sps.evaluate_sps` for the meanings)."""
    z, valid = note_latents(model, recs)
    zf = z["z_pitch"][..., 0].astype(np.float64)
    zp = np.array([np.median(row[v]) if v.any() else np.nan for row, v in zip(zf, valid)])
    midi = recs.notes("eval_midi").astype(np.float64)
    used = np.isfinite(midi) & np.isfinite(zp)
    timbre = recs.note_timbre()
    r2, slopes = {}, {}
    for t, name in enumerate(recs.timbres):
        m = used & (timbre == t)
        if m.sum() >= 3 and np.ptp(midi[m]) > 0:
            slopes[name], _, r2[name] = fit_line(midi[m], zp[m])
    sl = np.array(list(slopes.values())) if slopes else np.zeros(1)
    out: dict[str, Any] = {
        "r2_mean": float(np.mean(list(r2.values()))) if r2 else 0.0,
        "r2_mean_all": float(np.mean(list(r2.values()))) if r2 else 0.0,
        "r2_per_instrument": {n: round(float(v), 5) for n, v in r2.items()},
        "semitone_slope": float(sl.mean()),
        "slope_per_instrument": {n: round(float(v), 6) for n, v in slopes.items()},
        "slope_cv": float(sl.std() / (abs(sl.mean()) + 1e-12)),
    }
    if used.sum() >= 3:
        b, a, out["pooled_r2"] = fit_line(midi[used], zp[used])
        err = (zf[used] - a) / b - midi[used][:, None] if b else np.full(zf[used].shape, np.inf)
        out["cents_error_median"], out["octave_error_rate"] = frame_errors(err[valid[used]])
        out["pooled_line"] = {"a": a, "b": b}
        pc = model.metadata.get("pitch_control") or {}
        if pc.get("type") == "linear":
            e = (zf[used] - pc["a"]) / pc["b"] - midi[used][:, None]
            out["engine_line_cents_error_median"], out["engine_line_octave_error_rate"] = frame_errors(e[valid[used]])
    out.update(_counts(recs, used))
    return out


def _codes(model: LatentModel, recs: Recordings) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    z, valid = note_latents(model, recs)
    midi = recs.notes("eval_midi").astype(np.float64)
    used = np.isfinite(midi)
    label = np.where(used, np.round(np.nan_to_num(midi)), -1).astype(np.int64)
    return z, valid, used, label


def fitted_map(codes: np.ndarray, labels: np.ndarray, n_atoms: int, pitches: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """An atom -> pitch map fitted (Hungarian) on other notes' ``codes`` and ``labels`` ->
    ``(map, classes)`` for :func:`audiosym.eval.v3.mapped_accuracy`: the classes are ``pitches``
    (those scored) and every pitch the fitting notes hold, which may be others. An atom the
    fitting notes never use maps to nothing (-1: wrong wherever it appears)."""
    classes = np.union1d(pitches, labels)
    conf = confusion(codes, labels, max(n_atoms, int(codes.max(initial=-1)) + 1), classes)
    amap = hungarian_map(conf)
    amap[conf.sum(1) == 0] = -1
    return amap, classes


def evaluate_v3_recordings(model: Any, recs: Recordings, *, fit_on: Recordings | None = None
                           ) -> dict[str, Any]:
    """Codes against pyin pitches rounded to semitones, per sustained frame inside the note.
    ``one_to_one_accuracy``: atoms matched to the pitches of THESE notes (Hungarian), scored on
    them; ``zero_shot_one_to_one_accuracy``: through a map these notes did not make: the preset's
    own ``atom_midi``, or one fitted on ``fit_on`` (a run's training recordings)."""
    z, valid, used, label = _codes(model, recs)
    code = z["code"].astype(np.int64)
    mask = valid & used[:, None]
    codes, labels = code[mask], np.broadcast_to(label[:, None], code.shape)[mask]
    pitches = np.unique(labels)
    n_atoms = int(max(model.metadata.get("n_atoms", 0) or 0, code.max() + 1))
    conf = confusion(codes, labels, n_atoms, pitches)
    amap = hungarian_map(conf)
    out: dict[str, Any] = {"one_to_one_accuracy": one_to_one_accuracy(conf), "purity": purity(conf),
                           "atoms_used": float((conf.sum(1) > 0).sum()), "n_atoms": float(n_atoms),
                           "n_pitches": float(len(pitches))}
    pc = model.metadata.get("pitch_control") or {}
    zs_map, zs_classes = None, pitches
    if pc.get("type") == "codebook":
        atom_midi = np.asarray(pc["atom_midi"], np.int64)
        zs_map = np.array([int(np.searchsorted(pitches, m)) if m in pitches else -1 for m in atom_midi])
        out["zero_shot_map"] = "the preset's atom_midi (fitted at export on its training notes)"
    elif fit_on is not None and len(fit_on.files):
        z2, valid2, used2, label2 = _codes(model, fit_on)
        m2 = valid2 & used2[:, None]
        c2, l2 = z2["code"].astype(np.int64)[m2], np.broadcast_to(label2[:, None], z2["code"].shape)[m2]
        zs_map, zs_classes = fitted_map(c2, l2, n_atoms, pitches)
        out["zero_shot_map"] = "fitted on the run's training recordings"
    if zs_map is not None:
        out["zero_shot_one_to_one_accuracy"] = mapped_accuracy(codes, labels, zs_map, zs_classes)
    per = {}
    per_map, per_classes = (zs_map, zs_classes) if zs_map is not None else (amap, pitches)
    timbre = np.broadcast_to(recs.note_timbre()[:, None], code.shape)[mask]
    for t, name in enumerate(recs.timbres):
        m = timbre == t
        if m.any():
            per[name] = round(mapped_accuracy(codes[m], labels[m], per_map, per_classes), 4)
    out["per_instrument_one_to_one_accuracy"] = per
    out.update(_counts(recs, used))
    return out


def evaluate_recordings(model: LatentModel, recs: Recordings) -> dict[str, Any]:
    """The evaluation of ``model``'s family on recordings."""
    if model.kind == "sps":
        return evaluate_sps_recordings(model, recs)
    if model.kind == "v3":
        return evaluate_v3_recordings(model, recs)
    raise ParameterError(f"model kind {model.kind!r} has no evaluation on recordings (sps, v3 have)")


def summary_lines(kind: str, m: dict[str, Any]) -> list[str]:
    """Plain lines of a recordings evaluation for the terminal."""
    lines = [f"evaluated on {m['audio']} (pitch reference: pyin)"]
    if kind == "sps":
        lines.append(f"r2_mean={m['r2_mean']:.4f} slope_cv={m['slope_cv']:.3f}"
                     + (f" pooled_r2={m['pooled_r2']:.4f} cents_error_median={m['cents_error_median']:.0f} "
                        f"octave_error_rate={m['octave_error_rate']:.3f}" if "pooled_r2" in m else ""))
        per = m["r2_per_instrument"]
    else:
        lines.append(f"one_to_one_accuracy={m['one_to_one_accuracy']:.3f} purity={m['purity']:.3f}"
                     + (f" zero_shot_one_to_one_accuracy={m['zero_shot_one_to_one_accuracy']:.3f}"
                        if "zero_shot_one_to_one_accuracy" in m else ""))
        per = m["per_instrument_one_to_one_accuracy"]
    for name, used in m["n_notes_used"].items():
        rej = sum(m["n_notes_rejected"][name].values())
        score = f"{per[name]:.4f}" if name in per else "-"
        lines.append(f"  {name}: {score}  ({m['n_files'][name]} file(s), {used} notes used, {rej} rejected)")
    return lines
