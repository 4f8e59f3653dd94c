"""Render notes from a soundfont and featurise them, cached on disk by all their parameters.

The result is a :class:`NoteTable`: one row per (program, pitch, velocity) with the
feature frames of that note. Training samples sequences (scales, walks, fragments)
by indexing this table, so every note is rendered and featurised exactly once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from audiosym.data.plans import instrument_range
from audiosym.data.soundfonts import find_soundfont, render_note, soundfont_fingerprint
from audiosym.dsp.features import FeatureConfig, features
from audiosym.errors import ParameterError
from audiosym.io.audio import atomic_path

CACHE_VERSION = 1
TARGET_RMS_DB = -20.0
SILENT_RMS_DB = -90.0


def cache_dir() -> Path:
    """``$AUDIOSYM_CACHE`` or ``~/.cache/audiosym``."""
    return Path(os.environ.get("AUDIOSYM_CACHE", Path.home() / ".cache" / "audiosym"))


@dataclass(frozen=True)
class NoteSetSpec:
    """Everything that decides the content of a :class:`NoteTable` (and so its cache key)."""

    soundfont: str
    programs: tuple[int, ...]
    velocities: tuple[int, ...] = (100,)
    note_seconds: float = 0.5
    pitch_limits: tuple[int, int] = (36, 96)
    normalize_loudness: bool = True
    features: FeatureConfig = field(default_factory=FeatureConfig)

    def key(self) -> str:
        d = dataclasses.asdict(self)
        d["soundfont"] = soundfont_fingerprint(find_soundfont(self.soundfont))
        d["cache_version"] = CACHE_VERSION
        blob = json.dumps(d, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:20]


@dataclass
class NoteTable:
    """Rendered, featurised notes.

    Attributes: ``program``, ``pitch``, ``velocity`` ``[N]`` int16; ``frames``
    ``[N, T, n_bins]`` float32 (T = note_seconds / hop); ``level_db`` ``[N]``
    the render's RMS level before normalisation; ``dropped`` lists renders left out
    (with the reason).
    """

    spec: NoteSetSpec
    program: np.ndarray
    pitch: np.ndarray
    velocity: np.ndarray
    frames: np.ndarray
    level_db: np.ndarray
    dropped: list[dict]

    def __len__(self) -> int:
        return len(self.program)

    def index(self) -> dict[tuple[int, int, int], int]:
        """``{(program, pitch, velocity): row}``."""
        return {
            (int(p), int(m), int(v)): i
            for i, (p, m, v) in enumerate(zip(self.program, self.pitch, self.velocity))
        }

    def subset(self, mask: np.ndarray) -> NoteTable:
        return dataclasses.replace(
            self,
            program=self.program[mask],
            pitch=self.pitch[mask],
            velocity=self.velocity[mask],
            frames=self.frames[mask],
            level_db=self.level_db[mask],
        )


def _render_one(args: tuple) -> tuple[np.ndarray | None, float, str]:
    path, program, pitch, velocity, note_seconds, normalize, cfg_dict = args
    cfg = FeatureConfig.from_dict(cfg_dict)
    y = render_note(
        path, program, pitch, velocity=velocity, note_seconds=note_seconds, sample_rate=cfg.sample_rate
    )
    rms = float(np.sqrt(np.mean(y.astype(np.float64) ** 2)) + 1e-12)
    level_db = 20 * np.log10(rms)
    if level_db < SILENT_RMS_DB:
        return None, level_db, f"silent render ({level_db:.0f} dBFS)"
    if normalize:
        y = y * (10 ** (TARGET_RMS_DB / 20) / rms)
    return features(y, cfg), level_db, ""


def note_rows(spec: NoteSetSpec) -> list[tuple[int, int, int]]:
    rows = []
    for program in spec.programs:
        lo, hi = instrument_range(program, spec.pitch_limits)
        for pitch in range(lo, hi + 1):
            for velocity in spec.velocities:
                rows.append((int(program), pitch, int(velocity)))
    return rows


def load_notes(
    spec: NoteSetSpec, *, workers: int | None = None, progress: bool = True, use_cache: bool = True
) -> NoteTable:
    """Render + featurise every note of ``spec`` (all cores, progress bar), or load it from the cache."""
    if not spec.programs:
        raise ParameterError("programs=() must name at least one GM program")
    path = cache_dir() / "notes" / f"{spec.key()}.npz"
    if use_cache and path.exists():
        return _read(path, spec)
    sf_path = find_soundfont(spec.soundfont)
    rows = note_rows(spec)
    args = [
        (sf_path, p, m, v, spec.note_seconds, spec.normalize_loudness, spec.features.to_dict())
        for p, m, v in rows
    ]
    workers = workers or os.cpu_count() or 1
    desc = f"render {Path(sf_path).stem} ({len(rows)} notes)"
    if workers > 1 and len(args) > 32:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(
                tqdm(pool.map(_render_one, args, chunksize=16), total=len(args), desc=desc,
                     disable=not progress, file=sys.stderr)
            )
    else:
        results = [_render_one(a) for a in tqdm(args, desc=desc, disable=not progress, file=sys.stderr)]
    keep = [i for i, r in enumerate(results) if r[0] is not None]
    dropped = [
        {"program": rows[i][0], "pitch": rows[i][1], "velocity": rows[i][2], "reason": results[i][2]}
        for i, r in enumerate(results)
        if r[0] is None
    ]
    arr = np.asarray(rows, dtype=np.int16).reshape(-1, 3)
    table = NoteTable(
        spec=spec,
        program=arr[keep, 0],
        pitch=arr[keep, 1],
        velocity=arr[keep, 2],
        frames=np.stack([results[i][0] for i in keep]).astype(np.float32)
        if keep
        else np.zeros((0, 0, spec.features.n_bins), np.float32),
        level_db=np.asarray([results[i][1] for i in keep], dtype=np.float32),
        dropped=dropped,
    )
    if use_cache:
        _write(path, table)
    return table


def _write(path: Path, table: NoteTable) -> None:
    with atomic_path(path, suffix=".tmp.npz") as tmp:  # a crash never leaves a half-written cache entry
        np.savez(
            tmp,
            program=table.program,
            pitch=table.pitch,
            velocity=table.velocity,
            frames=table.frames,
            level_db=table.level_db,
            dropped=json.dumps(table.dropped),
        )


def _read(path: Path, spec: NoteSetSpec) -> NoteTable:
    with np.load(path) as z:
        return NoteTable(
            spec=spec,
            program=z["program"],
            pitch=z["pitch"],
            velocity=z["velocity"],
            frames=z["frames"],
            level_db=z["level_db"],
            dropped=json.loads(str(z["dropped"])),
        )
