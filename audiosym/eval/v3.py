"""Evaluate a V3 model (run or preset) through the LatentModel protocol only (torch-free).

Items: notes (program, pitch, velocity) rendered alone; each note gives several frames
from its sustained part. Metrics:

- ``purity``: mean row purity of the atom x pitch confusion matrix (the paper's
  "codebook accuracy"; a many-to-one code can score high), and
  ``one_to_one_accuracy``: the fraction of frames on the Hungarian atom<->pitch matching.
- 5-NN accuracy (query and the query note's other frames excluded) and PR-AUC of
  nearest-neighbour retrieval (average precision of the ranking of all other notes,
  query excluded) for content->pitch, style->instrument, and the leakage directions
  content->instrument, style->pitch. Content metrics use the discrete codes (what
  the engine uses); ``*_continuous`` use the pre-quantisation content.
- zero-shot: one-to-one accuracy of held-out instruments (training soundfont) and of
  every instrument on a held-out soundfont, through the atom->pitch map matched on
  the training instruments. ``heldout_one_to_one_accuracy`` (the headline) is the held-out
  soundfont's: that map, fitted on the training soundfont, scored on every note of the held-out
  soundfont (training and held-out instruments), so neither the map nor the notes were seen.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from audiosym.data.notes import NoteSetSpec, NoteTable, load_notes
from audiosym.data.plans import V3_HELDOUT_PROGRAMS, V3_TRAIN_PROGRAMS, timbre_name
from audiosym.data.soundfonts import (
    default_test_soundfont,
    default_train_soundfont,
    find_soundfont,
    soundfont_label,
)
from audiosym.dsp.features import FeatureConfig
from audiosym.errors import ParameterError
from audiosym.eval import Evaluation
from audiosym.families.base import LatentModel, encode_sustained

K_NEIGHBOURS = 5
FRAMES_PER_NOTE = 4


@dataclass
class EvalData:
    """Rendered notes for evaluation: train soundfont (train + held-out programs), test soundfont."""

    train_soundfont: str
    test_soundfont: str | None
    train_programs: tuple[int, ...]
    heldout_programs: tuple[int, ...]
    train_table: NoteTable
    test_table: NoteTable | None
    sustain_start_frame: int


def prepare_eval(
    *, features: FeatureConfig, train_soundfont: str | None = None, test_soundfont: str | None = None,
    train_programs=V3_TRAIN_PROGRAMS, heldout_programs=V3_HELDOUT_PROGRAMS,
    pitch_limits=(60, 83), velocities=(80, 100, 120), note_seconds: float = 0.5,
    sustain_start_frame: int = 8, heldout_soundfont: bool = True, progress: bool = True,
) -> EvalData:
    """Render (or load from the cache) the evaluation notes, as frames of ``features`` (the
    model's own: the frames it is fed must be the ones it was trained on)."""
    train_sf = find_soundfont(train_soundfont) if train_soundfont else default_train_soundfont()
    test_sf = None
    if heldout_soundfont:
        test_sf = find_soundfont(test_soundfont) if test_soundfont else default_test_soundfont(train_sf)
    programs = tuple(int(p) for p in (*train_programs, *heldout_programs))

    def spec(sf: str) -> NoteSetSpec:
        return NoteSetSpec(soundfont=sf, programs=programs, velocities=tuple(int(v) for v in velocities),
                           note_seconds=float(note_seconds),
                           pitch_limits=(int(pitch_limits[0]), int(pitch_limits[1])), features=features)

    return EvalData(
        train_soundfont=train_sf, test_soundfont=test_sf,
        train_programs=tuple(int(p) for p in train_programs),
        heldout_programs=tuple(int(p) for p in heldout_programs),
        train_table=load_notes(spec(train_sf), progress=progress),
        test_table=load_notes(spec(test_sf), progress=progress) if test_sf else None,
        sustain_start_frame=int(sustain_start_frame),
    )


def encode_notes(model, table: NoteTable, *, sustain_start_frame: int, frames_per_note: int = FRAMES_PER_NOTE,
                 batch_notes: int = 512) -> dict[str, np.ndarray]:
    """Encode each note's sustained frames; returns arrays ``[N, P, ...]`` at P evenly spaced frames."""
    first = max(sustain_start_frame, int(model.context_frames) - 1)  # input frame of output 0
    pos = np.unique(np.linspace(first, table.frames.shape[1] - 1, frames_per_note).round().astype(int))
    enc = encode_sustained(model, table.frames, skip_frames=sustain_start_frame, batch_notes=batch_notes)
    return {k: v[:, pos - first] for k, v in enc.items()}


def confusion(codes: np.ndarray, labels: np.ndarray, n_atoms: int, classes: np.ndarray) -> np.ndarray:
    """``[n_atoms, len(classes)]`` counts of (code, label) pairs."""
    col = np.searchsorted(classes, labels)
    m = np.zeros((n_atoms, len(classes)), np.int64)
    np.add.at(m, (codes, col), 1)
    return m


def purity(conf: np.ndarray) -> float:
    """Mean over used atoms of the fraction of the atom's frames on its most frequent pitch."""
    rows = conf[conf.sum(1) > 0]
    return float(np.mean(rows.max(1) / rows.sum(1))) if len(rows) else 0.0


def hungarian_map(conf: np.ndarray) -> np.ndarray:
    """Atom -> class column by maximum-weight one-to-one matching (-1 for unmatched atoms)."""
    r, c = linear_sum_assignment(-conf)
    amap = np.full(conf.shape[0], -1, np.int64)
    amap[r] = c
    return amap


def one_to_one_accuracy(conf: np.ndarray) -> float:
    """Fraction of frames whose atom is matched to their pitch by the Hungarian matching."""
    r, c = linear_sum_assignment(-conf)
    return float(conf[r, c].sum() / max(conf.sum(), 1))


def mapped_accuracy(codes: np.ndarray, labels: np.ndarray, amap: np.ndarray, classes: np.ndarray) -> float:
    """Accuracy of predicting ``classes[amap[code]]`` (unmatched atoms count as wrong)."""
    col = amap[codes]
    pred = np.where(col >= 0, classes[np.clip(col, 0, None)], -10**6)
    return float(np.mean(pred == labels))


def _ranked(x: np.ndarray, seed: int) -> np.ndarray:
    """Rows: indices of all other items by distance; ties (identical codes) broken at random."""
    n = len(x)
    d = np.sqrt(np.maximum(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1), 0.0))
    d = np.round(d, 6)  # equal codes give exactly equal distances
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    d = d[:, perm]
    order = perm[np.argsort(d, axis=1, kind="stable")]
    return order[order != np.arange(n)[:, None]].reshape(n, n - 1)


def knn_and_prauc(x: np.ndarray, labels: np.ndarray, *, k: int = K_NEIGHBOURS, seed: int = 0) -> tuple[float, float]:
    """(k-NN majority-vote accuracy, mean average precision of retrieval), query excluded."""
    if len(x) < k + 1:
        raise ParameterError(f"{len(x)} items are too few for {k}-NN evaluation")
    order = _ranked(np.asarray(x, np.float64).reshape(len(x), -1), seed)
    rel = labels[order] == labels[:, None]  # [n, n-1]
    votes = labels[order[:, :k]]
    correct = 0
    for i in range(len(x)):
        vals, counts = np.unique(votes[i], return_counts=True)
        winners = vals[counts == counts.max()]
        # a tie is resolved by the nearest neighbour among the tied classes
        pred = next(v for v in votes[i] if v in winners)
        correct += pred == labels[i]
    hits = np.cumsum(rel, axis=1)
    precision = hits / np.arange(1, rel.shape[1] + 1)
    n_rel = rel.sum(1)
    ap = np.where(n_rel > 0, (precision * rel).sum(1) / np.maximum(n_rel, 1), 0.0)
    return float(correct / len(x)), float(ap.mean())


def evaluate_v3(model, *, data: EvalData | None = None, progress: bool = False, **prepare: Any) -> dict[str, Any]:
    """All V3 metrics of ``model`` (a LatentModel of kind 'v3') as a flat dict (floats + labels)."""
    if model.kind != "v3":
        raise ParameterError(f"model kind {model.kind!r} is not 'v3'; use `audiosym eval {model.kind}`")
    data = data or prepare_eval(features=model.features, progress=progress, **prepare)
    tab = data.train_table
    enc = encode_notes(model, tab, sustain_start_frame=data.sustain_start_frame)
    n_atoms = int(model.metadata.get("n_atoms", int(enc["code"].max()) + 1))
    n_atoms = max(n_atoms, int(enc["code"].max()) + 1)
    is_train = np.isin(tab.program, data.train_programs)
    is_held = np.isin(tab.program, data.heldout_programs)
    pitches = np.unique(tab.pitch).astype(np.int64)
    P = enc["code"].shape[1]

    def flat(mask: np.ndarray, key: str) -> np.ndarray:
        return enc[key][mask].reshape(int(mask.sum()) * P, *enc[key].shape[2:])

    codes_tr = flat(is_train, "code")
    pitch_tr = np.repeat(tab.pitch[is_train].astype(np.int64), P)
    conf = confusion(codes_tr, pitch_tr, n_atoms, pitches)
    amap = hungarian_map(conf)
    out: dict[str, Any] = {
        "purity": purity(conf),
        "one_to_one_accuracy": one_to_one_accuracy(conf),
        "atoms_used": float((conf.sum(1) > 0).sum()),
        "n_atoms": float(n_atoms),
        "n_pitches": float(len(pitches)),
    }
    # Retrieval on one frame per note (the middle one), in distribution.
    mid = P // 2
    prog = tab.program[is_train].astype(np.int64)
    pit = tab.pitch[is_train].astype(np.int64)
    views = {
        "content": enc["content_q"][is_train, mid],
        "content_continuous": enc["content"][is_train, mid],
        "style": enc["style"][is_train, mid],
    }
    for view, x in views.items():
        for target, labels in (("pitch", pit), ("instrument", prog)):
            acc, ap = knn_and_prauc(x, labels)
            out[f"{view}_{target}_knn"] = acc
            out[f"{view}_{target}_prauc"] = ap
    out["chance_instrument"] = float(np.max(np.bincount(np.searchsorted(np.unique(prog), prog))) / len(prog))
    out["chance_pitch"] = float(np.max(np.bincount(np.searchsorted(np.unique(pit), pit))) / len(pit))
    # Zero-shot through the atom->pitch map learned on the training instruments.
    if is_held.any():
        out["zero_shot_one_to_one_accuracy"] = mapped_accuracy(
            flat(is_held, "code"), np.repeat(tab.pitch[is_held].astype(np.int64), P), amap, pitches)
        out["zero_shot_heldout_purity"] = purity(confusion(
            flat(is_held, "code"), np.repeat(tab.pitch[is_held].astype(np.int64), P), n_atoms, pitches))
    if data.test_table is not None and data.test_soundfont:
        tt = data.test_table
        enc_t = encode_notes(model, tt, sustain_start_frame=data.sustain_start_frame)
        codes_t = enc_t["code"].reshape(-1)
        pitch_t = np.repeat(tt.pitch.astype(np.int64), enc_t["code"].shape[1])
        ok = np.isin(pitch_t, pitches)
        out["zero_shot_soundfont_one_to_one_accuracy"] = mapped_accuracy(codes_t[ok], pitch_t[ok], amap, pitches)
        # the headline: the atom->pitch map fitted on training notes, scored on notes it never saw
        out["heldout_one_to_one_accuracy"] = out["zero_shot_soundfont_one_to_one_accuracy"]
        held_t = np.repeat(np.isin(tt.program, data.heldout_programs), enc_t["code"].shape[1]) & ok
        if held_t.any():
            out["zero_shot_soundfont_heldout_one_to_one_accuracy"] = mapped_accuracy(
                codes_t[held_t], pitch_t[held_t], amap, pitches)
        out["soundfont"] = soundfont_label(data.test_soundfont)
    # Per instrument, so one broken render can neither hide in nor sink a mean.
    per: dict[str, dict[str, float]] = {"train_soundfont": {}}
    tables = [("train_soundfont", tab, enc)]
    if data.test_table is not None and data.test_soundfont:
        per["heldout_soundfont"] = {}
        tables.append(("heldout_soundfont", data.test_table, enc_t))
    for where, t, e in tables:
        for prog in np.unique(t.program):
            mk = t.program == prog
            n = e["code"].shape[1]
            label = np.repeat(t.pitch[mk].astype(np.int64), n)
            ok = np.isin(label, pitches)
            tag = "heldout" if prog in data.heldout_programs else "train"
            per[where][f"{int(prog)}:{timbre_name(int(prog))}:{tag}"] = round(
                mapped_accuracy(e["code"][mk].reshape(-1)[ok], label[ok], amap, pitches), 4)
    out["per_instrument_one_to_one_accuracy"] = per
    out["train_soundfont"] = soundfont_label(data.train_soundfont)
    out["atom_pitch_map"] = {int(a): int(pitches[c]) for a, c in enumerate(amap) if c >= 0}
    out["_confusion"] = conf
    out["_pitches"] = pitches
    return out


def plot_confusion(conf: np.ndarray, pitches: np.ndarray, path: str, *, title: str = "") -> None:
    """Atom x pitch confusion matrix, atoms ordered by their matched pitch."""
    import matplotlib  # lazy: ~0.5 s to import, only for --plot

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: as matplotlib, after choosing the Agg backend

    amap = hungarian_map(conf)
    order = np.argsort(np.where(amap >= 0, amap, len(pitches) + np.arange(len(amap))), kind="stable")
    m = conf[order]
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(m / np.maximum(m.sum(1, keepdims=True), 1), aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(pitches)), [str(p) for p in pitches], rotation=90, fontsize=7)
    ax.set_yticks(range(len(order)), [str(a) for a in order], fontsize=7)
    ax.set_xlabel("MIDI pitch")
    ax.set_ylabel("atom (ordered by matched pitch)")
    ax.set_title(title or "V3 atom x pitch (row-normalised)")
    fig.colorbar(im, ax=ax, label="fraction of the atom's frames")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def evaluate(model: LatentModel, *, soundfont: str | None = None, progress: bool = True) -> Evaluation:
    """``audiosym eval v3 MODEL``: :func:`evaluate_v3` on the evaluation setup the model records
    (a run's config, or the copy export puts in a preset), held out on ``soundfont`` (default:
    the run's test soundfont, else one that is not the training soundfont); its plot is the
    atom x pitch confusion matrix."""
    md = model.metadata
    train_sf = md.get("train_soundfont") or None
    if train_sf:
        try:
            train_sf = find_soundfont(train_sf)
        except Exception:  # the preset may come from a machine with other paths
            train_sf = find_soundfont(soundfont_label(train_sf))
    data = prepare_eval(
        features=model.features, train_soundfont=train_sf, test_soundfont=soundfont or md.get("test_soundfont") or None,
        train_programs=tuple(md.get("train_programs", V3_TRAIN_PROGRAMS)),
        heldout_programs=tuple(md.get("heldout_programs", V3_HELDOUT_PROGRAMS)),
        pitch_limits=tuple(md.get("pitch_limits", (60, 83))),
        velocities=tuple(md.get("velocities", (80, 100, 120))),
        note_seconds=float(md.get("note_seconds", 0.5)),
        sustain_start_frame=int(md.get("sustain_start_frame", 8)),
        progress=progress,
    )
    metrics = evaluate_v3(model, data=data)
    conf, pitches = metrics.pop("_confusion"), metrics.pop("_pitches")
    lines = [f"{k:48s} {v:.4f}" if isinstance(v, float) else f"{k:48s} {v}"
             for k, v in metrics.items() if k != "atom_pitch_map"]

    def plot(path: str | os.PathLike, label: str) -> None:
        plot_confusion(conf, pitches, str(path), title=f"{label}: one-to-one {metrics['one_to_one_accuracy']:.3f}")

    return Evaluation(metrics=metrics, lines=lines, plot=plot)
