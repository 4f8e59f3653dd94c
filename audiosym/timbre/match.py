"""What a preset stores about its named timbres beyond their vectors: match corrections and
note envelopes, measured at export from the training soundfont (``match.npz`` in the preset).

A named timbre is the mean timbre vector of one GM program of the preset's training soundfont.
Three things about that program are measured once, torch-free, from the exported graphs:

- a spectral **match correction** (:func:`named_corrections`): what the
  decoder, fed the program's notes' pitch and the named vector, still gets wrong, averaged per
  register; like a "match EQ" it moves the decoded spectrum towards the program's own;
- a **note envelope**: the level of a held note (velocity 100) against time since its note-on,
  in dB below the note's peak, per register (every ``ENV_STEP_SEMITONES``) for
  ``ENV_SECONDS``; a piano decays, an organ holds. The engine plays it in transfer mode with
  ``dynamics="timbre"``: the input sets how loud a note is, the timbre how it evolves;
- a **band profile** (:mod:`audiosym.timbre.band`, :func:`measure_bands`): how the program's
  spectrum goes on above the model's 8 kHz band, per register, from renders at 44.1 kHz; the
  engine extends its output with it at output rates of 32 kHz and up;
- a **sub-harmonic ratio** (half-harmonic over harmonic energy): at ``SUBHARMONIC_RATIO`` or
  more (an organ's 16' stop) the engine plays the timbre on the f0 / 2 partial series.

:class:`MatchTable` applies the corrections to decoded frames in one compiled pass, for the
engine's decode path.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from audiosym.data.plans import instrument_range
from audiosym.data.soundfonts import find_soundfont, render_melody, render_note
from audiosym.dsp.features import FeatureConfig, features
from audiosym.errors import AudiosymError, ParameterError, PresetError
from audiosym.families.base import CalibratedModel
from audiosym.timbre.band import MEASURE_RATE, BandProfile, measure_band
from audiosym.timbre.envelope import (
    ENV_HOP_S,
    ENV_SECONDS,
    ENV_STEP_SEMITONES,
    ENV_VELOCITY,
    NoteEnvelope,
    held_note_db,
    pitch_row,
)
from audiosym.timbre.reference import (
    SUBHARMONIC_RATIO,
    TimbreReference,
    reference_from_audio,
    subharmonic_ratio,
)

MEMBER = "match.npz"


@dataclass
class NamedMatch:
    """The stored measurements: references (corrections of named vectors) and envelopes by name."""

    references: list[TimbreReference] = field(default_factory=list)
    envelopes: dict[str, NoteEnvelope] = field(default_factory=dict)
    subharmonic: dict[str, float] = field(default_factory=dict)  # half-harmonic / harmonic energy
    info: dict = field(default_factory=dict)
    bands: dict[str, BandProfile] = field(default_factory=dict)  # above the model's band


BAND_NOTE_S = 0.5  # a band profile's notes: held this long, attack included


def measure_bands(preset: CalibratedModel, names: list[str] | None = None, *, soundfont: str | None = None,
                  progress: bool = False) -> dict[str, BandProfile]:
    """Band profiles (:func:`audiosym.timbre.band.measure_band`) of the named timbres' programs on
    the training soundfont: one ``BAND_NOTE_S`` note (velocity 100) every semitone of each program's
    range within the preset's, rendered at ``MEASURE_RATE`` (44.1 kHz)."""
    sf_name = training_soundfont(preset, soundfont)
    sf_path = find_soundfont(sf_name)
    lo, hi = preset.midi_range
    names = [n for n in (names or preset.timbre_names) if preset.timbre_program(n) >= 0]
    it = tqdm(names, desc="band profiles", unit="timbre", leave=False) if progress else names
    out = {}
    for name in it:
        program = preset.timbre_program(name)
        ilo, ihi = instrument_range(program)
        notes = [(float(p), render_note(sf_path, program, p, velocity=ENV_VELOCITY, note_seconds=BAND_NOTE_S,
                                        sample_rate=MEASURE_RATE))
                 for p in range(max(lo, ilo), min(hi, ihi) + 1)]
        prof = measure_band(notes, MEASURE_RATE, source=f"{sf_name} program {program}")
        if prof is not None:
            out[name] = prof
    return out


# -------------------------------------------------------------------------- measuring
def measure_notes(preset: CalibratedModel, names: list[str] | None = None, *, soundfont: str | None = None,
                  progress: bool = False) -> tuple[dict[str, NoteEnvelope], dict[str, float]]:
    """``(envelopes, subharmonic)`` of the named timbres' programs on the training soundfont,
    from one held note (velocity 100, ``ENV_SECONDS``) every ``ENV_STEP_SEMITONES`` of each
    program's range within the preset's:

    - the note envelope (see the module docstring);
    - the sub-harmonic ratio: energy at the half-harmonics (0.5, 1.5, 2.5, 3.5) f0 over that at
      the harmonics (1 .. 4) f0 in the note's features 160..448 ms in, median over the notes.
      About 0.001-0.05 for most GM programs, 1.2-1.7 for FluidR3's drawbar organ (a 16' stop:
      its partials are the harmonics of f0 / 2).
    """
    sf_path = find_soundfont(training_soundfont(preset, soundfont))
    cfg = preset.features
    sr = cfg.sample_rate
    lo, hi = preset.midi_range
    envelopes, subharmonic = {}, {}
    names = list(names or preset.timbre_names)
    it = tqdm(names, desc="note envelopes", unit="timbre", leave=False) if progress else names
    for name in it:
        program = preset.timbre_program(name)
        if program < 0:
            continue
        ilo, ihi = instrument_range(program)
        a, b = max(lo, ilo), min(hi, ihi)
        if a > b:
            continue
        grid = np.unique(np.r_[np.arange(a, b + 1, ENV_STEP_SEMITONES), b]).astype(np.float64)
        rows, ratios = [], []
        for p in grid:
            y = render_note(sf_path, program, int(p), velocity=ENV_VELOCITY, note_seconds=ENV_SECONDS + ENV_HOP_S,
                            sample_rate=sr).astype(np.float64)
            rows.append(held_note_db(y, sr, float(p)))
            ratio = subharmonic_ratio(features(y[: sr // 2].astype(np.float32), cfg)[10:28], float(p), cfg)
            if np.isfinite(ratio):
                ratios.append(ratio)
        envelopes[name] = NoteEnvelope(grid, np.asarray(rows, dtype=np.float32), ENV_HOP_S)
        if ratios:
            subharmonic[name] = float(np.median(ratios))
    return envelopes, subharmonic


def training_soundfont(preset: CalibratedModel, soundfont: str | None = None) -> str:
    """``soundfont``, else the soundfont the preset's named timbres came from
    (``metadata.calibration.soundfont``); ParameterError when neither is known."""
    name = soundfont or preset.metadata.get("calibration", {}).get("soundfont")
    if not name:
        raise ParameterError("the preset does not record its training soundfont; pass soundfont=NAME")
    return str(name)


def named_corrections(preset: CalibratedModel, names: list[str] | None = None, *, soundfont: str | None = None,
                      step_semitones: int = 2, note_seconds: float = 0.5) -> list:
    """Match corrections for the preset's NAMED timbres, measured where their vectors came from.

    Each named timbre is the mean timbre vector of one GM program of the preset's training
    soundfont (``metadata.calibration.soundfont``, else ``soundfont``); this renders that program
    playing every ``step_semitones`` of its range within the preset's, notes labelled (no pyin),
    and measures the correction of the named vector (``reference_from_audio(vector=...)``).
    Returns :class:`audiosym.timbre.reference.TimbreReference` objects; use as
    ``preset.with_references(named_corrections(preset), replace_named=True)``.
    """
    sf_name = training_soundfont(preset, soundfont)
    sf_path = find_soundfont(sf_name)
    sr = preset.features.sample_rate
    lo, hi = preset.midi_range
    out = []
    for name in names or preset.timbre_names:
        program = preset.timbre_program(name)
        ilo, ihi = instrument_range(program)
        pitches = list(range(max(lo, ilo), min(hi, ihi) + 1, step_semitones))
        notes = [(i * note_seconds, (i + 1) * note_seconds - 0.05, p) for i, p in enumerate(pitches)]
        y = render_melody(sf_path, program, [(a, b - a, p, 100) for a, b, p in notes], sample_rate=sr,
                          tail_seconds=0.2)
        out.append(reference_from_audio(preset, y, sample_rate=sr, name=name, notes=notes,
                                        vector=preset.timbre_vector(name), source=f"{sf_name} program {program}"))
    return out


def measure_named(preset: CalibratedModel, names: list[str] | None = None, *, soundfont: str | None = None,
                  progress: bool = False) -> NamedMatch:
    """Match corrections and note envelopes of the preset's named timbres (programs >= 0)."""
    sf_name = training_soundfont(preset, soundfont)
    names = [n for n in (names or preset.timbre_names) if preset.timbre_program(n) >= 0]
    it = tqdm(names, desc="match corrections", unit="timbre", leave=False) if progress else names
    refs, skipped = [], {}
    for name in it:
        try:
            refs.append(named_corrections(preset, [name], soundfont=sf_name)[0])
        except AudiosymError as exc:  # e.g. no note of the program inside the preset's range
            skipped[name] = " ".join(str(exc).split())
    names = [r.name for r in refs]
    envelopes, subharmonic = measure_notes(preset, names, soundfont=sf_name, progress=progress)
    bands = measure_bands(preset, names, soundfont=sf_name, progress=progress)
    info = {"soundfont": sf_name, "timbres": names, "envelope_seconds": ENV_SECONDS,
            "envelope_hop_s": ENV_HOP_S, "envelope_step_semitones": ENV_STEP_SEMITONES,
            "envelope_velocity": ENV_VELOCITY, **({"skipped": skipped} if skipped else {})}
    info["subharmonic_timbres"] = sorted(n for n, r in subharmonic.items() if r >= SUBHARMONIC_RATIO)
    info["band_extension"] = {"timbres": sorted(bands), "measure_rate": MEASURE_RATE,
                              "note_seconds": BAND_NOTE_S}
    return NamedMatch(refs, envelopes, subharmonic, info, bands)


# -------------------------------------------------------------------------- storing
def to_bytes(match: NamedMatch) -> bytes:
    """``match.npz`` bytes (corrections float16: they are capped at +-4.6 natural-log units)."""
    refs = match.references
    arrays: dict[str, np.ndarray] = {
        "ref_names": np.array([r.name for r in refs], dtype=str),
        "ref_vectors": np.stack([r.vector for r in refs]).astype(np.float32) if refs else np.zeros((0, 0), np.float32),
        "ref_grid_start": np.array([r.pitch_grid[0] for r in refs], dtype=np.float64),
        "ref_grid_len": np.array([len(r.pitch_grid) for r in refs], dtype=np.int64),
        "ref_relative": (np.concatenate([r.relative for r in refs]).astype(np.float16) if refs
                         else np.zeros((0, 0), np.float16)),
        "ref_absolute": (np.stack([r.absolute for r in refs]).astype(np.float16) if refs
                         else np.zeros((0, 0), np.float16)),
        "ref_frames": np.array([r.frames for r in refs], dtype=np.int64),
        "ref_midi_range": np.array([r.midi_range for r in refs], dtype=np.float64).reshape(-1, 2),
        "ref_sources": np.array([r.source for r in refs], dtype=str),
    }
    for i, (name, env) in enumerate(sorted(match.envelopes.items())):
        arrays[f"env{i}_name"] = np.array(name)
        arrays[f"env{i}_grid"] = env.pitch_grid.astype(np.float64)
        arrays[f"env{i}_db"] = env.db.astype(np.float16)
        arrays[f"env{i}_hop"] = np.array(env.hop_s)
    arrays["sub_names"] = np.array(sorted(match.subharmonic), dtype=str)
    arrays["sub_ratio"] = np.array([match.subharmonic[n] for n in sorted(match.subharmonic)], dtype=np.float64)
    for i, (name, prof) in enumerate(sorted(match.bands.items())):
        arrays[f"band{i}_name"] = np.array(name)
        arrays[f"band{i}_grid"] = prof.pitch_grid.astype(np.float64)
        arrays[f"band{i}_harm"] = prof.harm_db.astype(np.float16)
        arrays[f"band{i}_noise"] = prof.noise_db.astype(np.float16)
        arrays[f"band{i}_source"] = np.array(prof.source)
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]  # (numpy stubs type **kwds as allow_pickle)
    return buf.getvalue()


def from_bytes(blob: bytes, *, where: str = MEMBER) -> NamedMatch:
    """The :class:`NamedMatch` stored as ``blob`` (:func:`to_bytes`); PresetError naming ``where``."""
    try:
        z = np.load(io.BytesIO(blob), allow_pickle=False)
        refs = []
        rel = z["ref_relative"].astype(np.float32)
        start = 0
        for i, name in enumerate(z["ref_names"]):
            g = int(z["ref_grid_len"][i])
            refs.append(TimbreReference(
                name=str(name), vector=z["ref_vectors"][i].astype(np.float32),
                pitch_grid=float(z["ref_grid_start"][i]) + np.arange(g, dtype=np.float64),
                relative=rel[start:start + g], absolute=z["ref_absolute"][i].astype(np.float32),
                frames=int(z["ref_frames"][i]),
                midi_range=(float(z["ref_midi_range"][i][0]), float(z["ref_midi_range"][i][1])),
                source=str(z["ref_sources"][i])))
            start += g
        envelopes = {}
        i = 0
        while f"env{i}_name" in z:
            envelopes[str(z[f"env{i}_name"])] = NoteEnvelope(z[f"env{i}_grid"].astype(np.float64),
                                                              z[f"env{i}_db"].astype(np.float32),
                                                              float(z[f"env{i}_hop"]))
            i += 1
        subharmonic = ({str(n): float(r) for n, r in zip(z["sub_names"], z["sub_ratio"])}
                       if "sub_names" in z else {})
        bands = {}
        i = 0
        while f"band{i}_name" in z:  # presets exported before band profiles have none
            bands[str(z[f"band{i}_name"])] = BandProfile(
                z[f"band{i}_grid"].astype(np.float64), z[f"band{i}_harm"].astype(np.float32),
                z[f"band{i}_noise"].astype(np.float32), str(z[f"band{i}_source"]))
            i += 1
    except (KeyError, ValueError, OSError, IndexError) as exc:
        raise PresetError(f"{where} cannot be read ({exc}); re-export the preset") from None
    return NamedMatch(refs, envelopes, subharmonic, bands=bands)


# -------------------------------------------------------------------------- applying
class MatchTable:
    """Corrections of several references applied to decoded frames in one compiled pass.

    ``apply(out [N, T, n_bins], timbre [N, T, D], midi [N, T])`` adds, to each row, each
    reference's correction weighted by ``w = max(0, 1 - |v - v_ref| / scale_ref)``
    (see :mod:`audiosym.timbre.layer`): the relative table read at the row's
    pitch (linear between semitone rows, clamped) and shifted to its pitch bin (linear between
    entries, clamped at the ends, as ``np.interp`` reads it), plus the absolute curve. The
    relative tables are resampled onto one common semitone grid at construction; the per-row
    work runs in numba (about 5 us for the engine's one-row requests, not ~100 us of numpy calls).
    """

    def __init__(self, references: list[TimbreReference], scales, cfg: FeatureConfig):
        self.vectors = np.ascontiguousarray(np.stack([r.vector for r in references]), dtype=np.float64)  # [R, D]
        self.scales = np.asarray(scales, dtype=np.float64)
        self.fmin, self.bps = float(cfg.fmin_midi), float(cfg.bins_per_semitone)
        g0 = min(float(r.pitch_grid[0]) for r in references)
        g1 = max(float(r.pitch_grid[-1]) for r in references)
        self.g0 = g0
        grid = np.arange(g0, g1 + 1.0)
        self.table = np.ascontiguousarray(np.stack([np.stack([pitch_row(r.relative, r.pitch_grid, g) for g in grid])
                                                    for r in references]), dtype=np.float32)  # [R, G, 2 n - 1]
        self.absolute = np.ascontiguousarray(np.stack([r.absolute for r in references]), dtype=np.float32)
        n = self.absolute.shape[1]
        self.apply(np.zeros((1, 1, n), np.float32), self.vectors[:1, None].astype(np.float32),
                   np.full((1, 1), 60.0))  # compile now, not in an audio callback

    def apply(self, out: np.ndarray, timbre: np.ndarray, midi: np.ndarray) -> np.ndarray:
        out = np.array(out, dtype=np.float32, copy=True)
        shape = out.shape
        flat = out.reshape(-1, shape[-1])
        t = np.ascontiguousarray(np.asarray(timbre, dtype=np.float64).reshape(-1, self.vectors.shape[1]))
        m = np.ascontiguousarray(np.asarray(midi, dtype=np.float64).reshape(-1))
        _apply_kernel()(flat, t, m, self.vectors, self.scales, self.table, self.absolute, self.g0, self.fmin,
                        self.bps)
        return flat.reshape(shape)


@functools.lru_cache(maxsize=1)
def _apply_kernel():
    import numba  # lazy: ~0.3 s; --help imports this module (preset.session -> preset.model)

    @numba.njit(cache=True, nogil=True)
    def apply(out, timbre, midi, vectors, scales, table, absolute, g0, fmin, bps):  # pragma: no cover - compiled
        n_rows, n = out.shape
        n_refs, dim = vectors.shape
        n_grid, width = table.shape[1], table.shape[2]
        for i in range(n_rows):
            m = midi[i] if np.isfinite(midi[i]) else 60.0
            x = min(max(m - g0, 0.0), n_grid - 1.0)
            gi = min(int(np.floor(x)), max(n_grid - 2, 0))
            gf = x - gi if n_grid > 1 else 0.0
            gj = min(gi + 1, n_grid - 1)
            pos = (n - 1) - (m - fmin) * bps
            k = int(np.floor(pos))
            f = pos - k
            for r in range(n_refs):
                d = 0.0
                for q in range(dim):
                    diff = timbre[i, q] - vectors[r, q]
                    d += diff * diff
                w = min(1.0 - np.sqrt(d) / scales[r], 1.0)
                if w <= 0.0:
                    continue
                for b in range(n):
                    j0 = min(max(k + b, 0), width - 1)
                    j1 = min(max(k + b + 1, 0), width - 1)
                    lo = table[r, gi, j0] + gf * (table[r, gj, j0] - table[r, gi, j0])
                    hi = table[r, gi, j1] + gf * (table[r, gj, j1] - table[r, gi, j1])
                    out[i, b] += w * (lo + f * (hi - lo) + absolute[r, b])

    return apply
