"""Stand-in recordings for the tests: melodies rendered with TimGM6mb (it ships in pretty_midi) and
written to disk as real audio files, with the notes that were played."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from audiosym.data.soundfonts import find_soundfont, render_melody

TIMBRES = {"violin": (40, 60, 84), "flute": (73, 62, 86), "trumpet": (56, 57, 79)}


def melody(rng: np.random.Generator, lo: int, hi: int, seconds: float) -> list[tuple[float, float, int, int]]:
    """``(onset_s, duration_s, pitch, velocity)``: a random walk, legato and detached notes, rests."""
    notes, t, p = [], 0.3, (lo + hi) // 2
    while t < seconds - 1.0:
        d = float(rng.choice([0.3, 0.4, 0.5, 0.75]))
        p = int(np.clip(p + rng.choice([-5, -4, -3, -2, -1, 1, 2, 3, 4, 5]), lo, hi))
        notes.append((t, d * (1.0 if rng.random() < 0.5 else 0.85), p, int(rng.integers(80, 120))))
        t += d + (float(rng.uniform(0.2, 0.6)) if rng.random() < 0.1 else 0.0)
    return notes


def write_take(path: Path, program: int, notes, *, sample_rate: int = 44100, stereo: bool = False,
               gain: float = 0.5) -> np.ndarray:
    y = render_melody(find_soundfont("TimGM6mb"), program, notes, sample_rate=sample_rate)
    y = y / max(1e-9, float(np.abs(y).max())) * gain
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.stack([y, 0.8 * y], axis=1) if stereo else y, sample_rate)
    return y


def make_folder(root: Path, *, seconds: float = 14.0, takes: int = 2, seed: int = 0) -> dict[str, list]:
    """``root/<timbre>/take<i>.flac`` for each of TIMBRES; returns ``{file name: notes}``."""
    rng = np.random.default_rng(seed)
    played = {}
    for name, (program, lo, hi) in TIMBRES.items():
        for i in range(takes):
            notes = melody(rng, lo, hi, seconds)
            write_take(root / name / f"take{i}.flac", program, notes)
            played[f"{name}/take{i}.flac"] = notes
    return played
