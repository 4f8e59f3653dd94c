"""Find General MIDI soundfonts and render notes from them with tinysoundfont (offline)."""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tinysoundfont

from audiosym.data.plans import instrument_range
from audiosym.errors import SoundfontError


@dataclass(frozen=True)
class KnownSoundfont:
    name: str
    patterns: tuple[str, ...]
    provider: str
    note: str


def _pretty_midi_dir() -> str:
    spec = importlib.util.find_spec("pretty_midi")
    if spec is None or spec.origin is None:
        return ""
    return os.path.dirname(spec.origin)


KNOWN_SOUNDFONTS: tuple[KnownSoundfont, ...] = (
    KnownSoundfont(
        "TimGM6mb",
        ("{pretty_midi}/TimGM6mb.sf2",),
        "pip package pretty_midi (always installed with audiosym)",
        "small (6 MB), always available",
    ),
    KnownSoundfont(
        "FluidR3_GM",
        ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/soundfonts/FluidR3_GM.sf2"),
        "Debian/Ubuntu package fluid-soundfont-gm (apt-get install --no-install-recommends fluid-soundfont-gm)",
        "the papers' training soundfont (142 MB)",
    ),
    KnownSoundfont(
        "MuseScore_General",
        (
            "/usr/share/sounds/sf3/MuseScore_General.sf3",
            "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3",
            "/usr/share/sounds/sf2/MuseScore_General*.sf2",
        ),
        "Debian/Ubuntu package musescore-general-soundfont-small (apt-get install --no-install-recommends musescore-general-soundfont-small)",
        "a different soundfont, used as the held-out test set",
    ),
)

ALIASES = {
    "timgm6mb": "TimGM6mb",
    "tim": "TimGM6mb",
    "fluidr3_gm": "FluidR3_GM",
    "fluidr3": "FluidR3_GM",
    "fluid": "FluidR3_GM",
    "musescore_general": "MuseScore_General",
    "musescore": "MuseScore_General",
}


def _candidates(known: KnownSoundfont) -> list[str]:
    out: list[str] = []
    for pattern in known.patterns:
        pattern = pattern.format(pretty_midi=_pretty_midi_dir())
        out.extend(sorted(glob.glob(pattern)))
    return out


def available_soundfonts() -> dict[str, str]:
    """Known soundfonts found on this machine: ``{name: path}``."""
    found = {}
    for known in KNOWN_SOUNDFONTS:
        paths = _candidates(known)
        if paths:
            found[known.name] = paths[0]
    return found


def find_soundfont(name_or_path: str | os.PathLike) -> str:
    """Resolve a soundfont name (``TimGM6mb``, ``FluidR3_GM``, ``MuseScore_General``) or a path."""
    text = str(name_or_path)
    if text.lower().endswith((".sf2", ".sf3")) or os.sep in text:
        if os.path.isfile(text):
            return os.path.abspath(text)
        raise SoundfontError(f"soundfont file {text!r} does not exist.\n" + _listing())
    canonical = ALIASES.get(text.lower(), text)
    for known in KNOWN_SOUNDFONTS:
        if known.name == canonical:
            paths = _candidates(known)
            if paths:
                return paths[0]
            raise SoundfontError(
                f"soundfont {text!r} is not installed; it comes from {known.provider}.\n"
                + _listing()
            )
    raise SoundfontError(
        f"unknown soundfont {text!r}: give a path to a .sf2/.sf3 file or one of the names below.\n"
        + _listing()
    )


def _listing() -> str:
    lines = ["Known soundfonts:"]
    for known in KNOWN_SOUNDFONTS:
        paths = _candidates(known)
        where = paths[0] if paths else "not installed"
        lines.append(f"  {known.name:18s} {where}\n  {'':18s} {known.note}; from {known.provider}")
    return "\n".join(lines)


def default_train_soundfont() -> str:
    """The best installed training soundfont: FluidR3_GM when present, else TimGM6mb."""
    found = available_soundfonts()
    return found.get("FluidR3_GM") or find_soundfont("TimGM6mb")


def default_test_soundfont(train_path: str) -> str:
    """A soundfont other than ``train_path`` for held-out evaluation (MuseScore General first)."""
    train_path = os.path.abspath(train_path)
    found = available_soundfonts()
    for name in ("MuseScore_General", "FluidR3_GM", "TimGM6mb"):
        path = found.get(name)
        if path and os.path.abspath(path) != train_path:
            return path
    raise SoundfontError(
        "no held-out soundfont differs from the training soundfont " + train_path + "\n" + _listing()
    )


def soundfont_label(path: str) -> str:
    """Short readable name of a soundfont path (its file stem)."""
    return Path(path).stem


def soundfont_fingerprint(path: str) -> str:
    """Cheap identity of a soundfont file for cache keys: size + mtime + hash of the first MB."""
    st = os.stat(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
    return f"{st.st_size}-{int(st.st_mtime)}-{h.hexdigest()[:16]}"


_SYNTHS: dict[tuple[str, int], tuple[object, int]] = {}


def _synth(path: str, sample_rate: int):
    key = (path, sample_rate)
    if key not in _SYNTHS:
        synth = tinysoundfont.Synth(samplerate=sample_rate)
        try:
            sfid = synth.sfload(path)
        except Exception as exc:  # tinysoundfont raises its own exception types
            raise SoundfontError(f"could not load soundfont {path!r}: {exc}") from exc
        _SYNTHS[key] = (synth, sfid)
    return _SYNTHS[key]


def render_note(
    path: str,
    program: int,
    pitch: int,
    *,
    velocity: int = 100,
    note_seconds: float = 0.5,
    release_seconds: float = 0.0,
    sample_rate: int = 16000,
) -> np.ndarray:
    """Render one note alone, mono float32 ``[round((note_seconds + release_seconds) * sample_rate)]``.

    The note is held for ``note_seconds``; ``release_seconds`` of its release tail follow.
    """
    synth, sfid = _synth(path, sample_rate)
    synth.sounds_off()
    synth.program_select(0, sfid, 0, int(program))
    n_on = int(round(note_seconds * sample_rate))
    n_off = int(round(release_seconds * sample_rate))
    synth.noteon(0, int(pitch), int(velocity))
    on = np.frombuffer(synth.generate(n_on), dtype=np.float32)
    synth.noteoff(0, int(pitch))
    parts = [on]
    if n_off:
        parts.append(np.frombuffer(synth.generate(n_off), dtype=np.float32))
    synth.sounds_off()
    synth.generate(64)  # flush the voice so the next note starts clean
    stereo = np.concatenate(parts).reshape(-1, 2)
    return stereo.mean(axis=1).astype(np.float32)


def render_melody(
    path: str,
    program: int,
    notes: list[tuple[float, float, int, int]],
    *,
    sample_rate: int = 16000,
    tail_seconds: float = 0.5,
) -> np.ndarray:
    """Render ``(onset_s, duration_s, pitch, velocity)`` notes on one channel, mono float32."""
    synth, sfid = _synth(path, sample_rate)
    synth.sounds_off()
    synth.program_select(0, sfid, 0, int(program))
    events: list[tuple[int, int, int, int]] = []  # (sample, order, pitch, velocity)
    for onset, dur, pitch, vel in notes:
        events.append((int(round(onset * sample_rate)), 1, int(pitch), int(vel)))
        events.append((int(round((onset + dur) * sample_rate)), 0, int(pitch), 0))
    events.sort()
    end = (events[-1][0] if events else 0) + int(tail_seconds * sample_rate)
    out = []
    t = 0
    for sample, _, pitch, vel in events + [(end, 0, -1, 0)]:
        if sample > t:
            out.append(np.frombuffer(synth.generate(sample - t), dtype=np.float32))
            t = sample
        if pitch < 0:
            break
        if vel > 0:
            synth.noteon(0, pitch, vel)
        else:
            synth.noteoff(0, pitch)
    synth.sounds_off()
    synth.generate(64)
    stereo = np.concatenate(out).reshape(-1, 2) if out else np.zeros((0, 2), np.float32)
    return stereo.mean(axis=1).astype(np.float32)


BROKEN_RENDER_DB = 20.0  # a program this far under its soundfont's median program is a broken render


def program_levels(path: str, programs=range(128), *, velocity: int = 100, sample_rate: int = 16000) -> dict[int, float]:
    """Each program's median RMS level in dBFS over three 0.5 s notes at the quartiles of its GM
    range (``audiosym.data.plans.instrument_range``), all at one ``velocity``."""
    levels = {}
    for program in programs:
        lo, hi = instrument_range(int(program), limits=None)
        pitches = (round(lo + (hi - lo) * q) for q in (0.25, 0.5, 0.75))
        db = [20 * np.log10(np.sqrt(np.mean(render_note(path, program, p, velocity=velocity,
                                                          sample_rate=sample_rate) ** 2)) + 1e-12) for p in pitches]
        levels[int(program)] = float(np.median(db))
    return levels


def broken_renders(path: str, *, threshold_db: float = BROKEN_RENDER_DB) -> dict[int, float]:
    """Programs of the soundfont at ``path`` that render ``threshold_db`` or more under its median
    program, as ``{program: dB under the median}`` (levels from :func:`program_levels`).

    Instruments differ by up to about 15 dB at one velocity (every other MuseScore_General_Lite
    program lies within 14.5 dB of its median, FluidR3_GM's piano 15.2 dB under). A program 20 dB or more under the
    median is a broken sample or modulator as tinysoundfont plays it, or has no samples over much
    of the range audiosym plays it in: MuseScore_General_Lite's pianos (programs 0, 1 and 3) are
    ~39 dB under and have hardly any harmonics; FluidR3_GM's contrabass (43) is silent above
    MIDI 59. Such a render is no ground truth for its instrument, so the transfer benchmark leaves
    these programs out of its timbre set."""
    levels = program_levels(path)
    median = float(np.median(list(levels.values())))
    return {p: round(median - v, 1) for p, v in levels.items() if median - v >= threshold_db}
