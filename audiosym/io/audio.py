"""Audio files in and out: finding them, reading any to mono float32 at its rate, atomic WAV writes.

Reading tries libsndfile (``soundfile``: WAV, FLAC, OGG/Vorbis, MP3, AIFF, ...) first and falls
back to ``librosa.load`` (audioread/ffmpeg) for anything else. Multichannel audio is downmixed
to mono as the **mean of the channels** (so a stereo file with one silent channel comes out
6 dB quieter, and out-of-phase channels cancel — the same as most DAWs' "sum to mono /2").

Writing goes to a temporary file in the destination folder, is flushed to disk, and then
renamed over the destination with :func:`os.replace`, so a reader (or a crashed run) never
sees half a file; the file gets the permissions ``open()`` gives a new file (0666 less the
umask), not a temporary file's 0600.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import soxr

from audiosym.errors import AudiosymError, ParameterError

#: File extensions picked up when a folder or glob is given (explicit files are always tried).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".m4a", ".wv")

#: WAV formats by name (``audiosym resynth --format``) -> libsndfile subtype: 32-bit float (lossless
#: for the engine's float32 output, never clips), 24-bit and 16-bit PCM (clip at full scale).
WAV_FORMATS = {"float": "FLOAT", "pcm24": "PCM_24", "pcm16": "PCM_16"}

#: Peak level (linear) at or below which a file counts as silent: -100 dBFS.
SILENCE_PEAK = 1e-5


class AudioInputError(AudiosymError):
    """An input file cannot be used: unreadable, corrupt, empty, silent or too long."""


@dataclass(frozen=True)
class AudioInfo:
    """What was read: ``sample_rate`` in Hz, ``channels`` before downmix, ``seconds`` of audio."""

    sample_rate: int
    channels: int
    seconds: float


def probe_seconds(path: str | os.PathLike) -> float | None:
    """Duration in seconds from the file header (libsndfile only), or None when unknown."""

    try:
        info = sf.info(str(path))
    except Exception:  # noqa: BLE001 - any libsndfile failure means "unknown", not an error here
        return None
    if info.samplerate <= 0:
        return None
    return info.frames / info.samplerate


def read_audio(
    path: str | os.PathLike, *, max_seconds: float | None = None, allow_silent: bool = False
) -> tuple[np.ndarray, AudioInfo]:
    """Read ``path`` as mono float32 ``y [n_samples]`` at the file's own sample rate.

    Raises :class:`AudioInputError` with a one-line message when the file is missing,
    unreadable, empty, holds non-finite samples, is silent (peak <= -100 dBFS, unless
    ``allow_silent``) or is longer than ``max_seconds``.
    """
    path = Path(path)
    if not path.exists():
        raise AudioInputError(f"{path}: no such file")
    if path.is_dir():
        raise AudioInputError(f"{path}: is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise AudioInputError(f"{path}: empty file (0 bytes)")
    header_seconds = probe_seconds(path)
    if max_seconds is not None and header_seconds is not None and header_seconds > max_seconds:
        raise AudioInputError(
            f"{path}: {header_seconds:.1f} s is longer than max_seconds={max_seconds:g}; "
            "raise max_seconds or split the file"
        )
    data, sample_rate = _decode(path)
    channels = 1 if data.ndim == 1 else data.shape[1]
    y = data if data.ndim == 1 else data.mean(axis=1)
    y = np.ascontiguousarray(y, dtype=np.float32)
    seconds = y.shape[0] / sample_rate
    if y.shape[0] == 0:
        raise AudioInputError(f"{path}: no audio samples (0 frames)")
    if max_seconds is not None and seconds > max_seconds:
        raise AudioInputError(
            f"{path}: {seconds:.1f} s is longer than max_seconds={max_seconds:g}; "
            "raise max_seconds or split the file"
        )
    if not np.all(np.isfinite(y)):
        raise AudioInputError(f"{path}: holds NaN or infinite samples (corrupt float data)")
    peak = float(np.max(np.abs(y)))
    if not allow_silent and peak <= SILENCE_PEAK:
        raise AudioInputError(
            f"{path}: silent (peak {20 * np.log10(max(peak, 1e-12)):.0f} dBFS <= -100 dBFS); nothing to resynthesise"
        )
    return y, AudioInfo(sample_rate=int(sample_rate), channels=int(channels), seconds=seconds)


def _decode(path: Path) -> tuple[np.ndarray, int]:
    """``(data [n] or [n, channels] float32, sample_rate)``; soundfile first, then librosa."""

    try:
        data, sample_rate = sf.read(str(path), dtype="float32", always_2d=False)
        return data, int(sample_rate)
    except Exception as sf_exc:  # noqa: BLE001 - fall back to audioread for formats libsndfile lacks
        first = str(sf_exc).strip().splitlines()[0] if str(sf_exc).strip() else type(sf_exc).__name__
    try:


        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # librosa warns about the audioread fallback itself
            data, sample_rate = librosa.load(str(path), sr=None, mono=False)
    except Exception as exc:  # noqa: BLE001 - report both decoders' reasons in one line
        second = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AudioInputError(
            f"{path}: unreadable or corrupt audio (soundfile: {first}; librosa: {second})"
        ) from None
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2:
        data = data.T  # librosa is [channels, n]; keep [n, channels] like soundfile
    return data, int(sample_rate)


def resample(y: np.ndarray, *, orig_sample_rate: int, target_sample_rate: int) -> np.ndarray:
    """Resample mono ``y [n]`` with soxr (high quality); returns float32 ``[≈ n * target / orig]``."""
    if orig_sample_rate <= 0 or target_sample_rate <= 0:
        raise ParameterError(
            f"sample rates must be positive integers, got {orig_sample_rate} -> {target_sample_rate}"
        )
    if orig_sample_rate == target_sample_rate:
        return np.asarray(y, dtype=np.float32)

    return soxr.resample(np.asarray(y, dtype=np.float32), orig_sample_rate, target_sample_rate, quality="HQ").astype(
        np.float32
    )


def _new_temp_file(folder: Path, *, prefix: str, suffix: str) -> str:
    """Create an empty file with a fresh random name in ``folder``; its mode is what ``open()``
    gives a new file (0666 less the umask: 0644 under the usual 022), not ``mkstemp``'s 0600,
    which other users, groups and some samplers cannot read."""
    for _ in range(100):
        tmp = str(folder / f"{prefix}{secrets.token_hex(4)}{suffix}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the kernel applies the umask
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"{folder}: no free temporary file name after 100 tries")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = ".tmp") -> Iterator[str]:
    """A temporary file path beside ``path`` to write to. When the block ends normally the file
    is synced and renamed over ``path`` (atomic: readers see the old file or the whole new one);
    when it raises, the temporary file is removed. The parent folder is created. The file gets
    the permissions a plain ``open(path, "w")`` would give a new file (0666 less the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp_file(path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_wav(
    path: str | os.PathLike, y: np.ndarray, *, sample_rate: int, subtype: str = "FLOAT", comment: str | None = None
) -> Path:
    """Write mono ``y [n]`` (float, nominal range ±1) as a WAV file, atomically.

    ``subtype`` is a libsndfile subtype (:data:`WAV_FORMATS`): ``FLOAT`` (32-bit float, lossless
    for our float32 output and never clips), ``PCM_24`` or ``PCM_16`` (samples beyond ±1 are
    clipped to full scale: count them first with :func:`clipped_samples`). ``comment`` is stored
    in the file's INFO chunk (``ICMT``; :func:`read_wav_comment`). The parent folder is created.
    """

    path = Path(path)
    if sample_rate <= 0:
        raise ParameterError(f"sample_rate={sample_rate} must be a positive integer (Hz)")
    if subtype not in WAV_FORMATS.values():
        raise ParameterError(f"subtype={subtype!r} must be one of {sorted(WAV_FORMATS.values())}")
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ParameterError(f"write_wav expects mono audio [n_samples], got shape {y.shape}")
    if subtype != "FLOAT":  # clip here rather than rely on libsndfile's float -> integer clipping
        y = np.clip(y, -1.0, 1.0)
    with atomic_path(path) as tmp:
        with sf.SoundFile(tmp, "w", int(sample_rate), 1, subtype, format="WAV") as f:
            if comment:
                f.comment = comment
            f.write(y)
    return path


def clipped_samples(y: np.ndarray, subtype: str) -> int:
    """How many samples of ``y`` a WAV of ``subtype`` clips: those beyond ±1 for PCM, none for float."""
    return 0 if subtype == "FLOAT" else int(np.count_nonzero(np.abs(np.asarray(y)) > 1.0))


def read_wav_comment(path: str | os.PathLike) -> str | None:
    """The INFO comment :func:`write_wav` stored in ``path``; None when it has none or is not
    a readable audio file."""

    try:
        with sf.SoundFile(str(path)) as f:
            return f.comment or None
    except Exception:  # noqa: BLE001 - any unreadable file simply has no comment of ours
        return None


# ---------------------------------------------------------------- finding inputs

_MAGIC = set("*?[")


@dataclass(frozen=True)
class InputSource:
    """A discovered input: ``path``; ``root``, the folder outputs are named relative to (None:
    just the file name); ``error`` when the item named nothing usable."""

    path: str  # as found (absolute for files found in folders/globs)
    root: str | None  # outputs are named relative to this folder; None: just the file name
    error: str | None = None


def _glob_base(pattern: str) -> str:
    parts = Path(pattern).parts
    base = []
    for part in parts:
        if _MAGIC & set(part):
            break
        base.append(part)
    return str(Path(*base)) if base else "."


def discover_inputs(inputs: list[str], *, extensions=AUDIO_EXTENSIONS) -> list[InputSource]:
    """Expand files, folders (recursive, by extension) and glob patterns into sources.

    A path that does not exist, a folder without audio and a glob matching nothing become
    sources carrying an error, so they are reported in the summary instead of vanishing.
    """
    exts = tuple(e.lower() for e in extensions)
    found: list[InputSource] = []
    for item in inputs:
        if _MAGIC & set(item) and not os.path.exists(item):
            matches = sorted(glob.glob(item, recursive=True))
            files = [m for m in matches if os.path.isfile(m) and m.lower().endswith(exts)]
            if not files:
                found.append(InputSource(item, None, f"{item}: the pattern matches no audio files"))
            base = os.path.abspath(_glob_base(item))
            found.extend(InputSource(os.path.abspath(f), base) for f in files)
        elif os.path.isdir(item):
            root = os.path.abspath(item)
            files = sorted(
                os.path.join(d, f)
                for d, _, names in os.walk(root)
                for f in names
                if f.lower().endswith(exts) and not f.startswith(".")
            )
            if not files:
                found.append(InputSource(item, None, f"{item}: folder holds no audio files ({', '.join(exts)})"))
            found.extend(InputSource(f, root) for f in files)
        elif os.path.exists(item):
            found.append(InputSource(os.path.abspath(item), None))
        else:
            found.append(InputSource(item, None, f"{item}: no such file or folder"))
    return found
