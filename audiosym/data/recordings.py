"""A musician's own recordings as training notes: a folder of timbres -> analysed notes, cached.

``DIR`` holds one subfolder per timbre (``DIR/cello/*.wav``, ``DIR/my_voice/*.flac``, searched
recursively), or is one flat folder of a single timbre named after the folder. Files of any length,
sample rate and channel count (downmixed as the mean of the channels) in the formats
:mod:`audiosym.io.audio` reads.

Each file is read in blocks (memory stays bounded for a two-hour file: one minute of audio at a
time, and at most ``max_notes_per_file`` notes kept), brought to the features' rate with a soxr
stream, cut into notes without pitch labels (:mod:`audiosym.data.segment`), and each note kept as
``note_s`` of feature frames (loudness-normalised like rendered notes). Chords are detected and
left out (a file of mostly chords is refused), clipping is warned.

``eval_midi`` (a pyin pitch per note) is measured too, for evaluation and export calibration
ONLY: the training samplers never receive it (:meth:`Recordings.training_view`).

The cache holds one ``.npz`` per file, keyed by the file's content (sha256) and the analysis
settings: a rerun analyses nothing again, a new file is the only one analysed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import soxr

from audiosym.data.notes import TARGET_RMS_DB, cache_dir
from audiosym.data.segment import (
    SegmentSettings,
    cut_notes,
    harmonic_fraction,
    hop_levels_db,
    onset_flux,
)
from audiosym.dsp.features import FeatureConfig, features_step, init_state
from audiosym.dsp.pitch import hz_to_midi, midi_to_hz
from audiosym.errors import ParameterError
from audiosym.io.audio import (
    AUDIO_EXTENSIONS,
    SILENCE_PEAK,
    AudioInputError,
    atomic_path,
    read_audio,
)

ANALYSIS_VERSION = 3  # 3: chords judged frame by frame (sung glides, vibrato)
BLOCK_S = 30.0  # seconds of audio analysed at a time
GUARD_S = 4.0  # notes ending this close to a block's end wait for the next block
CHORD_DB = -11.5  # an unexplained peak this close to the strongest: several pitches
CHORD_FILE_FRACTION = 0.5  # a file with more chord notes than this is refused
CHORD_WARN_FRACTION = 0.1
CLIP_LEVEL = 0.999
CHORD_REASON = "chord (several pitches at once)"
CLIP_WARN_FRACTION = 1e-4
SKIP_FRAMES = 8  # frames whose window still reaches before the onset


@dataclass
class FileNotes:
    """One analysed file. Arrays are per note: ``frames [n, T, F]`` float16 (log-magnitude, loudness
    normalised), ``length`` (valid frames; the rest repeat the last valid one), ``onset_s`` (where
    it starts), ``part`` (0: at an onset; k: the k-th ``note_s`` piece of a longer note),
    ``level_db`` (before normalisation), ``chord_db`` and ``f0_midi`` (model-free, summaries only),
    ``eval_midi`` (pyin; NaN where unvoiced: evaluation and calibration only)."""

    path: str
    sha: str
    sample_rate: int
    channels: int
    seconds: float
    clipped_fraction: float
    frames: np.ndarray
    length: np.ndarray
    onset_s: np.ndarray
    part: np.ndarray
    level_db: np.ndarray
    chord_db: np.ndarray
    f0_midi: np.ndarray
    eval_midi: np.ndarray
    rejected: dict[str, int] = field(default_factory=dict)
    truncated: bool = False

    def __len__(self) -> int:
        return len(self.length)


def scan_folder(root: str | Path) -> tuple[dict[str, list[Path]], list[str]]:
    """``({timbre: [files]}, warnings)`` of a recordings folder (see the module docstring)."""
    root = Path(root).expanduser()
    if not root.exists():
        raise ParameterError(f"audio={str(root)!r}: no such folder; give a folder of recordings "
                             "(DIR/cello/*.wav, one subfolder per timbre)")
    if not root.is_dir():
        raise ParameterError(f"audio={str(root)!r} is a file; give the folder that holds it (one subfolder per timbre)")

    def audio_in(folder: Path, recursive: bool) -> list[Path]:
        found = folder.rglob("*") if recursive else folder.iterdir()
        return sorted(p for p in found if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
                      and not any(part.startswith(".") for part in p.relative_to(root).parts))

    notes: list[str] = []
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    found = {d.name: audio_in(d, True) for d in subdirs}
    timbres = {n: f for n, f in found.items() if f}
    loose = audio_in(root, False)
    if timbres:
        notes += [f"{root / n}: no audio files; folder skipped" for n, f in found.items() if not f]
        if loose:
            notes.append(f"{root}: {len(loose)} audio file(s) beside the timbre folders are not in a timbre; "
                         "ignored (move them into a subfolder named after their timbre)")
    elif loose:
        timbres = {root.resolve().name: loose}
    if not timbres:
        raise ParameterError(f"audio={str(root)!r} holds no audio files ({', '.join(AUDIO_EXTENSIONS)}); "
                             "put recordings in one subfolder per timbre, e.g. DIR/cello/take1.wav")
    named: dict[str, list[Path]] = {}
    for folder, files in timbres.items():
        name = timbre_key(folder)
        if name in named:
            raise ParameterError(f"audio={str(root)!r}: two folders give the timbre name {name!r} (names are lower "
                                 "case letters, digits and _); rename one")
        if name != folder:
            notes.append(f"timbre folder {folder!r} is named {name!r} (lower case letters, digits and _)")
        named[name] = files
    return named, notes


def timbre_key(folder: str) -> str:
    """A folder name as a timbre name: lower case letters, digits and ``_``."""
    return re.sub(r"[^a-z0-9_]+", "_", folder.lower()).strip("_") or "timbre"


def file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _blocks(path: Path, block_s: float):
    """``(sample_rate, channels, iterator of mono float32 blocks)``: libsndfile streams; other
    formats (decoded by librosa) are read whole."""
    try:
        info = sf.info(str(path))
    except Exception:  # noqa: BLE001 - not a libsndfile format: read it whole through audioread
        y, ai = read_audio(path, allow_silent=True)
        return ai.sample_rate, ai.channels, iter([y])
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioInputError(f"{path}: no audio samples (0 frames)")
    n = max(1, int(block_s * info.samplerate))

    def gen():
        try:
            for b in sf.blocks(str(path), blocksize=n, dtype="float32", always_2d=True):
                yield b.mean(axis=1)
        except Exception as exc:  # noqa: BLE001 - a truncated or corrupt file mid-way
            raise AudioInputError(f"{path}: unreadable or corrupt audio ({str(exc).splitlines()[0]})") from None

    return int(info.samplerate), int(info.channels), gen()


PYIN_HOP = 512


def _pyin_track(y: np.ndarray, sr: int, chunk_s: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """pyin over a whole buffer: ``(midi [n], voiced [n])`` per ``PYIN_HOP`` samples (frame ``i``
    covers samples ``[i * PYIN_HOP, i * PYIN_HOP + 1024)``). Coarse settings (0.2 semitone grid, 20
    thresholds): enough for a per-note reference. Run ``chunk_s`` at a time: its working memory
    grows with the frames x lags x thresholds of one call."""
    n = int(chunk_s * sr) // PYIN_HOP * PYIN_HOP
    midi, ok = [], []
    for start in range(0, max(len(y) - 1023, 0), n):
        seg = y[start:start + n + 1024 - PYIN_HOP].astype(np.float64)
        f0, voiced, _ = librosa.pyin(seg, fmin=float(midi_to_hz(28)), fmax=float(midi_to_hz(100)), sr=sr,
                                     frame_length=1024, hop_length=PYIN_HOP, center=False, resolution=0.2,
                                     n_thresholds=20)
        good = voiced & np.isfinite(f0)
        midi.append(np.where(good, hz_to_midi(np.where(good, f0, 440.0)), np.nan))
        ok.append(good)
    return (np.concatenate(midi), np.concatenate(ok)) if midi else (np.zeros(0), np.zeros(0, bool))


def _note_pitch(track: tuple[np.ndarray, np.ndarray], a: int, b: int) -> float:
    """Median pyin pitch of the frames inside samples ``[a, b)``; NaN when none is voiced."""
    midi, ok = track
    i0, i1 = int(np.ceil(a / PYIN_HOP)), (b - 1024) // PYIN_HOP + 1
    sel = ok[i0:max(i0, i1)]
    return float(np.median(midi[i0:max(i0, i1)][sel])) if sel.any() else float("nan")


def _features(y: np.ndarray, cfg: FeatureConfig, chunk_s: float = 8.0) -> np.ndarray:
    """:func:`features` of ``y`` computed a few seconds at a time (the same frames, less memory)."""
    state, parts = init_state(cfg), []
    n = int(chunk_s * cfg.sample_rate)
    for i in range(0, len(y), n):
        frames, state = features_step(y[i:i + n], state, cfg)
        parts.append(frames)
    return np.concatenate(parts) if parts else np.zeros((0, cfg.n_bins), np.float32)


class _Analyser:
    def __init__(self, cfg: FeatureConfig, settings: SegmentSettings, floor_db: float) -> None:
        self.cfg, self.s, self.floor_db = cfg, settings, floor_db
        self.hop = cfg.hop_length
        self.T = int(round(settings.note_s / cfg.frame_seconds))
        self.min_hops = int(np.ceil(settings.min_note_s / cfg.frame_seconds))
        self.notes: dict[str, list] = {k: [] for k in ("frames", "length", "onset_s", "part", "level_db", "chord_db",
                                                       "f0_midi", "eval_midi")}
        self.rejected: dict[str, int] = {}
        self.full = False

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def buffer(self, y: np.ndarray, start_hop: int, final: bool) -> int:
        """Analyse ``y`` (16 kHz, starting at hop ``start_hop``); return the hop (relative) the next
        buffer should start from."""
        cfg, hop = self.cfg, self.hop
        n = len(y) // hop
        if n == 0:
            return 0
        lv, fl = hop_levels_db(y, hop), onset_flux(y, hop, cfg.sample_rate)
        notes = cut_notes(lv, fl, floor_db=self.floor_db, hop_s=cfg.frame_seconds, settings=self.s)
        pre = cfg.n_fft // hop
        guard = int(GUARD_S / cfg.frame_seconds)
        first = 0 if start_hop == 0 else pre
        pending = [s for s, e in notes if e >= n - guard and s >= first]
        nxt = (min(pending) if pending else n - guard) - pre
        if final or nxt <= first:
            nxt, accept = n, [(s, e) for s, e in notes if s >= first]
        else:
            accept = [(s, e) for s, e in notes if first <= s and e < n - guard and s < nxt + pre]
        fr = _features(y, cfg)
        self.track = _pyin_track(y, cfg.sample_rate)
        for s, e in accept:
            for a in range(s, e, self.T):  # long notes become pieces of note_s
                b = min(e, a + self.T)
                if b - a < self.min_hops:  # a short note is rejected; a long note's short last piece dropped
                    if a == s:
                        self.reject(f"shorter than {self.s.min_note_s:g} s")
                    continue
                self.add(y, fr, a, b, start_hop, (a - s) // self.T)
        return max(nxt, 1)

    def add(self, y: np.ndarray, fr: np.ndarray, a: int, b: int, start_hop: int, part: int) -> None:
        if len(self.notes["length"]) >= self.s.max_notes_per_file:
            self.full = True
            return
        hop, cfg = self.hop, self.cfg
        chord_db, f0 = harmonic_fraction(fr[a + SKIP_FRAMES: b], cfg)
        if chord_db > CHORD_DB:
            self.reject(CHORD_REASON)
            return
        seg = y[a * hop: b * hop].astype(np.float64)
        level = 10 * np.log10(np.mean(seg * seg) + 1e-14)
        rows = fr[a: a + min(self.T, b - a)].astype(np.float64)
        gain = 10 ** ((TARGET_RMS_DB - level) / 20)
        rows = np.log(np.maximum(np.exp(rows) - cfg.eps, 0.0) * gain + cfg.eps)
        if len(rows) < self.T:
            rows = np.concatenate([rows, np.repeat(rows[-1:], self.T - len(rows), axis=0)])
        d = self.notes
        d["frames"].append(rows.astype(np.float16))
        d["length"].append(min(self.T, b - a))
        d["onset_s"].append((start_hop + a) * cfg.frame_seconds)
        d["part"].append(part)
        d["level_db"].append(level)
        d["chord_db"].append(chord_db)
        d["f0_midi"].append(f0)
        d["eval_midi"].append(_note_pitch(self.track, (a + 4) * hop, b * hop))


def analyse_file(path: Path, cfg: FeatureConfig, settings: SegmentSettings) -> FileNotes:
    """Analyse one recording (see the module docstring). Raises AudioInputError for a file that
    cannot be used at all (unreadable, empty, silent)."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise AudioInputError(f"{path}: empty file (0 bytes)")
    sr, channels, blocks = _blocks(path, BLOCK_S)
    peak, clipped, total = 0.0, 0, 0
    for b in blocks:  # pass 1: the level that counts as silence, clipping
        if not np.all(np.isfinite(b)):
            raise AudioInputError(f"{path}: holds NaN or infinite samples (corrupt float data)")
        peak = max(peak, float(np.max(np.abs(b))) if len(b) else 0.0)
        clipped += int(np.count_nonzero(np.abs(b) >= CLIP_LEVEL))
        total += len(b)
    if total == 0:
        raise AudioInputError(f"{path}: no audio samples (0 frames)")
    if peak <= SILENCE_PEAK:
        raise AudioInputError(f"{path}: silent (peak {20 * np.log10(max(peak, 1e-12)):.0f} dBFS)")
    seconds = total / sr
    # the loudest hop is about the peak less a crest factor of ~10 dB
    floor_db = max(20 * np.log10(peak) - 10 - settings.floor_db, -70.0)
    an = _Analyser(cfg, settings, floor_db)
    rs = soxr.ResampleStream(sr, cfg.sample_rate, 1, dtype="float32", quality="HQ")
    hop, limit = cfg.hop_length, int((BLOCK_S + 2 * GUARD_S) * cfg.sample_rate)
    buf, start_hop = np.zeros(0, np.float32), 0
    for b in _blocks(path, BLOCK_S)[2]:  # pass 2: notes, one block at a time
        buf = np.concatenate([buf, rs.resample_chunk(b)])
        while len(buf) >= limit:
            k = an.buffer(buf, start_hop, final=False)
            buf, start_hop = buf[k * hop:], start_hop + k
    an.buffer(np.concatenate([buf, rs.resample_chunk(np.zeros(0, np.float32), last=True)]), start_hop, final=True)
    d = an.notes
    T, F = an.T, cfg.n_bins
    out = FileNotes(
        path=str(path), sha="", sample_rate=sr, channels=channels, seconds=seconds,
        clipped_fraction=clipped / total,
        frames=np.stack(d["frames"]) if d["frames"] else np.zeros((0, T, F), np.float16),
        length=np.asarray(d["length"], np.int16), onset_s=np.asarray(d["onset_s"], np.float32),
        part=np.asarray(d["part"], np.int16),
        level_db=np.asarray(d["level_db"], np.float32), chord_db=np.asarray(d["chord_db"], np.float32),
        f0_midi=np.asarray(d["f0_midi"], np.float32), eval_midi=np.asarray(d["eval_midi"], np.float32),
        rejected=an.rejected, truncated=an.full,
    )
    return out


def file_warnings(fn: FileNotes, settings: SegmentSettings) -> list[str]:
    """One line per problem of an analysed file: clipping, chords, a long file cut short."""
    out = []
    n_chord = fn.rejected.get(CHORD_REASON, 0)
    if fn.clipped_fraction > CLIP_WARN_FRACTION:
        out.append(f"{fn.path}: clipped ({fn.clipped_fraction:.2%} of samples at full scale); "
                   "the model learns the distortion too: record with more headroom")
    if fn.truncated:
        out.append(f"{fn.path}: long file: kept its first {settings.max_notes_per_file} notes "
                   f"(to {fn.onset_s[-1] / 60:.0f} min); split it to use the rest")
    if n_chord > CHORD_WARN_FRACTION * (n_chord + len(fn)):
        out.append(f"{fn.path}: {n_chord} of {n_chord + len(fn)} notes hold several pitches (chords); "
                   "they are left out: record one note at a time")
    return out


def _key(sha: str, cfg: FeatureConfig, settings: SegmentSettings) -> str:
    blob = json.dumps({"sha": sha, "features": cfg.to_dict(), "segment": dataclasses.asdict(settings),
                       "version": ANALYSIS_VERSION}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


ARRAYS = ("frames", "length", "onset_s", "part", "level_db", "chord_db", "f0_midi", "eval_midi")


def _save(path: Path, fn: FileNotes) -> None:
    meta = {k: getattr(fn, k) for k in ("sample_rate", "channels", "seconds", "clipped_fraction", "rejected",
                                         "truncated")}
    with atomic_path(path, suffix=".tmp.npz") as tmp:
        np.savez(tmp, meta=json.dumps(meta), **{k: getattr(fn, k) for k in ARRAYS})


def _load(path: Path, file: Path, sha: str) -> FileNotes:
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        return FileNotes(path=str(file), sha=sha, **meta, **{k: z[k] for k in ARRAYS})


def cached_analysis(path: Path, cfg: FeatureConfig, settings: SegmentSettings) -> tuple[FileNotes, bool]:
    """``(notes, was_cached)`` for one file."""
    sha = file_sha(path)
    where = cache_dir() / "recordings" / f"{_key(sha, cfg, settings)}.npz"
    if where.exists():
        try:
            return _load(where, path, sha), True
        except Exception:  # noqa: BLE001 - a damaged cache entry is analysed again
            pass
    fn = analyse_file(path, cfg, settings)
    fn.sha = sha
    _save(where, fn)
    return fn, False
