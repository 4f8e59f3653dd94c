"""``audiosym eval sps MODEL``: is z_pitch linear in pitch on a soundfont the model never saw?

Torch-free: works on any :class:`audiosym.families.base.LatentModel` (a run directory or a preset).

- Single notes of the nine EVAL_INSTRUMENTS over their ranges, rendered from a held-out
  soundfont; per note the median ``z_pitch`` over its sustained frames.
- Per instrument: R² of a linear fit z_pitch ~ MIDI, the slope per semitone; ``slope_cv`` =
  spread of slopes across instruments (std / |mean|).
- Render check: every held-out render is pitch-tracked with ``librosa.pyin``; an instrument
  whose renders pyin cannot track is *excluded from r2_mean with the reason shown*
  (``excluded``); ``r2_mean_all`` keeps every instrument.
- Synthesis: sweep z_pitch over each instrument's calibrated range, decode with a fixed
  timbre, Griffin-Lim the spectrum back to audio, pyin it; R² of heard vs intended pitch.
- One pooled line for all included instruments (the engine plays one): ``pooled_r2`` of the
  per-note medians, and per sustained frame ``cents_error_median`` and ``octave_error_rate``
  (error above 6 semitones: nearer a whole octave off than the right note); for a preset also
  through its stored ``pitch_control`` line (``engine_line_*``).
- ``baselines``: ``r2_mean`` of no-training pitch readers on the same notes
  (:mod:`audiosym.eval.baselines`); ``split``: the soundfont and programs the numbers come from.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

import librosa
import numpy as np

from audiosym.data.notes import NoteSetSpec, NoteTable, cache_dir, load_notes
from audiosym.data.plans import EVAL_INSTRUMENTS, instrument_range
from audiosym.data.soundfonts import (
    default_test_soundfont,
    default_train_soundfont,
    find_soundfont,
    render_note,
    soundfont_fingerprint,
    soundfont_label,
)
from audiosym.dsp.features import FeatureConfig
from audiosym.dsp.pitch import hz_to_midi, midi_to_hz
from audiosym.eval import Evaluation
from audiosym.eval.baselines import BASELINES
from audiosym.families.base import LatentModel, encode_sustained

SKIP_FRAMES = 8  # frames whose analysis window still holds pre-onset silence
OCTAVE_ERROR_SEMITONES = 6.0  # a frame read nearer a whole octave off than its own note
TRACKED_MIN_FRACTION = 0.75  # an instrument with fewer pyin-tracked renders is excluded
CHECK_STRIDE = 3  # pitch-track every 3rd note of each instrument (pyin costs ~0.1 s a note)
CHECK_VERSION = 2


def fit_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares ``y = slope * x + intercept``; returns (slope, intercept, R²)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    slope, intercept = np.polyfit(x, y, 1)
    res = y - (slope * x + intercept)
    tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((res**2).sum()) / tot if tot > 0 else 0.0
    return float(slope), float(intercept), r2


def _pyin_midi(y: np.ndarray, sample_rate: int, *, lo_midi: float = 28.0, hi_midi: float = 100.0) -> float:
    """Median pyin pitch (MIDI) of the voiced frames of ``y``; NaN when nothing is voiced.

    pyin searches ``[lo_midi, hi_midi]`` at half-semitone resolution (its Viterbi cost grows
    with the square of the number of candidate pitches, so a narrow window is much faster).
    """
    f0, voiced, _ = librosa.pyin(
        y.astype(np.float64), fmin=float(midi_to_hz(lo_midi)), fmax=float(midi_to_hz(hi_midi)),
        sr=sample_rate, frame_length=2048, hop_length=256, center=False, resolution=0.5,
    )
    f0 = f0[voiced & np.isfinite(f0)] if voiced is not None else f0[np.isfinite(f0)]
    return float(np.median(hz_to_midi(f0))) if len(f0) else float("nan")


def check_renders(soundfont: str, table: NoteTable, *, sample_rate: int, progress: bool = False) -> dict[str, str]:
    """``{instrument: reason}`` for instruments whose held-out renders pyin cannot track.

    Every ``CHECK_STRIDE``-th note of each instrument is re-rendered and pitch-tracked within an
    octave of its nominal pitch either way; the verdict is cached per soundfont file.
    """
    key = hashlib.sha256(json.dumps(
        [CHECK_VERSION, soundfont_fingerprint(soundfont), sample_rate, table.spec.note_seconds,
         sorted(EVAL_INSTRUMENTS.items())]).encode()).hexdigest()[:20]
    path = cache_dir() / "render_checks" / f"{key}.json"
    if path.exists():
        return json.loads(path.read_text())
    excluded: dict[str, str] = {}
    levels = {name: float(np.median(table.level_db[table.program == prog]))
              for name, prog in EVAL_INSTRUMENTS.items() if (table.program == prog).any()}
    typical = float(np.median(list(levels.values()))) if levels else 0.0
    for name, prog in EVAL_INSTRUMENTS.items():
        pitches = table.pitch[table.program == prog][::CHECK_STRIDE]
        if len(pitches) < 3:
            excluded[name] = f"only {len(pitches)} audible renders in {soundfont_label(soundfont)}"
            continue
        if progress:
            print(f"  checking {name} renders ({len(pitches)} notes)", file=sys.stderr)
        est = np.array([
            _pyin_midi(render_note(soundfont, prog, int(m), note_seconds=table.spec.note_seconds,
                                   sample_rate=sample_rate), sample_rate, lo_midi=m - 13, hi_midi=m + 13)
            for m in pitches])
        ok = np.abs(est - pitches) < 1.0
        frac = float(ok.mean())
        if frac < TRACKED_MIN_FRACTION:
            bad = [f"MIDI {int(m)} read as {e:.1f}" for m, e in zip(pitches, est) if not abs(e - m) < 1.0]
            excluded[name] = (
                f"pyin tracks only {frac:.0%} of {len(pitches)} checked held-out renders within a semitone "
                f"({', '.join(bad[:3])}); render level {levels[name]:.0f} dBFS vs typical {typical:.0f}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(excluded, indent=1))
    return excluded


def heldout_notes(soundfont: str, features: FeatureConfig, *, progress: bool) -> NoteTable:
    spec = NoteSetSpec(soundfont=soundfont, programs=tuple(EVAL_INSTRUMENTS.values()), features=features)
    return load_notes(spec, progress=progress)


def note_codes(model: LatentModel, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median z_pitch ``[N]`` and median z_timbre ``[N, D]`` over each note's sustained frames,
    and those frames' z_pitch ``[N, S]``."""
    z = encode_sustained(model, frames, skip_frames=SKIP_FRAMES, batch_notes=64)
    zp = z["z_pitch"][..., 0]
    return np.median(zp, axis=1), np.median(z["z_timbre"], axis=1), zp


def logmag_to_audio(logmag: np.ndarray, features: FeatureConfig, *, n_iter: int = 32) -> np.ndarray:
    """Log-frequency log-magnitude frames ``[T, n_bins]`` -> audio by Griffin-Lim (float32)."""
    n_lin = features.n_fft // 2 + 1
    fft_hz = np.arange(n_lin) * features.sample_rate / features.n_fft
    with np.errstate(divide="ignore"):
        pos = features.midi_to_bin(hz_to_midi(np.maximum(fft_hz, 1e-3)))
    rel = logmag - logmag.max(axis=1, keepdims=True)
    lin = np.stack([np.interp(pos, np.arange(features.n_bins), r, left=-30.0, right=-30.0) for r in rel])
    mag = np.exp(lin).T  # [n_lin, T]
    y = librosa.griffinlim(mag, n_iter=n_iter, hop_length=features.hop_length, win_length=features.n_fft,
                           n_fft=features.n_fft, window="hann", random_state=0)
    return (0.3 * y / (np.abs(y).max() + 1e-9)).astype(np.float32)


def synthesis_check(model: LatentModel, fits: dict[str, tuple[float, float]], timbres: dict[str, np.ndarray],
                    *, points: int = 9, frames_per_point: int = 24) -> dict[str, float]:
    """Per instrument: R² of pyin(decoded audio) against the pitch the swept z_pitch stands for."""
    feats = model.features
    out = {}
    for name, (slope, intercept) in fits.items():
        lo, hi = instrument_range(EVAL_INSTRUMENTS[name])
        midi = np.linspace(lo, hi, points)
        z = (slope * midi + intercept).astype(np.float32)
        zp = np.repeat(z[:, None, None], 1, axis=1)  # [P, 1, 1]
        zt = np.repeat(timbres[name][None, None, :], points, axis=0).astype(np.float32)
        logmag = model.decode(z_pitch=zp, z_timbre=zt)[:, 0]  # [P, F]
        est = []
        for frame in logmag:
            y = logmag_to_audio(np.repeat(frame[None], frames_per_point, axis=0), feats)
            est.append(_pyin_midi(y, feats.sample_rate, lo_midi=lo - 14, hi_midi=hi + 14))
        est_arr = np.asarray(est)
        ok = np.isfinite(est_arr)
        out[name] = fit_line(midi[ok], est_arr[ok])[2] if ok.sum() >= 3 else 0.0
    return out


def pooled_scores(pitch: np.ndarray, zp: np.ndarray, z_frames: np.ndarray,
                  engine_line: tuple[float, float] | None = None) -> dict[str, Any]:
    """ONE calibration line for every instrument (what the engine plays), scored per frame.

    ``pitch [N]`` MIDI, ``zp [N]`` per-note median z_pitch, ``z_frames [N, S]`` its sustained
    frames. ``pooled_r2``: R² of ``zp ~ a + b * midi`` fitted over all notes together (a per-
    instrument intercept can hide an instrument read an octave off; this cannot). Frame errors
    (semitones) are ``(z - a) / b - midi``; ``cents_error_median`` is the median of their size in
    cents, ``octave_error_rate`` the fraction above OCTAVE_ERROR_SEMITONES. ``engine_line``
    ``(a, b)`` (a preset's stored ``pitch_control``) adds the same two errors through that line.
    """
    b, a, r2 = fit_line(pitch, zp)
    cents, octave = frame_errors(line_errors(z_frames, pitch, a=a, b=b))
    out: dict[str, Any] = {"pooled_r2": r2, "pooled_line": {"a": a, "b": b},
                           "cents_error_median": cents, "octave_error_rate": octave}
    if engine_line is not None:
        cents, octave = frame_errors(line_errors(z_frames, pitch, a=engine_line[0], b=engine_line[1]))
        out["engine_line_cents_error_median"] = cents
        out["engine_line_octave_error_rate"] = octave
    return out


def line_errors(z_frames: np.ndarray, pitch: np.ndarray, *, a: float, b: float) -> np.ndarray:
    """Semitone errors ``[N, S]`` of reading ``z_frames`` through ``z = a + b * midi``."""
    if b == 0:
        return np.full(np.shape(z_frames), np.inf)
    return (np.asarray(z_frames, np.float64) - a) / b - np.asarray(pitch, np.float64)[:, None]


def frame_errors(err: np.ndarray) -> tuple[float, float]:
    """(median |error| in cents, fraction of frames more than OCTAVE_ERROR_SEMITONES off)."""
    e = np.abs(np.asarray(err, np.float64)).ravel()
    e = np.where(np.isnan(e), np.inf, e)  # a frame read as no pitch is as wrong as an octave
    return float(np.median(e) * 100.0), float(np.mean(e > OCTAVE_ERROR_SEMITONES))


def baseline_scores(table: NoteTable, features: FeatureConfig, included: list[str], *,
                    first_frame: int = SKIP_FRAMES) -> dict[str, float]:
    """``{baseline: r2_mean}`` of the no-training readers of :mod:`audiosym.eval.baselines` on
    the same notes and instruments as the model, each note read as the median over its frames
    from ``first_frame`` on (the model's first sustained output frame)."""
    frames = table.frames[:, first_frame:]
    out = {}
    for name, read in BASELINES.items():
        est = np.median(read(frames, features), axis=1)
        r2 = [fit_line(table.pitch[m], est[m])[2]
              for m in (table.program == EVAL_INSTRUMENTS[n] for n in included)]
        out[name] = float(np.mean(r2)) if r2 else 0.0
    return out


def score_notes(model: LatentModel, table: NoteTable, *, excluded: dict[str, str]) -> dict[str, Any]:
    """The metrics of :func:`evaluate_sps` that need only the notes: per instrument R² and slope,
    the pooled line's scores, the baselines and the split (``role`` ``"test"``). Adds to
    ``excluded`` the instruments with fewer than 3 notes; ``_fits`` and ``_timbres`` (per
    instrument line and middle note's timbre) are for the synthesis check."""
    zp, zt, z_frames = note_codes(model, table.frames)
    r2, slopes, fits, timbres, n_notes = {}, {}, {}, {}, {}
    for name, prog in EVAL_INSTRUMENTS.items():
        m = table.program == prog
        if m.sum() < 3:
            excluded.setdefault(name, "fewer than 3 audible held-out notes")
            continue
        slope, intercept, r2[name] = fit_line(table.pitch[m], zp[m])
        slopes[name], fits[name], n_notes[name] = slope, (slope, intercept), int(m.sum())
        mid = np.argsort(table.pitch[m])[m.sum() // 2]
        timbres[name] = zt[m][mid]
    included = [n for n in r2 if n not in excluded]
    sl = np.array([slopes[n] for n in included]) if included else np.zeros(1)
    result: dict[str, Any] = {
        "r2_mean": float(np.mean([r2[n] for n in included])) if included else 0.0,
        "r2_mean_all": float(np.mean(list(r2.values()))) if r2 else 0.0,
        "r2_per_instrument": {n: round(v, 5) for n, v in r2.items()},
        "semitone_slope": float(sl.mean()),
        "slope_per_instrument": {n: round(v, 6) for n, v in slopes.items()},
        "slope_cv": float(sl.std() / (abs(sl.mean()) + 1e-12)),
        "excluded": excluded,
        "n_notes": n_notes,
    }
    pc = model.metadata.get("pitch_control") or {}
    engine = (float(pc["a"]), float(pc["b"])) if pc.get("type") == "linear" else None
    pooled = np.isin(table.program, [EVAL_INSTRUMENTS[n] for n in included])
    if pooled.sum() >= 3:
        result.update(pooled_scores(table.pitch[pooled], zp[pooled], z_frames[pooled], engine))
    result["baselines"] = baseline_scores(table, model.features, included,
                                          first_frame=max(SKIP_FRAMES, model.context_frames - 1))
    result["split"] = {"soundfont": soundfont_label(table.spec.soundfont), "role": "test",
                       "programs": [EVAL_INSTRUMENTS[n] for n in included], "instruments": included}
    result["_fits"] = {n: fits[n] for n in included}
    result["_timbres"] = timbres
    result["_codes"] = {"program": table.program, "pitch": table.pitch, "z_pitch": zp}
    return result


def evaluate_sps(model: LatentModel, *, soundfont: str | None = None, synthesis: bool = True,
                 progress: bool = True, return_codes: bool = False) -> dict[str, Any]:
    """Held-out metrics of an SPS model (see the module docstring for their meaning).

    JSON-serialisable; ``return_codes=True`` adds ``_codes`` (per-note program, pitch, z_pitch
    arrays) for plotting.
    """
    if model.kind != "sps":
        raise ValueError(f"model kind {model.kind!r} is not sps")
    train_sf = model.metadata.get("train_soundfont") or default_train_soundfont()
    try:
        train_path = find_soundfont(train_sf)
    except Exception:  # a preset trained on a soundfont this machine lacks
        train_path = str(train_sf)
    test_path = find_soundfont(soundfont) if soundfont else default_test_soundfont(train_path)
    table = heldout_notes(test_path, model.features, progress=progress)
    excluded = check_renders(test_path, table, sample_rate=model.features.sample_rate, progress=progress)
    result = score_notes(model, table, excluded=excluded)
    fits, timbres, codes = result.pop("_fits"), result.pop("_timbres"), result.pop("_codes")
    result.update({
        "soundfont": soundfont_label(test_path),
        "soundfont_path": test_path,
        "train_soundfont": soundfont_label(train_path),
    })
    if synthesis:
        syn = synthesis_check(model, fits, timbres)
        result["synthesis_r2_per_instrument"] = {n: round(v, 5) for n, v in syn.items()}
        result["synthesis_r2_mean"] = float(np.mean(list(syn.values()))) if syn else 0.0
    if return_codes:
        result["_codes"] = codes
    return result


def plot(result: dict[str, Any], out_path: str) -> None:
    """z_pitch against MIDI pitch, one panel per instrument (matplotlib Agg)."""
    import matplotlib  # lazy: ~0.5 s to import, only for --plot

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: as matplotlib, after choosing the Agg backend

    codes = result["_codes"]
    fig, axes = plt.subplots(3, 3, figsize=(10, 9), sharex=False)
    for ax, (name, prog) in zip(axes.flat, EVAL_INSTRUMENTS.items()):
        m = codes["program"] == prog
        ax.plot(codes["pitch"][m], codes["z_pitch"][m], ".")
        r2 = result["r2_per_instrument"].get(name)
        tag = " (excluded)" if name in result["excluded"] else ""
        ax.set_title(f"{name}: R²={r2:.3f}{tag}" if r2 is not None else name, fontsize=9)
        ax.set_xlabel("MIDI pitch")
        ax.set_ylabel("z_pitch")
    fig.suptitle(f"held-out {result['soundfont']} (trained on {result['train_soundfont']}), r2_mean={result['r2_mean']:.4f}")
    fig.tight_layout()
    fig.savefig(out_path, dpi=90)
    plt.close(fig)


def summary_lines(result: dict[str, Any]) -> list[str]:
    """:func:`evaluate_sps`'s result for a terminal: per instrument R² and slope, then the means."""
    lines = [f"held-out soundfont {result['soundfont']} (trained on {result['train_soundfont']})"]
    for name, v in result["r2_per_instrument"].items():
        note = f"  excluded: {result['excluded'][name]}" if name in result["excluded"] else ""
        lines.append(f"  {name:10s} R²={v:.4f} slope={result['slope_per_instrument'][name]:+.5f}{note}")
    lines.append(f"r2_mean={result['r2_mean']:.4f} (all: {result['r2_mean_all']:.4f}) slope_cv={result['slope_cv']:.3f} "
                 f"synthesis_r2_mean={result.get('synthesis_r2_mean', float('nan')):.4f}")
    if "pooled_r2" in result:
        lines.append(f"one pooled line: R²={result['pooled_r2']:.4f} cents_error_median={result['cents_error_median']:.0f} "
                     f"octave_error_rate={result['octave_error_rate']:.3f}")
    if "engine_line_cents_error_median" in result:
        lines.append(f"the preset's own line: cents_error_median={result['engine_line_cents_error_median']:.0f} "
                     f"octave_error_rate={result['engine_line_octave_error_rate']:.3f}")
    lines.append("no-training baselines (r2_mean): " + " ".join(
        f"{k}={v:.4f}" for k, v in result.get("baselines", {}).items()))
    return lines


def evaluate(model: LatentModel, *, soundfont: str | None = None, progress: bool = True) -> Evaluation:
    """``audiosym eval sps MODEL``: :func:`evaluate_sps` with the synthesis check, its summary and plot."""
    result = evaluate_sps(model, soundfont=soundfont, progress=progress, return_codes=True)
    codes = result.pop("_codes")
    return Evaluation(metrics=result, lines=summary_lines(result),
                      plot=lambda path, label: plot({**result, "_codes": codes}, str(path)))
