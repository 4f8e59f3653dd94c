"""``audiosym demo``: render a melody, re-timbre it with the shipped presets, write WAVs and a PNG.

Torch-free and offline: the melody is rendered with the TimGM6mb soundfont (shipped inside
the pretty_midi wheel), each shipped preset re-timbres it in transfer mode with the melody's
notes driving pitch (the input's dynamics drive loudness), and one spectrogram figure puts
the input above every output.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audiosym.data.soundfonts import find_soundfont, render_melody
from audiosym.engine.control import melody_events
from audiosym.engine.dynamics import DEFAULT_DYNAMICS
from audiosym.engine.engine import Engine
from audiosym.engine.first_run import announce_first_run
from audiosym.errors import ParameterError, PresetError
from audiosym.io.audio import write_wav
from audiosym.io.midifile import MelodyNote
from audiosym.offline.render import render_signal
from audiosym.preset.format import preset_files
from audiosym.preset.model import Preset
from audiosym.preset.session import load_preset

#: The demo melody: ``(onset_s, duration_s, midi_pitch, velocity)``, 4.8 s, within MIDI 60..72.
DEMO_MELODY: tuple[tuple[float, float, int, int], ...] = tuple(
    (0.4 * i, 0.4 * d - 0.02, p, v)
    for i, d, p, v in [
        (0, 1, 60, 90), (1, 1, 62, 80), (2, 1, 64, 90), (3, 1, 67, 100), (4, 2, 69, 100),
        (6, 1, 67, 80), (7, 1, 64, 80), (8, 1, 65, 90), (9, 1, 62, 80), (10, 2, 72, 110),
    ]
)
#: The input instrument: GM program 71 (clarinet) — sustained, so its loudness envelope carries
#: the phrasing and the pitch is unambiguous.
DEMO_PROGRAM = 71
DEMO_SAMPLE_RATE = 44100
@dataclass
class DemoResult:
    """Where everything went: ``out_dir``, ``input_wav``, ``outputs`` [(preset, timbre, wav)], ``png``."""

    out_dir: Path
    input_wav: Path
    outputs: list[tuple[str, str, Path]] = field(default_factory=list)
    png: Path | None = None
    seconds: float = 0.0


def contrasting_timbres(preset: Preset, count: int, *, exclude=()) -> list[str]:
    """Up to ``count`` timbre names far apart: the default timbre, then farthest-point picks
    (each next name maximises its distance to those already chosen), so the demo covers the
    preset's timbre space instead of near-duplicates. Names in ``exclude`` are never chosen
    (the first remaining name stands in for an excluded default)."""
    names = [n for n in preset.timbre_names if n not in set(exclude)]
    if not names:
        return []
    vectors = {n: preset.timbre_vector(n).astype(np.float64) for n in names}
    chosen = [preset.default_timbre if preset.default_timbre in names else names[0]]
    while len(chosen) < min(count, len(names)):
        rest = [n for n in names if n not in chosen]
        chosen.append(max(rest, key=lambda n: (min(np.linalg.norm(vectors[n] - vectors[c]) for c in chosen), n)))
    return chosen


def fresh_output_dir(out: str | Path, *, overwrite: bool) -> Path:
    """``out`` when it is new, empty, or ``overwrite``; else a new ``out/run-NNN`` subfolder."""
    out = Path(out)
    if overwrite or not out.exists() or (out.is_dir() and not any(out.iterdir())):
        out.mkdir(parents=True, exist_ok=True)
        return out
    if not out.is_dir():
        raise ParameterError(f"out={out} exists and is not a folder; choose another output folder")
    for n in range(1, 10000):
        cand = out / f"run-{n:03d}"
        try:
            cand.mkdir()
        except FileExistsError:
            continue
        return cand
    raise ParameterError(f"out={out} already holds 9999 demo runs; clean it up or pass overwrite=True")


def _fit_melody(midi_range: tuple[int, int]) -> list[tuple[float, float, int, int]]:
    """The demo melody moved by whole octaves into the preset's playable range when needed."""
    lo, hi = midi_range
    pitches = [p for _, _, p, _ in DEMO_MELODY]
    shift = 0
    while min(pitches) + shift < lo and max(pitches) + shift + 12 <= hi:
        shift += 12
    while max(pitches) + shift > hi and min(pitches) + shift - 12 >= lo:
        shift -= 12
    return [(o, d, p + shift, v) for o, d, p, v in DEMO_MELODY]


def shipped_presets() -> list[Path]:
    """The shipped preset files (``presets/*.asym``), sorted by name."""

    return [path for _, path, where in preset_files() if where == "shipped"]


def run_demo(
    *,
    out: str | Path = "demo_out",
    overwrite: bool = False,
    presets: list[str] | None = None,
    timbres_per_preset: int = 4,
    sample_rate: int = DEMO_SAMPLE_RATE,
    plot: bool = True,
    log=sys.stderr,
) -> DemoResult:
    """Render the demo; ``presets``: names/paths (default: every shipped preset)."""

    start = time.perf_counter()
    if timbres_per_preset < 1:
        raise ParameterError(f"timbres_per_preset={timbres_per_preset} must be at least 1")
    sources = presets if presets else [str(p) for p in shipped_presets()]
    if not sources:
        raise PresetError(
            "no shipped presets were found (the presets/ folder is missing or empty); pass preset=FILE.asym, "
            "or make one: audiosym train sps --config tiny --out runs/sps && audiosym export runs/sps --out my.asym"
        )
    announce_first_run(log)  # the match tables and the first engine compile numba kernels
    loaded = [load_preset(p, device="cpu").with_stored_match() for p in sources]
    out_dir = fresh_output_dir(out, overwrite=overwrite)
    soundfont = find_soundfont("TimGM6mb")
    notes = list(DEMO_MELODY)
    y = render_melody(soundfont, DEMO_PROGRAM, notes, sample_rate=sample_rate, tail_seconds=0.4)
    result = DemoResult(out_dir=out_dir, input_wav=write_wav(out_dir / "input.wav", y, sample_rate=sample_rate))
    panels = [("input: TimGM6mb clarinet", y)]
    for preset in loaded:
        melody = [MelodyNote(o, o + d, p, v) for o, d, p, v in _fit_melody(preset.midi_range)]
        events = melody_events(melody, sample_rate=sample_rate, n_samples=len(y))
        for timbre in contrasting_timbres(preset, timbres_per_preset):

            engine = Engine(preset, timbre=timbre, sample_rate=sample_rate, mode="transfer", dynamics=DEFAULT_DYNAMICS)
            z = render_signal(engine, y, events)
            peak = float(np.max(np.abs(z))) if len(z) else 0.0
            if peak > 0.99:  # keep the WAVs listenable at equal level without clipping
                z = z * (0.99 / peak)
            wav = write_wav(out_dir / f"{preset.name}__{timbre}.wav", z, sample_rate=sample_rate)
            result.outputs.append((preset.name, timbre, wav))
            panels.append((f"{preset.name} -> {timbre}", z))
            print(f"  {preset.name} -> {timbre}: {wav}", file=log)
    if plot:
        result.png = plot_spectrograms(panels, sample_rate=sample_rate, path=out_dir / "spectrograms.png")
    result.seconds = time.perf_counter() - start
    return result


def plot_spectrograms(panels: list[tuple[str, np.ndarray]], *, sample_rate: int, path: Path) -> Path:
    """One mel spectrogram (dB, 80 dB range, one colour scale for all) per ``(title, y)`` panel."""
    # lazy: matplotlib (~0.5 s), only when the demo draws its PNG
    import matplotlib

    matplotlib.use("Agg")  # no display needed, and never opens a window
    # lazy: matplotlib (~0.5 s), only when the demo draws its PNG
    import librosa.display
    import matplotlib.pyplot as plt

    hop, fmax = 512, min(8000, sample_rate // 2)  # the models hear up to ~7.6 kHz
    specs = []
    for _, y in panels:
        mel = librosa.feature.melspectrogram(y=y.astype(np.float32), sr=sample_rate, n_fft=2048,
                                             hop_length=hop, n_mels=128, fmax=fmax)
        specs.append(librosa.power_to_db(mel, ref=1.0, amin=1e-10))
    top = max(float(s.max()) for s in specs)
    cols = 1 if len(panels) <= 4 else 2
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 2.0 * rows + 0.4), squeeze=False,
                             sharex=True, sharey=True, layout="constrained")
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (title, _), spec in zip(axes.flat, panels, specs):
        im = librosa.display.specshow(spec, sr=sample_rate, hop_length=hop, x_axis="time", y_axis="mel",
                                      fmax=fmax, ax=ax, cmap="magma", vmin=top - 80, vmax=top)
        ax.set_title(title, fontsize=9, loc="left")
        ax.label_outer()
    fig.colorbar(im, ax=axes, shrink=0.5, label="dB")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
